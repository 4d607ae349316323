#!/usr/bin/env bash
# schemathesis against both running services, from their own /openapi.json:
# no 5xx, every status documented, every body and content type as documented.
#
# Starts the auth server and the resource API from the binaries cargo builds
# (debug), on free loopback ports, over a database of their own on the local
# PostgreSQL (DATABASE_URL's server), registers a user for the Bearer
# operations, runs schemathesis (pinned below) and stops everything again.
#
#   bash scripts/schemathesis.sh                 # what .ci/run does
#   MAX_EXAMPLES=200 bash scripts/schemathesis.sh  # a longer hunt
#
# Needs python3 with `schemathesis==$SCHEMATHESIS_VERSION` (.ci/run installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

SCHEMATHESIS_VERSION=4.32.5
MAX_EXAMPLES=${MAX_EXAMPLES:-25}
# Seconds of the main auth server run; the others take a share of it. With
# the binaries built, the script stays within about three minutes.
RUN_SECONDS=${RUN_SECONDS:-60}
CHECKS=not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance,response_headers_conformance
SERVER_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
SERVER_URL=${SERVER_URL%/*}
DB_NAME="schemathesis_$$"
INTERNAL_TOKEN="schemathesis-internal-token-$$-$RANDOM$RANDOM"
PASSWORD="correct horse battery staple"
started=$SECONDS

log() { printf '\n== [%ss] %s\n' "$((SECONDS - started))" "$*"; }

installed=$(python3 -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null || true)
if [ "$installed" != "$SCHEMATHESIS_VERSION" ]; then
    echo "schemathesis $SCHEMATHESIS_VERSION is needed (found: ${installed:-none}):" >&2
    echo "    python3 -m pip install 'schemathesis==$SCHEMATHESIS_VERSION'" >&2
    exit 1
fi

log "binaries"
cargo build --locked --quiet -p auth-server -p resource-api --bins

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    psql "$SERVER_URL/postgres" -qc "DROP DATABASE IF EXISTS $DB_NAME" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

psql "$SERVER_URL/postgres" -qc "CREATE DATABASE $DB_NAME"
read -r AUTH_PORT AUTH_INTERNAL_PORT API_PORT API_INTERNAL_PORT < <(free_port 4 | xargs)
AUTH="http://127.0.0.1:$AUTH_PORT"
API="http://127.0.0.1:$API_PORT"

log "auth server on $AUTH, resource API on $API (logs in $work)"
# Rate limits off: a 429 is documented, but would hide what lies behind it.
env DATABASE_URL="$SERVER_URL/$DB_NAME" \
    AUTH_BIND="127.0.0.1:$AUTH_PORT" AUTH_INTERNAL_BIND="127.0.0.1:$AUTH_INTERNAL_PORT" \
    AUTH_PUBLIC_URL="$AUTH" INTERNAL_API_TOKEN="$INTERNAL_TOKEN" \
    LOGIN_RATE_LIMIT=0 LOGIN_ACCOUNT_RATE_LIMIT=0 REFRESH_RATE_LIMIT=0 \
    MAIL_REQUEST_RATE_LIMIT=0 MAIL_RECIPIENT_LIMIT=0 \
    MAIL_DIR="$work/mail" HTTP_WORKERS=2 PASSWORD_HASH_WORKERS=2 RUST_LOG=warn \
    target/debug/auth-server >"$work/auth.log" 2>&1 &
pids+=($!)
env API_BIND="127.0.0.1:$API_PORT" API_INTERNAL_BIND="127.0.0.1:$API_INTERNAL_PORT" \
    AUTH_URL="$AUTH" AUTH_INTERNAL_URL="http://127.0.0.1:$AUTH_INTERNAL_PORT" \
    INTERNAL_API_TOKEN="$INTERNAL_TOKEN" HTTP_WORKERS=2 RUST_LOG=warn \
    target/debug/resource-api >"$work/api.log" 2>&1 &
pids+=($!)

if ! wait_ready "$AUTH/readyz" 30 || ! wait_ready "$API/readyz" 30; then
    tail -n 30 "$work/auth.log" "$work/api.log" >&2
    die "the services did not become ready"
fi

# A user's access token, for the Bearer operations.
access_token() {
    local email="schemathesis-$1-$RANDOM$RANDOM@example.com"
    curl -fsS -o /dev/null -H 'content-type: application/json' \
        -d "{\"email\":\"$email\",\"password\":\"$PASSWORD\"}" "$AUTH/auth/register"
    curl -fsS -H 'content-type: application/json' \
        -d "{\"email\":\"$email\",\"password\":\"$PASSWORD\",\"refresh_token_delivery\":\"body\"}" \
        "$AUTH/auth/login" | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}

# An administrator's access token, for /admin/*: granted through the CLI
# (as an operator would), then logged in so the token carries the role.
admin_token() {
    local email="schemathesis-admin-$RANDOM$RANDOM@example.com"
    curl -fsS -o /dev/null -H 'content-type: application/json' \
        -d "{\"email\":\"$email\",\"password\":\"$PASSWORD\"}" "$AUTH/auth/register"
    DATABASE_URL="$SERVER_URL/$DB_NAME" RUST_LOG=warn \
        target/debug/auth-server users grant-role "$email" admin >/dev/null
    curl -fsS -H 'content-type: application/json' \
        -d "{\"email\":\"$email\",\"password\":\"$PASSWORD\",\"refresh_token_delivery\":\"body\"}" \
        "$AUTH/auth/login" | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}

failed=0
run() {
    local name=$1 seconds=$2
    shift 2
    log "schemathesis: $name (at most ${seconds}s)"
    if ! timeout $((seconds + 60)) python3 -m schemathesis.cli run \
        --checks "$CHECKS" \
        --max-examples "$MAX_EXAMPLES" \
        --max-time "$seconds" \
        --request-timeout 10 \
        --suppress-health-check all \
        --no-color \
        "$@"; then
        failed=1
    fi
}

user=$(access_token main)
# logout-all would end the user's session and leave the rest 401; the
# introspection endpoint takes the resource servers' token, not a user's.
# Stateful: the document's links (register → login → refresh, /oauth/token,
# revoke → logout).
run auth-server "$RUN_SECONDS" "$AUTH/openapi.json" \
    -H "Authorization: Bearer $user" \
    --exclude-path /auth/logout-all --exclude-path /oauth/introspect
# One operation each: no links to follow.
single=examples,coverage,fuzzing
run auth-server-logout-all $((RUN_SECONDS / 4)) "$AUTH/openapi.json" --phases "$single" \
    -H "Authorization: Bearer $(access_token logout-all)" \
    --include-path /auth/logout-all
# /admin/* as an administrator (the main run reaches it with a user's
# token: 403 insufficient_scope). Its {id}s are made up, so a disable or a
# delete finds nobody, the administrator included.
run auth-server-admin $((RUN_SECONDS / 3)) "$AUTH/openapi.json" --phases "$single" \
    -H "Authorization: Bearer $(admin_token)" \
    --include-path-regex '^/admin/'
run auth-server-introspection $((RUN_SECONDS / 3)) "$AUTH/openapi.json" --phases "$single" \
    -H "Authorization: Bearer $INTERNAL_TOKEN" \
    --include-path /oauth/introspect
run resource-api $((RUN_SECONDS / 2)) "$API/openapi.json" --phases "$single" \
    -H "Authorization: Bearer $(access_token api)"

if grep -E 'panicked|internal error' "$work/auth.log" "$work/api.log"; then
    echo "a service logged a panic or an internal error" >&2
    failed=1
fi
log "done (failed=$failed)"
exit "$failed"
