//! `Application::build(settings)`: the guard started (its key refresher and
//! revocation sync), both listeners bound (the public API, and the internal
//! one for `/metrics`), so tests start the real thing on port 0.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::http::{Method, header};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use resource_guard::Guard;
use service_kit::cors::{AllowedOrigins, cors, refused_preflight_as_error};
use service_kit::http_metrics::track_requests;
use service_kit::security_headers::security_headers;
use service_kit::telemetry::RootSpan;
use tracing_actix_web::TracingLogger;

use crate::config::Settings;
use crate::handlers as h;
use crate::metrics::Metrics;

pub struct Application {
    port: u16,
    internal_port: u16,
    server: Server,
    internal: Server,
    guard: Guard,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        for warning in settings.warnings() {
            tracing::warn!("{warning}");
        }
        let guard = Guard::start(settings.guard.clone())?;
        let metrics = web::Data::new(Metrics::new()?);
        let listener = TcpListener::bind(settings.bind)
            .with_context(|| format!("binding API_BIND {}", settings.bind))?;
        let port = listener.local_addr()?.port();
        let internal_listener = TcpListener::bind(settings.internal_bind)
            .with_context(|| format!("binding API_INTERNAL_BIND {}", settings.internal_bind))?;
        let internal_port = internal_listener.local_addr()?.port();
        let workers = settings.http_workers;
        // `GET /api/step-up`'s demand, in its resource's data.
        let step_up = web::Data::new(settings.step_up());
        let production = settings.production;
        let origins = AllowedOrigins(Arc::new(settings.allowed_origins));
        let data = web::Data::new(guard.clone());
        let http_metrics = web::Data::new(metrics.http.clone());
        let internal = Shared {
            guard: data.clone(),
            metrics: metrics.clone(),
            http_metrics: http_metrics.clone(),
        };
        let server = HttpServer::new(move || {
            let refused_origins = origins.clone();
            App::new()
                // Innermost: the next layer turns actix-cors's refused
                // preflights into the contract's body, and the outer ones (the
                // security headers) see every answer, preflights included.
                .wrap(cors(
                    origins.clone(),
                    // Access tokens travel in `Authorization`, never in cookies:
                    // nothing ambient for another origin to ride on.
                    false,
                    &[Method::GET, Method::OPTIONS],
                    &[header::AUTHORIZATION],
                ))
                .wrap(from_fn(move |req, next| {
                    refused_preflight_as_error(refused_origins.clone(), req, next)
                }))
                .wrap(security_headers(production))
                .wrap(from_fn(track_requests))
                .wrap(TracingLogger::<RootSpan>::new())
                .app_data(data.clone())
                .app_data(http_metrics.clone())
                // The handlers take `Authenticated`: the guard, from the
                // app data, decides before they run.
                .service(resource("/api/me").route(web::get().to(h::me)))
                .service(resource("/api/admin").route(web::get().to(h::admin)))
                .service(
                    resource("/api/step-up")
                        .app_data(step_up.clone())
                        .route(web::get().to(h::step_up)),
                )
                .service(
                    resource("/openapi.json").route(web::get().to(crate::openapi::openapi_json)),
                )
                .service(resource("/healthz").route(web::get().to(h::healthz)))
                .service(resource("/readyz").route(web::get().to(h::readyz)))
                .default_service(web::to(h::not_found))
        })
        .workers(workers)
        // Slow clients: the head must arrive within this; there are no bodies.
        .client_request_timeout(std::time::Duration::from_secs(10))
        // SIGTERM: stop accepting, let in-flight requests finish.
        .shutdown_timeout(30)
        // Signals stop both listeners together (`run_until_stopped`).
        .disable_signals()
        .listen(listener)?
        .run();
        let internal = serve_internal(internal_listener, internal, production)?;
        Ok(Self {
            port,
            internal_port,
            server,
            internal,
            guard,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The internal listener's port (`/metrics`).
    pub fn internal_port(&self) -> u16 {
        self.internal_port
    }

    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// Until both listeners stop: SIGTERM stops both, and lets in-flight
    /// requests on either finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        service_kit::shutdown::stop_on_signals(vec![self.server.handle(), self.internal.handle()]);
        futures_util::future::try_join(self.server, self.internal).await?;
        Ok(())
    }
}

/// What the internal listener reads.
#[derive(Clone)]
struct Shared {
    guard: web::Data<Guard>,
    metrics: web::Data<Metrics>,
    http_metrics: web::Data<service_kit::http_metrics::HttpMetrics>,
}

/// The internal listener: `/metrics` only, for the operator's network.
fn serve_internal(
    listener: TcpListener,
    shared: Shared,
    production: bool,
) -> anyhow::Result<Server> {
    Ok(HttpServer::new(move || {
        App::new()
            .wrap(security_headers(production))
            .wrap(from_fn(track_requests))
            .wrap(TracingLogger::<RootSpan>::new())
            .app_data(shared.guard.clone())
            .app_data(shared.metrics.clone())
            .app_data(shared.http_metrics.clone())
            .service(resource("/metrics").route(web::get().to(h::metrics)))
            .default_service(web::to(h::not_found))
    })
    .workers(1)
    .client_request_timeout(std::time::Duration::from_secs(10))
    .shutdown_timeout(30)
    // Signals stop both listeners together (`run_until_stopped`).
    .disable_signals()
    .listen(listener)?
    .run())
}

fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(h::method_not_allowed))
}
