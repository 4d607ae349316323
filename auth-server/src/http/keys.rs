//! The public keys that verify access tokens (the JWKS), for resource
//! servers and any client.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

/// A public key of the JWKS (RFC 7517): Ed25519 (`OKP`). The document's
/// description of what `jsonwebtoken`'s `JwkSet` serialises (the schema
/// checks in CI hold the two together).
#[derive(Serialize, ToSchema)]
pub struct JwkView {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub use_: String,
}

#[derive(Serialize, ToSchema)]
pub struct JwksView {
    pub keys: Vec<JwkView>,
}

/// The keys that verify access tokens: the signing key and any retired
/// key whose tokens may still be alive.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "operations",
    responses((status = 200, description = "The JWKS", body = JwksView))
)]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=60"))
        .json(state.signing.jwks())
}
