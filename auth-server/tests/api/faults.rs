//! Contract § Tokens and § Auth server: PostgreSQL down under load is `503`, no lost rotation.
//!
//! PostgreSQL goes away under load and comes back: the auth server answers
//! `503` promptly meanwhile (never a `500`, never a hang), recovers by
//! itself, and loses no rotation it acknowledged. A refresh whose rotation
//! committed but whose answer was lost to the outage is retried with the
//! same token, and the grace sends the successor again: every `200` of a
//! refresh carries a refresh token. Runs a temporary cluster of
//! its own (initdb, pg_ctl) so it can stop it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use tokio::sync::Mutex;

use crate::helpers::*;

/// A throwaway PostgreSQL cluster on a free port.
struct TempCluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl TempCluster {
    fn start() -> Self {
        let versions = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL server binaries in /usr/lib/postgresql");
        let newest = versions
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .max()
            .unwrap();
        let bin = PathBuf::from(format!("/usr/lib/postgresql/{newest}/bin"));
        let dir = std::env::temp_dir().join(format!("faults-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        // initdb refuses to run as root: run the cluster as `postgres` then.
        let as_postgres = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout.starts_with(b"0\n"))
            .unwrap_or(false);
        if as_postgres {
            assert!(
                Command::new("chown")
                    .args(["postgres:postgres", dir.to_str().unwrap()])
                    .status()
                    .unwrap()
                    .success()
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = Self {
            bin,
            dir,
            port,
            as_postgres,
        };
        cluster.run(
            "initdb",
            &[
                "-D",
                &cluster.data(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        cluster.pg_ctl_start();
        cluster
    }

    fn data(&self) -> String {
        self.dir.join("data").to_str().unwrap().to_owned()
    }

    fn run(&self, program: &str, args: &[&str]) {
        let program = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        let output = command.args(args).output().unwrap();
        assert!(
            output.status.success(),
            "{program:?} {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn pg_ctl_start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log").to_str().unwrap().to_owned();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "start",
            ],
        );
    }

    fn stop(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for TempCluster {
    fn drop(&mut self) {
        let _ = Command::new(self.bin.join("pg_ctl"))
            .args(["-D", &self.data(), "-m", "immediate", "stop"])
            .output();
        if self.as_postgres {
            let _ = Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"))
                .args(["-D", &self.data(), "-m", "immediate", "stop"])
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[derive(Default)]
struct Tally {
    statuses: Vec<StatusCode>,
    /// Refreshes answered `200` without a refresh token.
    access_only: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_under_load_is_503_then_recovers_losing_nothing() {
    if !Path::new("/usr/lib/postgresql").exists() {
        panic!(
            "the fault test needs PostgreSQL's server binaries (initdb, pg_ctl): install the postgresql package"
        );
    }
    let cluster = tokio::task::spawn_blocking(TempCluster::start)
        .await
        .unwrap();
    let db = TestDatabase::create_on(&cluster.url("postgres"));
    let url = db.url.clone();
    let mut vars = std::collections::HashMap::new();
    for (k, v) in [
        ("DATABASE_URL", url.as_str()),
        ("AUTH_BIND", "127.0.0.1:0"),
        ("HTTP_WORKERS", "2"),
        ("PASSWORD_HASH_WORKERS", "2"),
        ("DATABASE_POOL_SIZE", "8"),
        ("DATABASE_TIMEOUT", "1s"),
        ("DATABASE_LOCK_TIMEOUT", "1s"),
        ("LOGIN_RATE_LIMIT", "0"),
        ("LOGIN_ACCOUNT_RATE_LIMIT", "0"),
        ("REFRESH_RATE_LIMIT", "0"),
        ("REFRESH_REUSE_GRACE", "10s"),
    ] {
        vars.insert(k.to_owned(), v.to_owned());
    }
    let app = Arc::new(spawn_with_vars(db, vars).await);

    // Clients: four refreshing in chains, one logging in over and over.
    let mut chains = Vec::new();
    for _ in 0..4 {
        let email = app.registered_user().await;
        chains.push(Arc::new(Mutex::new(
            app.login_body(&email).await.refresh_token().unwrap(),
        )));
    }
    let login_email = app.registered_user().await;
    let running = Arc::new(AtomicBool::new(true));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut workers = Vec::new();
    for chain in &chains {
        let (app, chain, running, tally) =
            (app.clone(), chain.clone(), running.clone(), tally.clone());
        workers.push(tokio::spawn(async move {
            while running.load(Ordering::Relaxed) {
                let current = chain.lock().await.clone();
                // Anything but a 200 leaves the client with the token it
                // holds, which it presents again: an answer lost after the
                // rotation committed is sent again under the grace.
                let answer = app.refresh_body(&current).await;
                let mut tally = tally.lock().await;
                match answer.refresh_token() {
                    // Acknowledged: the client moves on to the successor.
                    Some(next) => *chain.lock().await = next,
                    None if answer.status == StatusCode::OK => tally.access_only += 1,
                    None => {}
                }
                tally.statuses.push(answer.status);
                drop(tally);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    {
        let (app, running, tally) = (app.clone(), running.clone(), tally.clone());
        workers.push(tokio::spawn(async move {
            while running.load(Ordering::Relaxed) {
                let answer = app
                    .post_json(
                        "/auth/login",
                        &json!({ "email": login_email, "password": PASSWORD }),
                    )
                    .await;
                tally.lock().await.statuses.push(answer.status());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }));
    }

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let cluster = Arc::new(cluster);
    let stopping = cluster.clone();
    tokio::task::spawn_blocking(move || stopping.stop())
        .await
        .unwrap();
    let outage = Instant::now();

    // During the outage: prompt 503s, readiness says so.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let started = Instant::now();
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "prompt, not a hang: {:?}",
        started.elapsed()
    );

    let starting = cluster.clone();
    tokio::task::spawn_blocking(move || starting.pg_ctl_start())
        .await
        .unwrap();
    let down_for = outage.elapsed();
    let mut recovered = false;
    for _ in 0..150 {
        if app
            .client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            == StatusCode::OK
        {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "readiness recovers by itself");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    running.store(false, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }

    let access_only = tally.lock().await.access_only;
    assert_eq!(
        access_only, 0,
        "every successful refresh carries a refresh token"
    );
    let statuses = std::mem::take(&mut tally.lock().await.statuses);
    let count = |s: StatusCode| statuses.iter().filter(|x| **x == s).count();
    eprintln!(
        "database down {down_for:?}: {} requests, {} ok, {} unavailable, {} other",
        statuses.len(),
        count(StatusCode::OK),
        count(StatusCode::SERVICE_UNAVAILABLE),
        statuses.len() - count(StatusCode::OK) - count(StatusCode::SERVICE_UNAVAILABLE)
    );
    assert!(
        count(StatusCode::SERVICE_UNAVAILABLE) > 0,
        "the outage was seen"
    );
    for status in &statuses {
        assert!(
            *status == StatusCode::OK || *status == StatusCode::SERVICE_UNAVAILABLE,
            "only 200 or 503, got {status}"
        );
    }

    // Every acknowledged rotation survived: each chain's last token is live
    // and rotates again; no session has more than one live token.
    for chain in &chains {
        let token = chain.lock().await.clone();
        let parsed = auth_server::tokens::refresh::V2Token::parse(&token).unwrap();
        let live = app.count(&format!(
            "SELECT count(*) AS n FROM sessions WHERE id = '{}' AND generation = {}",
            parsed.session_id(),
            parsed.generation()
        ));
        assert_eq!(live, 1, "the last acknowledged token is the live one");
        let again = app.refresh_body(&token).await;
        assert_eq!(again.status, StatusCode::OK);
        assert!(again.refresh_token().is_some());
    }
    // One row per session, one live generation in it: no session has
    // more than one live token, and none lost its own.
    assert_eq!(
        app.count(
            "SELECT count(*) AS n FROM sessions WHERE revoked_at IS NULL AND \
             (generation < 1 OR token_secret IS NULL)"
        ),
        0
    );
    assert_eq!(app.count("SELECT count(*) AS n FROM refresh_tokens"), 0);
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK,
        "still serving"
    );
}
