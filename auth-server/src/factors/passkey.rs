//! Passkeys (WebAuthn Level 2) through kanidm's `webauthn-rs`: this module
//! builds the relying party from the settings and shapes what the library
//! makes into the contract's forms. Verification itself is the library's,
//! never written here.
//!
//! Registration asks for a discoverable credential (a passkey can sign in
//! with no e-mail typed) and user verification; every assertion requires
//! user verification too, so a passkey alone is two factors (`aal2`): the
//! device, and the fingerprint or PIN that unlocked it.

use serde_json::Value;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};
use webauthn_rs::{Webauthn, WebauthnBuilder};

use crate::config::WebauthnSettings;

/// The relying party's name, as authenticators show it.
const RP_NAME: &str = "auth-platform";

pub fn relying_party(settings: &WebauthnSettings) -> anyhow::Result<Webauthn> {
    let (first, others) = settings
        .origins
        .split_first()
        .ok_or_else(|| anyhow::anyhow!("WEBAUTHN_RP_ORIGINS names no origin"))?;
    let mut builder = WebauthnBuilder::new(&settings.rp_id, first)
        .map_err(|e| anyhow::anyhow!("WEBAUTHN_RP_ID and WEBAUTHN_RP_ORIGINS: {e}"))?
        .rp_name(RP_NAME);
    for origin in others {
        builder = builder.append_allowed_origin(origin);
    }
    builder
        .build()
        .map_err(|e| anyhow::anyhow!("the WebAuthn relying party: {e}"))
}

/// The `publicKey` member of a registration's options, as the contract
/// sends it (WebAuthn's JSON form), asking for a discoverable credential.
pub fn creation_options(challenge: &CreationChallengeResponse) -> Value {
    let mut options = serde_json::to_value(&challenge.public_key).unwrap_or(Value::Null);
    if let Some(selection) = options
        .get_mut("authenticatorSelection")
        .and_then(Value::as_object_mut)
    {
        selection.insert("residentKey".into(), Value::from("required"));
        selection.insert("requireResidentKey".into(), Value::from(true));
        selection.insert("userVerification".into(), Value::from("required"));
    }
    options
}

/// The `publicKey` member of an authentication's options.
pub fn request_options(challenge: &RequestChallengeResponse) -> Value {
    serde_json::to_value(&challenge.public_key).unwrap_or(Value::Null)
}

/// What a name given to a passkey may be: 1 to 64 characters, no control
/// characters; a default when none is given.
pub fn name(given: Option<&str>) -> Result<String, &'static str> {
    let Some(given) = given.map(str::trim) else {
        return Ok("Passkey".to_owned());
    };
    if given.is_empty() || given.chars().count() > 64 {
        return Err("must be 1 to 64 characters");
    }
    if given.chars().any(char::is_control) {
        return Err("must not hold control characters");
    }
    Ok(given.to_owned())
}

/// For tests and the settings: an origin as a URL.
pub fn origin(text: &str) -> Option<Url> {
    Url::parse(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn settings() -> WebauthnSettings {
        WebauthnSettings {
            rp_id: "localhost".into(),
            origins: vec![
                origin("http://localhost:3000").unwrap(),
                origin("http://localhost:8080").unwrap(),
            ],
        }
    }

    #[test]
    fn registration_asks_for_a_discoverable_credential_and_user_verification() {
        let rp = relying_party(&settings()).unwrap();
        let (ccr, _state) = rp
            .start_passkey_registration(Uuid::new_v4(), "ann@example.com", "ann@example.com", None)
            .unwrap();
        let options = creation_options(&ccr);
        assert_eq!(options["rp"]["id"], "localhost");
        assert_eq!(options["authenticatorSelection"]["residentKey"], "required");
        assert_eq!(
            options["authenticatorSelection"]["userVerification"],
            "required"
        );
        assert!(options["challenge"].is_string());
        let (rcr, _state) = rp.start_discoverable_authentication().unwrap();
        let options = request_options(&rcr);
        assert_eq!(options["userVerification"], "required");
        assert_eq!(options["rpId"], "localhost");
    }

    #[test]
    fn names_are_bounded() {
        assert_eq!(name(None).unwrap(), "Passkey");
        assert_eq!(name(Some(" Laptop ")).unwrap(), "Laptop");
        assert!(name(Some("")).is_err());
        assert!(name(Some(&"x".repeat(65))).is_err());
        assert!(name(Some("a\u{0}b")).is_err());
    }
}
