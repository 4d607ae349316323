//! The messages: plain text, one link each, the token in the link's
//! fragment (`PUBLIC_URL/#reset=…`), which browsers never send to a server
//! nor put in a `Referer`.

use std::time::Duration;

use lettre::Message;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox};

use crate::accounts::email::Email;
use crate::tokens::email::{EmailToken, Purpose};

/// The link the web app reads.
pub fn link(public_url: &str, purpose: Purpose, token: &EmailToken) -> String {
    format!("{public_url}/#{}={}", purpose.fragment(), token.expose())
}

/// The message to `to`: an [`Email`], never a string a mail library could
/// read as a mailbox with a display name (`ceo<attacker@evil.example>`
/// goes to the address in the brackets).
pub fn render(
    from: &Mailbox,
    to: &Email,
    purpose: Purpose,
    link: &str,
    valid_for: Duration,
) -> anyhow::Result<Message> {
    let to = to
        .mailbox()
        .map_err(|_| anyhow::anyhow!("the recipient is not an address lettre accepts"))?;
    let lifetime = human(valid_for);
    let (subject, body) = match purpose {
        Purpose::PasswordReset => (
            "Reset your password",
            format!(
                "Someone asked to reset the password of the account {to}.\n\n\
                 To choose a new password, open this link within {lifetime}:\n\n{link}\n\n\
                 Every session of the account will be logged out.\n\
                 If it was not you, ignore this message: your password stays as it is.\n",
                to = to.email
            ),
        ),
        Purpose::EmailVerify => (
            "Confirm your e-mail address",
            format!(
                "Please confirm that {to} is your address by opening this link within {lifetime}:\n\n{link}\n\n\
                 If you did not create an account, ignore this message.\n",
                to = to.email
            ),
        ),
    };
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body(plain(body))
        .map_err(|e| anyhow::anyhow!("building the message: {e}"))
}

/// The body as written, 7bit, whenever it is ASCII in lines of at most 998
/// characters (RFC 5322 §2.1.1): lettre would pick quoted-printable for any
/// line past 76, and its soft line breaks and `=3D` break the link for
/// anyone reading the raw message or copying the link out of it. (Only an
/// address beyond ASCII falls back to lettre's choice.)
pub(super) fn plain(body: String) -> Body {
    if body.is_ascii() && body.lines().all(|line| line.len() <= 998) {
        Body::dangerous_pre_encoded(
            body.replace('\n', "\r\n").into_bytes(),
            ContentTransferEncoding::SevenBit,
        )
    } else {
        Body::new(body)
    }
}

/// `30 minutes`, `24 hours`, `2 days`.
fn human(duration: Duration) -> String {
    let secs = duration.as_secs();
    let (n, unit) = if secs >= 2 * 86_400 && secs.is_multiple_of(86_400) {
        (secs / 86_400, "day")
    } else if secs >= 3600 && secs.is_multiple_of(3600) {
        (secs / 3600, "hour")
    } else if secs >= 60 {
        (secs.div_ceil(60), "minute")
    } else {
        (secs.max(1), "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_carries_the_token_in_the_fragment_only() {
        let token = EmailToken::generate().unwrap();
        let link = link("https://app.example.com", Purpose::PasswordReset, &token);
        let (page, fragment) = link.split_once('#').unwrap();
        assert_eq!(page, "https://app.example.com/");
        assert_eq!(fragment, format!("reset={}", token.expose()));
        let message = render(
            &"auth@example.com".parse().unwrap(),
            &Email::parse("alice@example.com").unwrap(),
            Purpose::PasswordReset,
            &link,
            Duration::from_secs(1800),
        )
        .unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        assert!(text.contains("Subject: Reset your password"), "{text}");
        assert!(text.contains("within 30 minutes"), "{text}");
        assert!(text.contains(&link), "the link whole, on one line: {text}");
    }

    #[test]
    fn lifetimes_read_as_people_say_them() {
        assert_eq!(human(Duration::from_secs(1800)), "30 minutes");
        assert_eq!(human(Duration::from_secs(86_400)), "24 hours");
        assert_eq!(human(Duration::from_secs(3600)), "1 hour");
        assert_eq!(human(Duration::from_secs(3 * 86_400)), "3 days");
        assert_eq!(human(Duration::from_secs(90)), "2 minutes");
        assert_eq!(human(Duration::from_secs(5)), "5 seconds");
    }
}
