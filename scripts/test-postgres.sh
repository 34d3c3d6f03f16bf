#!/usr/bin/env bash
# Prints a PostgreSQL server URL for the tests. Uses the server on 127.0.0.1:5432
# when one answers; otherwise starts a throwaway cluster under .pgtest/ and uses that.
# DESIGNGATE_PG_PROBE_PORT (default 5432) is the port probed for a running server;
# DESIGNGATE_PG_CLUSTER_PORT (default 54329) is where the throwaway cluster listens.
set -euo pipefail
cd "$(dirname "$0")/.."

PROBE_PORT="${DESIGNGATE_PG_PROBE_PORT:-5432}"
if pg_isready -q -h 127.0.0.1 -p "$PROBE_PORT" 2>/dev/null \
   && psql -h 127.0.0.1 -p "$PROBE_PORT" -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1; then
  echo "postgresql://postgres@127.0.0.1:$PROBE_PORT/postgres"
  exit 0
fi

PORT="${DESIGNGATE_PG_CLUSTER_PORT:-54329}"
DIR="$PWD/.pgtest"
BIN="$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1)")"
[ -x "$BIN/initdb" ] || BIN="$(dirname "$(command -v initdb)")"
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

if ! pg_isready -q -h 127.0.0.1 -p "$PORT" 2>/dev/null; then
  rm -rf "$DIR" && mkdir -p "$DIR"
  [ "$(id -u)" = 0 ] && chown postgres "$DIR"
  as_postgres "$BIN/initdb" -D "$DIR/data" -U postgres -A trust >/dev/null
  as_postgres "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w \
    -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
fi
echo "postgresql://postgres@127.0.0.1:$PORT/postgres"
