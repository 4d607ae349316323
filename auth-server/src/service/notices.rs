//! Telling the owner of an account that how it signs in changed: a notice
//! queued in the transaction of the change (see `crate::mail::notice`).

use diesel::PgConnection;
use uuid::Uuid;

use crate::accounts::email::Email;
use crate::db::models::ClientInfo;
use crate::db::outbox;
use crate::mail::notice::Notice;

/// Queues `notice` to the user's address (an address stored before they
/// were checked as now is skipped).
pub(super) fn notify(
    conn: &mut PgConnection,
    notice: Notice,
    email: &str,
    user_id: Uuid,
    client: &ClientInfo,
) -> diesel::QueryResult<()> {
    if let Ok(email) = Email::parse(email) {
        outbox::enqueue_notice(conn, notice, &email, user_id, client)?;
    }
    Ok(())
}
