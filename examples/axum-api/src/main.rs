//! `cargo run -p axum-api`: the example on `EXAMPLE_BIND` (default
//! `127.0.0.1:8082`), configured like the resource API (`AUTH_URL`,
//! `AUTH_INTERNAL_URL`, `INTERNAL_API_TOKEN`, `JWT_AUDIENCE`, …).

use std::process::ExitCode;

use resource_guard::{Guard, GuardSettings};

#[tokio::main]
async fn main() -> ExitCode {
    // `RUST_LOG`, else `info`: the guard says at `warn` when it cannot
    // reach the auth server.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    match serve().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("axum-api: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> Result<(), Box<dyn std::error::Error>> {
    let guard = Guard::start(GuardSettings::from_env()?)?;
    let bind = std::env::var("EXAMPLE_BIND").unwrap_or_else(|_| "127.0.0.1:8082".to_owned());
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    tracing::info!(%bind, "axum-api listening");
    axum::serve(listener, axum_api::router(guard)).await?;
    Ok(())
}
