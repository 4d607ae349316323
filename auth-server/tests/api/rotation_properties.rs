//! Property tests of the rotation rules against the real schema: any
//! interleaving of refreshes (of live, consumed and stale tokens), logouts
//! and the passing of the grace leaves every session either revoked or valid
//! with exactly one live refresh token, and every answer is the one a simple
//! model predicts.

use std::time::Duration;

use auth_server::db::models::{ClientInfo, RevocationReason};
use auth_server::db::tokens::{self, RefreshOutcome};
use auth_server::db::{self, sessions};
use auth_server::refresh_token::RefreshToken;
use auth_server::rotation::{Policy, Rejection};
use chrono::Utc;
use diesel::prelude::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::helpers::TestDatabase;

#[derive(Debug, Clone)]
enum Op {
    /// Present the token issued `n` steps back (0: the newest).
    Refresh(usize),
    Logout(usize),
    /// Time passes beyond the reuse grace for every consumed token.
    GraceEnds,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0usize..4).prop_map(Op::Refresh),
        1 => (0usize..4).prop_map(Op::Logout),
        2 => Just(Op::GraceEnds),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expected {
    Rotated,
    Grace,
    Reuse,
    Revoked,
}

/// What the rules say should happen, from what the client did.
#[derive(Debug, Default)]
struct Model {
    /// Per token issued: consumed, and whether the grace has passed since.
    tokens: Vec<(bool, bool)>,
    revoked: bool,
}

impl Model {
    fn refresh(&mut self, index: usize) -> Expected {
        if self.revoked {
            return Expected::Revoked;
        }
        let (consumed, stale) = self.tokens[index];
        match (consumed, stale) {
            (false, _) => {
                self.tokens[index].0 = true;
                self.tokens.push((false, false));
                Expected::Rotated
            }
            (true, false) => Expected::Grace,
            (true, true) => {
                self.revoked = true;
                Expected::Reuse
            }
        }
    }
}

fn outcome_kind(outcome: &RefreshOutcome) -> Expected {
    match outcome {
        RefreshOutcome::Rotated { .. } => Expected::Rotated,
        RefreshOutcome::Grace { .. } => Expected::Grace,
        RefreshOutcome::ReuseDetected { .. } => Expected::Reuse,
        RefreshOutcome::Rejected {
            rejection: Rejection::SessionRevoked,
            ..
        } => Expected::Revoked,
        other => panic!("unexpected outcome {other:?}"),
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn count(conn: &mut PgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql).get_result::<Count>(conn).unwrap().n
}

#[test]
fn any_interleaving_leaves_one_live_token_or_a_revoked_session() {
    let database = TestDatabase::create();
    let mut conn = PgConnection::establish(&database.url).unwrap();
    let user = db::users::create(
        &mut conn,
        "property@example.com",
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
    )
    .unwrap();
    let policy = Policy {
        refresh_ttl: Duration::from_secs(3600),
        reuse_grace: Duration::from_secs(10),
    };
    let client = ClientInfo::default();

    // The runner takes a `Fn`: lend the connection through a RefCell.
    let shared = std::cell::RefCell::new(conn);
    let mut runner = TestRunner::new(Config {
        cases: 64,
        ..Config::default()
    });
    let result = runner.run(&proptest::collection::vec(op(), 1..16), |ops| {
        let mut guard = shared.borrow_mut();
        let conn = &mut *guard;
        // A fresh session per case.
        let first = RefreshToken::generate().unwrap();
        let now = Utc::now();
        let session = sessions::create(conn, user.id, &client, &first.hash(), now + chrono::Duration::days(1), now + chrono::Duration::hours(1))
            .unwrap();
        let mut issued = vec![first];
        let mut model = Model { tokens: vec![(false, false)], revoked: false };

        for op in &ops {
            match op {
                Op::Refresh(back) => {
                    let index = issued.len() - 1 - back.min(&(issued.len() - 1));
                    let successor = RefreshToken::generate().unwrap();
                    let outcome = tokens::refresh(conn, &issued[index].hash(), &successor.hash(), &client, &policy).unwrap();
                    let expected = model.refresh(index);
                    prop_assert_eq!(outcome_kind(&outcome), expected, "{:?} of token {} in {:?}", op, index, ops);
                    if expected == Expected::Rotated {
                        issued.push(successor);
                    }
                }
                Op::Logout(back) => {
                    let index = issued.len() - 1 - back.min(&(issued.len() - 1));
                    let owner = tokens::session_of(conn, &issued[index].hash()).unwrap().unwrap();
                    sessions::revoke(conn, owner.id, RevocationReason::Logout).unwrap();
                    model.revoked = true;
                }
                Op::GraceEnds => {
                    diesel::sql_query(format!(
                        "UPDATE refresh_tokens SET consumed_at = consumed_at - interval '1 minute' \
                         WHERE session_id = '{}' AND consumed_at IS NOT NULL",
                        session.id
                    ))
                    .execute(conn)
                    .unwrap();
                    for token in &mut model.tokens {
                        token.1 |= token.0;
                    }
                }
            }

            // The invariant, read from the database itself.
            let revoked = count(conn, &format!("SELECT count(*) AS n FROM sessions WHERE id = '{}' AND revoked_at IS NOT NULL", session.id)) == 1;
            let live = count(
                conn,
                &format!("SELECT count(*) AS n FROM refresh_tokens WHERE session_id = '{}' AND consumed_at IS NULL AND expires_at > now()", session.id),
            );
            prop_assert_eq!(revoked, model.revoked);
            prop_assert!(revoked || live == 1, "a valid session has exactly one live token, found {} after {:?}", live, ops);
            prop_assert!(live <= 1, "never more than one live token: {} after {:?}", live, ops);
            let successors = count(
                conn,
                &format!("SELECT count(*) AS n FROM refresh_tokens WHERE session_id = '{}' AND successor_id IS NOT NULL", session.id),
            );
            prop_assert_eq!(successors as usize, issued.len() - 1, "one successor per rotation, a chain without forks");
        }
        // A revoked session refuses every token it ever had.
        if model.revoked {
            for token in &issued {
                let outcome = tokens::refresh(conn, &token.hash(), &RefreshToken::generate().unwrap().hash(), &client, &policy).unwrap();
                prop_assert_eq!(outcome_kind(&outcome), Expected::Revoked);
            }
        }
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}
