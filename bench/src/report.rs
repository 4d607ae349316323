//! The one table, in Markdown so that it can be pasted as it is.

use std::io::Write;
use std::time::Duration;

use crate::load::Measured;

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    pub scenario: String,
    pub figure: String,
    pub ceiling: String,
    pub ratio: String,
    pub goal: String,
    pub met: String,
}

/// What was printed above the table: the machine and the run's settings.
pub struct Table {
    pub caption: Vec<String>,
    pub rows: Vec<Row>,
}

/// Whether a goal holds, or why it cannot be judged.
pub fn verdict(holds: Option<bool>) -> String {
    match holds {
        Some(true) => "yes".to_owned(),
        Some(false) => "**no**".to_owned(),
        None => "—".to_owned(),
    }
}

pub fn rate(per_second: f64) -> String {
    let rounded = per_second.round() as u64;
    let digits = rounded.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    if per_second < 100.0 {
        format!("{per_second:.1}/s")
    } else {
        format!("{grouped}/s")
    }
}

pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

/// `1,234/s · p50 1.20 ms · p99 4.50 ms`, with failures when there were any.
pub fn throughput(m: &Measured) -> String {
    let mut text = format!(
        "{} · p50 {} · p99 {}",
        rate(m.rate()),
        ms(m.p50()),
        ms(m.p99())
    );
    if m.recorder.failures > 0 {
        text.push_str(&format!(" · {} failed", m.recorder.failures));
    }
    text
}

pub fn ratio(value: f64) -> String {
    format!("{value:.2}")
}

/// The machine, for the caption: cores and CPU model.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .and_then(|rest| rest.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    format!("{cores} cores ({model})")
}

/// The table on stdout; everything else went to stderr.
pub fn print(table: &Table) -> anyhow::Result<()> {
    let header = ["scenario", "figure", "ceiling", "ratio", "goal", "met?"];
    let cells: Vec<[&str; 6]> = table
        .rows
        .iter()
        .map(|r| {
            [
                r.scenario.as_str(),
                r.figure.as_str(),
                r.ceiling.as_str(),
                r.ratio.as_str(),
                r.goal.as_str(),
                r.met.as_str(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |row: &[&str; 6]| {
        let padded: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        format!("| {} |", padded.join(" | "))
    };
    let mut out = std::io::stdout().lock();
    writeln!(out)?;
    for caption in &table.caption {
        writeln!(out, "{caption}")?;
    }
    writeln!(out)?;
    writeln!(out, "{}", line(&header))?;
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    writeln!(out, "|-{}-|", rule.join("-|-"))?;
    for row in &cells {
        writeln!(out, "{}", line(row))?;
    }
    out.flush()?;
    Ok(())
}
