//! `POST /auth/refresh` against the same rotation's SQL through the same kind
//! of pool, with no HTTP.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use auth_server::db::models::ClientInfo;
use auth_server::db::tokens::RefreshOutcome;
use auth_server::db::{self, Pool};
use auth_server::refresh_token::RefreshToken;
use auth_server::rotation::{Policy, successor_expiry};

use crate::client;
use crate::load::{self, Load, op};
use crate::report::{self, Row};

use super::{Bench, Chains, POSTGRES, locked, with_cpu_of};

impl Bench<'_> {
    pub(super) fn refresh_load(&self, chains: &Chains, concurrency: usize) -> Load {
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
    pub(super) async fn refresh(&self, chains: &Chains) -> anyhow::Result<Row> {
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
            figure: with_cpu_of(&http_m, &["auth-server", POSTGRES]),
            ceiling: format!(
                "same SQL via pool, no HTTP: {}",
                with_cpu_of(&sql_m, &[POSTGRES])
            ),
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
