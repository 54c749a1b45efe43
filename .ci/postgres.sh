#!/usr/bin/env bash
# A throw-away PostgreSQL server for the database-backend tests (Debian's postgresql package: initdb + pg_ctl in a
# new temporary folder; as the unprivileged 'postgres' account, or 'nobody', when run as root, since PostgreSQL
# refuses root; listening on 127.0.0.1 only, trust authentication, durability off: it is deleted afterwards).
#
#   pg_env=$(bash .ci/postgres.sh start) && eval "$pg_env"
#       installs the package if its binaries are missing, starts the server and prints the exports
#       SYNTHGUARD_TEST_POSTGRES_URL (the maintenance database; the tests make one database per test),
#       SYNTHGUARD_TEST_POSTGRES_DIR and SYNTHGUARD_REQUIRE_POSTGRES=1 (tests fail rather than skip without it)
#   bash .ci/postgres.sh stop "$SYNTHGUARD_TEST_POSTGRES_DIR"
#       stops that server and deletes its folder
# Progress and errors go to stderr; only the exports go to stdout.
set -euo pipefail

say() { echo "postgres.sh: $*" >&2; }

find_bin() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then echo "$dir"; return; fi
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
    fi
}

as_owner() {
    # Run a command as the account the server runs as ($owner; empty: this one).
    if [ -n "$owner" ]; then runuser -u "$owner" -- "$@"; else "$@"; fi
}

start() {
    local bin dir port
    bin=$(find_bin)
    if [ -z "$bin" ]; then
        say "installing Debian's postgresql package"
        local as_root=""; [ "$(id -u)" -ne 0 ] && as_root="sudo"
        $as_root apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq postgresql >&2
        bin=$(find_bin)
        [ -n "$bin" ] || { say "initdb and pg_ctl still missing after installing postgresql"; exit 1; }
    fi
    owner=""
    if [ "$(id -u)" -eq 0 ]; then
        if id postgres >/dev/null 2>&1; then owner=postgres; else owner=nobody; fi
    fi
    dir=$(mktemp -d "${TMPDIR:-/tmp}/synthguard-pg-XXXXXX")
    [ -n "$owner" ] && chown "$owner" "$dir"
    echo "$bin" > "$dir/bin"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    if ! as_owner "$bin/initdb" -D "$dir/data" -U synthguard -A trust -E UTF8 --no-locale --no-sync >"$dir/initdb.log" 2>&1; then
        cat "$dir/initdb.log" >&2; rm -rf "$dir"; say "initdb failed"; exit 1
    fi
    cat >> "$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 60
shared_buffers = 32MB
CONF
    if ! as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >&2; then
        cat "$dir/server.log" >&2 || true; rm -rf "$dir"; say "the server did not start"; exit 1
    fi
    say "PostgreSQL ($("$bin/postgres" --version)) on 127.0.0.1:$port, folder $dir"
    echo "export SYNTHGUARD_TEST_POSTGRES_URL=postgresql://synthguard@127.0.0.1:$port/postgres"
    echo "export SYNTHGUARD_TEST_POSTGRES_DIR=$dir"
    echo "export SYNTHGUARD_REQUIRE_POSTGRES=1"
}

stop() {
    local dir=${1:-}
    if [ -z "$dir" ] || [ ! -f "$dir/bin" ] || [ ! -f "$dir/data/PG_VERSION" ]; then
        say "no server folder made by this script: ${dir:-(none given)}"; exit 1
    fi
    owner=""
    [ "$(id -u)" -eq 0 ] && owner=$(stat -c %U "$dir")
    [ "$owner" = root ] && owner=""
    as_owner "$(cat "$dir/bin")/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >&2 || say "pg_ctl stop failed"
    rm -rf "$dir"
}

case "${1:-}" in
    start) start ;;
    stop) stop "${2:-}" ;;
    *) say "usage: $0 start | stop DIR"; exit 2 ;;
esac
