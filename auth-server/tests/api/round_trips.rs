//! Feature: the rotation's round trips to PostgreSQL (performance), read off the wire.
//!
//! The rotation's round trips to PostgreSQL, read off the wire: a rotation
//! is one statement, so one round trip. A proxy
//! between a pool built the server's way and PostgreSQL (TLS off, so the
//! protocol can be read) records what each side sends, in order. A flight
//! is what the client sends before PostgreSQL answers: each is a round trip,
//! and a wake-up of the backend and of the client.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_server::db;
use auth_server::db::models::ClientInfo;
use auth_server::db::rotation::RefreshOutcome;
use auth_server::tokens::keys::TokenKeys;
use auth_server::tokens::rotation::Policy;
use diesel::{Connection, PgConnection};
use url::Url;

use crate::helpers::{Rotations, TestDatabase, create_session, minted};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

/// What one side sent in one read of the proxy's.
type Chunk = (Side, Vec<u8>);

/// Everything sent through the proxy, in the order it was sent.
#[derive(Clone, Default)]
struct Wire(Arc<Mutex<Vec<Chunk>>>);

impl Wire {
    fn record(&self, side: Side, bytes: &[u8]) {
        self.0.lock().unwrap().push((side, bytes.to_vec()));
    }

    /// Everything the client sent, as text (the SQL of what it prepared).
    fn text_sent(&self) -> String {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(side, _)| *side == Side::Client)
            .map(|(_, bytes)| String::from_utf8_lossy(bytes).into_owned())
            .collect()
    }

    fn clear(&self) {
        self.0.lock().unwrap().clear();
    }

    /// The client's flights since the last call: each the messages it sent
    /// before the server said anything, as (type, body).
    fn take_flights(&self) -> Vec<Vec<(char, Vec<u8>)>> {
        let chunks = std::mem::take(&mut *self.0.lock().unwrap());
        let mut flights: Vec<Vec<u8>> = Vec::new();
        let mut answered = true;
        for (side, bytes) in chunks {
            match side {
                Side::Server => answered = true,
                Side::Client if answered => {
                    flights.push(bytes);
                    answered = false;
                }
                Side::Client => flights.last_mut().unwrap().extend(bytes),
            }
        }
        flights.iter().map(|f| messages(f)).collect()
    }
}

/// The frontend messages in `bytes` (each a type byte, a length counting
/// itself, and a body).
fn messages(mut bytes: &[u8]) -> Vec<(char, Vec<u8>)> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let length = u32::from_be_bytes(bytes[1..5].try_into().unwrap()) as usize;
        out.push((char::from(bytes[0]), bytes[5..1 + length].to_vec()));
        bytes = &bytes[1 + length..];
    }
    out
}

/// A proxy to `upstream` on a port of its own, recording into `wire`.
fn proxy(upstream: SocketAddr, wire: Wire) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let client = client.unwrap();
            let server = TcpStream::connect(upstream).unwrap();
            for (from, to, side) in [
                (
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    Side::Client,
                ),
                (server, client, Side::Server),
            ] {
                let wire = wire.clone();
                std::thread::spawn(move || pipe(from, to, side, &wire));
            }
        }
    });
    address
}

fn pipe(mut from: TcpStream, mut to: TcpStream, side: Side, wire: &Wire) {
    let mut buffer = [0; 16 * 1024];
    loop {
        match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                // Recorded before it is passed on: the answer to it can only
                // be recorded after.
                wire.record(side, &buffer[..n]);
                if to.write_all(&buffer[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

fn types(flight: &[(char, Vec<u8>)]) -> String {
    flight.iter().map(|(t, _)| *t).collect()
}

#[test]
fn a_rotation_is_one_round_trip_and_a_grace_answer_two() {
    let database = TestDatabase::create();
    let wire = Wire::default();
    let mut url = Url::parse(&database.url).unwrap();
    let upstream = (url.host_str().unwrap(), url.port().unwrap_or(5432))
        .to_socket_addrs()
        .unwrap()
        .next()
        .unwrap();
    let through_proxy = proxy(upstream, wire.clone());
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(through_proxy.port())).unwrap();
    url.query_pairs_mut().append_pair("sslmode", "disable");
    let rotations = Rotations::new(url.as_str());

    let keys = TokenKeys::ephemeral().unwrap();
    let policy = Policy {
        refresh_ttl: Duration::from_secs(3600),
        reuse_grace: Duration::from_secs(10),
        require_verified_email: false,
    };
    let client = ClientInfo {
        user_agent: Some("round-trips/1.0".to_owned()),
        ip: Some("127.0.0.1".to_owned()),
        request_id: None,
    };
    let first = {
        let mut conn = PgConnection::establish(&database.url).unwrap();
        let user = db::users::create(
            &mut conn,
            "trips@example.com",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
        )
        .unwrap();
        create_session(&mut conn, user.id, &keys, &client).1
    };

    // The connection's first rotation, its statements prepared when the
    // connection opened; they stay prepared for the connection's life.
    let rotated = rotations.refresh(&first, &keys, &client, &policy);
    let RefreshOutcome::Rotated { successor, .. } = rotated else {
        panic!("a rotation: {rotated:?}");
    };
    let second = minted(&keys, &successor);
    let opening = wire.text_sent();
    assert!(opening.contains("UPDATE sessions SET generation = sessions.generation + 1"));
    assert!(
        !opening.contains("password_hash"),
        "a refresh reads no password hash"
    );
    assert!(!opening.contains("BEGIN"), "no transaction block");
    wire.clear();

    let rotated = rotations.refresh(&second, &keys, &client, &policy);
    assert!(matches!(rotated, RefreshOutcome::Rotated { .. }));
    let rotation = wire.take_flights();
    let shown: Vec<String> = rotation.iter().map(|f| types(f)).collect();
    // The one statement (bind, execute, sync), prepared before: one
    // flight, one round trip, no `BEGIN` or `COMMIT`.
    assert_eq!(shown, ["BES"], "{rotation:?}");

    // A retry within the grace: the update matches nothing, then the row
    // is read to say why. Nothing is written.
    assert!(matches!(
        rotations.refresh(&second, &keys, &client, &policy),
        RefreshOutcome::Grace {
            resend: Some(_),
            ..
        }
    ));
    let grace = wire.take_flights();
    let shown: Vec<String> = grace.iter().map(|f| types(f)).collect();
    assert_eq!(shown, ["BES", "BES"], "{grace:?}");
}
