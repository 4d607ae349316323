//! Readiness: whether the database answers.

use super::ServiceError;
use crate::db::{self, Database};

pub async fn ready(database: &Database) -> Result<(), ServiceError> {
    Ok(database.run(db::ping).await?)
}
