//! The rows of the table: each figure, its ceiling measured in the same run,
//! and the goal of the issue.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use argon2::password_hash::PasswordHasher as _;
use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use auth_server::config::Settings;
use auth_server::db::models::ClientInfo;
use auth_server::db::tokens::RefreshOutcome;
use auth_server::db::{self, Pool};
use auth_server::refresh_token::RefreshToken;
use auth_server::rotation::{Policy, successor_expiry};
use reqwest::StatusCode;
use reqwest::Url;

use crate::client::{self, Client, Tokens};
use crate::load::{self, Load, Measured, op};
use crate::procfs::{self, Watched};
use crate::report::{self, Row, Table};
use crate::stack::Stack;
use crate::{Args, Scenario, loopback_url};

/// Longest a revocation may take before a trial counts as failed.
const REVOCATION_GIVE_UP: Duration = Duration::from_secs(5);
/// How long the login flood runs before refreshes are measured under it.
const FLOOD_SETTLE: Duration = Duration::from_millis(500);

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
    email: Arc<str>,
    password: Arc<str>,
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
    let mut watched = vec![Watched {
        name: "bench",
        pid: std::process::id(),
    }];
    if let Some(stack) = stack.as_mut() {
        stack.wait_ready(&client).await?;
        watched.push(Watched {
            name: stack.auth.name,
            pid: stack.auth.pid(),
        });
        watched.push(Watched {
            name: stack.api.name,
            pid: stack.api.pid(),
        });
    } else {
        for url in [&client.auth_ready, &client.api_ready] {
            client
                .get_ok(url, None)
                .await
                .with_context(|| format!("{url} is not ready"))?;
        }
    }

    let bench = Bench {
        args,
        client,
        watched,
        database_url: stack.as_ref().map(|s| s.database_url().to_owned()),
        email: format!("bench-{}@example.com", uuid::Uuid::new_v4().simple()).into(),
        password: format!("bench-password-{}", uuid::Uuid::new_v4()).into(),
        settings,
    };
    let memory_at_start = stack.as_ref().map(memory_of);
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
    ] {
        if !args.scenarios.contains(&scenario) {
            continue;
        }
        let outcome = match scenario {
            Scenario::Me => bench.me(&sessions).await,
            Scenario::Refresh => bench.refresh(&chains).await,
            Scenario::Login => bench.login().await,
            Scenario::Interference => bench.interference(&chains).await,
            Scenario::Revocation => bench.revocation().await,
        };
        match outcome {
            Ok(row) => rows.push(row),
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
    rows.extend(memory_rows(stack.as_ref(), memory_at_start.as_ref()));
    Ok(Table { caption, rows })
}

/// The refresh token each chain holds now: a worker takes its chain's token,
/// rotates it and stores the successor, since each token is single-use.
struct Chains(Arc<Vec<Mutex<String>>>);

impl Chains {
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
                "auth-server: HTTP_WORKERS {}, PASSWORD_HASH_WORKERS {}, DATABASE_POOL_SIZE {}, argon2id m={} KiB t={} p={}.",
                s.http.workers,
                s.password.workers,
                s.database.pool_size,
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
        if let Some(server) = server
            && let Some(cpu) = m.cpu.per_op(server, m.count())
        {
            line.push_str(&format!(
                "; {server} {:.0} µs CPU per operation",
                cpu.as_secs_f64() * 1e6
            ));
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

    /// `GET /api/me` against `/healthz` of the same server.
    async fn me(&self, sessions: &[Tokens]) -> anyhow::Result<Row> {
        eprintln!("GET /api/me against GET /healthz of the resource API");
        let bearers = Arc::new(
            sessions
                .iter()
                .map(|s| client::bearer(&s.access_token))
                .collect::<anyhow::Result<Vec<_>>>()?,
        );
        let me = {
            let client = Arc::clone(&self.client);
            Load {
                name: "GET /api/me",
                concurrency: self.args.concurrency,
                op: op(move |worker| {
                    let client = Arc::clone(&client);
                    let bearers = Arc::clone(&bearers);
                    async move {
                        client
                            .get_ok(&client.me, Some(&bearers[worker % bearers.len()]))
                            .await
                    }
                }),
            }
        };
        let health = {
            let client = Arc::clone(&self.client);
            Load {
                name: "GET /healthz",
                concurrency: self.args.concurrency,
                op: op(move |_| {
                    let client = Arc::clone(&client);
                    async move { client.get_ok(&client.api_health, None).await }
                }),
            }
        };
        let (me_m, health_m) = self.compare(&me, &health).await?;
        self.progress(me.name, &me_m, Some("resource-api"));
        self.progress(health.name, &health_m, Some("resource-api"));
        let ratio = me_m.rate() / health_m.rate();
        Ok(Row {
            scenario: "`GET /api/me`, valid token".to_owned(),
            figure: with_cpu(&me_m, "resource-api"),
            ceiling: format!("`/healthz` {}", with_cpu(&health_m, "resource-api")),
            ratio: report::ratio(ratio),
            goal: "≥ 0.80".to_owned(),
            met: report::verdict(Some(ratio >= 0.8 && me_m.recorder.failures == 0)),
        })
    }

    fn refresh_load(&self, chains: &Chains, concurrency: usize) -> Load {
        let client = Arc::clone(&self.client);
        let chains = Arc::clone(&chains.0);
        Load {
            name: "POST /auth/refresh",
            concurrency,
            op: op(move |worker| {
                let client = Arc::clone(&client);
                let chains = Arc::clone(&chains);
                async move {
                    let chain = &chains[worker];
                    let current = locked(chain).clone();
                    let successor = client.refresh(&current).await?;
                    *locked(chain) = successor;
                    Ok(())
                }
            }),
        }
    }

    /// `POST /auth/refresh` against the same rotation through the same kind
    /// of pool, with no HTTP.
    async fn refresh(&self, chains: &Chains) -> anyhow::Result<Row> {
        eprintln!("POST /auth/refresh against the rotation's SQL through the pool");
        let http = self.refresh_load(chains, self.args.concurrency);
        let Some(database_url) = &self.database_url else {
            load::run(&http, self.args.warmup, &self.watched).await?;
            let m = load::run(&http, self.args.duration, &self.watched).await?;
            self.progress(http.name, &m, Some("auth-server"));
            return Ok(Row {
                scenario: "`POST /auth/refresh` rotations".to_owned(),
                figure: report::throughput(&m),
                ceiling: "skipped: needs the services' database".to_owned(),
                ratio: "—".to_owned(),
                goal: "≥ 0.70".to_owned(),
                met: report::verdict(None),
            });
        };
        let sql = self.sql_ceiling(database_url).await?;
        let (http_m, sql_m) = self.compare(&http, &sql).await?;
        self.progress(http.name, &http_m, Some("auth-server"));
        self.progress(sql.name, &sql_m, None);
        let ratio = http_m.rate() / sql_m.rate();
        Ok(Row {
            scenario: "`POST /auth/refresh` rotations".to_owned(),
            figure: with_cpu(&http_m, "auth-server"),
            ceiling: format!("same SQL via pool, no HTTP: {}", report::throughput(&sql_m)),
            ratio: report::ratio(ratio),
            goal: "≥ 0.70".to_owned(),
            met: report::verdict(Some(ratio >= 0.7 && http_m.recorder.failures == 0)),
        })
    }

    /// `db::tokens::refresh` in blocking threads through a pool built by
    /// `db::build_pool` from the server's own settings, on chains of sessions
    /// made the way login makes them.
    async fn sql_ceiling(&self, database_url: &str) -> anyhow::Result<Load> {
        let mut database = self.settings.database.clone();
        database.url = database_url.to_owned().into();
        let pool = db::build_pool(&database);
        let client_info = ClientInfo {
            user_agent: Some(client::USER_AGENT.to_owned()),
            ip: Some("127.0.0.1".to_owned()),
        };
        let tokens = &self.settings.tokens;
        let policy = Policy {
            refresh_ttl: tokens.refresh_ttl,
            reuse_grace: tokens.reuse_grace,
        };
        let chains = {
            let (pool, email, info) = (pool.clone(), Arc::clone(&self.email), client_info.clone());
            let (n, lifetime, ttl) = (
                self.args.concurrency,
                tokens.session_max_lifetime,
                tokens.refresh_ttl,
            );
            tokio::task::spawn_blocking(move || sql_chains(&pool, &email, &info, n, lifetime, ttl))
                .await??
        };
        let chains = Arc::new(chains);
        let client_info = Arc::new(client_info);
        Ok(Load {
            name: "rotation SQL via pool",
            concurrency: self.args.concurrency,
            op: op(move |worker| {
                let (pool, chains, info) =
                    (pool.clone(), Arc::clone(&chains), Arc::clone(&client_info));
                async move {
                    tokio::task::spawn_blocking(move || {
                        rotate(&pool, &chains[worker], &info, &policy)
                    })
                    .await?
                }
            }),
        })
    }

    /// `POST /auth/login` against raw argon2id verification on as many
    /// threads as the server has password workers.
    async fn login(&self) -> anyhow::Result<Row> {
        eprintln!("POST /auth/login against raw argon2id verification");
        let login = self.login_load();
        let p = &self.settings.password;
        let params = Params::new(p.memory_kib, p.iterations, p.parallelism, None)
            .map_err(|e| anyhow!("argon2 parameters: {e}"))?;
        let blocks = params.block_count();
        let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let ceiling = Arc::new(Argon2Ceiling {
            phc: hasher
                .hash_password(self.password.as_bytes())
                .map_err(|e| anyhow!("hashing: {e}"))?
                .to_string(),
            password: Arc::clone(&self.password),
            // One block of memory per thread, written once here so that no
            // verification pays for page faults.
            memories: Mutex::new(vec![vec![Block::default(); blocks]; p.workers]),
        });
        let argon = Load {
            name: "argon2id verify",
            concurrency: p.workers,
            op: op(move |_| {
                let ceiling = Arc::clone(&ceiling);
                async move { tokio::task::spawn_blocking(move || ceiling.verify()).await? }
            }),
        };
        let (login_m, argon_m) = self.compare(&login, &argon).await?;
        self.progress(login.name, &login_m, Some("auth-server"));
        self.progress(argon.name, &argon_m, None);
        let ratio = login_m.rate() / argon_m.rate();
        Ok(Row {
            scenario: "`POST /auth/login`".to_owned(),
            figure: with_cpu(&login_m, "auth-server"),
            ceiling: format!(
                "argon2id verify on {} threads: {}",
                p.workers,
                report::rate(argon_m.rate())
            ),
            ratio: report::ratio(ratio),
            goal: "≥ 0.90".to_owned(),
            met: report::verdict(Some(ratio >= 0.9 && login_m.recorder.failures == 0)),
        })
    }

    fn login_load(&self) -> Load {
        let client = Arc::clone(&self.client);
        let (email, password) = (Arc::clone(&self.email), Arc::clone(&self.password));
        Load {
            name: "POST /auth/login",
            concurrency: self.args.login_concurrency,
            op: op(move |_| {
                let client = Arc::clone(&client);
                let (email, password) = (Arc::clone(&email), Arc::clone(&password));
                async move { client.login(&email, &password).await.map(|_| ()) }
            }),
        }
    }

    /// Refresh p99 of a few chains while logins saturate the password pool,
    /// against the same chains' p99 at rest, in alternating slices.
    async fn interference(&self, chains: &Chains) -> anyhow::Result<Row> {
        eprintln!(
            "refresh p99 of {} chains under a login flood against at rest",
            self.args.chains
        );
        let refresh = self.refresh_load(chains, self.args.chains);
        let flood = self.login_load();
        load::run(&refresh, self.args.warmup, &self.watched).await?;
        let slice = self.args.duration / self.args.rounds;
        let (mut rest, mut loaded, mut logins) = Default::default();
        for _ in 0..self.args.rounds {
            let at_rest = load::run(&refresh, slice, &self.watched).await?;
            let (under, flooding) =
                load::under(&refresh, &flood, FLOOD_SETTLE, slice, &self.watched).await?;
            load::accumulate(&mut rest, &at_rest);
            load::accumulate(&mut loaded, &under);
            load::accumulate(&mut logins, &flooding);
        }
        let logins: Measured = logins;
        self.progress("refresh at rest", &rest, Some("auth-server"));
        self.progress("refresh under the flood", &loaded, Some("auth-server"));
        self.progress("the login flood", &logins, None);
        let ratio = loaded.p99().as_secs_f64() / rest.p99().as_secs_f64();
        Ok(Row {
            scenario: format!(
                "refresh p99 while logins saturate the password pool ({} chains)",
                self.args.chains
            ),
            figure: format!(
                "p99 {} (p50 {}) under {} logins",
                report::ms(loaded.p99()),
                report::ms(loaded.p50()),
                report::rate(logins.rate())
            ),
            ceiling: format!(
                "at rest: p99 {} (p50 {})",
                report::ms(rest.p99()),
                report::ms(rest.p50())
            ),
            ratio: report::ratio(ratio),
            goal: "≤ 2.00".to_owned(),
            met: report::verdict(Some(
                ratio <= 2.0 && loaded.recorder.failures == 0 && rest.recorder.failures == 0,
            )),
        })
    }

    /// From an acknowledged logout to the first `401` of `/api/me` for the
    /// session's still-unexpired access token.
    async fn revocation(&self) -> anyhow::Result<Row> {
        eprintln!(
            "revocation propagation, {} trials, polling every {}",
            self.args.trials,
            humanize(self.args.poll_interval)
        );
        let client = &self.client;
        let mut measured = Measured::default();
        for _ in 0..self.args.trials {
            let tokens = client.login(&self.email, &self.password).await?;
            let refresh = tokens
                .refresh_token
                .context("login answered without a refresh token")?;
            let bearer = client::bearer(&tokens.access_token)?;
            client.get_ok(&client.me, Some(&bearer)).await?;
            client.logout(&refresh).await?;
            let acknowledged = Instant::now();
            let outcome = wait_for_401(client, &client.me, &bearer, self.args.poll_interval).await;
            measured
                .recorder
                .record(acknowledged, acknowledged + REVOCATION_GIVE_UP, outcome);
        }
        let m = &measured;
        eprintln!(
            "  revocation: p50 {}, p99 {}, max {}, {} failed",
            report::ms(m.p50()),
            report::ms(m.p99()),
            report::ms(m.quantile(1.0)),
            m.recorder.failures
        );
        Ok(Row {
            scenario: "revocation propagation, logout → first `401`".to_owned(),
            figure: format!(
                "p50 {} · p99 {} ({} trials{})",
                report::ms(m.p50()),
                report::ms(m.p99()),
                self.args.trials,
                if m.recorder.failures > 0 {
                    format!(", {} never revoked", m.recorder.failures)
                } else {
                    String::new()
                }
            ),
            ceiling: "—".to_owned(),
            ratio: "—".to_owned(),
            goal: "p99 < 1 s".to_owned(),
            met: report::verdict(Some(
                m.recorder.failures == 0 && m.p99() < Duration::from_secs(1),
            )),
        })
    }
}

async fn wait_for_401(
    client: &Client,
    me: &Url,
    bearer: &reqwest::header::HeaderValue,
    poll_interval: Duration,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        match client.get(me, Some(bearer)).await? {
            StatusCode::UNAUTHORIZED => return Ok(()),
            StatusCode::OK => {}
            status => bail!("GET /api/me answered {status} while waiting for the revocation"),
        }
        if started.elapsed() > REVOCATION_GIVE_UP {
            bail!(
                "still accepted {}s after the logout",
                REVOCATION_GIVE_UP.as_secs()
            );
        }
        tokio::time::sleep(poll_interval).await;
    }
}

/// argon2id verification as its algorithm costs: the PHC string parsed and
/// the hash recomputed with the stored parameters, in memory allocated once.
/// The library's `verify_password` allocates and zeroes `m` KiB on every
/// call; that is overhead a server can avoid, so the ceiling leaves it out.
struct Argon2Ceiling {
    phc: String,
    password: Arc<str>,
    memories: Mutex<Vec<Vec<Block>>>,
}

impl Argon2Ceiling {
    fn verify(&self) -> anyhow::Result<()> {
        let phc = PasswordHash::new(&self.phc).map_err(|e| anyhow!("PHC: {e}"))?;
        let (Some(salt), Some(expected)) = (&phc.salt, &phc.hash) else {
            bail!("the PHC string has no salt or hash");
        };
        let params = Params::try_from(&phc).map_err(|e| anyhow!("PHC parameters: {e}"))?;
        let version = phc
            .version
            .map(Version::try_from)
            .transpose()
            .map_err(|e| anyhow!("PHC version: {e}"))?
            .unwrap_or_default();
        let algorithm =
            Algorithm::try_from(phc.algorithm.as_str()).map_err(|e| anyhow!("PHC: {e}"))?;
        let blocks = params.block_count();
        let argon = Argon2::new(algorithm, version, params);
        let mut memory = locked(&self.memories).pop().unwrap_or_default();
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        let mut out = vec![0u8; expected.len()];
        let hashed = argon.hash_password_into_with_memory(
            self.password.as_bytes(),
            salt.as_ref(),
            &mut out,
            &mut memory[..blocks],
        );
        locked(&self.memories).push(memory);
        hashed.map_err(|e| anyhow!("argon2: {e}"))?;
        if out.as_slice() != expected.as_bytes() {
            bail!("argon2 ceiling: the password did not verify");
        }
        Ok(())
    }
}

/// Sessions of the bench user with their first refresh token, created by the
/// query login uses.
fn sql_chains(
    pool: &Pool,
    email: &str,
    client: &ClientInfo,
    n: usize,
    session_lifetime: Duration,
    refresh_ttl: Duration,
) -> anyhow::Result<Vec<Mutex<RefreshToken>>> {
    let mut conn = pool.get()?;
    let user = db::users::find_by_email(&mut conn, email)?.context("the bench user is missing")?;
    let now = chrono::Utc::now();
    let session_end = now + chrono::Duration::from_std(session_lifetime)?;
    let token_end = successor_expiry(now, session_end, refresh_ttl);
    (0..n)
        .map(|_| {
            let token = RefreshToken::generate().map_err(|e| anyhow!("CSPRNG: {e}"))?;
            db::sessions::create(
                &mut conn,
                user.id,
                client,
                &token.hash(),
                session_end,
                token_end,
            )?;
            Ok(Mutex::new(token))
        })
        .collect()
}

/// One rotation of a chain, as the refresh endpoint runs it minus HTTP, JSON
/// and the access token's signature.
fn rotate(
    pool: &Pool,
    chain: &Mutex<RefreshToken>,
    client: &ClientInfo,
    policy: &Policy,
) -> anyhow::Result<()> {
    let successor = RefreshToken::generate().map_err(|e| anyhow!("CSPRNG: {e}"))?;
    let presented = locked(chain).hash();
    let mut conn = pool.get()?;
    let outcome = db::tokens::refresh(&mut conn, &presented, &successor.hash(), client, policy)?;
    match outcome {
        RefreshOutcome::Rotated { .. } => {
            *locked(chain) = successor;
            Ok(())
        }
        // Named, not printed: the rows hold password hashes.
        RefreshOutcome::Grace { .. } => bail!("rotation SQL: grace instead of a rotation"),
        RefreshOutcome::ReuseDetected { .. } => bail!("rotation SQL: reuse detected"),
        RefreshOutcome::Rejected { rejection, .. } => {
            bail!("rotation SQL: rejected ({})", rejection.description())
        }
        RefreshOutcome::Unknown => bail!("rotation SQL: unknown token"),
    }
}

fn memory_of(stack: &Stack) -> Vec<(&'static str, Option<procfs::Memory>)> {
    [&stack.auth, &stack.api]
        .into_iter()
        .map(|s| (s.name, procfs::memory(s.pid())))
        .collect()
}

fn memory_rows(
    stack: Option<&Stack>,
    at_start: Option<&Vec<(&'static str, Option<procfs::Memory>)>>,
) -> Vec<Row> {
    let mib = |kib: u64| format!("{:.1} MiB", kib as f64 / 1024.0);
    let Some(stack) = stack else {
        return vec![Row {
            scenario: "peak resident memory".to_owned(),
            figure: "skipped: the services are not our processes".to_owned(),
            ceiling: "—".to_owned(),
            ratio: "—".to_owned(),
            goal: "—".to_owned(),
            met: report::verdict(None),
        }];
    };
    memory_of(stack)
        .into_iter()
        .map(|(name, now)| {
            let start = at_start
                .and_then(|all| all.iter().find(|(n, _)| *n == name))
                .and_then(|(_, m)| *m);
            Row {
                scenario: format!("peak resident memory, {name}"),
                figure: now.map_or("unreadable".to_owned(), |m| {
                    format!("{} (VmHWM)", mib(m.peak_kib))
                }),
                ceiling: start.map_or("—".to_owned(), |m| {
                    format!("after start-up: {} (VmRSS)", mib(m.rss_kib))
                }),
                ratio: "—".to_owned(),
                goal: "report".to_owned(),
                met: report::verdict(None),
            }
        })
        .collect()
}

/// Throughput, and what each operation cost the server in CPU time: on two
/// shared cores the load generator's own cost blurs rates, this does not.
fn with_cpu(m: &Measured, server: &str) -> String {
    match m.cpu.per_op(server, m.count()) {
        Some(cpu) => format!("{} · {} CPU/req", report::throughput(m), cpu_time(cpu)),
        None => report::throughput(m),
    }
}

fn cpu_time(d: Duration) -> String {
    if d >= Duration::from_millis(10) {
        report::ms(d)
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
