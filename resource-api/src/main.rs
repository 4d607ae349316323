use std::process::ExitCode;

use resource_api::config::Settings;
use resource_api::startup::Application;

fn main() -> ExitCode {
    // `.env` is for development; in production the environment is set.
    let _ = dotenvy::dotenv();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("resource-api: {e}");
            return ExitCode::from(2);
        }
    };
    // `resource-api healthcheck`: for container health checks.
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => {}
        Some("healthcheck") => {
            return match service_kit::probe::http_ok(settings.bind, "/healthz") {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("resource-api: unhealthy: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Some(other) => {
            eprintln!("resource-api: unknown command `{other}` (commands: serve, healthcheck)");
            return ExitCode::from(2);
        }
    }
    service_kit::telemetry::init_tracing(settings.production);
    let served = actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings).await?;
        tracing::info!(
            port = app.port(),
            internal_port = app.internal_port(),
            "resource-api listening"
        );
        app.run_until_stopped().await?;
        anyhow::Ok(())
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("resource-api: {e:#}");
            ExitCode::FAILURE
        }
    }
}
