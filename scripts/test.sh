#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests against the
# real binary (and real PostgreSQL/Redis where a test needs them).
# Starts missing services, installs missing test tools, fails loudly when a needed
# service cannot be had. Safe to run repeatedly; tests isolate themselves.
set -euo pipefail
cd "$(dirname "$0")/.."

# Reuse one build directory across clones (CI clones afresh each run).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/mcpo-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

log() { printf '==> %s\n' "$*"; }
die() { printf 'FATAL: %s\n' "$*" >&2; exit 1; }

ensure_postgres() {
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then return; fi
  log "starting PostgreSQL"
  command -v pg_ctlcluster >/dev/null || die "PostgreSQL is not installed (pg_ctlcluster missing)"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 50); do pg_isready -q -h 127.0.0.1 -p 5432 && return; sleep 0.2; done
  die "PostgreSQL is not answering on 127.0.0.1:5432"
}

ensure_redis() {
  if redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then return; fi
  log "starting Redis"
  command -v redis-server >/dev/null || die "Redis is not installed (redis-server missing)"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG && return; sleep 0.2; done
  die "Redis is not answering on 127.0.0.1:6379"
}

# Services the integration tests use (PostgreSQL and Redis back their own suites).
ensure_postgres
ensure_redis

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings

log "cargo test"
results="$(mktemp)"
# No doctests: the crate has none, and an empty last run would hide the real count.
status=0
cargo test --quiet --lib --bins --tests 2>&1 | tee "$results" || status=$?

passed=$(grep -Eo '[0-9]+ passed' "$results" | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' "$results" | awk '{s+=$1} END {print s+0}')
rm -f "$results"
[ "$passed" -gt 0 ] || die "no test ran"
echo "tests: $passed passed, $failed failed"
exit "$status"
