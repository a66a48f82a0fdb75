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
    telemetry::init(settings.log_format);

    let args: Vec<String> = std::env::args().skip(1).collect();
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

const USAGE: &str = "usage:\n  tldw                                   run the app\n  tldw plan set --org <slug> --plan <free|pro|team>\n                                         put an organization on a plan by hand (billing off)";

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
