//! The rows of the table, one scenario per module: each figure, its ceiling
//! measured in the same run, and the goal of the issue. This module holds what
//! they share and runs them in order.

mod claims;
mod interference;
mod login;
mod me;
mod memory;
mod mfa_login;
mod refresh;
mod revocation;
mod seven_statements;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow};
use auth_server::config::Settings;

use crate::client::{Client, Tokens};
use crate::load::{self, Load, Measured};
use crate::procfs::{Processes, Watched};
use crate::report::{self, Row, Table};
use crate::stack::Stack;
use crate::{Args, Scenario, loopback_url};

/// The name the PostgreSQL backends of the bench's database are watched
/// under.
const POSTGRES: &str = "PostgreSQL";

/// What every scenario shares.
struct Bench<'a> {
    args: &'a Args,
    client: Arc<Client>,
    /// The auth server's settings as it reads them (from its environment in
    /// the spawned stack; from `--auth-env` and defaults against URLs).
    settings: Settings,
    watched: Vec<Watched>,
    /// The services' database: only when the stack is ours.
    database_url: Option<String>,
    /// The auth server of `--baseline-bin-dir`, when there is one.
    baseline: Option<Arc<Client>>,
    email: Arc<str>,
    password: Arc<str>,
    /// The auth server's signing key file: only when the stack is ours.
    signing_key_file: Option<std::path::PathBuf>,
}

pub async fn run(args: &Args) -> anyhow::Result<Table> {
    let (mut stack, auth_url, api_url) = match (&args.auth_url, &args.api_url) {
        (Some(auth), Some(api)) => (None, loopback_url(auth)?, loopback_url(api)?),
        _ => {
            let stack = Stack::start(args)?;
            let (auth, api) = (stack.auth.url.clone(), stack.api.url.clone());
            (Some(stack), auth, api)
        }
    };
    let client = Arc::new(Client::new(
        &auth_url,
        &api_url,
        args.concurrency.max(args.login_concurrency) * 2,
    )?);
    let auth_env: BTreeMap<String, String> = match &stack {
        Some(stack) => stack.auth_env.clone(),
        None => args.auth_env.iter().cloned().collect(),
    };
    let settings = Settings::from_lookup(|name| auth_env.get(name).cloned())
        .map_err(|e| anyhow!("auth-server settings: {e}"))?;
    let mut watched = vec![Watched::process("bench", std::process::id())];
    if let Some(stack) = stack.as_mut() {
        stack.wait_ready(&client).await?;
        watched.push(Watched::process(stack.auth.name, stack.auth.pid()));
        if let Some(baseline) = &stack.baseline {
            watched.push(Watched::process(baseline.name, baseline.pid()));
        }
        watched.push(Watched::process(stack.api.name, stack.api.pid()));
        watched.push(Watched {
            name: POSTGRES,
            processes: Processes::PostgresBackends {
                database: stack.database_name().to_owned(),
            },
        });
    } else {
        for url in [&client.auth_ready, &client.api_ready] {
            client
                .get_ok(url, None)
                .await
                .with_context(|| format!("{url} is not ready"))?;
        }
    }

    let baseline = match stack.as_ref().and_then(|s| s.baseline.as_ref()) {
        Some(service) => Some(Arc::new(Client::new(
            &service.url,
            &api_url,
            args.concurrency * 2,
        )?)),
        None => None,
    };
    let bench = Bench {
        args,
        client,
        watched,
        database_url: stack.as_ref().map(|s| s.database_url().to_owned()),
        signing_key_file: stack.as_ref().map(Stack::signing_key_file),
        baseline,
        email: format!("bench-{}@example.com", uuid::Uuid::new_v4().simple()).into(),
        password: format!("bench-password-{}", uuid::Uuid::new_v4()).into(),
        settings,
    };
    let memory_at_start = stack.as_ref().map(memory::of);
    let caption = bench.caption(stack.is_some());
    for line in &caption {
        eprintln!("{line}");
    }

    bench.client.register(&bench.email, &bench.password).await?;
    let sessions = bench.log_in(args.concurrency).await?;

    let mut rows = Vec::new();
    let chains = Chains::from_sessions(&sessions)?;
    for scenario in [
        Scenario::Me,
        Scenario::Refresh,
        Scenario::Login,
        Scenario::Interference,
        Scenario::Revocation,
        Scenario::MfaLogin,
        Scenario::Claims,
    ] {
        if !args.scenarios.contains(&scenario) {
            continue;
        }
        let outcome = match scenario {
            Scenario::Me => bench.me(&sessions).await.map(|row| vec![row]),
            Scenario::Refresh => bench.refresh(&chains).await,
            Scenario::Login => bench.login().await.map(|row| vec![row]),
            Scenario::Interference => bench.interference(&chains).await.map(|row| vec![row]),
            Scenario::Revocation => bench.revocation().await.map(|row| vec![row]),
            Scenario::MfaLogin => bench.mfa_login().await.map(|row| vec![row]),
            Scenario::Claims => bench.claims(&sessions).await,
        };
        match outcome {
            Ok(more) => rows.extend(more),
            Err(e) => {
                eprintln!("{scenario:?} failed: {e:#}");
                rows.push(Row {
                    scenario: format!("{scenario:?}"),
                    figure: format!("failed: {e:#}"),
                    ceiling: String::new(),
                    ratio: "—".to_owned(),
                    goal: String::new(),
                    met: report::verdict(Some(false)),
                });
            }
        }
    }
    rows.extend(memory::rows(stack.as_ref(), memory_at_start.as_ref()));
    Ok(Table { caption, rows })
}

/// The refresh token each chain holds now: a worker takes its chain's token,
/// rotates it and stores the successor, since each token is single-use.
struct Chains(Arc<Vec<Mutex<String>>>);

impl Chains {
    /// `n` sessions of the bench user logged in through `client`.
    async fn log_in(bench: &Bench<'_>, client: &Arc<Client>, n: usize) -> anyhow::Result<Self> {
        let mut tokens = Vec::with_capacity(n);
        for _ in 0..n {
            tokens.push(client.login(&bench.email, &bench.password).await?);
        }
        Self::from_sessions(&tokens)
    }

    fn from_sessions(sessions: &[Tokens]) -> anyhow::Result<Self> {
        let tokens = sessions
            .iter()
            .map(|s| {
                s.refresh_token
                    .clone()
                    .map(Mutex::new)
                    .context("login answered without a refresh token")
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self(Arc::new(tokens)))
    }
}

fn locked<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Bench<'_> {
    fn caption(&self, spawned: bool) -> Vec<String> {
        let a = self.args;
        let s = &self.settings;
        let mut lines = vec![
            format!(
                "Machine: {}. Each side of a comparison: {} measured in {} alternating slices after {} of warm-up.",
                report::machine(),
                humanize(a.duration),
                a.rounds,
                humanize(a.warmup)
            ),
            format!(
                "Load: {} in flight for /api/me, /healthz and the refresh chains; {} logins in flight; {} chains for the p99 comparison; {} revocation trials.",
                a.concurrency, a.login_concurrency, a.chains, a.trials
            ),
            format!(
                "auth-server: HTTP_WORKERS {}, PASSWORD_HASH_WORKERS {}, DATABASE_POOL_SIZE {}, DATABASE_ROTATION_POOL_SIZE {}, argon2id m={} KiB t={} p={}.",
                s.http.workers,
                s.password.workers,
                s.database.pool_size,
                s.database.rotation_pool_size,
                s.password.memory_kib,
                s.password.iterations,
                s.password.parallelism
            ),
        ];
        if !spawned {
            lines.push(
                "Against running services (--auth-url/--api-url): the SQL ceiling and memory are skipped; the settings above are the defaults plus --auth-env, not read from the server.".to_owned(),
            );
        }
        lines
    }

    /// `n` sessions of the bench user, logged in concurrently.
    async fn log_in(&self, n: usize) -> anyhow::Result<Vec<Tokens>> {
        let mut logins = tokio::task::JoinSet::new();
        for _ in 0..n {
            let client = Arc::clone(&self.client);
            let (email, password) = (Arc::clone(&self.email), Arc::clone(&self.password));
            logins.spawn(async move { client.login(&email, &password).await });
        }
        let mut sessions = Vec::with_capacity(n);
        while let Some(login) = logins.join_next().await {
            sessions.push(login??);
        }
        Ok(sessions)
    }

    fn progress(&self, label: &str, m: &Measured, server: Option<&str>) {
        let mut line = format!("  {label}: {}", report::throughput(m));
        for server in server.into_iter().chain([POSTGRES]) {
            if let Some(cpu) = m.cpu.per_op(server, m.count()) {
                line.push_str(&format!(
                    "; {server} {:.0} µs CPU per operation",
                    cpu.as_secs_f64() * 1e6
                ));
            }
        }
        line.push_str(&format!("\n    cpu: {}", m.cpu.describe()));
        if let Some(failure) = &m.recorder.first_failure {
            line.push_str(&format!("\n    first failure: {failure}"));
        }
        eprintln!("{line}");
    }

    fn compare(
        &self,
        figure: &Load,
        ceiling: &Load,
    ) -> impl Future<Output = anyhow::Result<(Measured, Measured)>> {
        load::compare(
            figure,
            ceiling,
            self.args.warmup,
            self.args.duration,
            self.args.rounds,
            &self.watched,
        )
    }
}

/// Throughput, and what each operation cost the server in CPU time: on two
/// shared cores the load generator's own cost blurs rates, this does not.
fn with_cpu(m: &Measured, server: &str) -> String {
    with_cpu_of(m, &[server])
}

/// Throughput, and what each operation cost each of `servers` in CPU time
/// (`… · 300 µs auth-server + 200 µs PostgreSQL CPU/req`).
fn with_cpu_of(m: &Measured, servers: &[&str]) -> String {
    let costs: Vec<String> = servers
        .iter()
        .filter_map(|server| {
            let cpu = m.cpu.per_op(server, m.count())?;
            Some(if servers.len() == 1 {
                cpu_time(cpu)
            } else {
                format!("{} {server}", cpu_time(cpu))
            })
        })
        .collect();
    if costs.is_empty() {
        report::throughput(m)
    } else {
        format!("{} · {} CPU/req", report::throughput(m), costs.join(" + "))
    }
}

fn cpu_time(d: Duration) -> String {
    if d >= Duration::from_millis(10) {
        report::ms(d)
    } else if d < Duration::from_micros(100) {
        // Small costs (a cached token) differ in fractions of a microsecond.
        format!("{:.1} µs", d.as_secs_f64() * 1e6)
    } else {
        format!("{:.0} µs", d.as_secs_f64() * 1e6)
    }
}

fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}
