//! What `amr`, `acr` and `auth_time` cost `GET /api/me`: tokens that carry
//! them against otherwise identical tokens without them (as tokens were
//! before second factors), and, to show the noise, two sets of identical
//! kind against each other. All three in alternating slices.
//!
//! The bench signs the tokens itself, with the auth server's own key file
//! and signer (`SigningKey::sign`, the same header, `kid` and bytes the
//! server makes), from the claims of the live sessions' tokens: the same
//! `iss`, `aud`, `sub`, `sid`, `exp` and roles, so the resource API checks
//! them as it checks any token of those sessions. Each token set is measured
//! twice: the same token on every request of a worker (the resource API
//! verifies it once and then finds it in its cache of verified tokens, as a
//! client using its token for minutes does), and a new token on every
//! request (each one verified: signature and claims parsed).

use std::sync::Arc;

use anyhow::{Context, anyhow};
use auth_server::keys::signing::SigningKey;
use reqwest::header::HeaderValue;
use shared_claims::assurance::{Aal, method};
use shared_claims::{AccessClaims, ValidationRules, Validator};

use crate::client::{self, Tokens};
use crate::load::{self, Load, Measured, op};
use crate::report::{self, Row};

use super::{Bench, with_cpu};

/// Which claims a token carries.
#[derive(Clone, Copy)]
enum Kind {
    /// `amr`, `acr` and `auth_time` as a password + TOTP login sets them.
    WithAssurance,
    /// None of the three: a token from before second factors.
    Without,
}

fn claims_of(issued: &AccessClaims, kind: Kind) -> AccessClaims {
    let mut claims = issued.clone();
    claims.jti = uuid::Uuid::new_v4();
    match kind {
        Kind::WithAssurance => {
            claims.amr = [method::PASSWORD, method::OTP, method::MULTI_FACTOR]
                .map(str::to_owned)
                .to_vec();
            claims.acr = Some(Aal::of_methods(&claims.amr).as_str().to_owned());
            claims.auth_time = Some(issued.iat);
        }
        Kind::Without => {
            claims.amr = Vec::new();
            claims.acr = None;
            claims.auth_time = None;
        }
    }
    claims
}

impl Bench<'_> {
    /// `/api/me` with the three claims against without them, and a control.
    pub(super) async fn claims(&self, sessions: &[Tokens]) -> anyhow::Result<Vec<Row>> {
        eprintln!("GET /api/me: tokens with amr/acr/auth_time against the same without them");
        let key_file = self
            .signing_key_file
            .as_ref()
            .context("signs with the stack's key: not against --auth-url")?;
        let key = Arc::new(SigningKey::from_pem_file(key_file)?);
        let t = &self.settings.tokens;
        let validator = Validator::new(ValidationRules {
            issuer: t.issuer.clone(),
            audience: t.audience.clone(),
            leeway: t.leeway,
        });
        let issued = Arc::new(
            sessions
                .iter()
                .map(|s| {
                    validator
                        .validate(&s.access_token, key.verification_keys())
                        .map_err(|e| anyhow!("a live session's access token: {e}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?,
        );
        let sign = |kind: Kind| -> anyhow::Result<Vec<String>> {
            issued
                .iter()
                .map(|c| key.sign(&claims_of(c, kind)))
                .collect()
        };
        let with = sign(Kind::WithAssurance)?;
        let without = sign(Kind::Without)?;
        let control = sign(Kind::WithAssurance)?;
        eprintln!(
            "  token length: {} bytes with the three claims, {} without",
            with.first().map_or(0, String::len),
            without.first().map_or(0, String::len)
        );

        let mut rows = Vec::new();
        let same = [
            self.me_with_tokens("with the claims", with)?,
            self.me_with_tokens("without them", without)?,
            self.me_with_tokens("with the claims (control)", control)?,
        ];
        let measured = self.compare_three(&same).await?;
        rows.extend(self.claim_rows("same token on every request (cached)", &same, &measured));

        let fresh = [
            self.me_signing("with the claims", &key, &issued, Kind::WithAssurance),
            self.me_signing("without them", &key, &issued, Kind::Without),
            self.me_signing(
                "with the claims (control)",
                &key,
                &issued,
                Kind::WithAssurance,
            ),
        ];
        let measured = self.compare_three(&fresh).await?;
        rows.extend(self.claim_rows("a new token on every request (verified)", &fresh, &measured));
        Ok(rows)
    }

    async fn compare_three(&self, loads: &[Load; 3]) -> anyhow::Result<Vec<Measured>> {
        let refs: Vec<&Load> = loads.iter().collect();
        let measured = load::compare_all(
            &refs,
            self.args.warmup,
            self.args.duration,
            self.args.rounds,
            &self.watched,
        )
        .await?;
        for (load, m) in loads.iter().zip(&measured) {
            self.progress(load.name, m, Some("resource-api"));
        }
        Ok(measured)
    }

    /// Each worker presents its own token of `tokens` on every request.
    fn me_with_tokens(&self, name: &'static str, tokens: Vec<String>) -> anyhow::Result<Load> {
        let bearers: Arc<Vec<HeaderValue>> = Arc::new(
            tokens
                .iter()
                .map(|t| client::bearer(t))
                .collect::<anyhow::Result<_>>()?,
        );
        let client = Arc::clone(&self.client);
        Ok(Load {
            name,
            concurrency: self.args.concurrency,
            op: op(move |worker| {
                let client = Arc::clone(&client);
                let bearers = Arc::clone(&bearers);
                async move {
                    client
                        .get_ok(&client.me, Some(&bearers[worker % bearers.len()]))
                        .await
                }
            }),
        })
    }

    /// Each request signs a new token of its worker's session (a new `jti`):
    /// the same signing cost on the bench's side for every kind.
    fn me_signing(
        &self,
        name: &'static str,
        key: &Arc<SigningKey>,
        issued: &Arc<Vec<AccessClaims>>,
        kind: Kind,
    ) -> Load {
        let client = Arc::clone(&self.client);
        let key = Arc::clone(key);
        let issued = Arc::clone(issued);
        Load {
            name,
            concurrency: self.args.concurrency,
            op: op(move |worker| {
                let client = Arc::clone(&client);
                let token = key
                    .sign(&claims_of(&issued[worker % issued.len()], kind))
                    .and_then(|t| client::bearer(&t));
                async move { client.get_ok(&client.me, Some(&token?)).await }
            }),
        }
    }

    /// The comparison and its control, as rows. Judged on the resource
    /// API's CPU per request, which the load generator's share of the two
    /// cores does not blur; the rates' ratio is shown beside it.
    fn claim_rows(&self, how: &str, loads: &[Load; 3], m: &[Measured]) -> Vec<Row> {
        let [with, without, control] = [&m[0], &m[1], &m[2]];
        let cpu = |m: &Measured| {
            m.cpu
                .per_op("resource-api", m.count())
                .map(|d| d.as_secs_f64())
        };
        let rate = with.rate() / without.rate();
        let rate_noise = control.rate() / with.rate();
        let cpu_ratio = cpu(with).zip(cpu(without)).map(|(a, b)| a / b);
        let cpu_noise = cpu(control).zip(cpu(with)).map(|(a, b)| a / b);
        let failures =
            with.recorder.failures + without.recorder.failures + control.recorder.failures;
        // Within noise: no further from 1 than the control is, give or take
        // 3 points.
        let within = cpu_ratio
            .zip(cpu_noise)
            .map(|(r, n)| (1.0 - r).abs() <= (1.0 - n).abs() + 0.03);
        let both = |rate: f64, cpu: Option<f64>| match cpu {
            Some(cpu) => format!("{} (CPU/req {})", report::ratio(rate), report::ratio(cpu)),
            None => report::ratio(rate),
        };
        vec![
            Row {
                scenario: format!("`GET /api/me`, `amr`/`acr`/`auth_time` or not: {how}"),
                figure: format!("{}: {}", loads[0].name, with_cpu(with, "resource-api")),
                ceiling: format!("{}: {}", loads[1].name, with_cpu(without, "resource-api")),
                ratio: both(rate, cpu_ratio),
                goal: "CPU/req within noise (control)".to_owned(),
                met: report::verdict(within.map(|w| w && failures == 0)),
            },
            Row {
                scenario: format!("`GET /api/me`, control, identical kinds: {how}"),
                figure: format!("{}: {}", loads[2].name, with_cpu(control, "resource-api")),
                ceiling: format!("{}: {}", loads[0].name, with_cpu(with, "resource-api")),
                ratio: both(rate_noise, cpu_noise),
                goal: "noise".to_owned(),
                met: report::verdict(None),
            },
        ]
    }
}
