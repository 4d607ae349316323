#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432 and lets the
# `postgres` user in without a password (trust, as on our machines): start
# the installed cluster, or install Debian's package first.
set -euo pipefail

ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
can_login() { psql -h 127.0.0.1 -U postgres -d postgres -Atc 'SELECT 1' >/dev/null 2>&1; }

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "installing PostgreSQL from Debian's packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql postgresql-client
fi

if ! ready; then
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    if [ -z "$version" ]; then
        echo "no PostgreSQL cluster found under /etc/postgresql" >&2
        exit 1
    fi
    if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep "^$version main$" >/dev/null; then
        pg_createcluster "$version" main
    fi
    echo "starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 30); do ready && break; sleep 1; done
fi
ready || { echo "PostgreSQL does not answer on 127.0.0.1:5432" >&2; exit 1; }

if ! can_login; then
    # A fresh Debian cluster asks for passwords over TCP: trust local
    # connections, as the development and test setup expects.
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    hba="/etc/postgresql/$version/main/pg_hba.conf"
    echo "setting trust authentication for local connections in $hba"
    sed -i -E 's/^(local|host)(\s+all\s+all\s+.*)\s(peer|md5|scram-sha-256)\s*$/\1\2 trust/' "$hba"
    sed -i -E 's/^(local\s+all\s+postgres\s+)(peer|md5|scram-sha-256)\s*$/\1trust/' "$hba"
    pg_ctlcluster --skip-systemctl-redirect "$version" main reload
    sleep 1
fi
can_login || { echo "cannot log in to PostgreSQL as postgres on 127.0.0.1" >&2; exit 1; }
psql -h 127.0.0.1 -U postgres -d postgres -Atc "SELECT 'PostgreSQL ' || current_setting('server_version') || ' ready'"
