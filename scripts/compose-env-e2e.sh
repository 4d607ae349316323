#!/usr/bin/env bash
# Runs the end-to-end suite in URL mode against the two binaries started with
# exactly the environment docker-compose.yml gives them (production mode,
# generated key and token, the same health checks), for machines without a
# Docker engine. What a container would provide is stood in for, and only
# that: service host names become 127.0.0.1, named volumes become temporary
# folders, the `postgres` service becomes a fresh database (and its role) on
# the local PostgreSQL.
#
#   scripts/compose-env-e2e.sh
#
# Like `docker compose up` for the suite, it turns off the login rate limits
# (the suite logs in far more often than they allow, from one address and
# often as one user); every other value is the compose file's.
set -euo pipefail
cd "$(dirname "$0")/.."

compose=docker-compose.yml
export LOGIN_RATE_LIMIT="${LOGIN_RATE_LIMIT:-0}"
export LOGIN_ACCOUNT_RATE_LIMIT="${LOGIN_ACCOUNT_RATE_LIMIT:-0}"
admin_url="${TEST_DATABASE_URL:-${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}}"

log() { printf '== %s\n' "$*" >&2; }

cargo build --locked -p auth-server -p resource-api
bin="$(pwd)/target/debug"
work=$(mktemp -d)
database="compose_e2e_$(date +%s)_$$"
pids=()

cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    psql "$admin_url" -qAt -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

# A service's environment and command, with container-only parts replaced.
service_env() {
    python3 scripts/compose_env.py "$compose" "$1" -0 | while IFS= read -r -d '' line; do
        printf '%s\0' "$(localize "$1" "$line")"
    done
}

localize() {
    local service=$1 value=$2 mount volume
    while IFS='=' read -r mount volume; do
        [ -n "$mount" ] || continue
        mkdir -p "$work/volumes/$volume"
        value=${value//$mount\//$work/volumes/$volume/}
    done < <(python3 scripts/compose_env.py "$compose" "$service" --volumes)
    value=${value//\/usr\/local\/bin\//$bin/}
    value=${value//@postgres:/@127.0.0.1:}
    value=${value//:\/\/auth-server:/://127.0.0.1:}
    value=${value//:\/\/resource-api:/://127.0.0.1:}
    # The compose database, as a fresh one of this run.
    if [[ $value == DATABASE_URL=* ]]; then value="${value%/*}/$database"; fi
    printf '%s' "$value"
}

# Runs a command with exactly a service's environment (and a PATH). `exec`,
# so that in a background subshell the process we remember is the service
# itself, and cleanup stops it rather than orphaning it.
with_env() {
    local service=$1; shift
    local -a vars=()
    while IFS= read -r -d '' line; do vars+=("$line"); done < <(service_env "$service")
    exec env -i PATH="$PATH" HOME="${HOME:-/tmp}" "${vars[@]}" "$@"
}

# Refuses to start when something already answers on a port: its health
# check would pass for the wrong process.
port_free() {
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
        log "port $1 is already in use: stop what listens there first"
        return 1
    fi
}

value_of() { service_env "$1" | tr '\0' '\n' | sed -n "s/^$2=//p"; }

wait_healthy() {
    local service=$1 binary=$2
    for _ in $(seq 1 60); do
        if (with_env "$service" "$bin/$binary" healthcheck) >/dev/null 2>&1; then
            log "$service is healthy"
            return 0
        fi
        sleep 0.5
    done
    log "$service did not become healthy; its log:"
    cat "$work/$service.log" >&2
    return 1
}

log "postgres: role and a fresh database, as the postgres service would have them"
db_url=$(value_of auth-server DATABASE_URL)
db_user=$(sed -E 's|^postgres://([^:@]+).*|\1|' <<<"$db_url")
db_password=$(sed -E 's|^postgres://[^:]+:([^@]*)@.*|\1|' <<<"$db_url")
psql "$admin_url" -qAt -v ON_ERROR_STOP=1 <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$db_user') THEN
    CREATE ROLE "$db_user" LOGIN PASSWORD '$db_password';
  END IF;
END \$\$;
CREATE DATABASE $database OWNER "$db_user";
SQL

log "init: $(python3 scripts/compose_env.py "$compose" init --command)"
(with_env init /bin/sh -c "$(localize init "$(python3 scripts/compose_env.py "$compose" init --command)")")

auth_port=$(value_of auth-server AUTH_BIND | sed 's/.*://')
api_port=$(value_of resource-api API_BIND | sed 's/.*://')
auth_internal_port=$(value_of auth-server AUTH_INTERNAL_BIND | sed 's/.*://')
api_internal_port=$(value_of resource-api API_INTERNAL_BIND | sed 's/.*://')
for port in "$auth_port" "$api_port" "$auth_internal_port" "$api_internal_port"; do
    port_free "$port"
done

log "auth-server: $(value_of auth-server APP_ENV) mode on $(value_of auth-server AUTH_BIND)"
(with_env auth-server "$bin/auth-server" serve) >"$work/auth-server.log" 2>&1 &
pids+=($!)
wait_healthy auth-server auth-server

log "resource-api: $(value_of resource-api APP_ENV) mode on $(value_of resource-api API_BIND), AUTH_URL $(value_of resource-api AUTH_URL), AUTH_INTERNAL_URL $(value_of resource-api AUTH_INTERNAL_URL)"
(with_env resource-api "$bin/resource-api" serve) >"$work/resource-api.log" 2>&1 &
pids+=($!)
wait_healthy resource-api resource-api

signing_key=$(value_of auth-server SIGNING_KEY_FILE)

log "the end-to-end suite in URL mode"
status=0
AUTH_URL="http://127.0.0.1:$auth_port" API_URL="http://127.0.0.1:$api_port" \
AUTH_INTERNAL_URL="http://127.0.0.1:$auth_internal_port" API_INTERNAL_URL="http://127.0.0.1:$api_internal_port" \
SIGNING_KEY_FILE="$signing_key" \
    cargo test --locked -p resource-api --test e2e -- --test-threads=2 --nocapture || status=$?
if [ "$status" -ne 0 ]; then
    log "auth-server log (tail):"; tail -n 40 "$work/auth-server.log" >&2
    log "resource-api log (tail):"; tail -n 40 "$work/resource-api.log" >&2
fi
exit "$status"
