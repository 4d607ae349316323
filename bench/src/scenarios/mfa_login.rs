//! Password + TOTP logins (both requests: `POST /auth/login`'s
//! `403 mfa_required`, then `POST /auth/login/mfa`) against password-only
//! logins, with the same concurrency in alternating slices: what the second
//! factor costs beside argon2id.
//!
//! The server accepts a TOTP step at most once per user, and no step older
//! than one it accepted; one step either side of now is accepted. A user can
//! therefore complete about one login per 30-second step, so the bench
//! enrols many users and hands each login the least recently used user with
//! a step left.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail};
use totp_rs::TOTP;

use crate::client;
use crate::load::{Load, op};
use crate::report::{self, Row};

use super::{Bench, cpu_time, locked};

const STEP_SECONDS: u64 = 30;

/// Password-only users, cycled: nothing limits how often one logs in.
const PASSWORD_USERS: usize = 32;

fn current_step() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / STEP_SECONDS)
}

struct TotpUser {
    email: String,
    totp: TOTP,
    /// The latest step the server accepted (or may have) for this user.
    last_step: u64,
}

/// The enrolled users not logging in now, least recently used first.
struct TotpUsers(Mutex<VecDeque<TotpUser>>);

impl TotpUsers {
    /// The least recently used user with a step left, and that step: the
    /// current one, or the next when the current one is spent (the server
    /// takes one step either side; never the previous one, which may have
    /// passed out of its window by the time the code arrives).
    fn take(&self) -> anyhow::Result<(TotpUser, u64)> {
        let now = current_step();
        let mut idle = locked(&self.0);
        for _ in 0..idle.len() {
            let Some(mut user) = idle.pop_front() else {
                break;
            };
            let step = (user.last_step + 1).max(now);
            if step <= now + 1 {
                user.last_step = step;
                return Ok((user, step));
            }
            idle.push_back(user);
        }
        bail!("every TOTP user has spent its steps: raise --mfa-users")
    }

    fn give_back(&self, user: TotpUser) {
        locked(&self.0).push_back(user);
    }
}

impl Bench<'_> {
    /// Password + TOTP logins against password-only logins.
    pub(super) async fn mfa_login(&self) -> anyhow::Result<Row> {
        eprintln!("POST /auth/login + /auth/login/mfa (TOTP) against POST /auth/login alone");
        let run = uuid::Uuid::new_v4().simple().to_string();
        let started = Instant::now();
        let password_users: Arc<Vec<String>> = Arc::new(
            self.register_users(PASSWORD_USERS, |i| {
                format!("bench-pwd-{run}-{i}@example.com")
            })
            .await?,
        );
        // Registration is one argon2id hash, about a login's cost: its rate
        // sizes the TOTP users so that each needs one step at most.
        let rate = PASSWORD_USERS as f64 / started.elapsed().as_secs_f64();
        let wanted = (rate * (self.args.warmup + self.args.duration).as_secs_f64() * 1.25).ceil();
        let count = self
            .args
            .mfa_users
            .unwrap_or(wanted as usize)
            .max(4 * self.args.login_concurrency);
        eprintln!("  enrolling {count} TOTP users (registered {rate:.1}/s)");
        let started = Instant::now();
        let emails = self
            .register_users(count, |i| format!("bench-totp-{run}-{i}@example.com"))
            .await?;
        let users = self.enrol_totp(emails).await?;
        eprintln!(
            "  {} enrolled in {:.1}s",
            users.len(),
            started.elapsed().as_secs_f64()
        );
        let users = Arc::new(TotpUsers(Mutex::new(users.into())));

        let password_only = {
            let client = Arc::clone(&self.client);
            let password = Arc::clone(&self.password);
            let next = Arc::new(AtomicUsize::new(0));
            Load {
                name: "POST /auth/login (password only)",
                concurrency: self.args.login_concurrency,
                op: op(move |_| {
                    let client = Arc::clone(&client);
                    let password = Arc::clone(&password);
                    let users = Arc::clone(&password_users);
                    let i = next.fetch_add(1, Ordering::Relaxed) % users.len();
                    async move { client.login(&users[i], &password).await.map(|_| ()) }
                }),
            }
        };
        let with_totp = {
            let client = Arc::clone(&self.client);
            let password = Arc::clone(&self.password);
            Load {
                name: "POST /auth/login + /auth/login/mfa (password + TOTP)",
                concurrency: self.args.login_concurrency,
                op: op(move |_| {
                    let client = Arc::clone(&client);
                    let password = Arc::clone(&password);
                    let users = Arc::clone(&users);
                    async move {
                        let (user, step) = match users.take() {
                            Ok(taken) => taken,
                            Err(e) => {
                                // A failure, not a spin: the run goes on and
                                // the row says it failed.
                                tokio::time::sleep(Duration::from_millis(100)).await;
                                return Err(e);
                            }
                        };
                        let outcome = async {
                            let mfa_token =
                                client.login_password_step(&user.email, &password).await?;
                            let code = user.totp.generate(step * STEP_SECONDS);
                            client.login_mfa(&mfa_token, &code).await.map(|_| ())
                        }
                        .await;
                        users.give_back(user);
                        outcome
                    }
                }),
            }
        };
        let (totp_m, password_m) = self.compare(&with_totp, &password_only).await?;
        self.progress(with_totp.name, &totp_m, Some("auth-server"));
        self.progress(password_only.name, &password_m, Some("auth-server"));
        let ratio = totp_m.rate() / password_m.rate();
        let extra_cpu = match (
            totp_m.cpu.per_op("auth-server", totp_m.count()),
            password_m.cpu.per_op("auth-server", password_m.count()),
        ) {
            (Some(totp), Some(password)) => {
                let (t, p) = (totp.as_secs_f64(), password.as_secs_f64());
                format!(
                    " · auth-server CPU/login {} against {} ({:+.0} µs)",
                    cpu_time(totp),
                    cpu_time(password),
                    (t - p) * 1e6
                )
            }
            _ => String::new(),
        };
        Ok(Row {
            scenario: "password + TOTP login (two requests) against password-only login".to_owned(),
            figure: format!("{}{extra_cpu}", report::throughput(&totp_m)),
            ceiling: format!("password only: {}", report::throughput(&password_m)),
            ratio: report::ratio(ratio),
            goal: "≥ 0.90".to_owned(),
            met: report::verdict(Some(
                ratio >= 0.9 && totp_m.recorder.failures == 0 && password_m.recorder.failures == 0,
            )),
        })
    }

    /// Registers `n` users named by `email`, with the bench's password,
    /// as many at once as logins are in flight.
    async fn register_users(
        &self,
        n: usize,
        email: impl Fn(usize) -> String,
    ) -> anyhow::Result<Vec<String>> {
        let emails: Arc<Vec<String>> = Arc::new((0..n).map(email).collect());
        for_each(self.args.login_concurrency, n, {
            let client = Arc::clone(&self.client);
            let password = Arc::clone(&self.password);
            let emails = Arc::clone(&emails);
            move |i| {
                let client = Arc::clone(&client);
                let password = Arc::clone(&password);
                let emails = Arc::clone(&emails);
                async move { client.register(&emails[i], &password).await }
            }
        })
        .await?;
        Ok(emails.to_vec())
    }

    /// Logs each user in and enrols it with TOTP (the code of the current
    /// step confirms it, so that step counts as spent).
    async fn enrol_totp(&self, emails: Vec<String>) -> anyhow::Result<Vec<TotpUser>> {
        let n = emails.len();
        let emails = Arc::new(emails);
        let enrolled = Arc::new(Mutex::new(Vec::with_capacity(n)));
        for_each(self.args.login_concurrency, n, {
            let client = Arc::clone(&self.client);
            let password = Arc::clone(&self.password);
            let emails = Arc::clone(&emails);
            let enrolled = Arc::clone(&enrolled);
            move |i| {
                let client = Arc::clone(&client);
                let password = Arc::clone(&password);
                let emails = Arc::clone(&emails);
                let enrolled = Arc::clone(&enrolled);
                async move {
                    let email = emails[i].clone();
                    let tokens = client.login(&email, &password).await?;
                    let bearer = client::bearer(&tokens.access_token)?;
                    let uri = client.enrol_totp(&bearer).await?;
                    let totp = TOTP::from_url(&uri)
                        .map_err(|e| anyhow!("the otpauth URI does not parse: {e:?}"))?;
                    let step = current_step();
                    client
                        .confirm_totp(&bearer, &totp.generate(step * STEP_SECONDS))
                        .await?;
                    locked(&enrolled).push(TotpUser {
                        email,
                        totp,
                        last_step: step,
                    });
                    Ok(())
                }
            }
        })
        .await?;
        let mut users = std::mem::take(&mut *locked(&enrolled));
        // Oldest steps first: those users have the most steps left.
        users.sort_by_key(|u| u.last_step);
        Ok(users)
    }
}

/// Runs `f(0..n)` with at most `concurrency` calls at once; the first error
/// ends it.
async fn for_each<F, Fut>(concurrency: usize, n: usize, f: F) -> anyhow::Result<()>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let f = Arc::new(f);
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (f, next) = (Arc::clone(&f), Arc::clone(&next));
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return anyhow::Ok(());
                }
                f(i).await.with_context(|| format!("setting up user {i}"))?;
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done??;
    }
    Ok(())
}
