#!/bin/bash
# The statements PostgreSQL receives for one refresh rotation and for one
# grace answer, as the server's own log shows them: `log_statement = 'all'`
# is set on a scratch database only (nothing else is logged), the given
# auth-server binary is started against it, and one refresh is made on a
# warm connection. Needs a local PostgreSQL that lets `postgres` in, its log
# file readable (PG_LOG), curl and jq.
#
#   scripts/rotation-statements.sh target/release/auth-server
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
BIN=${1:?usage: $0 AUTH_SERVER_BINARY}
LOG=${PG_LOG:-/var/log/postgresql/postgresql-15-main.log}
DB=rotation_statements_$$
PG="psql -h 127.0.0.1 -U postgres -Atq"
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
$PG -c "CREATE DATABASE $DB"
$PG -c "ALTER DATABASE $DB SET log_statement = 'all'"
DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB AUTH_BIND=127.0.0.1:$PORT \
  LOGIN_RATE_LIMIT=0 LOGIN_ACCOUNT_RATE_LIMIT=0 REFRESH_RATE_LIMIT=0 RUST_LOG=warn "$BIN" >/dev/null 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; $PG -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"' EXIT
wait_ready "$URL/readyz" 20
JSON='Content-Type: application/json'
USER='{"email":"statements@example.com","password":"correct horse battery"}'
curl -sf -X POST "$URL/auth/register" -H "$JSON" -d "$USER" >/dev/null
T=$(curl -sf -X POST "$URL/auth/login" -H "$JSON" \
  -d '{"email":"statements@example.com","password":"correct horse battery","refresh_token_delivery":"body"}' | jq -r .refresh_token)
refresh() { curl -sf -X POST "$URL/auth/refresh" -H "$JSON" -d "{\"refresh_token\":\"$1\"}"; }
# The first rotation on a connection prepares its statements.
T=$(refresh "$T" | jq -r .refresh_token)
statements() {
  sleep 0.3
  tail -n +"$(($1 + 1))" "$LOG" | grep "@$DB " | grep -E "statement: |execute [^:]*: " |
    sed -E 's/^.*(statement|execute [^:]*): /\1: /' | cut -c1-140
}
START=$(wc -l <"$LOG")
refresh "$T" >/dev/null
echo "--- a rotation:"
statements "$START"
START=$(wc -l <"$LOG")
refresh "$T" >/dev/null
echo "--- a grace answer (the same token again):"
statements "$START"
