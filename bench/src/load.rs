//! A closed-loop load generator: a fixed number of workers, each sending its
//! next request as soon as the last one answered, for a fixed time, with
//! every latency in an HDR histogram.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::task::JoinSet;

use crate::procfs::{CpuSample, CpuUse, Watched};

pub type OpFuture = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// One request (or one ceiling operation) of worker `n`; an error counts as
/// a failure and its latency is left out.
pub type Op = Arc<dyn Fn(usize) -> OpFuture + Send + Sync>;

pub fn op<F, Fut>(f: F) -> Op
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    Arc::new(move |worker| Box::pin(f(worker)))
}

/// A load: what to send, and how many at once.
#[derive(Clone)]
pub struct Load {
    pub name: &'static str,
    pub concurrency: usize,
    pub op: Op,
}

/// Latencies of successful operations, in microseconds, 1 µs to 2 min.
fn histogram() -> Histogram<u64> {
    match Histogram::new_with_bounds(1, 120_000_000, 3) {
        Ok(h) => h,
        // The bounds are constants that the crate accepts.
        Err(_) => unreachable!("valid histogram bounds"),
    }
}

#[derive(Debug, Clone)]
pub struct Recorder {
    pub latencies: Histogram<u64>,
    /// Successes that completed within the measured window.
    pub in_window: u64,
    pub failures: u64,
    pub first_failure: Option<String>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            latencies: histogram(),
            in_window: 0,
            failures: 0,
            first_failure: None,
        }
    }
}

impl Recorder {
    pub fn record(&mut self, started: Instant, deadline: Instant, outcome: anyhow::Result<()>) {
        let now = Instant::now();
        match outcome {
            Ok(()) => {
                let micros = now.duration_since(started).as_micros();
                self.latencies
                    .saturating_record(u64::try_from(micros).unwrap_or(u64::MAX).max(1));
                if now <= deadline {
                    self.in_window += 1;
                }
            }
            Err(e) => {
                self.failures += 1;
                if self.first_failure.is_none() {
                    self.first_failure = Some(format!("{e:#}"));
                }
            }
        }
    }

    pub fn merge(&mut self, other: &Recorder) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.latencies.add(&other.latencies);
        self.in_window += other.in_window;
        self.failures += other.failures;
        if self.first_failure.is_none() {
            self.first_failure.clone_from(&other.first_failure);
        }
    }
}

/// What one load did over its measured time.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    pub recorder: Recorder,
    /// Sum of the measured windows.
    pub window: Duration,
    pub cpu: CpuUse,
}

impl Measured {
    pub fn rate(&self) -> f64 {
        let secs = self.window.as_secs_f64();
        if secs > 0.0 {
            self.recorder.in_window as f64 / secs
        } else {
            0.0
        }
    }

    pub fn quantile(&self, q: f64) -> Duration {
        Duration::from_micros(self.recorder.latencies.value_at_quantile(q))
    }

    pub fn p50(&self) -> Duration {
        self.quantile(0.50)
    }

    pub fn p99(&self) -> Duration {
        self.quantile(0.99)
    }

    pub fn count(&self) -> u64 {
        self.recorder.latencies.len()
    }

    fn absorb(&mut self, other: &Measured) {
        self.recorder.merge(&other.recorder);
        self.window += other.window;
        self.cpu.add(&other.cpu);
    }
}

/// Runs `load` for `window`, then waits for the requests still in flight.
pub async fn run(load: &Load, window: Duration, watched: &[Watched]) -> anyhow::Result<Measured> {
    let before = CpuSample::now(watched);
    let started = Instant::now();
    let deadline = started + window;
    let mut workers = JoinSet::new();
    for worker in 0..load.concurrency {
        let op = Arc::clone(&load.op);
        workers.spawn(async move {
            let mut recorder = Recorder::default();
            while Instant::now() < deadline {
                let sent = Instant::now();
                let outcome = op(worker).await;
                recorder.record(sent, deadline, outcome);
            }
            recorder
        });
    }
    let mut recorder = Recorder::default();
    while let Some(done) = workers.join_next().await {
        recorder.merge(&done?);
    }
    // CPU is sampled at the deadline's side of the stragglers: close enough
    // for shares, and the window is what rates are computed over.
    let after = CpuSample::now(watched);
    Ok(Measured {
        recorder,
        window,
        cpu: CpuUse::between(&before, &after),
    })
}

/// A figure and its ceiling, measured in alternating slices (A B B A …) after
/// a warm-up of each, so that whatever else the machine does hits both alike.
pub async fn compare(
    figure: &Load,
    ceiling: &Load,
    warmup: Duration,
    duration: Duration,
    rounds: u32,
    watched: &[Watched],
) -> anyhow::Result<(Measured, Measured)> {
    let mut measured = compare_all(&[figure, ceiling], warmup, duration, rounds, watched).await?;
    let b = measured.pop().unwrap_or_default();
    let a = measured.pop().unwrap_or_default();
    Ok((a, b))
}

/// Several loads measured in alternating slices (A B C, C B A, …) after a
/// warm-up of each; one `Measured` per load, in order.
pub async fn compare_all(
    loads: &[&Load],
    warmup: Duration,
    duration: Duration,
    rounds: u32,
    watched: &[Watched],
) -> anyhow::Result<Vec<Measured>> {
    if !warmup.is_zero() {
        for load in loads {
            run(load, warmup, watched).await?;
        }
    }
    let slice = duration / rounds.max(1);
    let mut measured = vec![Measured::default(); loads.len()];
    for round in 0..rounds.max(1) {
        let mut order: Vec<usize> = (0..loads.len()).collect();
        if !round.is_multiple_of(2) {
            order.reverse();
        }
        for i in order {
            measured[i].absorb(&run(loads[i], slice, watched).await?);
        }
    }
    Ok(measured)
}

/// Runs `background` for as long as `foreground` is measured (started a
/// moment before, so it is at full strength throughout).
pub async fn under(
    foreground: &Load,
    background: &Load,
    settle: Duration,
    window: Duration,
    watched: &[Watched],
) -> anyhow::Result<(Measured, Measured)> {
    let background_run = {
        let background = background.clone();
        let watched = watched.to_vec();
        tokio::spawn(async move { run(&background, settle + window, &watched).await })
    };
    tokio::time::sleep(settle).await;
    let measured = run(foreground, window, watched).await;
    let background = background_run.await??;
    Ok((measured?, background))
}

/// Absorbs one measurement into a running total: for callers that loop.
pub fn accumulate(total: &mut Measured, part: &Measured) {
    total.absorb(part);
}
