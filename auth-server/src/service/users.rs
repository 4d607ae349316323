//! Changing what a user may do (the CLI's `users grant-role/revoke-role`).

use super::ServiceError;
use crate::db::models::User;
use crate::db::{self, Database};

/// Adds (`granted`) or removes a role; the email must already be normalised.
/// Access tokens already issued keep their roles until they expire.
pub async fn set_role(
    database: &Database,
    email: String,
    role: String,
    granted: bool,
) -> Result<User, ServiceError> {
    database
        .run(move |conn| db::users::set_role(conn, &email, &role, granted))
        .await?
        .ok_or(ServiceError::NotFound("user"))
}
