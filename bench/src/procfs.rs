//! What `/proc` says about the processes under load: CPU time, to see who
//! had the two cores during a measurement, and resident memory.

use std::collections::BTreeMap;
use std::time::Duration;

/// Linux reports process CPU times in `USER_HZ` ticks, 100 a second on every
/// architecture it runs on.
const TICKS_PER_SECOND: f64 = 100.0;

/// Processes whose CPU time is followed under one name.
#[derive(Debug, Clone)]
pub struct Watched {
    pub name: &'static str,
    pub processes: Processes,
}

#[derive(Debug, Clone)]
pub enum Processes {
    One(u32),
    /// The PostgreSQL backends connected to this database, found by their
    /// process title (`postgres: … user database host(port) state`). They
    /// come and go with pool connections, so they are looked up at every
    /// sample; the server's shared processes (WAL writer, checkpointer)
    /// serve every database on the machine and are left out.
    PostgresBackends {
        database: String,
    },
}

impl Watched {
    pub fn process(name: &'static str, pid: u32) -> Self {
        Self {
            name,
            processes: Processes::One(pid),
        }
    }

    fn pids(&self) -> Vec<u32> {
        match &self.processes {
            Processes::One(pid) => vec![*pid],
            Processes::PostgresBackends { database } => postgres_backends(database),
        }
    }
}

/// CPU ticks so far: the machine's busy and total, and each watched
/// process's (by pid, so processes that start or end between two samples
/// count for what they did in between).
#[derive(Debug, Clone)]
pub struct CpuSample {
    machine_busy: u64,
    machine_total: u64,
    processes: Vec<(&'static str, BTreeMap<u32, u64>)>,
}

impl CpuSample {
    pub fn now(watched: &[Watched]) -> Self {
        let (machine_busy, machine_total) = machine_ticks().unwrap_or((0, 0));
        Self {
            machine_busy,
            machine_total,
            processes: watched
                .iter()
                .map(|w| {
                    let ticks = w
                        .pids()
                        .into_iter()
                        .filter_map(|pid| Some((pid, process_ticks(pid)?)))
                        .collect();
                    (w.name, ticks)
                })
                .collect(),
        }
    }
}

/// Where the CPU went between two samples.
#[derive(Debug, Clone, Default)]
pub struct CpuUse {
    /// Ticks of all cores together.
    pub total: u64,
    pub busy: u64,
    pub processes: Vec<(&'static str, u64)>,
}

impl CpuUse {
    pub fn between(before: &CpuSample, after: &CpuSample) -> Self {
        Self {
            total: after.machine_total.saturating_sub(before.machine_total),
            busy: after.machine_busy.saturating_sub(before.machine_busy),
            processes: before
                .processes
                .iter()
                .zip(&after.processes)
                .map(|((name, a), (_, b))| {
                    // A process that started in between counts from zero; one
                    // that ended in between is lost (pool connections live
                    // for minutes, measurements for seconds).
                    let ticks = b
                        .iter()
                        .map(|(pid, t)| t.saturating_sub(a.get(pid).copied().unwrap_or(0)))
                        .sum();
                    (*name, ticks)
                })
                .collect(),
        }
    }

    pub fn add(&mut self, other: &CpuUse) {
        self.total += other.total;
        self.busy += other.busy;
        if self.processes.is_empty() {
            self.processes = other.processes.clone();
        } else {
            for ((_, mine), (_, theirs)) in self.processes.iter_mut().zip(&other.processes) {
                *mine += theirs;
            }
        }
    }

    /// CPU time a process spent, per completed operation.
    pub fn per_op(&self, name: &str, ops: u64) -> Option<Duration> {
        let ticks = self.processes.iter().find(|(n, _)| *n == name)?.1;
        (ops > 0).then(|| Duration::from_secs_f64(ticks as f64 / TICKS_PER_SECOND / ops as f64))
    }

    /// `bench 40%, auth-server 25%, … other 20%, idle 15%`: shares of all
    /// cores over the measurement; "other" is PostgreSQL and anything else.
    pub fn describe(&self) -> String {
        if self.total == 0 {
            return "no CPU figures (/proc/stat unreadable)".to_owned();
        }
        let share = |ticks: u64| 100.0 * ticks as f64 / self.total as f64;
        let mut parts: Vec<String> = self
            .processes
            .iter()
            .map(|(name, ticks)| format!("{name} {:.0}%", share(*ticks)))
            .collect();
        let watched: u64 = self.processes.iter().map(|(_, t)| t).sum();
        parts.push(format!(
            "other {:.0}%",
            share(self.busy.saturating_sub(watched))
        ));
        parts.push(format!(
            "idle {:.0}%",
            share(self.total.saturating_sub(self.busy))
        ));
        parts.join(", ")
    }
}

/// Busy and total ticks of all cores, from the first line of `/proc/stat`.
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest is inside user).
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

/// Pids of the PostgreSQL backends serving `database` on this machine.
fn postgres_backends(database: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|title| {
                let title = String::from_utf8_lossy(&title);
                title.starts_with("postgres:")
                    && title.split_whitespace().any(|word| word == database)
            })
        })
        .collect()
}

/// User plus system ticks of a process and all its threads.
fn process_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after
    // the last `)`, at field 3 (state); utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Resident memory of a process: now (`VmRSS`) and its peak (`VmHWM`), KiB.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    pub rss_kib: u64,
    pub peak_kib: u64,
}

pub fn memory(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    Some(Memory {
        rss_kib: field("VmRSS:")?,
        peak_kib: field("VmHWM:")?,
    })
}
