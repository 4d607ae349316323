//! `Application::build(settings)`: everything needed to serve, bound to its
//! two listeners (the public API, and the internal one for the revocation
//! feed and `/metrics`), with the janitor and the mail worker running, so tests start the real
//! server on port 0.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::http::{Method, header};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use secrecy::ExposeSecret;
use service_kit::cors::{AllowedOrigins, cors, refused_preflight_as_error};
use service_kit::http_metrics::track_requests;
use service_kit::security_headers::security_headers;
use service_kit::telemetry::{ClientAddress, RootSpan};
use tracing_actix_web::TracingLogger;

use crate::config::Settings;
use crate::db;
use crate::db::sweep::Retention;
use crate::factors::password::PasswordPool;
use crate::http::client::Client;
use crate::http::{self, fallback};
use crate::keys::keyring::{Keyring, SigningKeys};
use crate::keys::signing::SigningKey;
use crate::limits::login_throttle::{KNOWN_CLIENT_LIFETIME, STRANGERS_MEMORY};
use crate::mail::transport::Transport;
use crate::service::mail_worker::MailWorker;
use crate::service::signing_keys::KeyStore;
use crate::state::AppState;
use crate::tokens::keys::TokenKeys;

pub struct Application {
    port: u16,
    internal_port: u16,
    server: Server,
    internal: Server,
    state: AppState,
}

/// Stops both listeners.
#[derive(Clone)]
pub struct Handle {
    public: ServerHandle,
    internal: ServerHandle,
}

impl Handle {
    pub async fn stop(&self, graceful: bool) {
        futures_util::future::join(self.public.stop(graceful), self.internal.stop(graceful)).await;
    }
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        for warning in settings.warnings() {
            tracing::warn!("{warning}");
        }
        let token_keys = load_token_keys(&settings)?;
        prepare_database(&settings).await?;
        let database = db::Database::new(&settings.database, settings.http.workers)?;
        let (signing, key_store) = load_signing_keys(&settings, &database).await?;
        let signing = Arc::new(signing);
        let passwords = PasswordPool::start(&settings.password)?;
        let listener = TcpListener::bind(settings.http.bind)
            .with_context(|| format!("binding AUTH_BIND {}", settings.http.bind))?;
        let port = listener.local_addr()?.port();
        let internal_bind = settings.internal_api.bind;
        let internal_listener = TcpListener::bind(internal_bind)
            .with_context(|| format!("binding AUTH_INTERNAL_BIND {internal_bind}"))?;
        let internal_port = internal_listener.local_addr()?.port();
        let retention = retention(&settings);
        let sweep_interval = settings.janitor.interval;
        let metrics = crate::metrics::Metrics::new()?;
        let webauthn = Arc::new(crate::factors::passkey::relying_party(&settings.webauthn)?);
        let state = AppState::new(
            Arc::new(settings),
            database.clone(),
            passwords,
            Arc::clone(&signing),
            Arc::new(token_keys),
            metrics,
            webauthn,
        );
        MailWorker {
            database: state.database.clone(),
            transport: Transport::from_settings(&state.settings.mail)?,
            mail: state.settings.mail.clone(),
            accounts: state.settings.accounts.clone(),
            wake: Arc::clone(&state.mail_queued),
            metrics: Arc::clone(&state.metrics),
        }
        .spawn();
        crate::service::janitor::spawn(database, sweep_interval, retention);
        // Other replicas' revocations wake this one's held polls at once;
        // new signing keys are loaded at once.
        let keys_changed = Arc::new(tokio::sync::Notify::new());
        let mut channels = vec![(db::notifications::REVOCATIONS, &state.revocations)];
        if key_store.is_some() {
            channels.push((db::notifications::SIGNING_KEYS, &keys_changed));
        }
        db::notifications::spawn(
            state.settings.database.url.clone(),
            channels,
            Arc::clone(&state.listen),
        )
        .context("starting the LISTEN thread")?;
        if let Some(store) = key_store {
            store.spawn(signing, keys_changed, Arc::clone(&state.keys_reloaded));
        }
        let server = serve(listener, state.clone())?;
        let internal = serve_internal(internal_listener, state.clone())?;
        Ok(Self {
            port,
            internal_port,
            server,
            internal,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The internal listener's port (the revocation feed, `/metrics`).
    pub fn internal_port(&self) -> u16 {
        self.internal_port
    }

    /// Stops the server from outside (tests restart it this way).
    pub fn handle(&self) -> Handle {
        Handle {
            public: self.server.handle(),
            internal: self.internal.handle(),
        }
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Until both listeners stop: SIGTERM stops both, and lets in-flight
    /// requests on either finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        service_kit::shutdown::stop_on_signals(vec![self.server.handle(), self.internal.handle()]);
        futures_util::future::try_join(self.server, self.internal).await?;
        Ok(())
    }
}

/// How long the janitor keeps what it sweeps.
fn retention(settings: &Settings) -> Retention {
    Retention {
        sessions: settings.janitor.session_retention,
        // The longest a bucket keeps its count without a failure; with the
        // throttle off, none is of any use.
        failure_buckets: settings
            .rate_limits
            .account
            .map_or(Duration::ZERO, |limit| limit.per.max(STRANGERS_MEMORY)),
        known_login_clients: KNOWN_CLIENT_LIFETIME,
        audit_events: settings.janitor.audit_retention,
    }
}

/// The signing keys: `SIGNING_KEY_FILE` (with its retired keys), else the
/// database's under `KEY_ENCRYPTION_KEY_FILE` (with the store that keeps
/// them current), else an ephemeral development key.
async fn load_signing_keys(
    settings: &Settings,
    database: &db::Database,
) -> anyhow::Result<(SigningKeys, Option<KeyStore>)> {
    if let Some(store) = KeyStore::from_settings(settings, database)? {
        let ring = store
            .start()
            .await
            .map_err(|e| anyhow::anyhow!("loading the signing keys from the database: {e}"))?;
        for (kid, times) in ring.kids() {
            tracing::info!(kid, activate_at = %times.activate_at, "signing key loaded from the database");
        }
        return Ok((SigningKeys::new(ring), Some(store)));
    }
    let key = load_signing_key(settings)?;
    Ok((SigningKeys::new(Keyring::single(key)), None))
}

fn load_signing_key(settings: &Settings) -> anyhow::Result<SigningKey> {
    let mut key = match &settings.tokens.signing_key_file {
        Some(path) => SigningKey::from_pem_file(path)?,
        None => {
            tracing::warn!(
                "Neither SIGNING_KEY_FILE nor KEY_ENCRYPTION_KEY_FILE is set: using an EPHEMERAL signing key. Every token dies with this process. \
                 Development only; for keys kept and rotated in the database, write a key-encryption key with `auth-server secret --out FILE`."
            );
            SigningKey::ephemeral()?
        }
    };
    for path in &settings.tokens.retired_key_files {
        let retired = SigningKey::from_pem_file(path)?;
        tracing::info!(
            kid = retired.kid(),
            "retired key still published until its tokens expire"
        );
        key.retire(retired);
    }
    tracing::info!(kid = key.kid(), "signing key loaded");
    Ok(key)
}

fn load_token_keys(settings: &Settings) -> anyhow::Result<TokenKeys> {
    let tokens = &settings.tokens;
    match &tokens.refresh_token_key_file {
        Some(path) => TokenKeys::from_files(path, &tokens.retired_refresh_token_key_files),
        None => {
            tracing::warn!(
                "REFRESH_TOKEN_KEY_FILE is not set: using an EPHEMERAL token key. After a restart, or on \
                 another replica, a refresh answer lost in transit can no longer be re-sent. Development only; \
                 create a key with `auth-server secret --out FILE`."
            );
            TokenKeys::ephemeral()
        }
    }
}

async fn prepare_database(settings: &Settings) -> anyhow::Result<()> {
    let url = settings.database.url.expose_secret().to_owned();
    let create = settings.database.create_if_missing;
    let migrate = settings.database.run_migrations;
    tokio::task::spawn_blocking(move || {
        if create {
            db::create_database_if_missing(&url)?;
        }
        if migrate {
            db::run_migrations(&url)?;
        }
        anyhow::Ok(())
    })
    .await?
}

fn serve(listener: TcpListener, state: AppState) -> anyhow::Result<Server> {
    let origins = web::Data::new(AllowedOrigins(Arc::new(
        state.settings.http.allowed_origins.clone(),
    )));
    let workers = state.settings.http.workers;
    let client_timeout = state.settings.http.client_timeout;
    let production = state.settings.is_production();
    let http_metrics = web::Data::new(state.metrics.http.clone());
    // The request log names the client as the rate limits see it: behind
    // trusted proxies only. It reads it first and keeps it in the request
    // for the handlers' `Client`.
    let proxies = state.settings.http.trusted_proxies.clone();
    let client_address = ClientAddress::new(move |req| Client::of(req, &proxies).ip);
    let state = web::Data::new(state);
    let server = HttpServer::new(move || {
        let refused_origins = origins.get_ref().clone();
        App::new()
            // Innermost: the next layer turns actix-cors's refused
            // preflights into the contract's body, and the outer ones (the
            // security headers) see every answer, preflights included.
            .wrap(cors(
                origins.get_ref().clone(),
                // The refresh cookie travels with the app's requests.
                true,
                &[
                    Method::GET,
                    Method::POST,
                    Method::PUT,
                    Method::DELETE,
                    Method::OPTIONS,
                ],
                &[header::CONTENT_TYPE, header::AUTHORIZATION],
            ))
            .wrap(from_fn(http::origin::put_only_under_admin))
            .wrap(from_fn(move |req, next| {
                refused_preflight_as_error(refused_origins.clone(), req, next)
            }))
            .wrap(security_headers(production))
            .wrap(from_fn(track_requests))
            .wrap(TracingLogger::<RootSpan>::new())
            .app_data(state.clone())
            .app_data(http_metrics.clone())
            .app_data(client_address.clone())
            .app_data(origins.clone())
            .configure(http::routes)
            .default_service(web::to(fallback::not_found))
    })
    .workers(workers)
    // Slow clients: the head must arrive within this (bodies are bounded by
    // the same time in `JsonBody`).
    .client_request_timeout(client_timeout)
    // SIGTERM: stop accepting, let in-flight requests (long polls included,
    // at most 25 s) finish.
    .shutdown_timeout(30)
    // Signals stop both listeners together (`run_until_stopped`).
    .disable_signals()
    .listen(listener)?
    .run();
    Ok(server)
}

/// The internal listener: the revocation feed and `/metrics`, for the
/// operator's network only. No CORS: no browser has business here.
fn serve_internal(listener: TcpListener, state: AppState) -> anyhow::Result<Server> {
    let production = state.settings.is_production();
    let client_timeout = state.settings.http.client_timeout;
    let http_metrics = web::Data::new(state.metrics.http.clone());
    let state = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .wrap(security_headers(production))
            .wrap(from_fn(track_requests))
            .wrap(TracingLogger::<RootSpan>::new())
            .app_data(state.clone())
            .app_data(http_metrics.clone())
            .configure(http::internal_routes)
            .default_service(web::to(fallback::not_found))
    })
    // Long polls wait on timers, not threads: one worker holds them all.
    .workers(1)
    .client_request_timeout(client_timeout)
    // SIGTERM: in-flight long polls (at most 25 s) finish.
    .shutdown_timeout(30)
    // Signals stop both listeners together (`run_until_stopped`).
    .disable_signals()
    .listen(listener)?
    .run();
    Ok(server)
}
