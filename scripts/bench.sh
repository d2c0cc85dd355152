#!/usr/bin/env bash
# Reproduces the numbers in BENCHMARKS.md: release build, the real server and the
# load tool as two processes on loopback.
#
#   scripts/bench.sh sqlite      # embedded SQLite (the default setup)
#   scripts/bench.sh redis-pg    # PostgreSQL primary + Redis mirror (127.0.0.1)
#   scripts/bench.sh storage     # SQLite bytes per workflow after a 20 s e2e run
#   scripts/bench.sh archive     # archive 100,000 workflows from SQLite to a directory
#
# BIN and LOADGEN may name other builds (to compare two commits back to back);
# NO_BUILD=1 skips the release build.
#
# Each run starts a fresh store (temporary SQLite file / new PG database / own
# Redis prefix). Output: one block per measurement, each headed by its command.
set -euo pipefail
cd "$(dirname "$0")/.."

SETUP="${1:-sqlite}"
DURATION="${DURATION:-20s}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/mcpo-target}"
BIN="${BIN:-$CARGO_TARGET_DIR/release/mcp-orchestrator}"
LOADGEN="${LOADGEN:-$CARGO_TARGET_DIR/release/loadgen}"
PORT="${PORT:-5077}"
URL="http://127.0.0.1:$PORT"
WORK="$(mktemp -d /tmp/mcpo-bench.XXXXXX)"
SERVER_PID=""

[ -n "${NO_BUILD:-}" ] || cargo build --release --quiet --bins

DBS=()
PREFIXES=()
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  for p in "${PREFIXES[@]}"; do
    redis-cli -h 127.0.0.1 --scan --pattern "$p*" | xargs -r -n 5000 redis-cli -h 127.0.0.1 del >/dev/null
  done
  for db in "${DBS[@]}"; do
    psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

RUN_NO=0
setup_env() {
  RUN_NO=$((RUN_NO + 1))
  SETUP_ENV=(MCPO__STORAGE__SQLITE_PATH="$WORK/orchestrator-$RUN_NO.db")
  if [ "$SETUP" = "redis-pg" ]; then
    local db="mcpo_bench_$$_$RUN_NO" prefix="mcpo-bench:$$:$RUN_NO:"
    psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE $db" >/dev/null
    DBS+=("$db")
    PREFIXES+=("$prefix")
    SETUP_ENV+=(MCPO__POSTGRES__URL="postgres://postgres@127.0.0.1:5432/$db"
                MCPO__REDIS__URL="redis://127.0.0.1:6379"
                MCPO__REDIS__KEY_PREFIX="$prefix")
  fi
}

# start_server LATENCY_MS [extra VAR=value ...]
start_server() {
  local latency="$1"; shift
  setup_env
  env "${SETUP_ENV[@]}" \
    MCPO__SERVER__BIND="127.0.0.1:$PORT" \
    MCPO__LIMITS__MAX_ACTIVE=100000 \
    MCPO__PROVIDERS__SIMULATED__LATENCY_MS="$latency" \
    MCPO__LOG__LEVEL=warn \
    "$@" "$BIN" >"$WORK/server.out" 2>"$WORK/server.log" &
  SERVER_PID=$!
  for _ in $(seq 1 200); do
    grep -q "listening on" "$WORK/server.out" 2>/dev/null && return
    sleep 0.05
  done
  cat "$WORK/server.log" >&2
  echo "server did not start" >&2
  exit 1
}

stop_server() {
  kill "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=""
}

run() {
  echo
  echo "\$ $*"
  "$@"
}

echo "# setup: $SETUP; $(nproc) cores; $(date -u +%FT%TZ); commit $(git rev-parse --short HEAD); $BIN"

# Bytes on disk (database + WAL) over the workflows it holds.
store_size() {
  local db="$WORK/orchestrator-$RUN_NO.db" n size
  n=$(sqlite3 "$db" "SELECT count(*) FROM workflows")
  size=$(( $(stat -c %s "$db") + $(stat -c %s "$db-wal" 2>/dev/null || echo 0) ))
  echo "store: $n workflows in $size bytes = $((size / n)) bytes per workflow"
}

# Waits until no workflow is pending or running.
wait_idle() {
  for _ in $(seq 1 600); do
    curl -s "$URL/v1/analytics/workflows" | grep -q '"active":0,' && return
    sleep 0.5
  done
}

if [ "$SETUP" = storage ]; then
  SETUP=sqlite
  start_server 0
  run "$LOADGEN" e2e --url "$URL" --concurrency 200 --duration "$DURATION" --sim-latency-ms 0 --server-pid "$SERVER_PID"
  stop_server
  store_size
  exit 0
fi

if [ "$SETUP" = archive ]; then
  SETUP=sqlite
  start_server 0 MCPO__RETENTION__MAX_COMPLETED=100 MCPO__LIMITS__MAX_ACTIVE=2000 MCPO__ARCHIVE__ENABLED=false
  run "$LOADGEN" http --url "$URL" --op post --concurrency 64 --requests 100000 --duration 600s
  wait_idle
  stop_server
  store_size
  echo
  echo "\$ mcp-orchestrator archive --older-than 0s"
  env "${SETUP_ENV[@]}" MCPO__LOG__LEVEL=warn "$BIN" archive --older-than 0s
  echo "archive directory: $(du -sb "$WORK/archive" | cut -f1) bytes in $(find "$WORK/archive" -type f | wc -l) objects"
  store_size
  exit 0
fi

start_server 0
run "$LOADGEN" e2e --url "$URL" --concurrency 200 --duration "$DURATION" --sim-latency-ms 0 --server-pid "$SERVER_PID"
run "$LOADGEN" e2e --url "$URL" --rate 500 --duration "$DURATION" --sim-latency-ms 0 --server-pid "$SERVER_PID"
run "$LOADGEN" http --url "$URL" --op get --concurrency 64 --duration 10s
run "$LOADGEN" http --url "$URL" --op post --concurrency 64 --duration 10s
stop_server

start_server 50
run "$LOADGEN" e2e --url "$URL" --concurrency 200 --duration "$DURATION" --sim-latency-ms 50 --server-pid "$SERVER_PID"
run "$LOADGEN" e2e --url "$URL" --rate 500 --duration "$DURATION" --sim-latency-ms 50 --server-pid "$SERVER_PID"
stop_server

# Restore: 100,000 workflows created through the API (3 agents each), then a
# fresh process restores them all into memory (retention.max_completed = 100000).
start_server 0 MCPO__RETENTION__MAX_COMPLETED=100 MCPO__LIMITS__MAX_ACTIVE=2000
run "$LOADGEN" http --url "$URL" --op post --concurrency 64 --requests 100000 --duration 600s
stop_server
sleep 1
RESTORE_ENV=()
for kv in "${SETUP_ENV[@]}"; do RESTORE_ENV+=(--env "$kv"); done
run "$LOADGEN" restore --bin "$BIN" "${RESTORE_ENV[@]}" --retain 100000
