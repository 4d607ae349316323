#!/usr/bin/env bash
# The whole stack under docker compose, for real, and tested running:
#
#   1. `up --build -d`, then every health check passes;
#   2. the end-to-end suite in URL mode inside the stack's network (the
#      `e2e` service, profile `test`);
#   3. from this machine, against the published ports: the book's curl
#      walk-through, the mail catcher's API, and the demo page on :3000 in
#      headless Chromium (scripts/compose_browser.py);
#   4. the auth server stopped: the resource API fails closed (503) past
#      REVOCATION_MAX_STALENESS, and recovers once it is started again;
#   5. PostgreSQL restarted: both services come back by themselves (same
#      containers) and a refresh token issued before still rotates;
#   6. the figures: image sizes and each container's memory.
#
# `down -v` at the end, failed or not, with the containers' logs when
# something failed. The images stay, so a second run reuses them and the
# build cache. Needs the engine and the stand-in images
# (scripts/docker-images.sh); with USE_OFFICIAL_IMAGES=1 Compose pulls the
# official ones instead.
#
#   scripts/compose-e2e.sh
#
# Settings of this run: login rate limits off (the suite logs in far more
# often than they allow), REVOCATION_MAX_STALENESS=5s (the outage step
# waits that long), project name auth-platform-ci. Every other value is
# the compose file's.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/docker-lib.sh
. scripts/docker-lib.sh

export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-auth-platform-ci}"
export LOGIN_RATE_LIMIT=0 LOGIN_ACCOUNT_RATE_LIMIT=0
export REVOCATION_MAX_STALENESS="${REVOCATION_MAX_STALENESS:-5s}"
staleness=${REVOCATION_MAX_STALENESS%s}
[[ $staleness =~ ^[0-9]+$ ]] || die "REVOCATION_MAX_STALENESS in whole seconds here (e.g. 5s), not $REVOCATION_MAX_STALENESS"

# Compose v2 when the docker client has it, else docker-compose (1.29 on
# Debian). COMPOSE overrides.
if [ -n "${COMPOSE:-}" ]; then
    read -ra compose <<<"$COMPOSE"
elif docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
else
    compose=(docker-compose)
fi
env_file=(--env-file docker/stand-ins.env)
[ "${USE_OFFICIAL_IMAGES:-}" = 1 ] && env_file=()
dc() { "${compose[@]}" "${env_file[@]}" "$@"; }

auth=http://localhost:8080
api=http://localhost:8081
web=http://localhost:3000
mail=http://localhost:8025
figures=()
figure() { figures+=("$1"); printf -- '-- %s\n' "$1" >&2; }

finish() {
    local status=$1
    if [ "$status" -ne 0 ]; then
        step "FAILED: the containers and their logs"
        dc ps -a || true
        dc logs --no-color --tail=150 || true
    fi
    step "down -v"
    dc --profile test down -v --remove-orphans >/dev/null 2>&1 || true
    exit "$status"
}
trap 'finish $?' EXIT

# curl that prints the body and appends the status code on its own line.
request() { curl -sS --max-time 30 -w '\n%{http_code}' "$@"; }
code_of() { tail -n 1 <<<"$1"; }
body_of() { sed '$d' <<<"$1"; }
# A body fit for the log: no token values.
redacted() { body_of "$1" | sed -E 's/("[a-z_]*token"[[:space:]]*:[[:space:]]*")[^"]*/\1[redacted]/g' | { head -c 300; cat >/dev/null; }; }
expect() { # expect WHAT CODE RESPONSE
    if [ "$(code_of "$3")" != "$2" ]; then
        die "$1: expected $2, got $(code_of "$3"): $(redacted "$3")"
    fi
    echo "ok: $1 ($2)"
}
json() { jq -er "$1" <<<"$2"; }

container() { dc ps -q "$1"; }

wait_healthy() {
    local deadline=$((SECONDS + 180)) id name state
    for id in $(docker ps -aq --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME"); do
        name=$(docker inspect --format '{{.Name}}' "$id")
        while :; do
            # One-shot containers must have exited 0; the others run, and
            # pass their health check when they have one.
            state=$(docker inspect --format '{{.State.Status}}:{{.State.ExitCode}}{{if .State.Health}}:{{.State.Health.Status}}{{end}}' "$id")
            case "$state" in
                running:0:healthy | running:0 | exited:0 | exited:0:*) break ;;
                exited:*) die "$name exited: $state" ;;
            esac
            [ "$SECONDS" -lt "$deadline" ] || die "$name is $state"
            sleep 0.5
        done
        echo "$name: $state"
    done
}

port_free() {
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
        die "port $1 is already in use: stop what listens there first (the stack publishes it)"
    fi
}

walkthrough() {
    # The book's walk through with curl (docs/src/getting-started.md), checked.
    local email="walk-$RANDOM$RANDOM@example.com" password="correct horse battery staple" r
    local access refresh jar
    r=$(request -X POST "$auth/auth/register" -H 'Content-Type: application/json' \
        -d "{\"email\": \"$email\", \"password\": \"$password\"}")
    expect "register" 201 "$r"
    [ "$(json .user.email "$(body_of "$r")")" = "$email" ] || die "register: $(redacted "$r")"

    r=$(request -X POST "$auth/auth/login" -H 'Content-Type: application/json' \
        -d "{\"email\": \"$email\", \"password\": \"$password\", \"refresh_token_delivery\": \"body\"}")
    expect "login, refresh token in the body" 200 "$r"
    access=$(json .access_token "$(body_of "$r")")
    refresh=$(json .refresh_token "$(body_of "$r")")

    r=$(request "$api/api/me" -H "Authorization: Bearer $access")
    expect "GET /api/me" 200 "$r"
    [ "$(json .email "$(body_of "$r")")" = "$email" ] || die "/api/me: $(redacted "$r")"

    r=$(request "$auth/auth/sessions" -H "Authorization: Bearer $access")
    expect "GET /auth/sessions" 200 "$r"
    [ "$(json '.sessions | map(select(.current)) | length' "$(body_of "$r")")" = 1 ] || die "sessions: $(redacted "$r")"

    r=$(request -X POST "$auth/auth/refresh" -H 'Content-Type: application/json' \
        -d "{\"refresh_token\": \"$refresh\"}")
    expect "refresh rotates" 200 "$r"
    refresh=$(json .refresh_token "$(body_of "$r")")

    r=$(request -X POST "$auth/auth/logout" -H 'Content-Type: application/json' \
        -d "{\"refresh_token\": \"$refresh\"}")
    expect "logout" 204 "$r"

    r=$(request -X POST "$auth/auth/refresh" -H 'Content-Type: application/json' \
        -d "{\"refresh_token\": \"$refresh\"}")
    expect "the logged-out refresh token is refused" 401 "$r"
    [ "$(json .error "$(body_of "$r")")" = invalid_grant ] || die "refused refresh: $(redacted "$r")"

    me_refused() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$api/api/me" -H "Authorization: Bearer $access")" = 401 ]; }
    until_true 5 me_refused || die "the revoked session's access token is still accepted"
    echo "ok: the session's access token is refused at the API (401)"

    # The browser flow with a cookie jar (curl sends Secure cookies to localhost).
    jar=$(mktemp)
    r=$(request -c "$jar" -X POST "$auth/auth/login" -H 'Content-Type: application/json' \
        -d "{\"email\": \"$email\", \"password\": \"$password\"}")
    expect "login, refresh token in a cookie" 200 "$r"
    if jq -e 'has("refresh_token")' <<<"$(body_of "$r")" >/dev/null; then die "cookie login put the refresh token in the body"; fi
    expect "refresh by cookie" 200 "$(request -b "$jar" -c "$jar" -X POST "$auth/auth/refresh")"
    expect "logout by cookie" 204 "$(request -b "$jar" -c "$jar" -X POST "$auth/auth/logout")"
    rm -f "$jar"
}

mail_catcher() {
    # What the accounts work will read: a message sent over SMTP inside the
    # stack, listed and fetched raw through the API on the published port.
    local subject="compose check $RANDOM" r id
    local message
    message=$(printf 'From: auth@localhost\r\nTo: someone@example.com\r\nSubject: %s\r\n\r\na line of text\r\n' "$subject")
    if dc exec -T mail sh -c 'command -v python3' >/dev/null 2>&1; then
        # The stand-in: Python's smtplib, inside the container.
        dc exec -T mail python3 -c 'import smtplib, sys; smtplib.SMTP("127.0.0.1", 1025).sendmail("auth@localhost", ["someone@example.com"], sys.stdin.read())' <<<"$message"
    else
        # Mailpit: its own sendmail.
        dc exec -T mail /mailpit sendmail -S 127.0.0.1:1025 someone@example.com <<<"$message"
    fi
    r=$(request "$mail/api/v1/messages")
    expect "mail catcher: GET /api/v1/messages" 200 "$r"
    id=$(json ".messages[] | select(.Subject == \"$subject\") | .ID" "$(body_of "$r")")
    [ "$(json ".messages[] | select(.ID == \"$id\") | .To[0].Address" "$(body_of "$r")")" = someone@example.com ] || die "messages: $(redacted "$r")"
    r=$(request "$mail/api/v1/message/$id/raw")
    expect "mail catcher: the raw message" 200 "$r"
    grep -q "^Subject: $subject" <<<"$(body_of "$r" | tr -d '\r')" || die "raw message: $(redacted "$r")"
    expect "mail catcher: DELETE /api/v1/messages" 200 "$(request -X DELETE "$mail/api/v1/messages")"
    [ "$(json .total "$(body_of "$(request "$mail/api/v1/messages")")")" = 0 ] || die "messages left after DELETE"
}

login_body() { # prints "access refresh" of a new user
    local email="ops-$RANDOM$RANDOM@example.com" r
    r=$(request -X POST "$auth/auth/register" -H 'Content-Type: application/json' \
        -d "{\"email\": \"$email\", \"password\": \"correct horse battery staple\"}")
    expect "register $email" 201 "$r" >/dev/null
    r=$(request -X POST "$auth/auth/login" -H 'Content-Type: application/json' \
        -d "{\"email\": \"$email\", \"password\": \"correct horse battery staple\", \"refresh_token_delivery\": \"body\"}")
    expect "login" 200 "$r" >/dev/null
    json '.access_token + " " + .refresh_token' "$(body_of "$r")"
}

me_status() { curl -s -o /dev/null --max-time 10 -w '%{http_code}' "$api/api/me" -H "Authorization: Bearer $1"; }

auth_outage() {
    local access refresh stopped first_503 code pair
    pair=$(login_body)
    read -r access refresh <<<"$pair"
    [ "$(me_status "$access")" = 200 ] || die "/api/me before the outage"
    timed dc stop auth-server
    stopped=$SECONDS
    code=$(me_status "$access")
    [ "$code" = 200 ] || die "/api/me right after the auth server stopped: $code (expected 200 within the staleness bound)"
    echo "ok: right after the stop, /api/me still 200 (within the ${staleness}s bound)"
    is_503() { [ "$(me_status "$access")" = 503 ]; }
    until_true $((staleness + 10)) is_503 || die "the resource API did not fail closed within ${staleness}s + 10s"
    first_503=$((SECONDS - stopped))
    local body
    body=$(curl -s "$api/api/me" -H "Authorization: Bearer $access")
    [ "$(json .error "$body")" = unavailable ] || die "503 body: $(redacted "$body"$'\n'503)"
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$api/readyz")" = 503 ] || die "/readyz while stale"
    figure "auth server stopped: /api/me 503 unavailable after ${first_503}s (REVOCATION_MAX_STALENESS=${staleness}s), /readyz 503"
    timed dc start auth-server
    local started=$SECONDS
    is_200() { [ "$(me_status "$access")" = 200 ]; }
    until_true 90 is_200 || die "the resource API did not recover after the auth server came back"
    figure "auth server started again: /api/me 200 after $((SECONDS - started))s"
}

postgres_restart() {
    local access refresh before after r started pair
    pair=$(login_body)
    read -r access refresh <<<"$pair"
    before=$(docker inspect --format '{{.State.StartedAt}}' "$(container auth-server)" "$(container resource-api)")
    timed dc restart postgres
    started=$SECONDS
    wait_ready "$auth/readyz" 90 || die "the auth server did not become ready after PostgreSQL restarted"
    wait_ready "$api/readyz" 90 || die "the resource API did not become ready after PostgreSQL restarted"
    figure "PostgreSQL restarted: both services ready again after $((SECONDS - started))s"
    # A 503 changes nothing (the database is not there yet): retry those only.
    for _ in $(seq 1 20); do
        r=$(request -X POST "$auth/auth/refresh" -H 'Content-Type: application/json' -d "{\"refresh_token\": \"$refresh\"}")
        [ "$(code_of "$r")" = 503 ] || break
        sleep 0.5
    done
    expect "a refresh token issued before the restart rotates after it" 200 "$r"
    [ "$(json .refresh_token "$(body_of "$r")")" != "$refresh" ] || die "the refresh did not rotate"
    [ "$(me_status "$(json .access_token "$(body_of "$r")")")" = 200 ] || die "/api/me with the new access token"
    echo "ok: /api/me with the new access token (200)"
    after=$(docker inspect --format '{{.State.StartedAt}}' "$(container auth-server)" "$(container resource-api)")
    [ "$before" = "$after" ] || die "a service container was restarted: $before -> $after"
    echo "ok: the same auth-server and resource-api containers (not restarted)"
}

figures_of_the_stack() {
    step "image sizes"
    docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' |
        grep -E "^(${COMPOSE_PROJECT_NAME}_|${COMPOSE_PROJECT_NAME}-|local/)" | sort >&2
    for service in auth-server resource-api; do
        local image size
        image=$(docker inspect --format '{{.Image}}' "$(container "$service")")
        size=$(docker image inspect --format '{{.Size}}' "$image")
        figure "$service image: $((size / 1000 / 1000)) MB ($( [ "$size" -lt 100000000 ] && echo 'under 100 MB: pass' || echo 'over 100 MB: FAIL'))"
    done
    step "memory of each running container (docker stats --no-stream)"
    local running
    mapfile -t running < <(docker ps -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME")
    docker stats --no-stream --format '{{.Name}} {{.MemUsage}}' "${running[@]}" >&2
}

step "compose: $("${compose[@]}" version --short 2>/dev/null || "${compose[@]}" version | sed -n 1p), project $COMPOSE_PROJECT_NAME, images $([ ${#env_file[@]} -gt 0 ] && echo 'from docker/stand-ins.env' || echo official)"
dc --profile test down -v --remove-orphans >/dev/null 2>&1 || true
for port in 8080 8081 3000 8025; do port_free "$port"; done

step "up --build -d"
started=$SECONDS
dc up --build -d
figure "up --build -d: $((SECONDS - started))s"
step "health checks"
timed wait_healthy
wait_ready "$web/" 30 || die "the web server on :3000 does not answer"
figure "up --build -d to every health check passing: $((SECONDS - started))s"

step "the end-to-end suite in URL mode, inside the stack's network"
started=$SECONDS
dc --profile test build e2e
figure "e2e image build: $((SECONDS - started))s"
started=$SECONDS
dc --profile test run --rm -T e2e
figure "e2e suite in the stack: $((SECONDS - started))s"

step "the book's curl walk-through, against the published ports"
timed walkthrough

step "the mail catcher's API"
timed mail_catcher

step "the demo page on :3000 in headless Chromium"
timed python3 scripts/compose_browser.py "$web"

step "the auth server stopped and started again"
auth_outage

step "PostgreSQL restarted"
postgres_restart

figures_of_the_stack

figure "compose-e2e.sh in all: ${SECONDS}s"
step "summary"
printf '%s\n' "${figures[@]}"
