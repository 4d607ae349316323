//! Contract § Tokens: signing keys kept in PostgreSQL, rotated, and `auth-server keys`.
//!
//! Signing keys kept in PostgreSQL (`KEY_ENCRYPTION_KEY_FILE`): shared by
//! every replica, rotated on their own without a token refused, rotated by
//! an operator with `auth-server keys`.

use std::collections::HashSet;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

async fn jwks_kids(app: &TestApp) -> HashSet<String> {
    let jwks: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

async fn feed(app: &TestApp, query: &str) -> Value {
    app.client
        .get(app.internal_url(&format!("/internal/revocations{query}")))
        .bearer_auth(auth_server::config::DEVELOPMENT_INTERNAL_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn auth_server(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_auth-server"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("the auth-server binary runs")
}

#[tokio::test]
async fn replicas_share_the_keys_and_an_automatic_rotation_refuses_no_token() {
    let kek = TokenKeyFile::new();
    let a = spawn_app_with(&[
        ("KEY_ENCRYPTION_KEY_FILE", kek.path()),
        ("SIGNING_KEY_ROTATION", "5s"),
        ("SIGNING_KEY_PUBLISH_AHEAD", "2s"),
    ])
    .await;
    let b = a.replica_with(&[]).await;
    assert_eq!(jwks_kids(&a).await, jwks_kids(&b).await);
    assert_eq!(
        a.count("SELECT count(*) AS n FROM signing_keys"),
        1,
        "one first key, not one each"
    );

    let email = a.registered_user().await;
    let first = a.login_body(&email).await.access_token();
    let first_kid = kid(&first);
    assert_eq!(b.get_sessions(&first).await.status(), StatusCode::OK);

    // Tokens from both replicas, until one is signed by the next key: every
    // one of them is in both replicas' JWKS already, the old one is too.
    let started = Instant::now();
    let mut published: Option<Instant> = None;
    let next_kid = loop {
        assert!(started.elapsed() < Duration::from_secs(15), "no rotation");
        for app in [&a, &b] {
            let token = app.login_body(&email).await.access_token();
            for other in [&a, &b] {
                let kids = jwks_kids(other).await;
                assert!(kids.contains(&kid(&token)), "signed by an unpublished key");
                assert!(
                    kids.contains(&first_kid),
                    "the first key's tokens still live"
                );
                if published.is_none() && kids.len() > 1 {
                    published = Some(Instant::now());
                }
            }
            assert_eq!(other_status(app, &first, &a, &b).await, StatusCode::OK);
        }
        let token = b.login_body(&email).await.access_token();
        if kid(&token) != first_kid {
            break kid(&token);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let ahead = published
        .expect("the next key was published before it signed")
        .elapsed();
    eprintln!("the next key was in the JWKS {ahead:?} before a replica signed with it");
    assert!(ahead >= Duration::from_millis(1_000), "{ahead:?}");
    // The token of the first key is still accepted everywhere.
    assert_eq!(a.validate(&first).await.sub, b.validate(&first).await.sub);
    assert_eq!(a.get_sessions(&first).await.status(), StatusCode::OK);
    assert_ne!(next_kid, first_kid);
}

/// `first` as the replica other than `app` sees it.
async fn other_status(app: &TestApp, token: &str, a: &TestApp, b: &TestApp) -> StatusCode {
    let other = if std::ptr::eq(app, a) { b } else { a };
    other.get_sessions(token).await.status()
}

#[tokio::test]
async fn operators_list_and_rotate_keys_and_every_replica_follows_at_once() {
    let kek = TokenKeyFile::new();
    let a = spawn_app_with(&[("KEY_ENCRYPTION_KEY_FILE", kek.path())]).await;
    let b = a.replica_with(&[]).await;
    let email = a.registered_user().await;
    let old = a.login_body(&email).await.access_token();
    let env = [
        ("DATABASE_URL", a.db.url.as_str()),
        ("KEY_ENCRYPTION_KEY_FILE", kek.path()),
        ("SIGNING_KEY_PUBLISH_AHEAD", "10m"),
        ("RUST_LOG", "warn"),
    ];

    // A poll held on B answers as soon as B publishes the next key, so that
    // the APIs fetch it at once (the answer lists the published kids).
    let position = feed(&b, "").await;
    let held = {
        let (client, url) = (
            b.client.clone(),
            b.internal_url(&format!(
                "/internal/revocations?cursor={}&seen={}&wait=10",
                position["cursor"].as_str().unwrap(),
                position["held"]
            )),
        );
        tokio::spawn(async move {
            let answer: Value = client
                .get(url)
                .bearer_auth(auth_server::config::DEVELOPMENT_INTERNAL_TOKEN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (Instant::now(), answer)
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;

    // A next key: published at once, signing ten minutes later.
    let published = Instant::now();
    let rotate = auth_server(&["keys", "rotate"], &env);
    assert!(
        rotate.status.success(),
        "{}",
        String::from_utf8_lossy(&rotate.stderr)
    );
    let again = auth_server(&["keys", "rotate"], &env);
    assert!(!again.status.success(), "one next key at a time");
    let list = String::from_utf8(auth_server(&["keys", "list"], &env).stdout).unwrap();
    assert!(
        list.contains("\tactive\t") && list.contains("\tnext\t"),
        "{list}"
    );
    let waited = Instant::now();
    while jwks_kids(&b).await.len() < 2 {
        assert!(
            waited.elapsed() < Duration::from_secs(2),
            "the replicas reload on NOTIFY"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(kid(&b.login_body(&email).await.access_token()), kid(&old));
    let (answered, answer) = held.await.unwrap();
    assert_eq!(answer["kids"].as_array().unwrap().len(), 2, "{answer}");
    assert!(answered.duration_since(published) < Duration::from_secs(5));

    // A reader answered before the next change, polling after it: answered
    // at once, not at the end of its wait.
    let before_change = feed(&b, "").await;

    // An emergency: a key that signs at once, on every replica.
    let now = auth_server(&["keys", "rotate", "--now"], &env);
    assert!(
        now.status.success(),
        "{}",
        String::from_utf8_lossy(&now.stderr)
    );
    let list = String::from_utf8(auth_server(&["keys", "list"], &env).stdout).unwrap();
    assert_eq!(
        list.lines().count(),
        3,
        "the waiting key was replaced: {list}"
    );
    let rotated = Instant::now();
    for app in [&a, &b] {
        while kid(&app.login_body(&email).await.access_token()) == kid(&old) {
            assert!(
                rotated.elapsed() < Duration::from_secs(2),
                "the replicas reload on NOTIFY"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    eprintln!(
        "`keys rotate --now`: both replicas signed with the new key within {:?}",
        rotated.elapsed()
    );
    let polled = Instant::now();
    let late = feed(
        &b,
        &format!(
            "?cursor={}&seen={}&wait=10",
            before_change["cursor"].as_str().unwrap(),
            before_change["held"]
        ),
    )
    .await;
    assert!(
        polled.elapsed() < Duration::from_secs(2),
        "{:?}",
        polled.elapsed()
    );
    assert_ne!(late["kids"], before_change["kids"]);
    assert_eq!(
        b.get_sessions(&old).await.status(),
        StatusCode::OK,
        "old tokens live on"
    );
    assert!(jwks_kids(&a).await.contains(&kid(&old)));

    let sealed =
        a.count("SELECT count(*) AS n FROM signing_keys WHERE length(sealed_private_key) = 61");
    assert_eq!(sealed, 2, "sealed seeds: version, nonce, 32 bytes, tag");
}

#[tokio::test]
async fn a_replica_with_another_key_encryption_key_refuses_to_start() {
    let kek = TokenKeyFile::new();
    let a = spawn_app_with(&[("KEY_ENCRYPTION_KEY_FILE", kek.path())]).await;
    let other = TokenKeyFile::new();
    let mut vars = a.vars.clone();
    vars.insert(
        "KEY_ENCRYPTION_KEY_FILE".to_owned(),
        other.path().to_owned(),
    );
    let settings = auth_server::config::Settings::from_lookup(|k| vars.get(k).cloned()).unwrap();
    let error = auth_server::startup::Application::build(settings)
        .await
        .err()
        .expect("refused");
    assert!(
        format!("{error:#}").contains("KEY_ENCRYPTION_KEY_FILE"),
        "{error:#}"
    );
}

#[tokio::test]
async fn moving_from_a_key_file_to_the_database_keeps_its_tokens_valid() {
    let dir = std::env::temp_dir().join(format!("keys-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let pem = dir.join("signing.pem");
    auth_server::keys::signing::write_new_key(&pem).unwrap();
    let with_file = spawn_app_with(&[("SIGNING_KEY_FILE", pem.to_str().unwrap())]).await;
    let email = with_file.registered_user().await;
    let old = with_file.login_body(&email).await.access_token();

    // The next release: keys in the database, the file's key retired.
    let kek = TokenKeyFile::new();
    let mut vars = with_file.vars.clone();
    vars.remove("SIGNING_KEY_FILE");
    vars.insert("KEY_ENCRYPTION_KEY_FILE".to_owned(), kek.path().to_owned());
    vars.insert(
        "RETIRED_SIGNING_KEY_FILES".to_owned(),
        pem.to_str().unwrap().to_owned(),
    );
    let settings = auth_server::config::Settings::from_lookup(|k| vars.get(k).cloned()).unwrap();
    let app = auth_server::startup::Application::build(settings)
        .await
        .unwrap();
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());

    let sessions = with_file
        .client
        .get(format!("{address}/auth/sessions"))
        .bearer_auth(&old)
        .send()
        .await
        .unwrap();
    assert_eq!(
        sessions.status(),
        StatusCode::OK,
        "the file key's token is still accepted"
    );
    let jwks: Value = with_file
        .client
        .get(format!("{address}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kids.len(), 2, "{kids:?}");
    assert!(kids.contains(&kid(&old)));
    let login = with_file
        .login_at(&address, &email, PASSWORD, "192.0.2.1", None)
        .await;
    let new: Value = login.json().await.unwrap();
    let new_kid = kid(new["access_token"].as_str().unwrap());
    assert_ne!(new_kid, kid(&old), "the database's key signs");
    assert!(kids.contains(&new_kid));
    std::fs::remove_dir_all(&dir).unwrap();
}
