#!/usr/bin/env bash
# Reproduces the numbers in BENCHMARKS.md: release build, the real server and the
# load tool as two processes on loopback.
#
#   scripts/bench.sh sqlite      # embedded SQLite (the default setup)
#   scripts/bench.sh redis-pg    # PostgreSQL primary + Redis mirror (127.0.0.1)
#   scripts/bench.sh storage     # SQLite bytes per workflow after a 20 s e2e run
#   scripts/bench.sh pg-storage  # PostgreSQL bytes per workflow (table + index + TOAST)
#   scripts/bench.sh archive     # archive 100,000 workflows from SQLite to a directory
#   scripts/bench.sh cluster     # 1, 2 and 3 instances on one PostgreSQL; failover time
#   scripts/bench.sh crash       # the crash tests against the release binary: SIGKILL with
#                                # 300 workflows in flight; no answer received >= 50 ms
#                                # before the kill may be requested again (asserted)
#   BEFORE=bin AFTER=bin scripts/bench.sh pairs
#                                # two builds alternating (ROUNDS=2): one at a time,
#                                # 200 in flight and sequential creates on one server,
#                                # then 200 in flight at 50 ms on another; a fresh
#                                # SQLite store per server start
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
  if [ "$SETUP" = "pg" ]; then
    local db="mcpo_bench_$$_$RUN_NO"
    psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE $db" >/dev/null
    DBS+=("$db")
    SETUP_ENV+=(MCPO__POSTGRES__URL="postgres://postgres@127.0.0.1:5432/$db")
  fi
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

if [ "$SETUP" = pairs ]; then
  # The before/after comparison BENCHMARKS.md reports: the same loop for both
  # builds, alternating, so a drifting host shifts both alike.
  : "${BEFORE:?BEFORE=<binary> is required}" "${AFTER:?AFTER=<binary> is required}"
  SETUP=sqlite
  for round in $(seq 1 "${ROUNDS:-2}"); do
    for side in before after; do
      if [ "$side" = before ]; then BIN="$BEFORE"; else BIN="$AFTER"; fi
      echo; echo "## round $round, $side: $BIN"
      start_server 0
      run "$LOADGEN" e2e --url "$URL" --concurrency 1 --duration "$DURATION" --sim-latency-ms 0 --server-pid "$SERVER_PID"
      run "$LOADGEN" e2e --url "$URL" --concurrency 200 --duration "$DURATION" --sim-latency-ms 0 --server-pid "$SERVER_PID"
      run "$LOADGEN" http --url "$URL" --op post --concurrency 1 --duration 10s
      stop_server
      start_server 50
      run "$LOADGEN" e2e --url "$URL" --concurrency 200 --duration "$DURATION" --sim-latency-ms 50 --server-pid "$SERVER_PID"
      stop_server
    done
  done
  exit 0
fi

if [ "$SETUP" = cluster ]; then
  # N instances on one new database, ports PORT.. PORT+N-1, ids bench-1..N.
  PIDS=()
  start_members() {
    local n="$1" latency="$2" db; shift 2
    RUN_NO=$((RUN_NO + 1)); db="mcpo_bench_$$_$RUN_NO"
    psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE $db" >/dev/null
    DBS+=("$db"); DB_URL="postgres://postgres@127.0.0.1:5432/$db"
    URLS=(); PIDS=()
    for i in $(seq 1 "$n"); do
      env MCPO__POSTGRES__URL="$DB_URL" MCPO__CLUSTER__INSTANCE_ID="bench-$i" \
        MCPO__STORAGE__SQLITE_PATH="$WORK/unused-$RUN_NO-$i.db" \
        MCPO__SERVER__BIND="127.0.0.1:$((PORT + i - 1))" MCPO__LIMITS__MAX_ACTIVE=100000 \
        MCPO__PROVIDERS__SIMULATED__LATENCY_MS="$latency" MCPO__LOG__LEVEL=warn "$@" \
        "$BIN" >"$WORK/server-$i.out" 2>"$WORK/server-$i.log" &
      PIDS+=($!); URLS+=(--url "http://127.0.0.1:$((PORT + i - 1))")
      for _ in $(seq 1 200); do grep -q "listening on" "$WORK/server-$i.out" 2>/dev/null && break; sleep 0.05; done
    done
    SERVER_PID="${PIDS[0]}"
  }
  stop_members() { kill "${PIDS[@]}" 2>/dev/null || true; wait "${PIDS[@]}" 2>/dev/null || true; SERVER_PID=""; }
  for n in 1 2 3; do
    start_members "$n" 0
    echo; echo "## $n instance(s) on one PostgreSQL"
    run "$LOADGEN" e2e "${URLS[@]}" --concurrency 200 --duration "$DURATION" --sim-latency-ms 0
    stop_members
  done
  # Failover: 300 research workflows (8 agents, 200 ms calls) on instance 1 of 3,
  # SIGKILL it, time until every one of its leases is claimed and until all 300 are done.
  start_members 3 200
  seq 1 300 | xargs -P 50 -I{} curl -s -o /dev/null -H 'content-type: application/json' \
    -X POST "http://127.0.0.1:$PORT/v1/workflows" \
    -d '{"pattern":"research","task":"failover bench {}","config":{"num_agents":8,"synthesis_group_size":4}}'
  sleep 0.3
  held=$(psql -tAq "$DB_URL" -c "SELECT count(*) FROM leases WHERE instance_id = 'bench-1'")
  t0=$(date +%s.%N); kill -9 "${PIDS[0]}"
  until [ "$(psql -tAq "$DB_URL" -c "SELECT count(*) FROM leases WHERE instance_id = 'bench-1'")" = 0 ]; do sleep 0.05; done
  t1=$(date +%s.%N)
  until [ "$(psql -tAq "$DB_URL" -c "SELECT count(*) FROM workflows WHERE status <> 'completed'")" = 0 ]; do sleep 0.1; done
  t2=$(date +%s.%N)
  echo; echo "## failover (cluster.lease_ttl 10s, 3 instances, 300 workflows of 11 calls at 200 ms)"
  echo "SIGKILL with $held workflows leased to it: all claimed and resumed after $(echo "$t1 - $t0" | bc) s; all 300 completed after $(echo "$t2 - $t0" | bc) s"
  kill "${PIDS[1]}" "${PIDS[2]}" 2>/dev/null || true; wait 2>/dev/null || true; SERVER_PID=""
  exit 0
fi

if [ "$SETUP" = crash ]; then
  # tests/durable.rs's crash tests (SQLite, then PostgreSQL + Redis) with the
  # release server: MCPO_CRASH_WINDOW_CHECK turns the 50 ms report into an assertion.
  # (With --nocapture a test's output can follow its "test … " line: -o keeps it.)
  echo
  echo "\$ MCPO_TEST_BIN=$BIN MCPO_CRASH_WINDOW_CHECK=1 cargo test --test integration crash_test -- --ignored --test-threads=1 --nocapture"
  MCPO_TEST_BIN="$BIN" MCPO_CRASH_WINDOW_CHECK=1 cargo test --quiet --test integration crash_test -- \
    --ignored --test-threads=1 --nocapture 2>&1 | grep -oE 'CRASH .*|test result.*|panicked.*|left.*|right.*'
  exit 0
fi

if [ "$SETUP" = storage ]; then
  SETUP=sqlite
  start_server 0
  run "$LOADGEN" e2e --url "$URL" --concurrency 200 --duration "$DURATION" --sim-latency-ms 0 --server-pid "$SERVER_PID"
  stop_server
  store_size
  exit 0
fi

# PostgreSQL bytes per workflow: every table of the schema with its indexes and
# TOAST (pg_total_relation_size) over the workflows stored, as left by the run and
# again after VACUUM FULL (the bytes the data needs, without dead rows).
pg_size() {
  local db="mcpo_bench_$$_$RUN_NO" n
  n=$(psql -h 127.0.0.1 -U postgres -d "$db" -tAc "SELECT count(*) FROM workflows")
  psql -h 127.0.0.1 -U postgres -d "$db" -tAc "
    SELECT c.relname || ': ' || pg_total_relation_size(c.oid) / $n || ' bytes per workflow'
    FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
    WHERE s.nspname = 'public' AND c.relkind = 'r' AND c.relname <> 'refinery_schema_history'
      AND pg_total_relation_size(c.oid) > 0 ORDER BY 1"
  echo "store: $n workflows in $(psql -h 127.0.0.1 -U postgres -d "$db" -tAc "
    SELECT sum(pg_total_relation_size(c.oid)) || ' bytes = ' || (sum(pg_total_relation_size(c.oid)) / $n)::bigint
    FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
    WHERE s.nspname = 'public' AND c.relkind = 'r' AND c.relname <> 'refinery_schema_history'") bytes per workflow"
  echo "history (workflows, results, events, model_costs): $(psql -h 127.0.0.1 -U postgres -d "$db" -tAc "
    SELECT (sum(pg_total_relation_size(t::regclass)) / $n)::bigint
    FROM unnest(ARRAY['workflows', 'results', 'events', 'model_costs']) t") bytes per workflow"
}

if [ "$SETUP" = pg-storage ]; then
  SETUP=pg
  start_server 0
  run "$LOADGEN" e2e --url "$URL" --concurrency 200 --duration "$DURATION" --sim-latency-ms 0 --server-pid "$SERVER_PID"
  stop_server
  echo; echo "as left by the run:"; pg_size
  psql -q -h 127.0.0.1 -U postgres -d "mcpo_bench_$$_$RUN_NO" -c "VACUUM FULL"
  echo; echo "after VACUUM FULL:"; pg_size
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
run "$LOADGEN" e2e --url "$URL" --concurrency 1 --duration "$DURATION" --sim-latency-ms 0 --server-pid "$SERVER_PID"
run "$LOADGEN" e2e --url "$URL" --concurrency 200 --duration "$DURATION" --sim-latency-ms 0 --server-pid "$SERVER_PID"
run "$LOADGEN" e2e --url "$URL" --rate 500 --duration "$DURATION" --sim-latency-ms 0 --server-pid "$SERVER_PID"
run "$LOADGEN" http --url "$URL" --op get --concurrency 64 --duration 10s
run "$LOADGEN" http --url "$URL" --op post --concurrency 64 --duration 10s
run "$LOADGEN" http --url "$URL" --op post --concurrency 1 --duration 10s
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
