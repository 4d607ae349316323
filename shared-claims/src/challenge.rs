//! The RFC 6750 `WWW-Authenticate` challenge, identical on every service.

use crate::error::ErrorCode;

/// `Bearer realm="…"`, with `error` and `error_description` when a token was
/// sent and refused (RFC 6750 §3).
pub fn bearer_challenge(realm: &str, error: Option<(ErrorCode, &str)>) -> String {
    match error {
        None => format!(r#"Bearer realm="{}""#, quoted(realm)),
        Some((code, description)) => format!(
            r#"Bearer realm="{}", error="{}", error_description="{}""#,
            quoted(realm),
            code.as_str(),
            quoted(description)
        ),
    }
}

/// Inside a quoted-string only printable ASCII is safe in a header, and `"`
/// and `\` would end or escape it: drop them.
fn quoted(value: &str) -> String {
    value
        .chars()
        .filter(|c| (' '..='~').contains(c) && *c != '"' && *c != '\\')
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_follow_rfc_6750() {
        assert_eq!(bearer_challenge("api", None), r#"Bearer realm="api""#);
        assert_eq!(
            bearer_challenge(
                "api",
                Some((ErrorCode::InvalidToken, "the access token has expired"))
            ),
            r#"Bearer realm="api", error="invalid_token", error_description="the access token has expired""#
        );
        assert_eq!(bearer_challenge("a\"pi\n", None), r#"Bearer realm="api""#);
    }
}
