//! PostgreSQL through Diesel and an r2d2 pool.
//!
//! Query functions are plain synchronous functions taking `&mut PgConnection`;
//! the service layer runs them through [`Database::run`], on the blocking
//! pool, never on the async workers.

pub mod accounts;
pub mod admin;
pub mod audit;
mod connection_url;
mod database;
pub mod email_tokens;
pub mod factors;
pub mod login_throttle;
pub mod mfa_tokens;
pub mod models;
pub mod notifications;
pub mod outbox;
pub mod passkeys;
mod pool;
pub mod rate_limits;
pub mod revocations;
pub mod rotation;
pub mod rotation_pool;
pub mod schema;
pub mod sessions;
pub mod signing_keys;
pub mod sweep;
pub mod tokens;
pub mod users;

use anyhow::Context;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub use database::Database;
pub use pool::{Pool, PoolStats, build_pool};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations");

/// How a database call failed, as far as callers care.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had in time, or the connection broke.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A row lock or statement waited past its bound.
    #[error("database contention: lock or statement timeout")]
    Contended,
    #[error("query failed: {0}")]
    Query(DieselError),
    /// The blocking pool would not run the query: the runtime is shutting
    /// down (or the query panicked).
    #[error("the blocking thread pool is shut down")]
    Stopped,
}

impl From<DieselError> for DbError {
    fn from(error: DieselError) -> Self {
        match &error {
            DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                info,
            ) => Self::Unavailable(info.message().to_owned()),
            // Postgres says 55P03/57014; Diesel only hands us the message.
            DieselError::DatabaseError(_, info)
                if info.message().contains("lock timeout")
                    || info.message().contains("statement timeout") =>
            {
                Self::Contended
            }
            DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => {
                Self::Contended
            }
            DieselError::BrokenTransactionManager => {
                Self::Unavailable("broken transaction manager".to_owned())
            }
            _ => Self::Query(error),
        }
    }
}

impl From<diesel::r2d2::PoolError> for DbError {
    fn from(error: diesel::r2d2::PoolError) -> Self {
        Self::Unavailable(error.to_string())
    }
}

pub type DbResult<T> = Result<T, DbError>;

/// Applies pending migrations, holding an advisory lock so that replicas
/// starting together do not race each other.
pub fn run_migrations(url: &str) -> anyhow::Result<()> {
    const MIGRATION_LOCK: i64 = 0x6175_7468_6d69_6772; // "authmigr"
    let mut conn =
        PgConnection::establish(url).context("connecting to the database to migrate it")?;
    diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
        .execute(&mut conn)
        .context("taking the migration lock")?;
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map(|versions| versions.iter().map(ToString::to_string).collect::<Vec<_>>())
        .map_err(|e| anyhow::anyhow!("running migrations: {e}"));
    let unlocked = diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
        .execute(&mut conn);
    let applied = applied?;
    unlocked.context("releasing the migration lock")?;
    for version in applied {
        tracing::info!(%version, "applied migration");
    }
    Ok(())
}

/// Creates the database named in `url` when it does not exist yet, so a
/// developer can `cargo run` against a bare local PostgreSQL.
pub fn create_database_if_missing(url: &str) -> anyhow::Result<()> {
    match PgConnection::establish(url) {
        Ok(_) => return Ok(()),
        Err(ConnectionError::BadConnection(message)) if message.contains("does not exist") => {}
        Err(e) => return Err(anyhow::anyhow!("connecting to the database: {e}")),
    }
    let (server_url, name) =
        split_database_url(url).context("DATABASE_URL has no database name")?;
    let mut conn = PgConnection::establish(&server_url).map_err(|e| {
        anyhow::anyhow!("connecting to the `postgres` database to create `{name}`: {e}")
    })?;
    diesel::sql_query(format!("CREATE DATABASE {}", quote_identifier(&name)))
        .execute(&mut conn)
        .with_context(|| format!("creating database `{name}`"))?;
    tracing::info!(database = %name, "created the database");
    Ok(())
}

/// `postgres://u@h:5432/app?x=y` → (`postgres://u@h:5432/postgres?x=y`, `app`).
pub fn split_database_url(url: &str) -> Option<(String, String)> {
    let (prefix, name, query) = database_url_parts(url)?;
    Some((format!("{prefix}/postgres{query}"), name.to_owned()))
}

/// The same server and options, another database.
pub fn with_database(url: &str, database: &str) -> Option<String> {
    let (prefix, _, query) = database_url_parts(url)?;
    Some(format!("{prefix}/{database}{query}"))
}

fn database_url_parts(url: &str) -> Option<(&str, &str, &str)> {
    let scheme_end = url.find("://")? + 3;
    let slash = scheme_end + url[scheme_end..].find('/')?;
    let rest = &url[slash + 1..];
    let (name, query) = match rest.find('?') {
        Some(q) => (&rest[..q], &rest[q..]),
        None => (rest, ""),
    };
    (!name.is_empty()).then_some((&url[..slash], name, query))
}

pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Whether the database answers: for `/readyz`.
pub fn ping(conn: &mut PgConnection) -> DbResult<()> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_database_urls() {
        assert_eq!(
            split_database_url("postgres://postgres@localhost:5432/auth"),
            Some((
                "postgres://postgres@localhost:5432/postgres".to_owned(),
                "auth".to_owned()
            ))
        );
        assert_eq!(
            split_database_url("postgres://u:p@h/app?sslmode=disable"),
            Some((
                "postgres://u:p@h/postgres?sslmode=disable".to_owned(),
                "app".to_owned()
            ))
        );
        assert_eq!(split_database_url("postgres://h"), None);
        assert_eq!(
            with_database("postgres://postgres@h/postgres?sslmode=disable", "t").as_deref(),
            Some("postgres://postgres@h/t?sslmode=disable")
        );
    }

    #[test]
    fn quotes_identifiers() {
        assert_eq!(quote_identifier(r#"a"b"#), r#""a""b""#);
    }
}
