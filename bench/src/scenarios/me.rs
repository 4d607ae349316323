//! `GET /api/me` against `/healthz` of the same server: what validating a
//! token costs on top of answering at all.

use std::sync::Arc;

use crate::client::{self, Tokens};
use crate::load::{Load, op};
use crate::report::{self, Row};

use super::{Bench, with_cpu};

impl Bench<'_> {
    /// `GET /api/me` against `/healthz` of the same server.
    pub(super) async fn me(&self, sessions: &[Tokens]) -> anyhow::Result<Row> {
        eprintln!("GET /api/me against GET /healthz of the resource API");
        let bearers = Arc::new(
            sessions
                .iter()
                .map(|s| client::bearer(&s.access_token))
                .collect::<anyhow::Result<Vec<_>>>()?,
        );
        let me = {
            let client = Arc::clone(&self.client);
            Load {
                name: "GET /api/me",
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
            }
        };
        let health = {
            let client = Arc::clone(&self.client);
            Load {
                name: "GET /healthz",
                concurrency: self.args.concurrency,
                op: op(move |_| {
                    let client = Arc::clone(&client);
                    async move { client.get_ok(&client.api_health, None).await }
                }),
            }
        };
        let (me_m, health_m) = self.compare(&me, &health).await?;
        self.progress(me.name, &me_m, Some("resource-api"));
        self.progress(health.name, &health_m, Some("resource-api"));
        let ratio = me_m.rate() / health_m.rate();
        Ok(Row {
            scenario: "`GET /api/me`, valid token".to_owned(),
            figure: with_cpu(&me_m, "resource-api"),
            ceiling: format!("`/healthz` {}", with_cpu(&health_m, "resource-api")),
            ratio: report::ratio(ratio),
            goal: "≥ 0.80".to_owned(),
            met: report::verdict(Some(ratio >= 0.8 && me_m.recorder.failures == 0)),
        })
    }
}
