//! `POST /auth/refresh` against the same rotation's SQL through the same kind
//! of pool with no HTTP (the new ceiling), against the seven-statement
//! rotation it replaced (the old ceiling), and, with `--baseline-bin-dir`,
//! against another build of the auth server: all in alternating slices of
//! one run.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use auth_server::db::models::ClientInfo;
use auth_server::db::rotation::RefreshOutcome;
use auth_server::db::rotation_pool::RotationPool;
use auth_server::db::{self, Pool};
use auth_server::email::Email;
use auth_server::refresh_token::{KeyIndex, RefreshToken, Successors, TokenHash};
use auth_server::rotation::{Policy, successor_expiry};
use auth_server::token_keys::TokenKeys;

use crate::chain_client::ChainConnection;
use crate::client::{self, Client};
use crate::load::{self, Load, Measured, op};
use crate::report::{self, Row};
use crate::stack::BASELINE;

use super::seven_statements::seven_statement_rotation;
use super::{Bench, Chains, POSTGRES, cpu_time, locked, with_cpu_of};

const AUTH: &str = "auth-server";

/// Which rotation a SQL ceiling runs.
#[derive(Debug, Clone, Copy)]
enum Rotation {
    /// `auth_server::db::rotation::refresh`, what the server runs.
    Current,
    /// The seven-statement rotation it replaced.
    SevenStatements,
}

impl Bench<'_> {
    pub(super) fn refresh_load(&self, chains: &Chains, concurrency: usize) -> anyhow::Result<Load> {
        refresh_load(&self.client, "POST /auth/refresh", chains, concurrency)
    }

    /// The rows of the refresh scenario.
    pub(super) async fn refresh(&self, chains: &Chains) -> anyhow::Result<Vec<Row>> {
        eprintln!(
            "POST /auth/refresh against the rotation's SQL through the pool, and the old seven-statement SQL"
        );
        let http = self.refresh_load(chains, self.args.concurrency)?;
        let Some(database_url) = &self.database_url else {
            load::run(&http, self.args.warmup, &self.watched).await?;
            let m = load::run(&http, self.args.duration, &self.watched).await?;
            self.progress(http.name, &m, Some(AUTH));
            return Ok(vec![Row {
                scenario: "`POST /auth/refresh` rotations".to_owned(),
                figure: report::throughput(&m),
                ceiling: "skipped: needs the services' database".to_owned(),
                ratio: "—".to_owned(),
                goal: "≥ 0.80".to_owned(),
                met: report::verdict(None),
            }]);
        };
        let current = self
            .sql_ceiling(database_url, Rotation::Current, "rotation SQL via pool")
            .await?;
        let old = self
            .sql_ceiling(
                database_url,
                Rotation::SevenStatements,
                "old seven-statement SQL via pool",
            )
            .await?;
        let baseline = match &self.baseline {
            Some(client) => {
                let chains = Chains::log_in(self, client, self.args.concurrency).await?;
                Some(refresh_load(
                    client,
                    "POST /auth/refresh, baseline build",
                    &chains,
                    self.args.concurrency,
                )?)
            }
            None => None,
        };
        let mut loads = vec![&http, &current, &old];
        loads.extend(baseline.as_ref());
        let measured = load::compare_all(
            &loads,
            self.args.warmup,
            self.args.duration,
            self.args.rounds,
            &self.watched,
        )
        .await?;
        let (http_m, current_m, old_m) = (&measured[0], &measured[1], &measured[2]);
        self.progress(http.name, http_m, Some(AUTH));
        self.progress(current.name, current_m, None);
        self.progress(old.name, old_m, None);

        let mut rows = Vec::new();
        let ratio = http_m.rate() / current_m.rate();
        let ok = http_m.recorder.failures == 0;
        rows.push(Row {
            scenario: "`POST /auth/refresh` rotations".to_owned(),
            figure: with_cpu_of(http_m, &[AUTH, POSTGRES]),
            ceiling: format!(
                "same SQL via pool, no HTTP: {}",
                with_cpu_of(current_m, &[POSTGRES])
            ),
            ratio: report::ratio(ratio),
            goal: "≥ 0.80".to_owned(),
            met: report::verdict(Some(ratio >= 0.8 && ok)),
        });
        let ratio = http_m.rate() / old_m.rate();
        rows.push(Row {
            scenario: "`POST /auth/refresh` against the old rotation's own ceiling".to_owned(),
            figure: report::throughput(http_m),
            ceiling: format!(
                "old seven-statement SQL via pool: {}",
                with_cpu_of(old_m, &[POSTGRES])
            ),
            ratio: report::ratio(ratio),
            goal: "≥ 1.30".to_owned(),
            met: report::verdict(Some(ratio >= 1.3 && ok)),
        });
        rows.push(cpu_row(
            "PostgreSQL CPU per rotation, new SQL against the old",
            current_m,
            "new SQL",
            old_m,
            "old SQL",
            POSTGRES,
            POSTGRES,
            "≤ 0.67",
            0.67,
        ));
        if let (Some(baseline), Some(baseline_m)) = (&baseline, measured.get(3)) {
            self.progress(baseline.name, baseline_m, Some(BASELINE));
            rows.push(cpu_row(
                "auth-server CPU per HTTP rotation, against the baseline build",
                http_m,
                "this build",
                baseline_m,
                "baseline",
                AUTH,
                BASELINE,
                "≤ 0.50",
                0.5,
            ));
            rows.push(cpu_row(
                "PostgreSQL CPU per HTTP rotation, against the baseline build",
                http_m,
                "this build",
                baseline_m,
                "baseline",
                POSTGRES,
                POSTGRES,
                "≤ 0.67",
                0.67,
            ));
            let ratio = http_m.p99().as_secs_f64() / baseline_m.p99().as_secs_f64();
            rows.push(Row {
                scenario: "`POST /auth/refresh` p99, against the baseline build".to_owned(),
                figure: report::throughput(http_m),
                ceiling: format!("baseline: {}", report::throughput(baseline_m)),
                ratio: report::ratio(ratio),
                goal: "≤ 1.00".to_owned(),
                met: report::verdict(Some(
                    ratio <= 1.0 && ok && baseline_m.recorder.failures == 0,
                )),
            });
        }
        Ok(rows)
    }

    /// A rotation in blocking threads through a pool built by
    /// `db::build_pool` from the server's own settings, on chains of sessions
    /// made the way login makes them.
    async fn sql_ceiling(
        &self,
        database_url: &str,
        rotation: Rotation,
        name: &'static str,
    ) -> anyhow::Result<Load> {
        let mut database = self.settings.database.clone();
        database.url = database_url.to_owned().into();
        let pool = db::build_pool(&database);
        let client_info = ClientInfo {
            user_agent: Some(client::USER_AGENT.to_owned()),
            ip: Some("127.0.0.1".to_owned()),
            request_id: None,
        };
        let tokens = &self.settings.tokens;
        let policy = Policy {
            refresh_ttl: tokens.refresh_ttl,
            reuse_grace: tokens.reuse_grace,
            require_verified_email: false,
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
        let keys = Arc::new(TokenKeys::ephemeral()?);
        let op = match rotation {
            Rotation::SevenStatements => op(move |worker| {
                let (pool, chains, info, keys) = (
                    pool.clone(),
                    Arc::clone(&chains),
                    Arc::clone(&client_info),
                    Arc::clone(&keys),
                );
                async move {
                    tokio::task::spawn_blocking(move || {
                        rotate_seven_statements(&pool, &chains[worker], &info, &policy, &keys)
                    })
                    .await?
                }
            }),
            Rotation::Current => {
                let rotations = RotationPool::new(&database, 1)?;
                op(move |worker| {
                    let (rotations, chains, info, keys) = (
                        rotations.clone(),
                        Arc::clone(&chains),
                        Arc::clone(&client_info),
                        Arc::clone(&keys),
                    );
                    async move { rotate(&rotations, &chains[worker], &info, &policy, &keys).await }
                })
            }
        };
        Ok(Load {
            name,
            concurrency: self.args.concurrency,
            op,
        })
    }
}

/// The refresh chains over `client`'s server, each on a connection of its
/// own ([`ChainConnection`]).
fn refresh_load(
    client: &Arc<Client>,
    name: &'static str,
    chains: &Chains,
    concurrency: usize,
) -> anyhow::Result<Load> {
    let connections = (0..concurrency)
        .map(|_| ChainConnection::new(client.refresh_url()).map(tokio::sync::Mutex::new))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let connections = Arc::new(connections);
    let chains = Arc::clone(&chains.0);
    Ok(Load {
        name,
        concurrency,
        op: op(move |worker| {
            let connections = Arc::clone(&connections);
            let chains = Arc::clone(&chains);
            async move {
                let chain = &chains[worker];
                let current = locked(chain).clone();
                let successor = connections[worker].lock().await.refresh(&current).await?;
                *locked(chain) = successor;
                Ok(())
            }
        }),
    })
}

/// A row comparing what one operation cost `a_process` in `a` with what it
/// cost `b_process` in `b`.
#[allow(clippy::too_many_arguments)]
fn cpu_row(
    scenario: &str,
    a: &Measured,
    a_label: &str,
    b: &Measured,
    b_label: &str,
    a_process: &str,
    b_process: &str,
    goal: &str,
    at_most: f64,
) -> Row {
    let (a_cpu, b_cpu) = (
        a.cpu.per_op(a_process, a.count()),
        b.cpu.per_op(b_process, b.count()),
    );
    let show = |cpu: Option<Duration>, label: &str| match cpu {
        Some(cpu) => format!("{label}: {}", cpu_time(cpu)),
        None => format!("{label}: no figure"),
    };
    let ratio = match (a_cpu, b_cpu) {
        (Some(a), Some(b)) if !b.is_zero() => Some(a.as_secs_f64() / b.as_secs_f64()),
        _ => None,
    };
    Row {
        scenario: scenario.to_owned(),
        figure: show(a_cpu, a_label),
        ceiling: show(b_cpu, b_label),
        ratio: ratio.map_or_else(|| "—".to_owned(), report::ratio),
        goal: goal.to_owned(),
        met: report::verdict(ratio.map(|r| r <= at_most)),
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
    let email = Email::parse(email).map_err(|e| anyhow!("the bench user's email {e}"))?;
    let user = db::users::find_by_email(&mut conn, &email)?.context("the bench user is missing")?;
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
/// and the access token's signature (the successor derived the same way).
async fn rotate(
    rotations: &RotationPool,
    chain: &Mutex<RefreshToken>,
    client: &ClientInfo,
    policy: &Policy,
    keys: &TokenKeys,
) -> anyhow::Result<()> {
    let (presented, successors) = next_of(chain, keys);
    match rotations
        .refresh(&presented, &successors.hashes(), client, policy)
        .await?
    {
        RefreshOutcome::Rotated { .. } => {}
        // Named, not printed: the rows hold the user's details.
        RefreshOutcome::Grace { .. } => bail!("rotation SQL: grace instead of a rotation"),
        RefreshOutcome::ReuseDetected { .. } => bail!("rotation SQL: reuse detected"),
        RefreshOutcome::Rejected { rejection, .. } => {
            bail!("rotation SQL: rejected ({})", rejection.description())
        }
        RefreshOutcome::Unknown => bail!("rotation SQL: unknown token"),
    }
    advance(chain, successors)
}

/// One rotation of a chain by the seven-statement SQL this one replaced.
fn rotate_seven_statements(
    pool: &Pool,
    chain: &Mutex<RefreshToken>,
    client: &ClientInfo,
    policy: &Policy,
    keys: &TokenKeys,
) -> anyhow::Result<()> {
    let (presented, successors) = next_of(chain, keys);
    let mut conn = pool.get()?;
    seven_statement_rotation(
        &mut conn,
        &presented,
        &successors.current().hash(),
        client,
        policy,
    )?;
    advance(chain, successors)
}

/// The hash of the chain's token, and its successors as `keys` derive them.
fn next_of(chain: &Mutex<RefreshToken>, keys: &TokenKeys) -> (TokenHash, Successors) {
    let token = locked(chain);
    (token.hash(), token.successors(keys))
}

/// The chain moves on to the successor the rotation stored.
fn advance(chain: &Mutex<RefreshToken>, successors: Successors) -> anyhow::Result<()> {
    *locked(chain) = successors
        .take(KeyIndex::CURRENT)
        .context("the current key's successor")?;
    Ok(())
}
