-- What the rate limits count as one client (an IPv4 address or an IPv6 /64,
-- see auth-server's `client_key.rs`), on `login_failed` events: at most one
-- is stored per account and client within a window, and a client that picks
-- a new address of its /64 for each guess is still one client. Events
-- stored before this column (NULL) are not compared.
ALTER TABLE audit_events ADD COLUMN client_key TEXT CHECK (length(client_key) <= 64);
