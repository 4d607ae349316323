//! A PostgreSQL database of its own for every integration test, after
//! crates.io's `crates_io_test_db`: the migrations run once, into a template
//! database, and each test gets a clone (`CREATE DATABASE … TEMPLATE …`),
//! dropped when the test ends, even when it fails.
//!
//! - The template's name carries a hash of `migrations/` (see `build.rs`):
//!   an edited migration gets a new template, never a stale one. Templates
//!   of older migrations stay on the server until someone drops them
//!   (`ALTER DATABASE … IS_TEMPLATE false`, then `DROP DATABASE`).
//! - Test processes running at once build it once: the builder holds an
//!   advisory lock, the others wait on it and then find the template. It is
//!   migrated under another name and renamed when complete, so nobody clones
//!   half a schema.
//! - Nobody stays connected to it (PostgreSQL refuses to clone a database
//!   anyone is connected to): the builder disconnects before the rename,
//!   and connections to it are then refused altogether.
//! - Any server works: a test's own cluster gets its own template on first
//!   use.
//!
//! The migrations are embedded here rather than taken from the auth server,
//! which itself depends on this crate for its tests.

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use url::Url;
use uuid::Uuid;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations");

/// A hash of `migrations/`, computed by `build.rs`.
const MIGRATIONS_HASH: &str = env!("TEST_DB_MIGRATIONS_HASH");

/// The advisory lock template builders take ("testdb" in ASCII), distinct
/// from the auth server's migration lock.
const TEMPLATE_LOCK: i64 = 0x7465_7374_6462;

/// The PostgreSQL server tests create their databases on:
/// `TEST_DATABASE_URL`, else `DATABASE_URL`, else the local development one.
pub fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database of the test's own, dropped when this value is (at the end of
/// the test, whether it passes or panics), so tests run in parallel and
/// leave nothing behind.
pub struct TestDatabase {
    pub url: String,
    admin_url: String,
    name: String,
}

impl TestDatabase {
    /// A migrated database on the server of [`server_url`].
    pub fn create() -> Self {
        Self::create_on(&server_url())
    }

    /// A migrated database on another server (a test's own cluster).
    pub fn create_on(server_url: &str) -> Self {
        Self::new(server_url, true)
    }

    /// A database without a single table, for tests of migrating itself.
    pub fn empty() -> Self {
        Self::new(&server_url(), false)
    }

    /// The `n` of a query selecting `count(*) AS n`: what the code under
    /// test left in the database.
    pub fn count(&self, sql: &str) -> i64 {
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = connect(&self.url).unwrap_or_else(|e| panic!("{e}"));
        diesel::sql_query(sql)
            .get_result::<Count>(&mut conn)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .n
    }

    fn new(server_url: &str, migrated: bool) -> Self {
        let admin_url = on_database(server_url, "postgres")
            .unwrap_or_else(|e| panic!("the test database server URL: {e}"));
        let name = format!("test_{}", Uuid::new_v4().simple());
        let created = connect(&admin_url).and_then(|mut conn| {
            if migrated {
                let template = template(&mut conn, &admin_url)?;
                execute(
                    &mut conn,
                    &format!("CREATE DATABASE {name} TEMPLATE {template}"),
                )
            } else {
                execute(&mut conn, &format!("CREATE DATABASE {name}"))
            }
        });
        if let Err(e) = created {
            panic!("creating the test database {name}: {e}");
        }
        let url = on_database(&admin_url, &name)
            .unwrap_or_else(|e| panic!("the test database's URL: {e}"));
        Self {
            url,
            admin_url,
            name,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop may run inside the async runtime: do the blocking work on a thread.
        let _ = std::thread::spawn(move || {
            if let Ok(mut conn) = connect(&admin_url) {
                let _ = execute(
                    &mut conn,
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                );
            }
        })
        .join();
    }
}

/// The migrated template for these migrations, built first if the server
/// does not have it yet.
fn template(conn: &mut PgConnection, admin_url: &str) -> Result<String, String> {
    let template = format!("test_template_{MIGRATIONS_HASH}");
    if exists(conn, &template)? {
        return Ok(template);
    }
    execute(conn, &format!("SELECT pg_advisory_lock({TEMPLATE_LOCK})"))?;
    let built = build_unless_present(conn, admin_url, &template);
    let unlocked = execute(conn, &format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK})"));
    built?;
    unlocked?;
    Ok(template)
}

/// Under the lock: another process may have built it while we waited.
fn build_unless_present(
    conn: &mut PgConnection,
    admin_url: &str,
    template: &str,
) -> Result<(), String> {
    if exists(conn, template)? {
        return Ok(());
    }
    // What a builder that died part-way left behind.
    let partial = format!("{template}_partial");
    execute(
        conn,
        &format!("DROP DATABASE IF EXISTS {partial} WITH (FORCE)"),
    )?;
    execute(conn, &format!("CREATE DATABASE {partial}"))?;
    {
        let mut migrating = connect(&on_database(admin_url, &partial)?)?;
        migrating
            .run_pending_migrations(MIGRATIONS)
            .map_err(|e| format!("migrating {partial}: {e}"))?;
    }
    execute(
        conn,
        &format!("ALTER DATABASE {partial} RENAME TO {template}"),
    )?;
    execute(
        conn,
        &format!("ALTER DATABASE {template} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"),
    )
}

fn exists(conn: &mut PgConnection, database: &str) -> Result<bool, String> {
    #[derive(QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query("SELECT count(*) AS n FROM pg_database WHERE datname = $1")
        .bind::<Text, _>(database)
        .get_result::<Found>(conn)
        .map(|found| found.n > 0)
        .map_err(|e| format!("looking for database {database}: {e}"))
}

fn connect(url: &str) -> Result<PgConnection, String> {
    PgConnection::establish(url).map_err(|e| format!("connecting to the test server: {e}"))
}

fn execute(conn: &mut PgConnection, sql: &str) -> Result<(), String> {
    diesel::sql_query(sql)
        .execute(conn)
        .map(|_| ())
        .map_err(|e| format!("{sql}: {e}"))
}

/// The same server and options, another database. Names made here are
/// lower-case letters, digits and `_`, so they need no quoting anywhere.
fn on_database(url: &str, database: &str) -> Result<String, String> {
    let mut url = Url::parse(url).map_err(|e| format!("`{url}`: {e}"))?;
    url.set_path(&format!("/{database}"));
    Ok(url.into())
}
