//! Readiness: whether the database answers, through both pools.

use super::ServiceError;
use crate::db::Database;

pub async fn ready(database: &Database) -> Result<(), ServiceError> {
    Ok(database.ping().await?)
}
