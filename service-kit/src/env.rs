//! Reading the configuration variables both services share, the same way on
//! both sides: durations, flags, origins, and errors that name the variable.

use std::time::Duration;

use crate::duration::parse_duration;

/// `INTERNAL_API_TOKEN` when unset in development, on both sides of the
/// revocation sync. Public, so refused in production.
pub const DEVELOPMENT_INTERNAL_TOKEN: &str = "development-internal-token-not-for-production";

/// `ALLOWED_ORIGINS` when unset, on both services: the demo app in
/// development (production warns about it).
pub const DEFAULT_ALLOWED_ORIGINS: &str = "http://localhost:3000";

#[derive(Debug, thiserror::Error)]
#[error("configuration: {variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

pub fn invalid(variable: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        message: message.into(),
    }
}

/// Variables through a lookup function, so tests can feed a map. Empty
/// values count as unset.
pub struct Env<F: Fn(&str) -> Option<String>>(pub F);

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub fn get(&self, variable: &'static str) -> Option<String> {
        (self.0)(variable).filter(|v| !v.trim().is_empty())
    }

    pub fn string(&self, variable: &'static str, default: &str) -> String {
        self.get(variable).unwrap_or_else(|| default.to_owned())
    }

    pub fn duration(&self, variable: &'static str, default: &str) -> Result<Duration, ConfigError> {
        let raw = self.string(variable, default);
        parse_duration(&raw).map_err(|e| invalid(variable, e.to_string()))
    }

    pub fn parsed<T: std::str::FromStr>(
        &self,
        variable: &'static str,
        default: T,
        expected: &str,
    ) -> Result<T, ConfigError> {
        match self.get(variable) {
            None => Ok(default),
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|_| invalid(variable, format!("`{raw}` is not {expected}"))),
        }
    }

    pub fn flag(&self, variable: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(variable).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if matches!(v.as_str(), "true" | "1" | "yes" | "on") => Ok(true),
            Some(v) if matches!(v.as_str(), "false" | "0" | "no" | "off") => Ok(false),
            Some(v) => Err(invalid(variable, format!("`{v}` is not true or false"))),
        }
    }

    /// A secret given directly (`NAME`) or, Docker-secrets style, as a file
    /// (`NAME_FILE`, trailing newline ignored) so it need not sit in the
    /// environment. Setting both is an error: which one wins would surprise.
    pub fn secret(
        &self,
        variable: &'static str,
        file_variable: &'static str,
    ) -> Result<Option<String>, ConfigError> {
        match (self.get(variable), self.get(file_variable)) {
            (Some(_), Some(_)) => Err(invalid(
                variable,
                format!("set either {variable} or {file_variable}, not both"),
            )),
            (Some(value), None) => Ok(Some(value)),
            (None, Some(path)) => {
                let value = std::fs::read_to_string(path.trim())
                    .map_err(|e| invalid(file_variable, format!("reading `{path}`: {e}")))?;
                let value = value.trim_end_matches(['\n', '\r']).to_owned();
                if value.is_empty() {
                    return Err(invalid(file_variable, format!("`{path}` is empty")));
                }
                Ok(Some(value))
            }
            (None, None) => Ok(None),
        }
    }

    /// `ALLOWED_ORIGINS`: comma-separated, never `*`.
    pub fn origins(
        &self,
        variable: &'static str,
        default: &str,
    ) -> Result<Vec<String>, ConfigError> {
        parse_origins(&self.string(variable, default)).map_err(|m| invalid(variable, m))
    }

    /// `APP_ENV`: `true` for production.
    pub fn production(&self) -> Result<bool, ConfigError> {
        match self.string("APP_ENV", "development").trim() {
            "development" | "dev" => Ok(false),
            "production" | "prod" => Ok(true),
            other => Err(invalid(
                "APP_ENV",
                format!("`{other}` is neither development nor production"),
            )),
        }
    }
}

/// Origins are compared as exact strings, the way browsers send them:
/// scheme, host and port, no path and no trailing slash.
pub fn parse_origins(raw: &str) -> Result<Vec<String>, String> {
    let mut origins = Vec::new();
    for origin in raw.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        if origin == "*" {
            return Err(
                "`*` is not allowed: credentials are sent, so every origin must be named"
                    .to_owned(),
            );
        }
        let Some((scheme, rest)) = origin.split_once("://") else {
            return Err(format!(
                "`{origin}` is not an origin such as https://app.example.com"
            ));
        };
        if !matches!(scheme, "http" | "https") || rest.is_empty() || rest.contains('/') {
            return Err(format!(
                "`{origin}` is not an origin such as https://app.example.com"
            ));
        }
        origins.push(origin.to_ascii_lowercase());
    }
    Ok(origins)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_come_from_the_variable_or_a_file() {
        let path = std::env::temp_dir().join(format!("env-secret-{}", std::process::id()));
        std::fs::write(&path, "s3cret\n").unwrap();
        let file = path.to_str().unwrap().to_owned();
        let env = Env(move |k: &str| match k {
            "A_FILE" | "B_FILE" => Some(file.clone()),
            "B" | "C" => Some("direct".to_owned()),
            _ => None,
        });
        assert_eq!(
            env.secret("A", "A_FILE").unwrap().as_deref(),
            Some("s3cret")
        );
        assert_eq!(env.secret("B", "B_FILE").unwrap_err().variable, "B");
        assert_eq!(
            env.secret("C", "C_FILE").unwrap().as_deref(),
            Some("direct")
        );
        assert_eq!(env.secret("D", "D_FILE").unwrap(), None);
        let missing = Env(|k: &str| (k == "E_FILE").then(|| "/nonexistent/secret".to_owned()));
        assert_eq!(
            missing.secret("E", "E_FILE").unwrap_err().variable,
            "E_FILE"
        );
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn origins_are_named_never_wildcards() {
        assert_eq!(
            parse_origins(" http://localhost:3000 , https://App.example.com").unwrap(),
            ["http://localhost:3000", "https://app.example.com"]
        );
        for bad in [
            "*",
            "localhost:3000",
            "ftp://x",
            "https://a.example/path",
            "https://",
        ] {
            assert!(parse_origins(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_and_environments() {
        let env = Env(|k: &str| match k {
            "A" => Some("yes".to_owned()),
            "B" => Some("nope".to_owned()),
            "APP_ENV" => Some("staging".to_owned()),
            _ => None,
        });
        assert!(env.flag("A", false).unwrap());
        assert_eq!(env.flag("B", false).unwrap_err().variable, "B");
        assert!(!env.flag("C", false).unwrap());
        assert_eq!(env.production().unwrap_err().variable, "APP_ENV");
    }
}
