//! Notices: mail that tells the owner of an account that something changed
//! in how it signs in, so a change they did not make does not go unseen.
//! No link and no token; queued in the transaction of the change, like the
//! mails with a link.

use lettre::Message;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;

use crate::accounts::email::Email;

/// What happened; stored in `mail_outbox.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    FactorAdded,
    FactorRemoved,
    RecoveryCodeUsed,
}

impl Notice {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FactorAdded => "factor_added",
            Self::FactorRemoved => "factor_removed",
            Self::RecoveryCodeUsed => "recovery_code_used",
        }
    }

    pub fn parse(stored: &str) -> Option<Self> {
        [
            Self::FactorAdded,
            Self::FactorRemoved,
            Self::RecoveryCodeUsed,
        ]
        .into_iter()
        .find(|notice| notice.as_str() == stored)
    }

    fn text(self) -> (&'static str, &'static str) {
        match self {
            Self::FactorAdded => (
                "A second factor was added to your account",
                "A second factor (an authenticator app or a passkey) was added to your account. \
                 Signing in now asks for it after the password.\n\n",
            ),
            Self::FactorRemoved => (
                "A second factor was removed from your account",
                "A second factor was removed from your account. When none remains, \
                 signing in asks only for the password.\n\n",
            ),
            Self::RecoveryCodeUsed => (
                "A recovery code was used to sign in",
                "One of your recovery codes was just used to sign in to your account; it \
                 cannot be used again. If you have lost your authenticator, set up a new one \
                 and make new recovery codes.\n\n",
            ),
        }
    }

    /// The message to `to`.
    pub fn render(self, from: &Mailbox, to: &Email) -> anyhow::Result<Message> {
        let to = to
            .mailbox()
            .map_err(|_| anyhow::anyhow!("the recipient is not an address lettre accepts"))?;
        let (subject, what) = self.text();
        let body = format!(
            "{what}If this was not you, sign in, change your password and review your \
             second factors at once, or ask an administrator to reset them.\n"
        );
        Message::builder()
            .from(from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(super::message::plain(body))
            .map_err(|e| anyhow::anyhow!("building the message: {e}"))
    }
}
