//! The benchmark instrument: every figure beside its own ceiling, measured in
//! one run on one machine.
//!
//! `cargo run --release -p bench` builds the release binaries of both
//! services, starts them against a fresh database, loads them over loopback
//! and prints one Markdown table on stdout (progress goes to stderr). See
//! `BENCHMARKS.md` for the method and the figures.

mod chain_client;
mod client;
mod load;
mod procfs;
mod report;
mod scenarios;
mod stack;

use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "bench",
    about = "Loads auth-server and resource-api over loopback and sets each figure beside its ceiling"
)]
pub struct Args {
    /// Measured time of each side of each comparison.
    #[arg(long, default_value = "8s", value_parser = duration)]
    pub duration: Duration,
    /// Unmeasured load before each comparison, so connections are open and
    /// caches warm when measuring starts.
    #[arg(long, default_value = "1s", value_parser = duration)]
    pub warmup: Duration,
    /// Each comparison alternates figure and ceiling in this many slices per
    /// side, so drift from other work on the machine hits both alike.
    #[arg(long, default_value_t = 4)]
    pub rounds: u32,
    /// Requests in flight for `/api/me`, `/healthz` and the refresh chains
    /// (and their SQL ceiling).
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Logins in flight: enough to keep every password worker busy.
    #[arg(long, default_value_t = 8)]
    pub login_concurrency: usize,
    /// Refresh chains whose p99 is compared at rest and under a login flood.
    #[arg(long, default_value_t = 4)]
    pub chains: usize,
    /// Revocation-propagation trials.
    #[arg(long, default_value_t = 20)]
    pub trials: usize,
    /// Pause between polls of `/api/me` while waiting for a revocation.
    #[arg(long, default_value = "1ms", value_parser = duration)]
    pub poll_interval: Duration,
    /// Comma-separated subset of: me, refresh, login, interference,
    /// revocation, mfa-login, claims (the last two only when named). Memory
    /// is always reported.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "me,refresh,login,interference,revocation"
    )]
    pub scenarios: Vec<Scenario>,
    /// Users enrolled with TOTP for mfa-login (each completes about one
    /// login per 30-second step); by default enough for one login each
    /// over the scenario's warm-up and measured time at the rate their
    /// registration ran.
    #[arg(long)]
    pub mfa_users: Option<usize>,
    /// PostgreSQL server on which a fresh database is created (and dropped).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub database_url: String,
    /// Extra environment for auth-server, `NAME=VALUE` (repeatable). The
    /// ceilings read the same values (pool size, argon2 parameters, workers).
    #[arg(long = "auth-env", value_parser = env_pair)]
    pub auth_env: Vec<(String, String)>,
    /// Extra environment for resource-api, `NAME=VALUE` (repeatable).
    #[arg(long = "api-env", value_parser = env_pair)]
    pub api_env: Vec<(String, String)>,
    /// Where the release binaries are; default `$CARGO_TARGET_DIR/release`
    /// or the workspace's `target/release`.
    #[arg(long)]
    pub bin_dir: Option<std::path::PathBuf>,
    /// Also start the auth server built in this directory (an earlier
    /// commit's `target/release`), on the same database and settings: the
    /// refresh scenario then sets this build's rotations beside its, in the
    /// same run (rate, p99, auth-server and PostgreSQL CPU per rotation, WAL
    /// bytes per rotation, rows and bytes per session).
    #[arg(long)]
    pub baseline_bin_dir: Option<std::path::PathBuf>,
    /// Do not run `cargo build --release -p auth-server -p resource-api`
    /// first.
    #[arg(long)]
    pub no_build: bool,
    /// Keep the services' logs (their directory is printed).
    #[arg(long)]
    pub keep_logs: bool,
    /// Target a running auth server instead of starting one (with
    /// `--api-url`): what needs the processes or their database is skipped.
    #[arg(long, requires = "api_url")]
    pub auth_url: Option<String>,
    /// Target a running resource API (with `--auth-url`).
    #[arg(long, requires = "auth_url")]
    pub api_url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    Me,
    Refresh,
    Login,
    Interference,
    Revocation,
    /// Password + TOTP logins against password-only logins.
    MfaLogin,
    /// `/api/me` with tokens carrying `amr`, `acr`, `auth_time` against the
    /// same tokens without them.
    Claims,
}

fn duration(raw: &str) -> Result<Duration, String> {
    service_kit::duration::parse_duration(raw).map_err(|e| e.to_string())
}

fn env_pair(raw: &str) -> Result<(String, String), String> {
    raw.split_once('=')
        .filter(|(name, _)| !name.is_empty())
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("`{raw}` is not NAME=VALUE"))
}

/// The load may only go to this machine: refuse any other host.
fn loopback_url(raw: &str) -> anyhow::Result<reqwest::Url> {
    let url = reqwest::Url::parse(raw).with_context(|| format!("`{raw}` is not a URL"))?;
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback || url.scheme() != "http" {
        bail!("`{raw}`: the benchmark only loads http:// services on this machine's loopback");
    }
    Ok(url)
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    if args.duration.is_zero() || args.rounds == 0 {
        bail!("--duration and --rounds must be more than zero");
    }
    if args.concurrency == 0 || args.login_concurrency == 0 || args.chains == 0 {
        bail!("--concurrency, --login-concurrency and --chains must be at least 1");
    }
    if args.chains > args.concurrency {
        bail!("--chains must be at most --concurrency (they reuse its sessions)");
    }
    if args.auth_url.is_none() && !args.no_build {
        stack::build_release()?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(async {
        // Installed before anything starts, so Ctrl-C or SIGTERM unwinds
        // through the guards (children killed, database dropped).
        let interrupted = stack::interrupted()?;
        tokio::select! {
            result = scenarios::run(&args) => result,
            signal = interrupted => Err(anyhow::anyhow!("interrupted by {signal}")),
        }
    });
    // Blocking jobs (a SQL call, an argon2 verify) finish within seconds.
    runtime.shutdown_timeout(Duration::from_secs(10));
    let table = outcome?;
    report::print(&table)
}
