//! Peak resident memory of the services the bench started.

use crate::procfs;
use crate::report::{self, Row};
use crate::stack::Stack;

pub(super) fn of(stack: &Stack) -> Vec<(&'static str, Option<procfs::Memory>)> {
    [&stack.auth, &stack.api]
        .into_iter()
        .map(|s| (s.name, procfs::memory(s.pid())))
        .collect()
}

pub(super) fn rows(
    stack: Option<&Stack>,
    at_start: Option<&Vec<(&'static str, Option<procfs::Memory>)>>,
) -> Vec<Row> {
    let mib = |kib: u64| format!("{:.1} MiB", kib as f64 / 1024.0);
    let Some(stack) = stack else {
        return vec![Row {
            scenario: "peak resident memory".to_owned(),
            figure: "skipped: the services are not our processes".to_owned(),
            ceiling: "—".to_owned(),
            ratio: "—".to_owned(),
            goal: "—".to_owned(),
            met: report::verdict(None),
        }];
    };
    of(stack)
        .into_iter()
        .map(|(name, now)| {
            let start = at_start
                .and_then(|all| all.iter().find(|(n, _)| *n == name))
                .and_then(|(_, m)| *m);
            Row {
                scenario: format!("peak resident memory, {name}"),
                figure: now.map_or("unreadable".to_owned(), |m| {
                    format!("{} (VmHWM)", mib(m.peak_kib))
                }),
                ceiling: start.map_or("—".to_owned(), |m| {
                    format!("after start-up: {} (VmRSS)", mib(m.rss_kib))
                }),
                ratio: "—".to_owned(),
                goal: "report".to_owned(),
                met: report::verdict(None),
            }
        })
        .collect()
}
