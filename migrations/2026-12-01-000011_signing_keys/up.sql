-- Signing keys shared by every replica and rotated on their own (auth-server's
-- `keyring.rs`): used when KEY_ENCRYPTION_KEY_FILE is set and
-- SIGNING_KEY_FILE is not. The private half (the Ed25519 seed) is sealed
-- with ChaCha20-Poly1305 under the key-encryption key, the kid as associated
-- data: this table alone signs nothing.
CREATE TABLE signing_keys (
    -- RFC 7638 thumbprint of the public key, base64url.
    kid                TEXT        PRIMARY KEY CHECK (length(kid) <= 64),
    public_key         BYTEA       NOT NULL CHECK (length(public_key) = 32),
    -- Version byte, 96-bit nonce, ciphertext and tag.
    sealed_private_key BYTEA       NOT NULL CHECK (length(sealed_private_key) <= 128),
    created_at         TIMESTAMPTZ NOT NULL,
    -- In the JWKS from then on.
    publish_at         TIMESTAMPTZ NOT NULL,
    -- Signs from then on, until the next key's activate_at.
    activate_at        TIMESTAMPTZ NOT NULL,
    -- When the next key took over; published until its last token expired.
    retire_at          TIMESTAMPTZ,
    CHECK (publish_at <= activate_at),
    CHECK (retire_at IS NULL OR retire_at >= activate_at)
);
