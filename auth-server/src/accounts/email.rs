//! An e-mail address as the server accepts one: a bare `local@domain`,
//! trimmed and lower-cased, checked once where it comes in (an HTTP body,
//! the command line) and carried as [`Email`] from there on, down to the
//! mailer, as zero2prod's `SubscriberEmail` is.
//!
//! Bare means no display name and nothing of RFC 5322's richer forms
//! (`Name <addr>`, comments, quoted local parts, domain literals, groups):
//! no `<>()[]\,;:"` and no whitespace anywhere. A mail library reading
//! `ceo<attacker@evil.example>` as a mailbox sends to the address inside
//! the angle brackets, so an account registered under that "address" had
//! its verification mail delivered to the attacker.

use std::fmt;
use std::str::FromStr;

/// The longest address, in bytes (RFC 5321 §4.5.3.1.3: a path is 256 octets
/// with its angle brackets).
pub const MAX_LENGTH: usize = 254;
/// The longest local part, in bytes (RFC 5321 §4.5.3.1.1).
const MAX_LOCAL_LENGTH: usize = 64;
/// The longest label of the domain, in bytes (RFC 1035 §2.3.4).
const MAX_LABEL_LENGTH: usize = 63;
/// What a bare address never holds: the specials of RFC 5322 §3.2.3 but
/// `@` and `.`, which make display names, comments, quoted strings, domain
/// literals and lists.
const NOT_BARE: &[char] = &['<', '>', '(', ')', '[', ']', '\\', ',', ';', ':', '"'];

/// A checked address: see the module's documentation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

/// Why a string is not an [`Email`], in words for the `422` that names the
/// field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailError {
    Empty,
    TooLong,
    NotBare,
    Malformed,
}

impl EmailError {
    /// The problem, as the `422`'s description says it after the field.
    pub fn problem(self) -> &'static str {
        match self {
            Self::Empty => "is required",
            Self::TooLong => "must be at most 254 characters",
            Self::NotBare => {
                "must be a bare address such as name@example.com: no display name, none of <>()[]\\,;:\" and no spaces"
            }
            Self::Malformed => "is not an email address",
        }
    }
}

impl fmt::Display for EmailError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.problem())
    }
}

impl std::error::Error for EmailError {}

impl Email {
    /// Trims, lower-cases and checks `raw`.
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(EmailError::Empty);
        }
        let email = trimmed.to_lowercase();
        if email.len() > MAX_LENGTH {
            return Err(EmailError::TooLong);
        }
        if email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || NOT_BARE.contains(&c))
        {
            return Err(EmailError::NotBare);
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err(EmailError::Malformed);
        };
        if !local_part_ok(local) || !domain_ok(domain) {
            return Err(EmailError::Malformed);
        }
        // What reaches the mailer must be an address it takes as it is.
        if lettre::Address::new(local, domain).is_err() {
            return Err(EmailError::Malformed);
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// The address as the mail library's type: a mailbox with no name.
    pub fn mailbox(&self) -> Result<lettre::message::Mailbox, EmailError> {
        let (local, domain) = self.0.split_once('@').ok_or(EmailError::Malformed)?;
        let address = lettre::Address::new(local, domain).map_err(|_| EmailError::Malformed)?;
        Ok(lettre::message::Mailbox::new(None, address))
    }
}

/// A dot-atom: no empty part between dots (which also refuses a second
/// `@`, since no part may hold one).
fn local_part_ok(local: &str) -> bool {
    !local.is_empty()
        && local.len() <= MAX_LOCAL_LENGTH
        && local.split('.').all(|part| !part.is_empty())
        && !local.contains('@')
}

/// A host name of at least two labels, each of letters, digits and inner
/// hyphens (or beyond ASCII, for internationalised names).
fn domain_ok(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= MAX_LABEL_LENGTH
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '-' || !c.is_ascii())
        })
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// For the command line's arguments.
impl FromStr for Email {
    type Err = EmailError;

    fn from_str(raw: &str) -> Result<Self, EmailError> {
        Self::parse(raw)
    }
}

impl From<Email> for String {
    fn from(email: Email) -> Self {
        email.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_trimmed_and_lower_cased() {
        let email = Email::parse("  Alice.Smith+Tag@Example.COM ").unwrap();
        assert_eq!(email.as_ref(), "alice.smith+tag@example.com");
        assert_eq!(email.to_string(), "alice.smith+tag@example.com");
        for good in [
            "a@b.co",
            "o'brien@example.ie",
            "first.last@sub.example.co.uk",
            "x_y-z!#$%&*/=?^`{|}~@example.com",
            "user@xn--bcher-kva.example",
            "jörg@bücher.example",
        ] {
            assert!(Email::parse(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn a_display_name_never_gets_through() {
        // The reproduced attack: lettre reads this as a mailbox and sends
        // to the address inside the brackets.
        for attack in [
            "ceo<attacker@evil.example>",
            "CEO <attacker@evil.example>",
            "\"ceo@corp.example\" <attacker@evil.example>",
            "<attacker@evil.example>",
            "ceo@corp.example, attacker@evil.example",
            "ceo@corp.example;attacker@evil.example",
            "ceo@corp.example (attacker@evil.example)",
            "group: attacker@evil.example;",
            "\"a b\"@example.com",
            "a\\@b@example.com",
            "user@[127.0.0.1]",
            "a b@example.com",
            "a@exam ple.com",
            "a\t@example.com",
            "a@example.com\nbcc@evil.example",
            "a\r\n@example.com",
            "a\u{a0}b@example.com",
        ] {
            assert_eq!(Email::parse(attack), Err(EmailError::NotBare), "{attack:?}");
        }
    }

    #[test]
    fn what_is_not_an_address_is_refused() {
        assert_eq!(Email::parse(""), Err(EmailError::Empty));
        assert_eq!(Email::parse("   "), Err(EmailError::Empty));
        for bad in [
            "alice",
            "@example.com",
            "alice@",
            "alice@example",
            "a@b@example.com",
            "alice@.example.com",
            "alice@example.com.",
            "alice@example..com",
            ".alice@example.com",
            "alice.@example.com",
            "al..ice@example.com",
            "alice@-example.com",
            "alice@example-.com",
            "alice@exa_mple.com",
            "alice@exa%mple.com",
        ] {
            assert_eq!(Email::parse(bad), Err(EmailError::Malformed), "{bad:?}");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert_eq!(Email::parse(&long_local), Err(EmailError::Malformed));
        let long_label = format!("a@{}.com", "b".repeat(64));
        assert_eq!(Email::parse(&long_label), Err(EmailError::Malformed));
    }

    #[test]
    fn the_length_is_bounded_at_254() {
        let domain = format!(
            "{}.{}.{}.com",
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(63)
        );
        let at_most = format!("{}@{domain}", "a".repeat(MAX_LENGTH - 1 - domain.len()));
        assert_eq!(at_most.len(), MAX_LENGTH);
        assert!(Email::parse(&at_most).is_ok());
        let over = format!("a{at_most}");
        assert_eq!(Email::parse(&over), Err(EmailError::TooLong));
        assert_eq!(
            Email::parse(&format!("{}@example.com", "a".repeat(300))),
            Err(EmailError::TooLong)
        );
    }

    #[test]
    fn the_mailer_gets_the_address_itself_and_no_name() {
        let mailbox = Email::parse("Bob@Example.com").unwrap().mailbox().unwrap();
        assert_eq!(mailbox.name, None);
        assert_eq!(mailbox.email.to_string(), "bob@example.com");
    }

    #[test]
    fn the_command_line_parses_through_from_str() {
        assert_eq!(
            "Bob@Example.com".parse::<Email>().unwrap().as_str(),
            "bob@example.com"
        );
        assert!("ceo<attacker@evil.example>".parse::<Email>().is_err());
    }
}
