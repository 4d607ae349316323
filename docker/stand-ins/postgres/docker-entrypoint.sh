#!/bin/sh
# The official postgres image's start, for the variables docker-compose.yml
# uses: on an empty PGDATA, create the cluster with POSTGRES_USER (default
# postgres) as superuser, its password from POSTGRES_PASSWORD or
# POSTGRES_PASSWORD_FILE (the file read as root, before dropping to the
# postgres user, as the official image does), the database POSTGRES_DB
# (default: the user's name), then run the *.sql and *.sh files of
# /docker-entrypoint-initdb.d in order as the superuser; then run postgres
# listening on every address. The password is handed to initdb in a file,
# never on a command line or in the log.
set -eu

if [ "${1:-}" != postgres ]; then
    exec "$@"
fi
shift

if [ "$(id -u)" = 0 ]; then
    if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
        POSTGRES_PASSWORD=$(cat "$POSTGRES_PASSWORD_FILE")
        export POSTGRES_PASSWORD
        unset POSTGRES_PASSWORD_FILE
    fi
    mkdir -p "$PGDATA"
    chown postgres:postgres "$PGDATA"
    chmod 0700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" postgres "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    user=${POSTGRES_USER:-postgres}
    database=${POSTGRES_DB:-$user}
    password=${POSTGRES_PASSWORD:-}
    if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
        password=$(cat "$POSTGRES_PASSWORD_FILE")
    fi
    if [ -z "$password" ]; then
        echo "POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE) must be set" >&2
        exit 1
    fi
    echo "initialising the database cluster in $PGDATA"
    pwfile=$(mktemp)
    printf '%s\n' "$password" >"$pwfile"
    initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 --locale=C.UTF-8 -D "$PGDATA" >/dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
    # A private socket and no TCP: nothing (health checks included) sees
    # this server before the database and the init files are done.
    socket=$(mktemp -d)
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -k $socket" -w start >/dev/null
    if [ "$database" != postgres ]; then
        printf 'CREATE DATABASE :"database";\n' |
            psql -q -v ON_ERROR_STOP=1 -v database="$database" -h "$socket" -U "$user" -d postgres
    fi
    for file in /docker-entrypoint-initdb.d/*; do
        case "$file" in
            *.sql)
                echo "running $file"
                psql -q -v ON_ERROR_STOP=1 -h "$socket" -U "$user" -d "$database" -f "$file"
                ;;
            *.sh)
                echo "running $file"
                PGHOST=$socket PGUSER=$user PGDATABASE=$database sh "$file"
                ;;
        esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    rmdir "$socket"
    echo "database $database ready for $user"
fi

exec postgres "$@"
