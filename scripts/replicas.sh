#!/usr/bin/env bash
# Several replicas on one PostgreSQL, on loopback only: three auth-server
# and two resource-api processes behind HAProxy (Debian's package, installed
# when missing), one frontend for each service; the APIs read the revocation
# feed straight from an auth replica's internal listener (API 1 from auth 1,
# API 2 from auth 2), as internal listeners are not behind the balancer.
# Then scripts/replicas_driver.py shows what the replicas share (the refresh
# race, revocations, the login limit, a key rotation under load, a replica
# killed) and exits non-zero on any failure. Every port is a free one the
# kernel hands out (scripts/lib.sh's free_port).
#
#   bash scripts/replicas.sh            (builds the debug binaries if needed)
#   BIN_DIR=target/release bash scripts/replicas.sh
#
# Needs a local PostgreSQL that lets `postgres` in over TCP without a
# password (as CI's), psql, python3, curl and HAProxy (`.ci/run replicas`
# installs Debian's).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

command -v haproxy >/dev/null 2>&1 ||
    die "haproxy is needed: apt-get install haproxy (or run: bash .ci/run replicas)"
haproxy -v | sed -n 1p  # sed reads to the end: head would break the pipe (pipefail)

BIN_DIR=${BIN_DIR:-target/debug}
if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --locked -p auth-server -p resource-api --bins
fi
AUTH_BIN=$BIN_DIR/auth-server
API_BIN=$BIN_DIR/resource-api

ADMIN_URL=${REPLICAS_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DB=replicas_$$
DATABASE_URL=${ADMIN_URL%/*}/$DB
WORK=$(mktemp -d)
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    psql "$ADMIN_URL" -qAtc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
    if [ -n "${KEEP_LOGS:-}" ]; then echo "logs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

psql "$ADMIN_URL" -qAtc "CREATE DATABASE $DB" >/dev/null

# What every replica shares besides the database.
"$AUTH_BIN" secret --out "$WORK/kek" 2>/dev/null
"$AUTH_BIN" secret --out "$WORK/refresh-token-key" 2>/dev/null
INTERNAL_API_TOKEN=$(head -c 32 /dev/urandom | base64 | tr -d '=+/\n')

mapfile -t ports < <(free_port 12)
[ "${#ports[@]}" -eq 12 ] || die "free_port gave ${#ports[@]} ports, not 12"
AUTH_FRONT=${ports[0]}
API_FRONT=${ports[1]}
AUTH_PORTS=("${ports[@]:2:3}")
AUTH_INTERNAL=("${ports[@]:5:3}")
API_PORTS=("${ports[@]:8:2}")
API_INTERNAL=("${ports[@]:10:2}")
LOGIN_LIMIT=5/1m

export DATABASE_URL INTERNAL_API_TOKEN
export JWT_ISSUER=http://127.0.0.1:$AUTH_FRONT JWT_AUDIENCE=resource-api RUST_LOG=warn
export KEY_ENCRYPTION_KEY_FILE=$WORK/kek SIGNING_KEY_PUBLISH_AHEAD=3s
export REFRESH_TOKEN_KEY_FILE=$WORK/refresh-token-key
export TRUSTED_PROXIES=127.0.0.1/32 LOGIN_RATE_LIMIT=$LOGIN_LIMIT LOGIN_ACCOUNT_RATE_LIMIT=0
export REFRESH_RATE_LIMIT=0 MAIL_REQUEST_RATE_LIMIT=0 MAIL_RECIPIENT_LIMIT=0
export ARGON2_MEMORY_KIB=1024 ARGON2_ITERATIONS=1 HTTP_WORKERS=2 PASSWORD_HASH_WORKERS=2
export MAIL_DIR=$WORK/mail COOKIE_SECURE=false

start_auth() { # index
    local i=$1
    AUTH_BIND=127.0.0.1:${AUTH_PORTS[$i]} AUTH_INTERNAL_BIND=127.0.0.1:${AUTH_INTERNAL[$i]} \
        "$AUTH_BIN" serve >"$WORK/auth$((i + 1)).log" 2>&1 &
    PIDS+=($!)
    echo $! >"$WORK/auth$((i + 1)).pid"
}
for i in 0 1 2; do start_auth "$i"; done

# SIGNING_KEY_PUBLISH_AHEAD (3s here) must exceed the APIs' JWKS refresh
# interval: a next key is in every API's JWKS before it signs.
for i in 0 1; do
    JWKS_REFRESH_INTERVAL=1s AUTH_URL=http://127.0.0.1:$AUTH_FRONT AUTH_INTERNAL_URL=http://127.0.0.1:${AUTH_INTERNAL[$i]} \
        API_BIND=127.0.0.1:${API_PORTS[$i]} API_INTERNAL_BIND=127.0.0.1:${API_INTERNAL[$i]} \
        "$API_BIN" >"$WORK/api$((i + 1)).log" 2>&1 &
    PIDS+=($!)
done

cat >"$WORK/haproxy.cfg" <<CFG
global
    maxconn 2000
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    option redispatch
    retries 3
    # A replica that dies mid-request: the request goes to another one. A
    # refresh it had already committed is answered there by the reuse grace.
    retry-on conn-failure empty-response response-timeout
    option forwardfor
frontend auth
    bind 127.0.0.1:$AUTH_FRONT
    default_backend auth
backend auth
    balance roundrobin
    option httpchk GET /readyz
    http-response set-header X-Replica %s
    default-server inter 300ms fall 2 rise 2
    server auth1 127.0.0.1:${AUTH_PORTS[0]} check
    server auth2 127.0.0.1:${AUTH_PORTS[1]} check
    server auth3 127.0.0.1:${AUTH_PORTS[2]} check
frontend api
    bind 127.0.0.1:$API_FRONT
    default_backend api
backend api
    balance roundrobin
    option httpchk GET /readyz
    http-response set-header X-Replica %s
    default-server inter 300ms fall 2 rise 2
    server api1 127.0.0.1:${API_PORTS[0]} check
    server api2 127.0.0.1:${API_PORTS[1]} check
CFG
haproxy -q -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.log" 2>&1 &
PIDS+=($!)

show_logs() { for log in "$WORK"/*.log; do echo "--- $log" >&2; tail -n "$1" "$log" >&2; done; }
for port in "${AUTH_PORTS[@]}" "${API_PORTS[@]}" "$AUTH_FRONT" "$API_FRONT"; do
    wait_ready "http://127.0.0.1:$port/readyz" 30 || { show_logs 20; exit 1; }
done

status=0
python3 scripts/replicas_driver.py \
    --auth "http://127.0.0.1:$AUTH_FRONT" --api "http://127.0.0.1:$API_FRONT" \
    --auth-replicas "$(printf 'http://127.0.0.1:%s,' "${AUTH_PORTS[@]}")" \
    --api-replicas "$(printf 'http://127.0.0.1:%s,' "${API_PORTS[@]}")" \
    --login-limit "$LOGIN_LIMIT" --auth-bin "$AUTH_BIN" \
    --kill-pid-file "$WORK/auth3.pid" || status=$?
if [ "$status" -ne 0 ]; then show_logs 30; fi
exit "$status"
