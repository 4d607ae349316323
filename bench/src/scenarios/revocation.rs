//! Revocation propagation: from an acknowledged logout to the first `401` of
//! `/api/me` for the session's still-unexpired access token.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::{StatusCode, Url};

use crate::client::{self, Client};
use crate::load::Measured;
use crate::report::{self, Row};

use super::{Bench, humanize};

/// Longest a revocation may take before a trial counts as failed.
const REVOCATION_GIVE_UP: Duration = Duration::from_secs(5);

impl Bench<'_> {
    /// From an acknowledged logout to the first `401` of `/api/me` for the
    /// session's still-unexpired access token.
    pub(super) async fn revocation(&self) -> anyhow::Result<Row> {
        eprintln!(
            "revocation propagation, {} trials, polling every {}",
            self.args.trials,
            humanize(self.args.poll_interval)
        );
        let client = &self.client;
        let mut measured = Measured::default();
        for _ in 0..self.args.trials {
            let tokens = client.login(&self.email, &self.password).await?;
            let refresh = tokens
                .refresh_token
                .context("login answered without a refresh token")?;
            let bearer = client::bearer(&tokens.access_token)?;
            client.get_ok(&client.me, Some(&bearer)).await?;
            client.logout(&refresh).await?;
            let acknowledged = Instant::now();
            let outcome = wait_for_401(client, &client.me, &bearer, self.args.poll_interval).await;
            measured
                .recorder
                .record(acknowledged, acknowledged + REVOCATION_GIVE_UP, outcome);
        }
        let m = &measured;
        eprintln!(
            "  revocation: p50 {}, p99 {}, max {}, {} failed",
            report::ms(m.p50()),
            report::ms(m.p99()),
            report::ms(m.quantile(1.0)),
            m.recorder.failures
        );
        Ok(Row {
            scenario: "revocation propagation, logout → first `401`".to_owned(),
            figure: format!(
                "p50 {} · p99 {} ({} trials{})",
                report::ms(m.p50()),
                report::ms(m.p99()),
                self.args.trials,
                if m.recorder.failures > 0 {
                    format!(", {} never revoked", m.recorder.failures)
                } else {
                    String::new()
                }
            ),
            ceiling: "—".to_owned(),
            ratio: "—".to_owned(),
            goal: "p99 < 1 s".to_owned(),
            met: report::verdict(Some(
                m.recorder.failures == 0 && m.p99() < Duration::from_secs(1),
            )),
        })
    }
}

async fn wait_for_401(
    client: &Client,
    me: &Url,
    bearer: &reqwest::header::HeaderValue,
    poll_interval: Duration,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        match client.get(me, Some(bearer)).await? {
            StatusCode::UNAUTHORIZED => return Ok(()),
            StatusCode::OK => {}
            status => bail!("GET /api/me answered {status} while waiting for the revocation"),
        }
        if started.elapsed() > REVOCATION_GIVE_UP {
            bail!(
                "still accepted {}s after the logout",
                REVOCATION_GIVE_UP.as_secs()
            );
        }
        tokio::time::sleep(poll_interval).await;
    }
}
