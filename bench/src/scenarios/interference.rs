//! Refresh p99 of a few chains while logins saturate the password pool,
//! against the same chains' p99 at rest.

use std::time::Duration;

use crate::load::{self, Measured};
use crate::report::{self, Row};

use super::{Bench, Chains};

/// How long the login flood runs before refreshes are measured under it.
const FLOOD_SETTLE: Duration = Duration::from_millis(500);

impl Bench<'_> {
    /// Refresh p99 of a few chains while logins saturate the password pool,
    /// against the same chains' p99 at rest, in alternating slices.
    pub(super) async fn interference(&self, chains: &Chains) -> anyhow::Result<Row> {
        eprintln!(
            "refresh p99 of {} chains under a login flood against at rest",
            self.args.chains
        );
        let refresh = self.refresh_load(chains, self.args.chains)?;
        let flood = self.login_load();
        load::run(&refresh, self.args.warmup, &self.watched).await?;
        let slice = self.args.duration / self.args.rounds;
        let (mut rest, mut loaded, mut logins) = Default::default();
        for _ in 0..self.args.rounds {
            let at_rest = load::run(&refresh, slice, &self.watched).await?;
            let (under, flooding) =
                load::under(&refresh, &flood, FLOOD_SETTLE, slice, &self.watched).await?;
            load::accumulate(&mut rest, &at_rest);
            load::accumulate(&mut loaded, &under);
            load::accumulate(&mut logins, &flooding);
        }
        let logins: Measured = logins;
        self.progress("refresh at rest", &rest, Some("auth-server"));
        self.progress("refresh under the flood", &loaded, Some("auth-server"));
        self.progress("the login flood", &logins, None);
        let ratio = loaded.p99().as_secs_f64() / rest.p99().as_secs_f64();
        Ok(Row {
            scenario: format!(
                "refresh p99 while logins saturate the password pool ({} chains)",
                self.args.chains
            ),
            figure: format!(
                "p99 {} (p50 {}) under {} logins",
                report::ms(loaded.p99()),
                report::ms(loaded.p50()),
                report::rate(logins.rate())
            ),
            ceiling: format!(
                "at rest: p99 {} (p50 {})",
                report::ms(rest.p99()),
                report::ms(rest.p50())
            ),
            ratio: report::ratio(ratio),
            goal: "≤ 2.00".to_owned(),
            met: report::verdict(Some(
                ratio <= 2.0 && loaded.recorder.failures == 0 && rest.recorder.failures == 0,
            )),
        })
    }
}
