# shellcheck shell=bash
# What the scripts share (sourced, never run):
#
#   . "$(dirname "$0")/lib.sh"
#
#   step TEXT...           a heading on stderr
#   die TEXT...            an error on stderr, then exit 1
#   timed COMMAND...       runs COMMAND, then says how long it took
#   until_true SECONDS COMMAND...
#                          runs COMMAND every 0.2 s until it succeeds;
#                          returns 1 when the time is up (the caller says
#                          what failed: `until_true 5 cond || die "..."`)
#   wait_ready URL SECONDS polls URL until it answers 2xx; when the time is
#                          up, says what it saw last and returns 1 (under
#                          `set -e` the script stops there)
#   free_port [COUNT]      COUNT (default 1) distinct TCP ports the kernel
#                          has just handed out on 127.0.0.1, one a line
#
# Needs curl (wait_ready) and python3 (free_port).

step() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Not `"$@" || …`: that would turn off `set -e` inside the command's
# functions.
timed() {
    local started=$SECONDS
    "$@"
    printf -- '-- %s: %ss\n' "$*" "$((SECONDS - started))" >&2
}

# Milliseconds of the wall clock (bash 5's EPOCHREALTIME; $SECONDS ticks
# whole seconds, so a deadline on it can come up to a second early).
now_ms() { local us=${EPOCHREALTIME//[!0-9]/}; echo $((us / 1000)); }

until_true() {
    local limit=$1
    shift
    local deadline=$(($(now_ms) + limit * 1000))
    until "$@"; do
        [ "$(now_ms)" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}

wait_ready() {
    local url=${1:?wait_ready URL SECONDS} seconds=${2:?wait_ready URL SECONDS}
    [[ $seconds =~ ^[0-9]+$ ]] || die "wait_ready: SECONDS is a whole number, not '$seconds'"
    command -v curl >/dev/null 2>&1 || die "wait_ready needs curl"
    local deadline=$(($(now_ms) + seconds * 1000)) out code message last
    while :; do
        # `%{errormsg}` is curl's own reason when nothing answered (7.75+).
        out=$(curl -s -o /dev/null --max-time 2 -w '%{http_code} %{errormsg}' "$url" 2>/dev/null || true)
        code=${out%% *}
        message=${out#* }
        case "$code" in
            2??) return 0 ;;
            000 | '') last="no answer${message:+ ($message)}" ;;
            *) last="HTTP $code" ;;
        esac
        if [ "$(now_ms)" -ge "$deadline" ]; then
            printf 'error: %s not ready after %ss; last seen: %s\n' "$url" "$seconds" "$last" >&2
            return 1
        fi
        sleep 0.2
    done
}

# The sockets stay bound until every port is chosen, so one call never
# hands out the same port twice. Another process may still take a port
# before the caller binds it: a small window, not a fixed-port collision.
free_port() {
    python3 - "${1:-1}" <<'PY'
import socket, sys
sockets = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    sockets.append(s)
for s in sockets:
    print(s.getsockname()[1])
PY
}
