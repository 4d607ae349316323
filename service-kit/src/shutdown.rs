//! Stopping a service whose listeners are separate actix-web servers (the
//! public one and the internal one) on the signals one server would act on
//! alone: SIGTERM lets in-flight requests finish, SIGINT and SIGQUIT stop at
//! once.
//!
//! The servers' own signal handling must be off (`disable_signals`): each
//! server, once it has shut down after a signal, stops the whole actix
//! system, which would cut off the other server's in-flight requests (a
//! long poll on the internal listener, say).

use actix_web::dev::ServerHandle;

/// Stops every server on the first shutdown signal; the caller then awaits
/// the servers themselves.
pub fn stop_on_signals(servers: Vec<ServerHandle>) {
    tokio::spawn(async move {
        let graceful = match signal().await {
            Ok(graceful) => graceful,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for shutdown signals");
                return;
            }
        };
        tracing::info!(graceful, "shutdown signal received; stopping");
        let stops = servers.iter().map(|server| server.stop(graceful));
        futures_util::future::join_all(stops).await;
    });
}

/// Waits for a shutdown signal: whether it asks for a graceful stop.
#[cfg(unix)]
async fn signal() -> std::io::Result<bool> {
    use actix_web::rt::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut quit = signal(SignalKind::quit())?;
    Ok(tokio::select! {
        _ = term.recv() => true,
        _ = int.recv() => false,
        _ = quit.recv() => false,
    })
}

#[cfg(not(unix))]
async fn signal() -> std::io::Result<bool> {
    actix_web::rt::signal::ctrl_c().await.map(|()| false)
}
