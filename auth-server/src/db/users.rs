use chrono::Utc;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use uuid::Uuid;

use super::models::User;
use super::schema::users;
use super::{DbError, DbResult};
use crate::accounts::email::Email;

#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("email taken")]
    EmailTaken,
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Inserts a user; `email` is an [`Email`]'s text (registration goes
/// through `accounts::register`, which takes the type).
pub fn create(
    conn: &mut PgConnection,
    email: &str,
    password_hash: &str,
) -> Result<User, CreateUserError> {
    let now = Utc::now();
    let user = User {
        id: Uuid::new_v4(),
        email: email.to_owned(),
        password_hash: password_hash.to_owned(),
        roles: Vec::new(),
        created_at: now,
        updated_at: now,
        email_verified: false,
        disabled_at: None,
        roles_version: 0,
        last_login_at: None,
    };
    diesel::insert_into(users::table)
        .values(&user)
        .returning(User::as_returning())
        .get_result(conn)
        .map_err(|e| match e {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                CreateUserError::EmailTaken
            }
            other => CreateUserError::Db(other.into()),
        })
}

pub fn find_by_email(conn: &mut PgConnection, email: &Email) -> DbResult<Option<User>> {
    Ok(users::table
        .filter(users::email.eq(email.as_str()))
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

pub fn find_by_id(conn: &mut PgConnection, id: Uuid) -> DbResult<Option<User>> {
    Ok(users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .optional()?)
}
