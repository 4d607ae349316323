//! The Ed25519 key that signs access tokens, and what is published of it.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use aws_lc_rs::encoding::AsBigEndian;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::pkcs8::DecodePrivateKey;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use shared_claims::assurance::Aal;
use shared_claims::{ACCESS_TOKEN_TYP, AccessClaims, KeySet, VerificationKey};
use uuid::Uuid;

use crate::db::models::{Session, TokenSubject};

/// PKCS#8 v1 (RFC 8410) prefix of an Ed25519 private key: the DER is this
/// followed by the 32-byte seed.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

pub struct SigningKey {
    /// Expanded once. `jsonwebtoken::encode` rebuilds the key from its
    /// PKCS#8 bytes on every call, deriving the public half (a second
    /// base-point multiplication) each time: about half of a signature's
    /// cost, on every login and refresh. AWS-LC's Ed25519 then signs in
    /// half the time of ed25519-dalek's (11 against 22 µs here).
    signer: Ed25519KeyPair,
    /// The JOSE header of every token this key signs, base64url.
    encoded_header: String,
    kid: String,
    /// This key's public half, then those of retired keys.
    published: Vec<Jwk>,
    verification: KeySet,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    pub fn from_pem_file(path: &Path) -> anyhow::Result<Self> {
        let pem = std::fs::read(path)
            .with_context(|| format!("reading SIGNING_KEY_FILE {}", path.display()))?;
        let encoding = EncodingKey::from_ed_pem(&pem).with_context(|| {
            format!(
                "SIGNING_KEY_FILE {} is not a PKCS#8 PEM Ed25519 private key",
                path.display()
            )
        })?;
        Self::from_encoding_key(encoding)
    }

    /// A key that lives as long as the process: development only.
    pub fn ephemeral() -> anyhow::Result<Self> {
        Self::from_encoding_key(EncodingKey::from_ed_der(&new_pkcs8_der()?))
    }

    /// A key from its 32-byte Ed25519 seed: the private half that
    /// PostgreSQL keeps sealed ([`crate::keys::sealing`]).
    pub fn from_seed(seed: &[u8]) -> anyhow::Result<Self> {
        anyhow::ensure!(
            seed.len() == 32,
            "an Ed25519 seed is 32 bytes, not {}",
            seed.len()
        );
        let mut der = ED25519_PKCS8_PREFIX.to_vec();
        der.extend_from_slice(seed);
        Self::from_encoding_key(EncodingKey::from_ed_der(&der))
    }

    /// The private half, to be sealed.
    pub fn seed(&self) -> anyhow::Result<secrecy::SecretBox<[u8; 32]>> {
        let seed = self
            .signer
            .seed()
            .and_then(|seed| seed.as_be_bytes())
            .map_err(|_| anyhow::anyhow!("reading the Ed25519 seed"))?;
        let mut out = Box::new([0; 32]);
        out.copy_from_slice(seed.as_ref());
        Ok(secrecy::SecretBox::new(out))
    }

    /// The public half (32 bytes).
    pub fn public_key(&self) -> [u8; 32] {
        let mut out = [0; 32];
        out.copy_from_slice(self.signer.public_key().as_ref());
        out
    }

    fn from_encoding_key(encoding: EncodingKey) -> anyhow::Result<Self> {
        let mut public_jwk = Jwk::from_encoding_key(&encoding, Algorithm::EdDSA)
            .context("deriving the public key")?;
        // RFC 7638: the kid is the thumbprint, so it names this key and no other.
        let kid = public_jwk
            .thumbprint(ThumbprintHash::SHA256)
            .context("computing the key thumbprint")?;
        public_jwk.common.key_id = Some(kid.clone());
        public_jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        let decoding = DecodingKey::from_jwk(&public_jwk).context("loading the public key")?;
        let signer = Ed25519KeyPair::from_seed_unchecked(
            &ed25519_dalek::SigningKey::from_pkcs8_der(encoding.as_bytes())
                .map_err(|e| anyhow::anyhow!("loading the Ed25519 private key: {e}"))?
                .to_bytes(),
        )
        .map_err(|e| anyhow::anyhow!("loading the Ed25519 private key: {e}"))?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(ACCESS_TOKEN_TYP.to_owned());
        header.kid = Some(kid.clone());
        let encoded_header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?);
        let mut verification = KeySet::default();
        verification.insert(
            kid.clone(),
            VerificationKey {
                algorithm: Algorithm::EdDSA,
                key: decoding,
            },
        );
        Ok(Self {
            signer,
            encoded_header,
            kid,
            published: vec![public_jwk],
            verification,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// `GET /.well-known/jwks.json`: public keys only.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self.published.clone(),
        }
    }

    /// Keeps publishing (and accepting) a key that no longer signs, so the
    /// access tokens it signed stay valid until they expire: key rotation
    /// without logging anybody out. Only its public half is kept.
    pub fn retire(&mut self, old: SigningKey) {
        if old.kid == self.kid || self.verification.get(&old.kid).is_some() {
            return;
        }
        if let Some(key) = old.verification.get(&old.kid) {
            self.verification.insert(old.kid.clone(), key.clone());
        }
        self.published.extend(old.published.into_iter().take(1));
    }

    /// The keys this server's own Bearer endpoints verify with.
    pub fn verification_keys(&self) -> &KeySet {
        &self.verification
    }

    /// A compact JWS (RFC 7515), byte for byte what `jsonwebtoken::encode`
    /// makes of the same header and claims (Ed25519 signatures are
    /// deterministic), with the key and the header prepared once.
    pub fn sign(&self, claims: &AccessClaims) -> anyhow::Result<String> {
        let claims = serde_json::to_vec(claims).context("serialising access-token claims")?;
        let mut token =
            String::with_capacity(self.encoded_header.len() + claims.len() * 4 / 3 + 92);
        token.push_str(&self.encoded_header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&claims, &mut token);
        let signature = self.signer.sign(token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut token);
        Ok(token)
    }
}

/// The claims of a new access token for this user and session.
pub fn access_claims(
    issuer: &str,
    audience: &str,
    ttl: Duration,
    user: &TokenSubject,
    session: &Session,
) -> AccessClaims {
    let now = chrono::Utc::now().timestamp();
    AccessClaims {
        iss: issuer.to_owned(),
        aud: audience.to_owned(),
        sub: user.id,
        sid: session.id,
        jti: Uuid::new_v4(),
        iat: now,
        nbf: now,
        exp: now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)),
        email: user.email.clone(),
        email_verified: user.email_verified,
        roles: user.roles.clone(),
        rv: Some(user.roles_version),
        acr: Some(Aal::of_methods(&session.amr).as_str().to_owned()),
        amr: session.amr.clone(),
        auth_time: Some(session.authenticated_at().timestamp()),
    }
}

fn new_pkcs8_der() -> anyhow::Result<Vec<u8>> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness for a key: {e}"))?;
    let mut der = ED25519_PKCS8_PREFIX.to_vec();
    der.extend_from_slice(&seed);
    Ok(der)
}

/// `auth-server keygen`: a new key as PKCS#8 PEM.
pub fn generate_pem() -> anyhow::Result<String> {
    let body = STANDARD.encode(new_pkcs8_der()?);
    Ok(format!(
        "-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n"
    ))
}

/// Writes a new key readable by its owner only, refusing to overwrite one.
pub fn write_new_key(path: &Path) -> anyhow::Result<String> {
    let pem = generate_pem()?;
    let key = SigningKey::from_encoding_key(EncodingKey::from_ed_pem(pem.as_bytes())?)?;
    write_private_file(path, pem.as_bytes())?;
    Ok(key.kid)
}

/// Writes 256 random bits, base64url, readable by its owner only: an
/// `INTERNAL_API_TOKEN_FILE`.
pub fn write_new_secret(path: &Path) -> anyhow::Result<()> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for a secret: {e}"))?;
    write_private_file(
        path,
        format!("{}\n", URL_SAFE_NO_PAD.encode(bytes)).as_bytes(),
    )
}

fn write_private_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;

    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path).with_context(|| {
        format!(
            "creating {} (an existing file is never overwritten)",
            path.display()
        )
    })?;
    file.write_all(contents)?;
    file.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use shared_claims::{ValidationRules, Validator};

    use super::*;

    #[test]
    fn generated_pem_round_trips_and_signs_verifiable_tokens() {
        let pem = generate_pem().unwrap();
        let key = SigningKey::from_encoding_key(EncodingKey::from_ed_pem(pem.as_bytes()).unwrap())
            .unwrap();
        assert_eq!(key.kid().len(), 43, "a base64url SHA-256 thumbprint");
        let jwks = serde_json::to_value(key.jwks()).unwrap();
        let jwk = &jwks["keys"][0];
        assert_eq!(jwk["kty"], "OKP");
        assert_eq!(jwk["crv"], "Ed25519");
        assert_eq!(jwk["alg"], "EdDSA");
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["kid"], key.kid());
        assert!(jwk.get("d").is_none(), "no private part is published");

        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            iss: "iss".into(),
            aud: "aud".into(),
            sub: Uuid::new_v4(),
            sid: Uuid::new_v4(),
            jti: Uuid::new_v4(),
            iat: now,
            nbf: now,
            exp: now + 60,
            email: "a@example.com".into(),
            email_verified: false,
            roles: vec![],
            rv: None,
            amr: Vec::new(),
            acr: None,
            auth_time: None,
        };
        let token = key.sign(&claims).unwrap();
        let validator = Validator::new(ValidationRules {
            issuer: "iss".into(),
            audience: "aud".into(),
            leeway: Duration::from_secs(5),
        });
        assert_eq!(
            validator.validate(&token, key.verification_keys()).unwrap(),
            claims
        );
        // The JWKS alone (what resource APIs see) verifies it too.
        let published = KeySet::from_jwks(&key.jwks());
        assert_eq!(validator.validate(&token, &published).unwrap(), claims);
    }

    #[test]
    fn tokens_are_byte_for_byte_what_jsonwebtoken_signs() {
        let pem = generate_pem().unwrap();
        let key = SigningKey::from_encoding_key(EncodingKey::from_ed_pem(pem.as_bytes()).unwrap())
            .unwrap();
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            iss: "http://localhost:8080".into(),
            aud: "resource-api".into(),
            sub: Uuid::new_v4(),
            sid: Uuid::new_v4(),
            jti: Uuid::new_v4(),
            iat: now,
            nbf: now,
            exp: now + 900,
            email: "ünïcode+tag@example.com".into(),
            email_verified: true,
            roles: vec!["admin".into(), "a \"quoted\" role".into()],
            rv: Some(1),
            amr: Vec::new(),
            acr: None,
            auth_time: None,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(ACCESS_TOKEN_TYP.to_owned());
        header.kid = Some(key.kid().to_owned());
        let reference = jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_ed_pem(pem.as_bytes()).unwrap(),
        )
        .unwrap();
        assert_eq!(key.sign(&claims).unwrap(), reference);
    }

    #[test]
    fn retired_keys_stay_published_and_accepted_but_never_sign() {
        let mut current = SigningKey::ephemeral().unwrap();
        let old = SigningKey::ephemeral().unwrap();
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            iss: "iss".into(),
            aud: "aud".into(),
            sub: Uuid::new_v4(),
            sid: Uuid::new_v4(),
            jti: Uuid::new_v4(),
            iat: now,
            nbf: now,
            exp: now + 60,
            email: "a@example.com".into(),
            email_verified: false,
            roles: vec![],
            rv: None,
            amr: Vec::new(),
            acr: None,
            auth_time: None,
        };
        let old_token = old.sign(&claims).unwrap();
        let old_kid = old.kid().to_owned();
        current.retire(old);
        let validator = Validator::new(ValidationRules {
            issuer: "iss".into(),
            audience: "aud".into(),
            leeway: Duration::from_secs(5),
        });
        let published = KeySet::from_jwks(&current.jwks());
        assert_eq!(published.len(), 2);
        assert!(validator.validate(&old_token, &published).is_ok());
        assert!(
            validator
                .validate(&old_token, current.verification_keys())
                .is_ok()
        );
        let new_token = current.sign(&claims).unwrap();
        assert_eq!(
            jsonwebtoken::decode_header(&new_token)
                .unwrap()
                .kid
                .as_deref(),
            Some(current.kid())
        );
        assert_ne!(current.kid(), old_kid);
        let jwks = serde_json::to_value(current.jwks()).unwrap();
        assert!(
            jwks["keys"]
                .as_array()
                .unwrap()
                .iter()
                .all(|k| k.get("d").is_none())
        );
    }

    #[test]
    fn the_thumbprint_matches_rfc_8037() {
        // RFC 8037 appendix A.3: the thumbprint of the example Ed25519 key.
        let seed = [
            0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec,
            0x2c, 0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03,
            0x1c, 0xae, 0x7f, 0x60,
        ];
        let mut der = ED25519_PKCS8_PREFIX.to_vec();
        der.extend_from_slice(&seed);
        let key = SigningKey::from_encoding_key(EncodingKey::from_ed_der(&der)).unwrap();
        assert_eq!(key.kid(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }
}
