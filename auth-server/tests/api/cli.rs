//! Feature: the `auth-server` command line (keys, users, roles, migrations, init).
//!
//! The `auth-server` binary's subcommands, run as an operator would.

use std::process::{Command, Output};

use reqwest::StatusCode;

use crate::helpers::*;

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
async fn keygen_writes_a_private_key_that_the_server_signs_with() {
    let dir = std::env::temp_dir().join(format!("auth-keygen-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("signing.pem");
    let path_str = path.to_str().unwrap();

    let output = auth_server(&["keygen", "--out", path_str], &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let pem = std::fs::read_to_string(&path).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let kid = stderr
        .split("(kid ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap()
        .to_owned();

    // Never overwrites an existing key.
    let again = auth_server(&["keygen", "--out", path_str], &[]);
    assert!(!again.status.success());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), pem);

    let app = spawn_app_with(&[("SIGNING_KEY_FILE", path_str)]).await;
    let jwks: serde_json::Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["kid"], kid.as_str());
    let email = app.registered_user().await;
    let access = app.login_body(&email).await.access_token();
    assert_eq!(
        jsonwebtoken::decode_header(&access).unwrap().kid.as_deref(),
        Some(kid.as_str())
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn production_refuses_development_settings_naming_them() {
    let output = auth_server(&["serve"], &[("APP_ENV", "production")]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("SIGNING_KEY_FILE"));

    let output = auth_server(
        &["serve"],
        &[
            ("APP_ENV", "production"),
            ("SIGNING_KEY_FILE", "/nonexistent.pem"),
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("REFRESH_TOKEN_KEY_FILE"));

    // 32 random bytes, base64url, as `auth-server secret` writes them.
    let token = "q7Hc2LxV-9tRk3Wm_ZpE8yN4bJfU1sQaD6gT0oXiK5w";
    let output = auth_server(
        &["serve"],
        &[
            ("APP_ENV", "production"),
            ("SIGNING_KEY_FILE", "/nonexistent.pem"),
            ("REFRESH_TOKEN_KEY_FILE", "/nonexistent-token-key"),
            ("INTERNAL_API_TOKEN", token),
            ("COOKIE_SECURE", "false"),
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("COOKIE_SECURE"));

    // Mail that would only land in files, or links to a development address.
    let secure = [
        ("APP_ENV", "production"),
        ("SIGNING_KEY_FILE", "/nonexistent.pem"),
        ("REFRESH_TOKEN_KEY_FILE", "/nonexistent-key"),
        ("INTERNAL_API_TOKEN", token),
    ];
    let output = auth_server(&["serve"], &secure);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("SMTP_URL"));
    let mut with_smtp = secure.to_vec();
    with_smtp.push(("SMTP_URL", "smtps://mail.example.com"));
    let output = auth_server(&["serve"], &with_smtp);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("PUBLIC_URL"));

    // Each insecure setting named, with its opt-out where there is one.
    let mut complete = with_smtp.clone();
    complete.push(("PUBLIC_URL", "https://app.example.com"));
    complete.push(("WEBAUTHN_RP_ID", "example.com"));
    let forty = "s".repeat(40);
    for (change, named, opt_out) in [
        (
            ("INTERNAL_API_TOKEN", forty.as_str()),
            "INTERNAL_API_TOKEN",
            "auth-server secret",
        ),
        (
            ("SMTP_URL", "smtp://mail.example.com:25"),
            "SMTP_URL",
            "ALLOW_PLAINTEXT_SMTP=true",
        ),
        (
            ("PUBLIC_URL", "http://app.example.com"),
            "PUBLIC_URL",
            "ALLOW_HTTP_PUBLIC_URL=true",
        ),
        (
            (
                "DATABASE_URL",
                "postgres://auth@db.example.com/auth?sslmode=require",
            ),
            "DATABASE_URL",
            "DATABASE_ALLOW_UNVERIFIED_TLS=true",
        ),
    ] {
        let mut vars: Vec<(&str, &str)> = complete
            .iter()
            .filter(|(k, _)| *k != change.0)
            .copied()
            .collect();
        vars.push(change);
        let output = auth_server(&["serve"], &vars);
        assert_eq!(output.status.code(), Some(2), "{change:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("configuration: {named}:")) && stderr.contains(opt_out),
            "{change:?}: {stderr}"
        );
        assert!(
            !stderr.contains(change.1),
            "the value is not echoed: {stderr}"
        );
    }
    // A libpq variable the rotation's connections cannot honour, named.
    let mut vars = complete.clone();
    vars.push(("PGSSLCRL", "/etc/ssl/crl.pem"));
    let output = auth_server(&["serve"], &vars);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("configuration: PGSSLCRL:"));

    let output = auth_server(&["serve"], &[("ACCESS_TOKEN_TTL", "soon")]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("ACCESS_TOKEN_TTL"));
}

#[tokio::test]
async fn an_operator_grants_and_revokes_roles() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let env = [("DATABASE_URL", app.db.url.as_str())];

    let output = auth_server(
        &["users", "grant-role", &email.to_uppercase(), "admin"],
        &env,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let access = app.login_body(&email).await.access_token();
    assert_eq!(app.validate(&access).await.roles, ["admin"]);

    let output = auth_server(&["users", "revoke-role", &email, "admin"], &env);
    assert!(output.status.success());
    let access = app.login_body(&email).await.access_token();
    assert!(app.validate(&access).await.roles.is_empty());

    let unknown = auth_server(
        &["users", "grant-role", "nobody@example.com", "admin"],
        &env,
    );
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no user"));
    let bad_role = auth_server(&["users", "grant-role", &email, "ad min"], &env);
    assert!(!bad_role.status.success());
    assert_eq!(
        app.post_json(
            "/auth/login",
            &serde_json::json!({"email": email, "password": PASSWORD})
        )
        .await
        .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_migrate_subcommand_applies_migrations() {
    let db = TestDatabase::empty();
    let output = auth_server(&["migrate"], &[("DATABASE_URL", db.url.as_str())]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut vars = std::collections::HashMap::new();
    vars.insert("DATABASE_URL".to_owned(), db.url.clone());
    vars.insert("AUTH_BIND".to_owned(), "127.0.0.1:0".to_owned());
    vars.insert("RUN_MIGRATIONS".to_owned(), "false".to_owned());
    vars.insert("HTTP_WORKERS".to_owned(), "1".to_owned());
    vars.insert("LOGIN_RATE_LIMIT".to_owned(), "0".to_owned());
    let app = spawn_with_vars(db, vars).await;
    app.registered_user().await;
}

#[tokio::test]
async fn init_commands_are_idempotent_and_healthcheck_probes_the_server() {
    let dir = std::env::temp_dir().join(format!("auth-init-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("signing.pem");
    let secret = dir.join("internal-api-token");
    let (key, secret) = (key.to_str().unwrap(), secret.to_str().unwrap());

    // Twice, as the compose init step runs on every `up`: the second leaves
    // the first's files alone. No configuration is needed (APP_ENV=production
    // alone would refuse to serve).
    for _ in 0..2 {
        let output = auth_server(
            &["keygen", "--out", key, "--if-missing"],
            &[("APP_ENV", "production")],
        );
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let output = auth_server(
            &["secret", "--out", secret, "--if-missing"],
            &[("APP_ENV", "production")],
        );
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let token = std::fs::read_to_string(secret).unwrap();
    assert_eq!(token.trim_end().len(), 43, "256 bits, base64url");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(secret).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    assert!(
        !auth_server(&["secret", "--out", secret], &[])
            .status
            .success(),
        "never overwrites"
    );
    std::fs::write(dir.join("junk.pem"), "not a key").unwrap();
    let junk = auth_server(
        &[
            "keygen",
            "--out",
            dir.join("junk.pem").to_str().unwrap(),
            "--if-missing",
        ],
        &[],
    );
    assert!(
        !junk.status.success(),
        "an existing file must hold a valid key"
    );

    // The production settings the compose file uses, with these files.
    let app = spawn_app_with(&[
        ("SIGNING_KEY_FILE", key),
        ("INTERNAL_API_TOKEN_FILE", secret),
    ])
    .await;
    let port = app.address.rsplit(':').next().unwrap().to_owned();
    let bind = format!("0.0.0.0:{port}");
    let url = app.db.url.clone();
    let healthy = tokio::task::spawn_blocking(move || {
        auth_server(
            &["healthcheck"],
            &[("AUTH_BIND", &bind), ("DATABASE_URL", &url)],
        )
    })
    .await
    .unwrap();
    assert!(
        healthy.status.success(),
        "{}",
        String::from_utf8_lossy(&healthy.stderr)
    );
    let closed = auth_server(&["healthcheck"], &[("AUTH_BIND", "127.0.0.1:1")]);
    assert!(!closed.status.success());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn an_operator_lists_disables_enables_and_deletes_users_each_recorded() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let login = app.login_body(&email).await;
    let claims = app.validate(&login.access_token()).await;
    let env = [("DATABASE_URL", app.db.url.as_str())];
    let run = |args: &[&str]| {
        let output = auth_server(args, &env);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };

    let listed = run(&["users", "list", "--query", &email[..8]]);
    assert!(
        listed.contains(&email) && listed.contains(&claims.sub.to_string()),
        "{listed}"
    );

    run(&["users", "disable", &email.to_uppercase()]);
    assert_eq!(
        app.session_revoked_reason(claims.sid).as_deref(),
        Some("user_disabled")
    );
    let refused = app
        .post_json(
            "/auth/login",
            &serde_json::json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_error(refused, StatusCode::FORBIDDEN, "account_disabled").await;
    assert!(run(&["users", "list"]).contains("disabled"));

    run(&["users", "enable", &email]);
    let enabled = app
        .validate(&app.login_body(&email).await.access_token())
        .await;
    run(&["users", "reset-mfa", &email]);
    assert_eq!(
        app.session_revoked_reason(enabled.sid).as_deref(),
        Some("mfa_reset")
    );

    run(&["users", "grant-role", &email, "editor"]);
    let tokens = app.login_body(&email).await;
    let granted = app.validate(&tokens.access_token()).await;
    assert_eq!(granted.roles, ["editor"]);
    assert_eq!(
        granted.rv,
        Some(0),
        "a grant takes nothing from older tokens"
    );
    run(&["users", "revoke-role", &email, "editor"]);
    let revoked = app
        .validate(&app.login_body(&email).await.access_token())
        .await;
    assert!(revoked.roles.is_empty());
    assert_eq!(revoked.rv, Some(1), "a revocation refuses older tokens");

    run(&["users", "delete", &email]);
    let gone = app
        .post_json(
            "/auth/login",
            &serde_json::json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_error(gone, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let unknown = auth_server(&["users", "disable", "nobody@example.com"], &env);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no user"));

    // Each change is an audit event with the CLI (no actor) as its actor.
    let recorded = app.count(&format!(
        "SELECT count(*) AS n FROM audit_events WHERE user_id = '{}' AND actor_id IS NULL \
         AND type IN ('user_disabled', 'user_enabled', 'mfa_reset', 'roles_changed', 'user_deleted')",
        claims.sub
    ));
    assert_eq!(recorded, 6);
}

#[tokio::test]
async fn the_cli_names_users_by_a_bare_address_only() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let env = [("DATABASE_URL", app.db.url.as_str())];
    let named = format!("Someone <{email}>");
    for (args, why) in [
        (
            vec!["users", "disable", named.as_str()],
            "must be a bare address",
        ),
        (
            vec!["users", "grant-role", "ceo<attacker@evil.example>", "admin"],
            "must be a bare address",
        ),
        (vec!["users", "delete", "nobody"], "is not an email address"),
    ] {
        let output = auth_server(&args, &env);
        assert_eq!(output.status.code(), Some(2), "{args:?}: a usage error");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(why), "{args:?}: {stderr}");
    }
    // Nothing was done to the user the display name wrapped.
    app.login_body(&email).await;
    let changed = app.count(
        "SELECT count(*) AS n FROM audit_events WHERE type IN ('user_disabled', 'roles_changed', 'user_deleted')",
    );
    assert_eq!(changed, 0);
}
