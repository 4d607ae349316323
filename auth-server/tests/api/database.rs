//! Feature: the schema (migrations, indexes, the janitor) and libpq's TLS variables.

use diesel_migrations::MigrationHarness;

use crate::helpers::*;

#[tokio::test]
async fn migrations_revert_and_reapply_cleanly() {
    let app = spawn_app().await;
    let mut conn = app.conn();
    conn.revert_all_migrations(auth_server::db::MIGRATIONS)
        .unwrap();
    assert_eq!(app.count("SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = 'public' AND table_name IN ('users','sessions','refresh_tokens')"), 0);
    conn.run_pending_migrations(auth_server::db::MIGRATIONS)
        .unwrap();
    assert_eq!(app.count("SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = 'public' AND table_name IN ('users','sessions','refresh_tokens')"), 3);
}

#[tokio::test]
async fn every_query_has_an_index() {
    let app = spawn_app().await;
    for index in [
        "users_email_key",
        "refresh_tokens_token_hash_key",
        "refresh_tokens_session_id_idx",
        "refresh_tokens_expires_at_idx",
        "sessions_user_live_idx",
        "sessions_revoked_at_idx",
        "sessions_expires_at_idx",
        "failure_buckets_pkey",
        "failure_buckets_last_failure_at_idx",
        "known_login_clients_pkey",
        "known_login_clients_last_success_at_idx",
        "sessions_revocation_feed_idx",
        "feed_events_feed_idx",
        "feed_events_at_idx",
        "users_admins_idx",
    ] {
        assert_eq!(
            app.count(&format!(
                "SELECT count(*) AS n FROM pg_indexes WHERE indexname = '{index}'"
            )),
            1,
            "{index}"
        );
    }
}

/// The feed's statements, as `db::revocations` runs them, can be served by
/// its index in its order (asked with the other plans off: a small test
/// table would otherwise be scanned whole, as it should be).
#[tokio::test]
async fn the_feed_reads_through_its_index() {
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Plan {
        #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
        line: String,
    }
    let app = spawn_app().await;
    let mut conn = app.conn();
    conn.batch_execute("SET enable_seqscan = off; SET enable_bitmapscan = off")
        .unwrap();
    // As `db::revocations` reads it: revoked sessions and `feed_events`,
    // merged in one order.
    let feed = "(SELECT id AS key, id AS session_id, NULL::uuid AS user_id, \
         NULL::bigint AS roles_version, revoked_at, revoked_xid FROM sessions \
         UNION ALL \
         SELECT id, session_id, user_id, roles_version, at, xid FROM feed_events) AS feed";
    let page = format!(
        "SELECT key, session_id, user_id, roles_version, revoked_at, revoked_xid FROM {feed} \
         WHERE revoked_xid >= 100 AND revoked_at > now() - interval '16 minutes' \
         AND (revoked_xid, key) > (120, '00000000-0000-0000-0000-000000000000') \
         ORDER BY revoked_xid, key LIMIT 10001"
    );
    let count = format!(
        "SELECT count(*) AS n FROM {feed} WHERE revoked_xid >= 100 \
         AND revoked_at > now() - interval '16 minutes'"
    );
    for (statement, indexes) in [
        (
            page,
            &["sessions_revocation_feed_idx", "feed_events_feed_idx"][..],
        ),
        (count, &["_idx"][..]),
    ] {
        let plan: Vec<String> = diesel::sql_query(format!("EXPLAIN {statement}"))
            .load::<Plan>(&mut conn)
            .unwrap()
            .into_iter()
            .map(|p| p.line)
            .collect();
        let plan = plan.join("\n");
        assert!(
            indexes.iter().all(|index| plan.contains(index)) && !plan.contains("Seq Scan"),
            "{plan}"
        );
        // A Merge Append names its "Sort Key"; a sort of its own is a node.
        assert!(!plan.contains("Sort  ("), "read in index order: {plan}");
    }
}

/// Every reason the code revokes with is one the schema admits: a new
/// reason needs its migration too.
#[tokio::test]
async fn the_schema_admits_every_revocation_reason() {
    use auth_server::db::models::RevocationReason;
    let app = spawn_app().await;
    let email = app.registered_user().await;
    app.login_body(&email).await;
    for reason in RevocationReason::ALL {
        app.execute(&format!(
            "UPDATE sessions SET revoked_at = now(), revoked_reason = '{}', revoked_xid = 1",
            reason.as_str()
        ));
    }
    let refused = diesel::RunQueryDsl::execute(
        diesel::sql_query("UPDATE sessions SET revoked_reason = 'no_such_reason'"),
        &mut app.conn(),
    );
    assert!(refused.is_err(), "the constraint still refuses others");
}

#[tokio::test]
async fn the_janitor_deletes_expired_tokens_and_sessions_past_retention() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let keep = app.login_body(&email).await.refresh_token().unwrap();
    app.login_body(&email).await;
    app.login_body(&email).await;
    // One session revoked long ago, one with an expired token.
    app.execute(
        "UPDATE sessions SET revoked_at = now() - interval '30 days', revoked_reason = 'logout', revoked_xid = 0 \
         WHERE id = (SELECT id FROM sessions ORDER BY created_at DESC LIMIT 1)",
    );
    // Sessions no longer write token rows: a legacy one, as the previous
    // version wrote it, now expired.
    app.execute(
        "INSERT INTO refresh_tokens (id, token_hash, session_id, issued_at, expires_at) \
         SELECT gen_random_uuid(), sha256('legacy'::bytea), id, now() - interval '8 days', now() - interval '1 second' \
         FROM sessions ORDER BY created_at DESC OFFSET 1 LIMIT 1",
    );
    let swept = app.sweep().await;
    assert_eq!(swept.sessions, 1);
    assert_eq!(
        swept.refresh_tokens, 1,
        "the expired one; the revoked session's token goes with its session"
    );
    assert_eq!(app.count("SELECT count(*) AS n FROM sessions"), 2);
    assert_eq!(
        app.refresh_body(&keep).await.status,
        reqwest::StatusCode::OK
    );
}

/// Whether each pool of settings read from `vars` (over the test database,
/// reached as `host`) connects: the blocking pool (libpq) and the
/// rotation's (tokio-postgres and OpenSSL), each on its own.
async fn pools_connect(db: &TestDatabase, host: &str, vars: &[(&str, &str)]) -> (bool, bool) {
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_host(Some(host)).unwrap();
    let mut all: Vec<(&str, &str)> =
        vec![("DATABASE_URL", url.as_str()), ("DATABASE_TIMEOUT", "2s")];
    all.extend_from_slice(vars);
    let map: std::collections::HashMap<String, String> = all
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let settings = auth_server::config::Settings::from_lookup(|k| map.get(k).cloned())
        .unwrap_or_else(|e| panic!("{e}"));
    let database = auth_server::db::Database::new(&settings.database, 1).unwrap();
    let blocking = database.run(auth_server::db::ping).await.is_ok();
    let rotation = auth_server::db::rotation_pool::RotationPool::new(&settings.database, 1)
        .unwrap()
        .get()
        .await
        .is_ok();
    (blocking, rotation)
}

/// libpq's TLS variables, as its users set them (here in the settings'
/// environment, which is all the server reads), secure both pools alike:
/// the local server's certificate is Debian's self-signed one, for
/// `localhost`.
#[tokio::test]
async fn libpqs_tls_variables_secure_both_pools_alike() {
    const OWN_ROOT: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";
    const OTHER_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";
    let db = TestDatabase::create();
    let verify =
        |mode: &'static str, root: &'static str| [("PGSSLMODE", mode), ("PGSSLROOTCERT", root)];
    // The server's own root, its own name: both verify and connect.
    assert_eq!(
        pools_connect(&db, "localhost", &verify("verify-full", OWN_ROOT)).await,
        (true, true)
    );
    // Roots that did not sign it: neither connects.
    assert_eq!(
        pools_connect(&db, "localhost", &verify("verify-full", OTHER_ROOTS)).await,
        (false, false)
    );
    assert_eq!(
        pools_connect(&db, "localhost", &verify("require", OTHER_ROOTS)).await,
        (false, false),
        "a root certificate makes `require` check the chain, as in libpq"
    );
    // Another name than the certificate's: `verify-full` refuses it in
    // both, `verify-ca` checks the chain only.
    assert_eq!(
        pools_connect(&db, "127.0.0.1", &verify("verify-full", OWN_ROOT)).await,
        (false, false)
    );
    assert_eq!(
        pools_connect(&db, "127.0.0.1", &verify("verify-ca", OWN_ROOT)).await,
        (true, true)
    );
    // The URL's own parameter wins over the variable.
    assert_eq!(
        pools_connect(
            &db,
            "localhost",
            &[
                ("PGSSLMODE", "verify-full"),
                ("PGSSLROOTCERT", OTHER_ROOTS),
                (
                    "DATABASE_URL",
                    &format!(
                        "{}?sslrootcert={OWN_ROOT}",
                        db.url.replace("127.0.0.1", "localhost")
                    )
                ),
            ]
        )
        .await,
        (true, true)
    );
}

/// `PGSSLMODE=disable` reaches every connection the server opens: none of
/// them, either pool's or the LISTEN one, uses TLS (the local server offers
/// it, and libpq's default, `prefer`, takes it).
#[tokio::test]
async fn pgsslmode_reaches_every_connection_of_the_server() {
    let app = spawn_app_with(&[("PGSSLMODE", "disable")]).await;
    let email = app.registered_user().await;
    let tokens = app.login_body(&email).await;
    app.refresh_body(&tokens.refresh_token().unwrap()).await;
    let connections = |ssl: bool| {
        app.count(&format!(
            "SELECT count(*) AS n FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND s.ssl = {ssl}"
        ))
    };
    assert_eq!(connections(true), 0, "no connection of the server uses TLS");
    assert!(
        connections(false) >= 3,
        "the blocking pool's, the rotation's and LISTEN's"
    );
}
