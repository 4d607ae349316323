//! Token validation in `shared-claims`: whatever arrives as a Bearer token,
//! validation answers Ok or a `TokenError`, never panics, and accepts nothing
//! it should not. The key set holds a real key and the input may carry
//! fragments of a real token, so the fuzzer reaches the signature and claim
//! checks, not only the parser.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use shared_claims::{KeySet, ValidationRules, Validator};

struct Fixture {
    validator: Validator,
    keys: KeySet,
    valid: String,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let key = auth_server::keys::signing::SigningKey::ephemeral().expect("a key");
        let now = 1_900_000_000;
        let claims = shared_claims::AccessClaims {
            iss: "iss".into(),
            aud: "aud".into(),
            sub: Default::default(),
            sid: Default::default(),
            jti: Default::default(),
            iat: now,
            nbf: now,
            exp: now + 60,
            email: "a@example.com".into(),
            email_verified: true,
            roles: vec!["admin".into()],
            rv: Some(3),
            amr: Vec::new(),
            acr: None,
            auth_time: None,
        };
        Fixture {
            validator: Validator::new(ValidationRules { issuer: "iss".into(), audience: "aud".into(), leeway: Duration::from_secs(5) }),
            keys: KeySet::from_jwks(&key.jwks()),
            valid: key.sign(&claims).expect("a token"),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let fixture = fixture();
    let input = String::from_utf8_lossy(data);
    let _ = shared_claims::Validator::key_id(&input);
    // The token's validity window is in the future: nothing may pass.
    assert!(fixture.validator.validate(&input, &fixture.keys).is_err());
    // Splice the input into a real token's parts, so header and claims
    // mutations reach the later checks.
    let parts: Vec<&str> = fixture.valid.split('.').collect();
    for index in 0..3 {
        let mut spliced: Vec<String> = parts.iter().map(|p| (*p).to_owned()).collect();
        spliced[index] = input.to_string();
        let _ = fixture.validator.validate(&spliced.join("."), &fixture.keys);
    }
});
