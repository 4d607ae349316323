//! `POST /auth/refresh` against the rotation's own SQL (the one `UPDATE` of
//! the fast path, on the server's kind of connection, with no HTTP: the new
//! ceiling), against the seven-statement rotation of long ago (the old
//! ceiling), and, with `--baseline-bin-dir`, against another build of the
//! auth server: all in alternating slices of one run. Then, for each build
//! alone, what rotations cost the database: WAL bytes per rotation and rows
//! and bytes per session after a fixed number of rotations.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use auth_server::accounts::email::Email;
use auth_server::db::models::ClientInfo;
use auth_server::db::rotation::{self, PresentedToken};
use auth_server::db::rotation_pool::RotationPool;
use auth_server::db::sessions::FirstToken;
use auth_server::db::{self, Pool};
use auth_server::service::refresh::{mint, presented_token};
use auth_server::tokens::keys::TokenKeys;
use auth_server::tokens::refresh::{RefreshToken, SessionSecret};
use auth_server::tokens::rotation::{Policy, successor_expiry};
use diesel::prelude::*;
use uuid::Uuid;

use crate::chain_client::ChainConnection;
use crate::client::{self, Client};
use crate::load::{self, Load, Measured, op};
use crate::report::{self, Row};
use crate::stack::BASELINE;

use super::seven_statements::{insert as insert_legacy, seven_statement_rotation};
use super::{Bench, Chains, POSTGRES, cpu_time, locked, with_cpu_of};

const AUTH: &str = "auth-server";

/// Which rotation a SQL ceiling runs.
#[derive(Debug, Clone, Copy)]
enum Rotation {
    /// `auth_server::db::rotation::rotate_only`: the fast path's one
    /// `UPDATE`, what the server runs for a live token.
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
            .sql_ceiling(database_url, Rotation::Current, "rotation UPDATE alone")
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
        // The warm-ups leave dead row versions behind: measured on that
        // state, the load listed first ran an eighth slower than an identical
        // build listed last, PostgreSQL spending a quarter more on each of
        // its rotations. A VACUUM between warm-ups and measurement starts
        // every load alike (identical builds: 1.02-1.04).
        for load in &loads {
            load::run(load, self.args.warmup, &self.watched).await?;
        }
        vacuum_rotation_tables(database_url).await?;
        let measured = load::compare_all(
            &loads,
            Duration::ZERO,
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
                "the rotation's one UPDATE alone, no HTTP: {}",
                with_cpu_of(current_m, &[POSTGRES])
            ),
            ratio: report::ratio(ratio),
            goal: "≥ 0.85".to_owned(),
            met: report::verdict(Some(ratio >= 0.85 && ok)),
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
            let ratio = http_m.rate() / baseline_m.rate();
            rows.push(Row {
                scenario: "`POST /auth/refresh` rotations, against the baseline build".to_owned(),
                figure: report::throughput(http_m),
                ceiling: format!("baseline: {}", report::throughput(baseline_m)),
                ratio: report::ratio(ratio),
                goal: "≥ 1.30".to_owned(),
                met: report::verdict(Some(
                    ratio >= 1.3 && ok && baseline_m.recorder.failures == 0,
                )),
            });
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
        rows.extend(self.footprints(database_url).await?);
        Ok(rows)
    }

    /// WAL per rotation and storage per session, for this build and the
    /// baseline build (when there is one), each measured alone.
    async fn footprints(&self, database_url: &str) -> anyhow::Result<Vec<Row>> {
        let (sessions, rotations) = (FOOTPRINT_SESSIONS, FOOTPRINT_ROTATIONS);
        eprintln!(
            "WAL and storage: {sessions} sessions x {rotations} rotations over HTTP, each build alone"
        );
        let this = self.footprint(&self.client, database_url).await?;
        eprintln!("  this build: {this:?}");
        let baseline = match &self.baseline {
            Some(client) => {
                let other = self.footprint(client, database_url).await?;
                eprintln!("  baseline build: {other:?}");
                Some(other)
            }
            None => None,
        };
        let show = |f: &Footprint| {
            format!(
                "{:.0} B WAL/rotation ({:.0} B cluster-wide)",
                f.wal_per_rotation(),
                f.cluster_wal_per_rotation()
            )
        };
        let storage = |f: &Footprint| {
            format!(
                "{:.0} session row + {:.0} token rows, {:.0} B of rows · tables grew {:.0} B per session ({} rotations/s, p99 {})",
                f.session_rows as f64 / f.sessions as f64,
                f.token_rows as f64 / f.sessions as f64,
                f.row_bytes as f64 / f.sessions as f64,
                f.bytes as f64 / f.sessions as f64,
                report::rate(f.rotations as f64 / f.elapsed.as_secs_f64()),
                report::ms(f.p99),
            )
        };
        let mut rows = vec![];
        let wal_ratio = baseline
            .as_ref()
            .map(|b| this.wal_per_rotation() / b.wal_per_rotation());
        rows.push(Row {
            scenario: "WAL bytes per HTTP rotation (this database's records, pg_walinspect)"
                .to_owned(),
            figure: format!("this build: {}", show(&this)),
            ceiling: baseline.as_ref().map_or_else(
                || "no baseline build (--baseline-bin-dir)".to_owned(),
                |b| format!("baseline: {}", show(b)),
            ),
            ratio: wal_ratio.map_or_else(|| "—".to_owned(), report::ratio),
            goal: "≤ 0.50".to_owned(),
            met: report::verdict(wal_ratio.map(|r| r <= 0.5)),
        });
        let bytes_ratio = baseline
            .as_ref()
            .map(|b| this.row_bytes as f64 / b.row_bytes.max(1) as f64);
        rows.push(Row {
            scenario: format!(
                "storage per session after {rotations} rotations (sessions + refresh_tokens, pg_total_relation_size)"
            ),
            figure: format!("this build: {}", storage(&this)),
            ceiling: baseline.as_ref().map_or_else(
                || "no baseline build (--baseline-bin-dir)".to_owned(),
                |b| format!("baseline: {}", storage(b)),
            ),
            ratio: bytes_ratio.map_or_else(|| "—".to_owned(), report::ratio),
            goal: "flat".to_owned(),
            met: report::verdict(Some(this.token_rows == 0)),
        });
        Ok(rows)
    }

    /// [`FOOTPRINT_SESSIONS`] new sessions through `client`'s server, each
    /// rotated [`FOOTPRINT_ROTATIONS`] times over HTTP, nothing else loading
    /// the database: the WAL written for this database meanwhile, and how
    /// much the two tables grew.
    async fn footprint(
        &self,
        client: &Arc<Client>,
        database_url: &str,
    ) -> anyhow::Result<Footprint> {
        let url = database_url.to_owned();
        let before = tokio::task::spawn_blocking(move || database_state(&url, None)).await??;
        let chains = Chains::log_in(self, client, FOOTPRINT_SESSIONS).await?;
        // WAL from the first rotation on: the logins are not rotations.
        let url = database_url.to_owned();
        let logged_in = tokio::task::spawn_blocking(move || database_state(&url, None)).await??;
        let started = std::time::Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for chain in chains.0.iter() {
            let mut token = locked(chain).clone();
            let mut connection = ChainConnection::new(client.refresh_url())?;
            tasks.spawn(async move {
                let mut latencies = Vec::with_capacity(FOOTPRINT_ROTATIONS);
                for _ in 0..FOOTPRINT_ROTATIONS {
                    let t = std::time::Instant::now();
                    token = connection.refresh(&token).await?;
                    latencies.push(t.elapsed());
                }
                anyhow::Ok(latencies)
            });
        }
        let mut latencies = Vec::new();
        while let Some(done) = tasks.join_next().await {
            latencies.extend(done??);
        }
        let elapsed = started.elapsed();
        latencies.sort();
        let p99 = latencies
            .get(latencies.len() * 99 / 100)
            .copied()
            .unwrap_or_default();
        let url = database_url.to_owned();
        let (start, since) = (logged_in.lsn.clone(), before.now.clone());
        let after =
            tokio::task::spawn_blocking(move || database_state(&url, Some((&start, &since))))
                .await??;
        Ok(Footprint {
            sessions: FOOTPRINT_SESSIONS as i64,
            rotations: (FOOTPRINT_SESSIONS * FOOTPRINT_ROTATIONS) as i64,
            elapsed,
            p99,
            wal_bytes: after.own_wal.unwrap_or_default(),
            cluster_wal_bytes: after.cluster_wal.unwrap_or_default(),
            session_rows: after.sessions - before.sessions,
            token_rows: after.tokens - before.tokens,
            bytes: after.bytes - before.bytes,
            row_bytes: after.row_bytes,
        })
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
        let keys = Arc::new(TokenKeys::ephemeral()?);
        let chains = {
            let (pool, email, info) = (pool.clone(), Arc::clone(&self.email), client_info.clone());
            let (n, lifetime, ttl) = (
                self.args.concurrency,
                tokens.session_max_lifetime,
                tokens.refresh_ttl,
            );
            let (keys, legacy) = (
                Arc::clone(&keys),
                matches!(rotation, Rotation::SevenStatements),
            );
            tokio::task::spawn_blocking(move || {
                sql_chains(&pool, &email, &info, &keys, legacy, n, lifetime, ttl)
            })
            .await??
        };
        let chains = Arc::new(chains);
        let client_info = Arc::new(client_info);
        let op = match rotation {
            Rotation::SevenStatements => op(move |worker| {
                let (pool, chains, info) =
                    (pool.clone(), Arc::clone(&chains), Arc::clone(&client_info));
                async move {
                    tokio::task::spawn_blocking(move || {
                        rotate_seven_statements(&pool, &chains[worker], &info, &policy)
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
/// query login uses (minted with `keys`), or, for the old ceiling, with a
/// token row as the previous version wrote one.
#[allow(clippy::too_many_arguments)]
fn sql_chains(
    pool: &Pool,
    email: &str,
    client: &ClientInfo,
    keys: &TokenKeys,
    legacy: bool,
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
            let secret = SessionSecret::generate().map_err(|e| anyhow!("CSPRNG: {e}"))?;
            let session = db::sessions::create(
                &mut conn,
                user.id,
                client,
                FirstToken {
                    secret: &secret,
                    key_id: keys.current_id(),
                },
                session_end,
                token_end,
            )?;
            let token = if legacy {
                let token = RefreshToken::generate().map_err(|e| anyhow!("CSPRNG: {e}"))?;
                insert_legacy(
                    &mut conn,
                    Uuid::new_v4(),
                    &token.hash(),
                    session.id,
                    now,
                    token_end,
                )?;
                token
            } else {
                auth_server::tokens::refresh::mint(
                    keys,
                    keys.current_id(),
                    session.id,
                    1,
                    secret.as_bytes(),
                )
                .context("the current key mints")?
            };
            Ok(Mutex::new(token))
        })
        .collect()
}

/// One rotation of a chain by the fast path's one `UPDATE` alone, as the
/// refresh endpoint runs it minus HTTP, JSON and the access token's
/// signature (the successor minted the same way).
async fn rotate(
    rotations: &RotationPool,
    chain: &Mutex<RefreshToken>,
    client: &ClientInfo,
    policy: &Policy,
    keys: &TokenKeys,
) -> anyhow::Result<()> {
    let presented = {
        let token = locked(chain);
        presented_token(keys, token.expose())
    };
    let Some(PresentedToken::V2(proof)) = presented else {
        bail!("rotation SQL: not a version 2 token of this key");
    };
    let conn = rotations.get().await?;
    let rotated =
        rotation::rotate_only(conn.connection(), &proof, keys.current_id(), client, policy).await?;
    conn.release();
    // Named, not printed: the rows hold the user's details.
    let Some((_, _, successor)) = rotated else {
        bail!("rotation SQL: the UPDATE matched nothing");
    };
    let (token, _) = mint(keys, &successor).context("the current key mints")?;
    *locked(chain) = token;
    Ok(())
}

/// One rotation of a chain by the seven-statement SQL of long ago, on
/// token rows.
fn rotate_seven_statements(
    pool: &Pool,
    chain: &Mutex<RefreshToken>,
    client: &ClientInfo,
    policy: &Policy,
) -> anyhow::Result<()> {
    let presented = locked(chain).hash();
    let successor = RefreshToken::generate().map_err(|e| anyhow!("CSPRNG: {e}"))?;
    let mut conn = pool.get()?;
    seven_statement_rotation(&mut conn, &presented, &successor.hash(), client, policy)?;
    *locked(chain) = successor;
    Ok(())
}

/// Sessions and rotations of a footprint measurement.
const FOOTPRINT_SESSIONS: usize = 16;
const FOOTPRINT_ROTATIONS: usize = 300;

/// What [`FOOTPRINT_ROTATIONS`] rotations of each of [`FOOTPRINT_SESSIONS`]
/// new sessions cost one build.
#[derive(Debug)]
struct Footprint {
    sessions: i64,
    rotations: i64,
    elapsed: Duration,
    p99: Duration,
    /// WAL records of this database (and the commits of their
    /// transactions), by `pg_walinspect`.
    wal_bytes: i64,
    /// Every WAL byte the cluster wrote meanwhile (other databases too).
    cluster_wal_bytes: i64,
    session_rows: i64,
    token_rows: i64,
    /// Growth of `sessions` and `refresh_tokens`, heap, indexes and TOAST.
    bytes: i64,
    /// The live rows of these sessions themselves (`pg_column_size`):
    /// their session rows and token rows, no index.
    row_bytes: i64,
}

impl Footprint {
    fn wal_per_rotation(&self) -> f64 {
        self.wal_bytes as f64 / self.rotations.max(1) as f64
    }

    fn cluster_wal_per_rotation(&self) -> f64 {
        self.cluster_wal_bytes as f64 / self.rotations.max(1) as f64
    }
}

#[derive(Debug)]
struct DatabaseState {
    lsn: String,
    now: String,
    row_bytes: i64,
    sessions: i64,
    tokens: i64,
    bytes: i64,
    own_wal: Option<i64>,
    cluster_wal: Option<i64>,
}

#[derive(QueryableByName)]
struct Sizes {
    #[diesel(sql_type = diesel::sql_types::Text)]
    lsn: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    now: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    sessions: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    tokens: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    bytes: i64,
}

#[derive(QueryableByName)]
struct Bytes {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Row counts and sizes of the two tables, the WAL position, and (given
/// the position a measurement started at) the WAL written since: this
/// database's records, read back with `pg_walinspect`, and the cluster's.
/// `since` is the position and the time (of an earlier state) a
/// measurement started at; the sessions created since are the measured ones.
fn database_state(url: &str, since: Option<(&str, &str)>) -> anyhow::Result<DatabaseState> {
    let mut conn = PgConnection::establish(url)?;
    let sizes = |conn: &mut PgConnection| {
        diesel::sql_query(
            "SELECT pg_current_wal_insert_lsn()::text AS lsn, clock_timestamp()::text AS now, \
             (SELECT count(*) FROM sessions) AS sessions, \
             (SELECT count(*) FROM refresh_tokens) AS tokens, \
             (pg_total_relation_size('sessions') + pg_total_relation_size('refresh_tokens'))::bigint AS bytes",
        )
        .get_result::<Sizes>(conn)
    };
    let Some((start, started_at)) = since else {
        diesel::sql_query("CREATE EXTENSION IF NOT EXISTS pg_walinspect").execute(&mut conn)?;
        let s = sizes(&mut conn)?;
        return Ok(DatabaseState {
            lsn: s.lsn,
            now: s.now,
            row_bytes: 0,
            sessions: s.sessions,
            tokens: s.tokens,
            bytes: s.bytes,
            own_wal: None,
            cluster_wal: None,
        });
    };
    let s = sizes(&mut conn)?;
    // The records up to the end must be flushed before they can be read.
    for _ in 0..200 {
        let flushed = diesel::sql_query(
            "SELECT (pg_current_wal_flush_lsn() >= $1::pg_lsn)::int::bigint AS n",
        )
        .bind::<diesel::sql_types::Text, _>(&s.lsn)
        .get_result::<Bytes>(&mut conn)?;
        if flushed.n == 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let cluster = diesel::sql_query("SELECT pg_wal_lsn_diff($2::pg_lsn, $1::pg_lsn)::bigint AS n")
        .bind::<diesel::sql_types::Text, _>(start)
        .bind::<diesel::sql_types::Text, _>(&s.lsn)
        .get_result::<Bytes>(&mut conn)?;
    // Records touching this database's relations (`rel <spc>/<db>/<rel>`),
    // and the commit records of the transactions that wrote them.
    let own = diesel::sql_query(
        "WITH r AS (SELECT * FROM pg_get_wal_records_info($1::pg_lsn, $2::pg_lsn)), \
         db AS (SELECT '%/' || oid || '/%' AS pattern FROM pg_database WHERE datname = current_database()), \
         ours AS (SELECT DISTINCT r.xid::text AS xid FROM r, db WHERE r.block_ref LIKE db.pattern AND r.xid::text <> '0') \
         SELECT COALESCE(sum(r.record_length), 0)::bigint AS n FROM r, db \
         WHERE r.block_ref LIKE db.pattern \
            OR (r.resource_manager = 'Transaction' AND r.xid::text IN (SELECT xid FROM ours))",
    )
    .bind::<diesel::sql_types::Text, _>(start)
    .bind::<diesel::sql_types::Text, _>(&s.lsn)
    .get_result::<Bytes>(&mut conn)?;
    let rows = diesel::sql_query(
        "SELECT (COALESCE((SELECT sum(pg_column_size(s.*)) FROM sessions s WHERE s.created_at >= $1::timestamptz), 0) \
         + COALESCE((SELECT sum(pg_column_size(t.*)) FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id \
                     WHERE s.created_at >= $1::timestamptz), 0))::bigint AS n",
    )
    .bind::<diesel::sql_types::Text, _>(started_at)
    .get_result::<Bytes>(&mut conn)?;
    Ok(DatabaseState {
        lsn: s.lsn,
        now: s.now,
        row_bytes: rows.n,
        sessions: s.sessions,
        tokens: s.tokens,
        bytes: s.bytes,
        own_wal: Some(own.n),
        cluster_wal: Some(cluster.n),
    })
}

/// `VACUUM` of the tables the rotations write, between the warm-ups and
/// the measured slices.
async fn vacuum_rotation_tables(database_url: &str) -> anyhow::Result<()> {
    let url = database_url.to_owned();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut conn = PgConnection::establish(&url)?;
        diesel::sql_query("VACUUM (ANALYZE) sessions, refresh_tokens").execute(&mut conn)?;
        Ok(())
    })
    .await?
}
