//! The server binary: telemetry, configuration, then the application.

use tldw::server::{config::Settings, startup::Application, telemetry};

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

    match run(settings).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "tldw stopped with an error");
            eprintln!("tldw: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    let url = app.url();
    tracing::info!(%url, "tldw is ready");
    println!("tldw is ready at {url}");
    app.run_until_stopped(tldw::server::startup::shutdown_signal())
        .await
}
