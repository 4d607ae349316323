//! The system under test: a fresh database, a signing key, and the two
//! release binaries as child processes, each behind a guard whose `Drop`
//! undoes it, so an error or an interruption leaves nothing behind.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use auth_server::db::{quote_identifier, split_database_url, with_database};
use diesel::{Connection, PgConnection, RunQueryDsl};
use reqwest::Url;

use crate::Args;
use crate::client::Client;

/// The name the auth server of `--baseline-bin-dir` is watched under.
pub const BASELINE: &str = "auth-server (baseline)";

/// How long the services may take to become ready (migrations included).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Resolves when Ctrl-C or SIGTERM arrives, naming it. The handlers are
/// installed when this is called, not when it is first polled.
pub fn interrupted() -> anyhow::Result<impl Future<Output = &'static str>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        }
    })
}

/// `cargo build --release -p auth-server -p resource-api`, with the cargo
/// that runs us when there is one.
pub fn build_release() -> anyhow::Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("building: cargo build --release -p auth-server -p resource-api");
    let status = Command::new(cargo)
        .current_dir(workspace_root())
        .args([
            "build",
            "--release",
            "-p",
            "auth-server",
            "-p",
            "resource-api",
        ])
        .stdin(Stdio::null())
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build --release failed ({status})");
    }
    Ok(())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

pub fn default_bin_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from)
        .join("release")
}

/// A scratch directory for the key, the internal token and the logs.
struct ScratchDir {
    path: PathBuf,
    keep_logs: bool,
}

impl ScratchDir {
    fn create(keep_logs: bool) -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!("auth-bench-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self { path, keep_logs })
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if self.keep_logs {
            // Only the logs stay: the key and token are of no use to anyone.
            for secret in ["signing.pem", "internal-token"] {
                let _ = std::fs::remove_file(self.path.join(secret));
            }
            eprintln!("logs kept in {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A database created for this run and dropped with the guard.
struct Database {
    server_url: String,
    name: String,
    url: String,
}

impl Database {
    fn create(url: &str) -> anyhow::Result<Self> {
        let (server_url, _) = split_database_url(url)
            .context("DATABASE_URL must name a database, such as …/postgres")?;
        let name = format!("auth_bench_{}", uuid::Uuid::new_v4().simple());
        let url = with_database(url, &name).context("DATABASE_URL does not parse")?;
        let mut conn = PgConnection::establish(&server_url)
            .with_context(|| "connecting to PostgreSQL at DATABASE_URL".to_owned())?;
        diesel::sql_query(format!("CREATE DATABASE {}", quote_identifier(&name)))
            .execute(&mut conn)
            .with_context(|| format!("creating database {name}"))?;
        Ok(Self {
            server_url,
            name,
            url,
        })
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        // FORCE: a connection some child left open must not keep it alive.
        let dropped = PgConnection::establish(&self.server_url)
            .map_err(|e| e.to_string())
            .and_then(|mut conn| {
                diesel::sql_query(format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    quote_identifier(&self.name)
                ))
                .execute(&mut conn)
                .map_err(|e| e.to_string())
            });
        if let Err(e) = dropped {
            eprintln!(
                "bench: could not drop database {} ({e}); drop it by hand",
                self.name
            );
        }
    }
}

/// A child service, killed with the guard.
pub struct Service {
    pub name: &'static str,
    pub url: Url,
    child: Child,
    log: PathBuf,
}

impl Service {
    fn spawn(
        name: &'static str,
        binary: &str,
        bin_dir: &Path,
        scratch: &Path,
        port: u16,
        env: &BTreeMap<String, String>,
    ) -> anyhow::Result<Self> {
        let binary = bin_dir.join(binary);
        if !binary.is_file() {
            bail!(
                "{} is missing: run `cargo build --release -p auth-server -p resource-api`, or drop --no-build",
                binary.display()
            );
        }
        let log = scratch.join(format!("{name}.log"));
        let out = File::create(&log)?;
        let err = out.try_clone()?;
        // A clean environment, and a working directory without a `.env`:
        // exactly the settings below, nothing inherited.
        let child = Command::new(&binary)
            .env_clear()
            .envs(env)
            .current_dir(scratch)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let url = Url::parse(&format!("http://127.0.0.1:{port}"))?;
        Ok(Self {
            name,
            url,
            child,
            log,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails with the end of the log when the process has exited.
    fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited ({status}); the end of its log:\n{}",
                self.name,
                tail(&self.log)
            );
        }
        Ok(())
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// A port nobody listens on now. The window until the child binds it is
/// short, and a collision shows as a failed start, never as wrong figures.
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The running stack. Fields drop in order: the services first (so nothing
/// holds the database), then the database, then the scratch directory.
pub struct Stack {
    pub api: Service,
    pub auth: Service,
    /// The auth server of `--baseline-bin-dir`, if asked for.
    pub baseline: Option<Service>,
    database: Database,
    scratch: ScratchDir,
    /// The auth server's environment: the ceilings read their settings from
    /// it exactly as the server does.
    pub auth_env: BTreeMap<String, String>,
}

impl Stack {
    pub fn start(args: &Args) -> anyhow::Result<Self> {
        let bin_dir = args.bin_dir.clone().unwrap_or_else(default_bin_dir);
        let scratch = ScratchDir::create(args.keep_logs)?;
        let database = Database::create(&args.database_url)?;

        let key = scratch.path.join("signing.pem");
        auth_server::keys::signing::write_new_key(&key)?;
        let token = scratch.path.join("internal-token");
        auth_server::keys::signing::write_new_secret(&token)?;

        let auth_port = free_port()?;
        let api_port = free_port()?;
        // The internal listeners too: never the defaults, which another
        // stack on this machine may hold.
        let auth_internal_port = free_port()?;
        let api_internal_port = free_port()?;
        let path = |p: &Path| p.to_string_lossy().into_owned();
        let mut auth_env: BTreeMap<String, String> = [
            ("APP_ENV", "development".to_owned()),
            ("RUST_LOG", "info".to_owned()),
            ("DATABASE_URL", database.url.clone()),
            ("AUTH_BIND", format!("127.0.0.1:{auth_port}")),
            (
                "AUTH_INTERNAL_BIND",
                format!("127.0.0.1:{auth_internal_port}"),
            ),
            ("SIGNING_KEY_FILE", path(&key)),
            ("INTERNAL_API_TOKEN_FILE", path(&token)),
            // The benchmark logs in and refreshes from one address, as one
            // user, far beyond any sane limit.
            ("LOGIN_RATE_LIMIT", "0".to_owned()),
            ("LOGIN_ACCOUNT_RATE_LIMIT", "0".to_owned()),
            ("REFRESH_RATE_LIMIT", "0".to_owned()),
            // Its user holds far more sessions than the cap (the chains of
            // this build, of the baseline build and of the SQL ceilings):
            // one login must not evict another's chains.
            ("MAX_SESSIONS_PER_USER", "0".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        auth_env.extend(args.auth_env.iter().cloned());
        let mut api_env: BTreeMap<String, String> = [
            ("APP_ENV", "development".to_owned()),
            ("RUST_LOG", "info".to_owned()),
            ("API_BIND", format!("127.0.0.1:{api_port}")),
            (
                "API_INTERNAL_BIND",
                format!("127.0.0.1:{api_internal_port}"),
            ),
            ("AUTH_URL", format!("http://127.0.0.1:{auth_port}")),
            (
                "AUTH_INTERNAL_URL",
                format!("http://127.0.0.1:{auth_internal_port}"),
            ),
            ("INTERNAL_API_TOKEN_FILE", path(&token)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        api_env.extend(args.api_env.iter().cloned());

        let auth = Service::spawn(
            "auth-server",
            "auth-server",
            &bin_dir,
            &scratch.path,
            auth_port,
            &auth_env,
        )?;
        let api = Service::spawn(
            "resource-api",
            "resource-api",
            &bin_dir,
            &scratch.path,
            api_port,
            &api_env,
        )?;
        // Another build of the auth server on the same database and
        // settings, for figures against it measured in the same run.
        let baseline = match &args.baseline_bin_dir {
            Some(dir) => {
                let port = free_port()?;
                let mut env = auth_env.clone();
                env.insert("AUTH_BIND".to_owned(), format!("127.0.0.1:{port}"));
                // Its own internal listener too: two cannot share one.
                env.insert(
                    "AUTH_INTERNAL_BIND".to_owned(),
                    format!("127.0.0.1:{}", free_port()?),
                );
                let service =
                    Service::spawn(BASELINE, "auth-server", dir, &scratch.path, port, &env)?;
                eprintln!(
                    "{BASELINE} ({}) pid {} on {}",
                    dir.display(),
                    service.pid(),
                    service.url
                );
                Some(service)
            }
            None => None,
        };
        eprintln!(
            "auth-server pid {} on {}, resource-api pid {} on {}, database {}",
            auth.pid(),
            auth.url,
            api.pid(),
            api.url,
            database.name
        );
        Ok(Self {
            api,
            auth,
            baseline,
            database,
            scratch,
            auth_env,
        })
    }

    pub fn database_url(&self) -> &str {
        &self.database.url
    }

    pub fn database_name(&self) -> &str {
        &self.database.name
    }

    /// The auth server's `SIGNING_KEY_FILE`: the claims comparison signs
    /// its own tokens with it.
    pub fn signing_key_file(&self) -> PathBuf {
        self.scratch.path.join("signing.pem")
    }

    /// Waits until both `/readyz` answer `200`: migrations applied, keys
    /// fetched, revocations synced.
    pub async fn wait_ready(&mut self, client: &Client) -> anyhow::Result<()> {
        let started = Instant::now();
        let mut urls = vec![client.auth_ready.clone(), client.api_ready.clone()];
        if let Some(baseline) = &self.baseline {
            urls.push(baseline.url.join("/readyz")?);
        }
        for url in urls {
            loop {
                self.auth.check_alive()?;
                self.api.check_alive()?;
                if let Some(baseline) = self.baseline.as_mut() {
                    baseline.check_alive()?;
                }
                if matches!(client.get(&url, None).await, Ok(reqwest::StatusCode::OK)) {
                    break;
                }
                if started.elapsed() > READY_TIMEOUT {
                    bail!(
                        "{url} not ready after {}s; the end of the logs:\n{}\n{}",
                        READY_TIMEOUT.as_secs(),
                        tail(&self.auth.log),
                        tail(&self.api.log)
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }
}
