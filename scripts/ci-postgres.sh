#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests (no system service is touched).
#
#   scripts/ci-postgres.sh start DIR   # initdb into DIR/data, start on a free
#                                      # localhost port, print the admin URL
#                                      # (also written to DIR/url)
#   scripts/ci-postgres.sh stop DIR    # stop it and delete DIR
#
# Needs the PostgreSQL server binaries (Debian: apt-get install postgresql).
# Run as root it runs the server as the "postgres" user; otherwise as you.
# Password auth (scram) with a random password; fsync off (test data only).
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
dir=$2

bindir() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return; fi
    if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then pg_config --bindir; return; fi
    if command -v initdb >/dev/null; then dirname "$(command -v initdb)"; return; fi
    echo "PostgreSQL server binaries (initdb, pg_ctl) not found" >&2
    exit 1
}

as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

case $cmd in
start)
    BIN=$(bindir)
    if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
        useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    fi
    mkdir -p "$dir"
    chmod 700 "$dir"
    if [ "$(id -u)" -eq 0 ]; then chown postgres "$dir"; fi
    pw=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    as_pg sh -c "umask 077; printf '%s\n' '$pw' > '$dir/pwfile'"
    as_pg "$BIN/initdb" -D "$dir/data" -U postgres --auth=scram-sha-256 --pwfile="$dir/pwfile" \
        --encoding=UTF8 --locale=C >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_pg "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 120 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null \
        || { cat "$dir/server.log" >&2; exit 1; }
    url="postgresql://postgres:$pw@127.0.0.1:$port/postgres"
    as_pg sh -c "umask 077; printf '%s\n' '$url' > '$dir/url'"
    echo "$url"
    ;;
stop)
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_pg "$(bindir)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    fi
    rm -rf "$dir"
    ;;
*)
    usage
    ;;
esac
