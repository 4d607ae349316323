//! The rotation's round trips to PostgreSQL, counted on the connection as
//! Diesel sends them: its instrumentation sees every statement (`BEGIN` and
//! `COMMIT` included, and r2d2's checkout test when the pool runs one) and
//! every statement it prepares. Each is a round trip and a wake-up of a
//! PostgreSQL backend.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_server::config::Settings;
use auth_server::db::models::ClientInfo;
use auth_server::db::rotation::{self, RefreshOutcome};
use auth_server::db::{self, sessions};
use auth_server::refresh_token::RefreshToken;
use auth_server::rotation::Policy;
use auth_server::token_keys::TokenKeys;
use chrono::Utc;
use diesel::Connection;
use diesel::connection::InstrumentationEvent;

use crate::helpers::TestDatabase;

/// What the connection sent since the last call.
#[derive(Clone, Default)]
struct Sent(Arc<Mutex<Vec<String>>>);

impl Sent {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

#[test]
fn a_rotation_makes_four_round_trips_and_a_grace_answer_three() {
    let database = TestDatabase::create();
    let vars = [
        ("DATABASE_URL", database.url.as_str()),
        ("DATABASE_POOL_SIZE", "1"),
    ];
    let settings = Settings::from_lookup(|k| {
        vars.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| (*v).to_owned())
    })
    .unwrap();
    // The server's own pool, with one connection so every checkout below
    // hands out the instrumented one.
    let pool = db::build_pool(&settings.database);
    let sent = Sent::default();
    {
        let mut conn = pool.get().unwrap();
        let log = sent.clone();
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| match event {
            InstrumentationEvent::StartQuery { query, .. } => {
                log.0.lock().unwrap().push(query.to_string());
            }
            InstrumentationEvent::CacheQuery { sql, .. } => {
                log.0.lock().unwrap().push(format!("PREPARE {sql}"));
            }
            _ => {}
        });
    }
    let keys = TokenKeys::ephemeral().unwrap();
    let policy = Policy {
        refresh_ttl: Duration::from_secs(3600),
        reuse_grace: Duration::from_secs(10),
    };
    let client = ClientInfo {
        user_agent: Some("round-trips/1.0".to_owned()),
        ip: Some("127.0.0.1".to_owned()),
        request_id: None,
    };
    let first = RefreshToken::generate().unwrap();
    {
        let mut conn = pool.get().unwrap();
        let user = db::users::create(
            &mut conn,
            "trips@example.com",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
        )
        .unwrap();
        let now = Utc::now();
        sessions::create(
            &mut conn,
            user.id,
            &client,
            &first.hash(),
            now + chrono::Duration::days(1),
            now + chrono::Duration::hours(1),
        )
        .unwrap();
    }
    let refresh = |token: &RefreshToken| {
        let mut conn = pool.get().unwrap();
        rotation::refresh(
            &mut conn,
            &token.hash(),
            &token.successors(&keys).hashes(),
            &client,
            &policy,
        )
        .unwrap()
    };

    // The first rotation on a connection prepares its statements; they stay
    // prepared for the connection's life.
    assert!(matches!(refresh(&first), RefreshOutcome::Rotated { .. }));
    let second = RefreshToken::parse(first.successors(&keys).current().expose()).unwrap();
    sent.take();

    assert!(matches!(refresh(&second), RefreshOutcome::Rotated { .. }));
    let rotation = sent.take();
    assert!(rotation.len() <= 4, "a rotation: {rotation:#?}");
    assert_eq!(
        rotation.first().map(String::as_str),
        Some("BEGIN"),
        "{rotation:#?}"
    );
    assert_eq!(
        rotation.last().map(String::as_str),
        Some("COMMIT"),
        "{rotation:#?}"
    );
    assert!(
        !rotation.iter().any(|s| s.starts_with("PREPARE")),
        "nothing prepared again: {rotation:#?}"
    );

    // A retry within the grace reads, and writes nothing.
    assert!(matches!(
        refresh(&second),
        RefreshOutcome::Grace {
            resend: Some(_),
            ..
        }
    ));
    let grace = sent.take();
    assert!(grace.len() <= 3, "a grace answer: {grace:#?}");
}
