//! Contract § Tokens: rotation, grace and reuse as property tests on the real schema.
//!
//! Property tests of the rotation rules against the real schema: any
//! interleaving of refreshes, answers lost on their way back (and retried),
//! replays of older tokens, logouts, key rotations and the passing of the
//! grace leaves every session either revoked or valid with exactly one live
//! refresh token in a chain without forks (its one row's generation moved
//! on once per rotation, and no `refresh_tokens` row written); every answer is the one a simple
//! model predicts; a token sent again is always the very successor the
//! rotation issued; and a client that keeps the last token it received and
//! retries a lost answer within the grace is never logged out by reuse
//! detection.

use std::path::PathBuf;
use std::time::Duration;

use auth_server::db::models::{ClientInfo, RevocationReason};
use auth_server::db::rotation::PresentedToken;
use auth_server::db::rotation::RefreshOutcome;
use auth_server::db::{self, sessions, tokens};
use auth_server::tokens::keys::TokenKeys;
use auth_server::tokens::rotation::{Policy, Rejection};
use diesel::prelude::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::helpers::{Rotations, TestDatabase, TokenKeyFile, create_session, minted};

#[derive(Debug, Clone)]
enum Op {
    /// The client refreshes with the last token it received, and reads the
    /// answer.
    Refresh,
    /// The client refreshes with the last token it received; the answer is
    /// lost on its way back (a dropped connection, a closed tab), so the
    /// client still holds that token.
    RefreshLost,
    /// Someone else presents the token issued `n` steps back: a stale copy
    /// in another tab, or a thief's.
    Replay(usize),
    Logout,
    /// Time passes beyond the reuse grace for every consumed token.
    GraceEnds,
    /// The server's token key changes; the old one is kept as retired.
    RotateKey,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Refresh),
        3 => Just(Op::RefreshLost),
        1 => (0usize..4).prop_map(Op::Replay),
        1 => Just(Op::Logout),
        2 => Just(Op::GraceEnds),
        1 => Just(Op::RotateKey),
    ]
}

/// The most keys a case rotates through.
const KEYS: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expected {
    Rotated,
    /// The successor of the presented token, sent again.
    Resent,
    AccessOnly,
    Reuse,
    Revoked,
}

/// What the rules say should happen, from what was done.
#[derive(Debug, Default)]
struct Model {
    /// Per token of the chain, in issue order (each the successor of the
    /// one before): consumed, and whether the grace has passed since.
    tokens: Vec<(bool, bool)>,
    /// The token the client last received.
    held: usize,
    revoked: bool,
    /// Someone other than the client presented a token.
    interfered: bool,
    /// The grace passed while the client held a consumed token: it did not
    /// retry a lost answer in time.
    late: bool,
}

impl Model {
    fn present(&mut self, index: usize) -> Expected {
        if self.revoked {
            return Expected::Revoked;
        }
        match self.tokens[index] {
            (false, _) => {
                self.tokens[index].0 = true;
                self.tokens.push((false, false));
                Expected::Rotated
            }
            (true, false) if !self.tokens[index + 1].0 => Expected::Resent,
            (true, false) => Expected::AccessOnly,
            (true, true) => {
                self.revoked = true;
                Expected::Reuse
            }
        }
    }

    fn grace_ends(&mut self) {
        for token in &mut self.tokens {
            token.1 |= token.0;
        }
        self.late |= self.tokens[self.held].0;
    }
}

fn outcome_kind(outcome: &RefreshOutcome) -> Expected {
    match outcome {
        RefreshOutcome::Rotated { .. } => Expected::Rotated,
        RefreshOutcome::Grace {
            resend: Some(_), ..
        } => Expected::Resent,
        RefreshOutcome::Grace { resend: None, .. } => Expected::AccessOnly,
        RefreshOutcome::ReuseDetected { .. } => Expected::Reuse,
        RefreshOutcome::Rejected {
            rejection: Rejection::SessionRevoked,
            ..
        } => Expected::Revoked,
        other => panic!("unexpected outcome {other:?}"),
    }
}

/// The server's key ring after `rotations` key changes, each old key
/// retired.
fn ring(files: &[TokenKeyFile], rotations: usize) -> TokenKeys {
    let retired: Vec<PathBuf> = files[..rotations]
        .iter()
        .rev()
        .map(|f| f.path.clone())
        .collect();
    TokenKeys::from_files(&files[rotations].path, &retired).unwrap()
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
        require_verified_email: false,
    };
    let client = ClientInfo::default();
    let key_files = TokenKeyFile::distinct(KEYS + 1);

    // The rotation runs as the server runs it; the test's own reads and
    // writes go through a connection of their own.
    let server = Rotations::new(&database.url);
    // The runner takes a `Fn`: lend the connection through a RefCell.
    let shared = std::cell::RefCell::new(conn);
    let mut runner = TestRunner::new(Config {
        cases: 64,
        ..Config::default()
    });
    let cases = std::cell::Cell::new(0_u32);
    let result = runner.run(&proptest::collection::vec(op(), 1..20), |ops| {
        let mut guard = shared.borrow_mut();
        let conn = &mut *guard;
        let mut rotations = 0;
        let mut keys = ring(&key_files, rotations);
        // A fresh session per case, made as login makes it; every other
        // one signed in with a second factor (aal2), which no rotation,
        // grace answer or reuse may change.
        let (session, first) = create_session(conn, user.id, &keys, &client);
        cases.set(cases.get() + 1);
        if cases.get().is_multiple_of(2) {
            diesel::sql_query(format!(
                "UPDATE sessions SET amr = '{{pwd,otp,mfa}}' WHERE id = '{}'",
                session.id
            ))
            .execute(conn)
            .unwrap();
        }
        let recorded: Vec<String> = if cases.get().is_multiple_of(2) {
            vec!["pwd".into(), "otp".into(), "mfa".into()]
        } else {
            vec!["pwd".into()]
        };
        let mut chain = vec![first];
        let mut model = Model { tokens: vec![(false, false)], ..Model::default() };

        for op in &ops {
            let presented = match op {
                Op::Refresh | Op::RefreshLost => Some(model.held),
                Op::Replay(back) => Some(chain.len() - 1 - back.min(&(chain.len() - 1))),
                _ => None,
            };
            if let Some(index) = presented {
                let outcome = server.refresh(&chain[index], &keys, &client, &policy);
                if let RefreshOutcome::Rotated { session: seen, .. }
                | RefreshOutcome::Grace { session: seen, .. } = &outcome
                {
                    prop_assert_eq!(&seen.amr, &recorded, "the session's factors, kept by {:?}", op);
                    prop_assert_eq!(seen.authenticated_at(), session.authenticated_at());
                }
                let expected = model.present(index);
                prop_assert_eq!(outcome_kind(&outcome), expected, "{:?} of token {} in {:?}", op, index, ops);
                let received = match outcome {
                    RefreshOutcome::Rotated { ref successor, .. } => {
                        chain.push(minted(&keys, successor));
                        Some(chain.len() - 1)
                    }
                    RefreshOutcome::Grace { resend: Some(ref resend), .. } => {
                        let again = minted(&keys, resend);
                        // Never a different token: the very one its
                        // consumption issued.
                        prop_assert_eq!(again.expose(), chain[index + 1].expose(), "{:?}", ops);
                        Some(index + 1)
                    }
                    _ => None,
                };
                match (op, received) {
                    (Op::Refresh, Some(token)) => model.held = token,
                    (Op::Replay(_), _) => model.interfered = true,
                    _ => {}
                }
                if expected == Expected::Reuse {
                    prop_assert!(model.interfered || model.late, "a client that kept its last token and retried in time was logged out by reuse detection: {:?}", ops);
                }
            }
            match op {
                Op::Logout => {
                    let held = auth_server::service::refresh::presented_token(&keys, chain[model.held].expose());
                    let owner = match held {
                        Some(held @ PresentedToken::V2(_)) => tokens::find(conn, &held).unwrap().unwrap().session,
                        other => panic!("a version 2 token the ring verifies: {other:?}"),
                    };
                    sessions::revoke(conn, owner.id, RevocationReason::Logout).unwrap();
                    model.revoked = true;
                }
                Op::GraceEnds => {
                    diesel::sql_query(format!(
                        "UPDATE sessions SET consumed_at = ARRAY(SELECT c - interval '1 minute' \
                         FROM unnest(consumed_at) WITH ORDINALITY AS t(c, i) ORDER BY i) WHERE id = '{}'",
                        session.id
                    ))
                    .execute(conn)
                    .unwrap();
                    model.grace_ends();
                }
                Op::RotateKey if rotations < KEYS => {
                    rotations += 1;
                    keys = ring(&key_files, rotations);
                }
                _ => {}
            }

            // The invariant, read from the database itself.
            let revoked = count(conn, &format!("SELECT count(*) AS n FROM sessions WHERE id = '{}' AND revoked_at IS NOT NULL", session.id)) == 1;
            // The live token is the row's generation, while unexpired.
            let live = count(
                conn,
                &format!("SELECT count(*) AS n FROM sessions WHERE id = '{}' AND generation = {} AND token_expires_at > now()", session.id, chain.len()),
            );
            prop_assert_eq!(revoked, model.revoked);
            prop_assert!(revoked || live == 1, "a valid session has exactly one live token, found {} after {:?}", live, ops);
            prop_assert!(live <= 1, "never more than one live token: {} after {:?}", live, ops);
            let successors = count(
                conn,
                &format!("SELECT generation - 1 AS n FROM sessions WHERE id = '{}'", session.id),
            );
            prop_assert_eq!(successors as usize, chain.len() - 1, "one successor per rotation, a chain without forks");
            prop_assert_eq!(count(conn, "SELECT count(*) AS n FROM refresh_tokens"), 0, "no token row written");
        }
        // A revoked session refuses every token it ever had.
        if model.revoked {
            for token in &chain {
                let outcome = server.refresh(token, &keys, &client, &policy);
                prop_assert_eq!(outcome_kind(&outcome), Expected::Revoked);
            }
        }
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}
