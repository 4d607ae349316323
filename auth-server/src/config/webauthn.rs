//! Passkeys' relying party: the domain credentials are bound to
//! (`WEBAUTHN_RP_ID`) and the page origins allowed to use them
//! (`WEBAUTHN_RP_ORIGINS`, by default those of `PUBLIC_URL`, the web app,
//! and `JWT_ISSUER`, the provider's own pages).

use service_kit::env::{ConfigError, Env, invalid};
use url::Url;

#[derive(Debug, Clone)]
pub struct WebauthnSettings {
    pub rp_id: String,
    pub origins: Vec<Url>,
}

impl WebauthnSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        public_url: &str,
        issuer: &str,
    ) -> Result<Self, ConfigError> {
        let rp_id = env
            .get("WEBAUTHN_RP_ID")
            .unwrap_or_else(|| "localhost".to_owned())
            .trim()
            .to_ascii_lowercase();
        if rp_id.is_empty()
            || rp_id.len() > 253
            || rp_id.parse::<std::net::IpAddr>().is_ok()
            || !rp_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        {
            return Err(invalid(
                "WEBAUTHN_RP_ID",
                "must be a domain name (browsers refuse an IP address as relying party)",
            ));
        }
        let Some(list) = env.get("WEBAUTHN_RP_ORIGINS") else {
            return Ok(Self::defaulted(rp_id, &[public_url, issuer]));
        };
        let mut origins: Vec<Url> = Vec::new();
        for origin in list.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            let url = Url::parse(origin)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
                .ok_or_else(|| {
                    invalid(
                        "WEBAUTHN_RP_ORIGINS",
                        "must be http(s) origins, comma-separated",
                    )
                })?;
            let origin = Url::parse(&url.origin().ascii_serialization())
                .map_err(|_| invalid("WEBAUTHN_RP_ORIGINS", "must be http(s) origins"))?;
            if !within(&rp_id, origin.host_str().unwrap_or_default()) {
                return Err(invalid(
                    "WEBAUTHN_RP_ORIGINS",
                    "each origin's host must be WEBAUTHN_RP_ID or a subdomain of it",
                ));
            }
            if !origins.contains(&origin) {
                origins.push(origin);
            }
        }
        if origins.is_empty() {
            return Err(invalid("WEBAUTHN_RP_ORIGINS", "names no origin"));
        }
        Ok(Self { rp_id, origins })
    }

    /// The default origins: those of `PUBLIC_URL` and `JWT_ISSUER` that can
    /// use `rp_id` at all (a browser refuses the others). When neither can
    /// (a development set-up on other hosts), `https://{rp_id}` stands in:
    /// passkeys then wait for the variables to be set, and production
    /// refuses to start ([`Self::matches_public_url`]).
    fn defaulted(rp_id: String, candidates: &[&str]) -> Self {
        let mut origins: Vec<Url> = Vec::new();
        for candidate in candidates {
            let Some(origin) = Url::parse(candidate)
                .ok()
                .and_then(|u| Url::parse(&u.origin().ascii_serialization()).ok())
            else {
                continue;
            };
            let fits = origin.host_str().is_some_and(|host| within(&rp_id, host));
            if fits && !origins.contains(&origin) {
                origins.push(origin);
            }
        }
        if origins.is_empty()
            && let Ok(stand_in) = Url::parse(&format!("https://{rp_id}"))
        {
            origins.push(stand_in);
        }
        Self { rp_id, origins }
    }

    /// Production: the relying party is the web app's (`PUBLIC_URL`'s host
    /// or a domain above it), or passkeys made there never work.
    pub fn matches_public_url(&self, public_url: &str) -> bool {
        Url::parse(public_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .is_some_and(|host| within(&self.rp_id, &host))
    }
}

/// Whether `host` is `rp_id` or one of its subdomains.
fn within(rp_id: &str, host: &str) -> bool {
    host == rp_id || host.ends_with(&format!(".{rp_id}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::lookup;

    fn webauthn(vars: &[(&str, &str)]) -> Result<WebauthnSettings, ConfigError> {
        WebauthnSettings::from_env(
            &Env(lookup(vars)),
            "http://localhost:3000",
            "http://localhost:8080",
        )
    }

    #[test]
    fn defaults_are_the_web_app_and_the_issuer() {
        let w = webauthn(&[]).unwrap();
        assert_eq!(w.rp_id, "localhost");
        let origins: Vec<String> = w
            .origins
            .iter()
            .map(|o| o.origin().ascii_serialization())
            .collect();
        assert_eq!(origins, ["http://localhost:3000", "http://localhost:8080"]);
        assert!(w.matches_public_url("http://localhost:3000"));
        // Only the defaults that can use the relying party.
        let other = WebauthnSettings::from_env(
            &Env(lookup(&[("WEBAUTHN_RP_ID", "example.com")])),
            "https://app.example.com",
            "http://localhost:8080",
        )
        .unwrap();
        assert_eq!(other.origins, [origin("https://app.example.com")]);
        let none = WebauthnSettings::from_env(
            &Env(lookup(&[])),
            "https://app.example.com",
            "http://127.0.0.1:8080",
        )
        .unwrap();
        assert_eq!(none.origins, [origin("https://localhost")]);
        assert!(!none.matches_public_url("https://app.example.com"));
    }

    fn origin(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn the_relying_party_is_a_domain_and_covers_its_origins() {
        let w = webauthn(&[
            ("WEBAUTHN_RP_ID", "example.com"),
            (
                "WEBAUTHN_RP_ORIGINS",
                "https://app.example.com, https://example.com/",
            ),
        ])
        .unwrap();
        assert_eq!(w.origins.len(), 2);
        assert!(w.matches_public_url("https://app.example.com"));
        assert!(!w.matches_public_url("https://example.org"));
        assert!(!w.matches_public_url("https://badexample.com"));
        for (variable, vars) in [
            ("WEBAUTHN_RP_ID", vec![("WEBAUTHN_RP_ID", "127.0.0.1")]),
            ("WEBAUTHN_RP_ID", vec![("WEBAUTHN_RP_ID", "exa mple.com")]),
            (
                "WEBAUTHN_RP_ORIGINS",
                vec![
                    ("WEBAUTHN_RP_ID", "example.com"),
                    ("WEBAUTHN_RP_ORIGINS", "https://evil.org"),
                ],
            ),
            (
                "WEBAUTHN_RP_ORIGINS",
                vec![("WEBAUTHN_RP_ORIGINS", "ftp://localhost")],
            ),
            ("WEBAUTHN_RP_ORIGINS", vec![("WEBAUTHN_RP_ORIGINS", " , ")]),
        ] {
            assert_eq!(webauthn(&vars).unwrap_err().variable, variable, "{vars:?}");
        }
    }
}
