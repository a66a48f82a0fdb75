//! The server binary: telemetry, configuration, then the application.

use tldw::{
    domain::PlanId,
    server::{config::Settings, startup::Application, telemetry},
};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("tldw: configuration error: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The checklist is the output: no log lines mixed into it (or its JSON).
    if args.first().map(String::as_str) == Some("doctor") {
        return doctor(&settings, &args[1..]).await;
    }
    telemetry::init(settings.log_format);

    if !args.is_empty() {
        return admin(settings, &args).await;
    }
    match run(settings).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "tldw stopped with an error");
            eprintln!("tldw: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "usage:\n  tldw                                   run the app\n  tldw doctor [--json]                   the pre-launch checklist against the configured database\n  tldw plan set --org <slug> --plan <free|pro|team>\n                                         put an organization on a plan by hand (billing off)";

/// Operator commands; exit code 2 for a usage error.
async fn admin(settings: Settings, args: &[String]) -> std::process::ExitCode {
    let command = match parse_plan_set(args) {
        Ok(command) => command,
        Err(message) => {
            eprintln!("tldw: {message}\n{USAGE}");
            return std::process::ExitCode::from(2);
        }
    };
    let (slug, plan) = command;
    match tldw::server::startup::set_plan(&settings, &slug, plan).await {
        Ok(()) => {
            println!("{slug} is now on the {} plan", plan.as_str());
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("tldw: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `tldw doctor [--json]`: exit 0 when every check is green, 1 when any is
/// red, 2 for a usage error or when the checks could not run at all.
async fn doctor(settings: &Settings, args: &[String]) -> std::process::ExitCode {
    let json = match args {
        [] => false,
        [flag] if flag == "--json" => true,
        _ => {
            eprintln!("tldw: unknown doctor option {:?}\n{USAGE}", args.join(" "));
            return std::process::ExitCode::from(2);
        }
    };
    let env = |name: &str| std::env::var(name).ok();
    let checks = match tldw::server::doctor::run(settings, &env).await {
        Ok(checks) => checks,
        Err(error) => {
            eprintln!("tldw doctor: could not run the checks: {error:#}");
            return std::process::ExitCode::from(2);
        }
    };
    if json {
        match serde_json::to_string_pretty(&checks) {
            Ok(text) => println!("{text}"),
            Err(error) => {
                eprintln!("tldw doctor: {error}");
                return std::process::ExitCode::from(2);
            }
        }
    } else {
        use std::io::IsTerminal;
        print!(
            "{}",
            tldw::server::doctor::render(&checks, std::io::stdout().is_terminal())
        );
    }
    if checks.iter().all(|check| check.ok) {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}

/// `plan set --org <slug> --plan <plan>` (flags in any order).
fn parse_plan_set(args: &[String]) -> Result<(String, PlanId), String> {
    let (command, flags) = args.split_at(args.len().min(2));
    if command != ["plan", "set"] {
        return Err(format!("unknown command {:?}", args.join(" ")));
    }
    let (mut org, mut plan) = (None, None);
    let mut flags = flags.iter();
    while let Some(flag) = flags.next() {
        let value = flags
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--org" => org = Some(value.trim().to_owned()),
            "--plan" => {
                plan =
                    Some(PlanId::parse(value).ok_or_else(|| {
                        format!("unknown plan {value:?}; choose free, pro or team")
                    })?)
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok((
        org.ok_or("--org <slug> is required")?,
        plan.ok_or("--plan <free|pro|team> is required")?,
    ))
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    let url = app.url();
    tracing::info!(%url, "tldw is ready");
    println!("tldw is ready at {url}");
    app.run_until_stopped(tldw::server::startup::shutdown_signal())
        .await
}
