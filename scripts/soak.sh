#!/usr/bin/env bash
# The hostile soak (issue 12, BENCHMARKS.md): a release build of the server on
# embedded SQLite and `loadgen soak` on loopback: 60 s at 200 in flight, 5% of the
# requests hostile (every kind issue 12 names). Passes when every ordinary workflow
# completed, every hostile request got its bounded answer, the server's log has no
# panic line and its resident memory stayed flat. Not part of scripts/test.sh.
#
#   scripts/soak.sh                       # DURATION=60s CONCURRENCY=200 HOSTILE=5
#   ONLY=SseFlood,WebhookFlood scripts/soak.sh   # only these hostile kinds
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-60s}"
CONCURRENCY="${CONCURRENCY:-200}"
HOSTILE="${HOSTILE:-5}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/mcpo-target}"
BIN="$CARGO_TARGET_DIR/release/mcp-orchestrator"
LOADGEN="$CARGO_TARGET_DIR/release/loadgen"
PORT="${PORT:-5078}"
WORK="$(mktemp -d /tmp/mcpo-soak.XXXXXX)"
SERVER_PID=""

cargo build --release --quiet --bins

cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# Webhook floods deliver to 127.0.0.1:9 (nothing listens: deliveries fail and are
# retried, as with a dead receiver). Slow clients get their 408 after
# server.client_request_timeout (default 10 s).
MCPO__SERVER__BIND="127.0.0.1:$PORT" \
MCPO__STORAGE__SQLITE_PATH="$WORK/orchestrator.db" \
MCPO__LIMITS__MAX_ACTIVE=100000 \
MCPO__WEBHOOKS__ALLOW_HTTP=true \
MCPO__WEBHOOKS__ALLOW_HOSTS=127.0.0.1 \
MCPO__PROVIDERS__SIMULATED__LATENCY_MS=50 \
MCPO__LOG__LEVEL=warn \
  "$BIN" >"$WORK/server.out" 2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 1 200); do
  grep -q "listening on" "$WORK/server.out" 2>/dev/null && break
  sleep 0.05
done
grep -q "listening on" "$WORK/server.out" || { cat "$WORK/server.log" >&2; echo "server did not start" >&2; exit 1; }

echo "\$ loadgen soak --concurrency $CONCURRENCY --duration $DURATION --hostile-percent $HOSTILE"
status=0
"$LOADGEN" soak --url "http://127.0.0.1:$PORT" --concurrency "$CONCURRENCY" \
  --duration "$DURATION" --hostile-percent "$HOSTILE" \
  --server-pid "$SERVER_PID" --server-log "$WORK/server.log" \
  --webhook-url "http://127.0.0.1:9/hook" ${ONLY:+--only "$ONLY"} || status=$?
if grep -q panicked "$WORK/server.log"; then
  grep -m5 -A3 panicked "$WORK/server.log" >&2
fi
exit "$status"
