#!/usr/bin/env bash
# Report documents: generation time and size per format for a 5-agent and a
# 20-agent research report (BENCHMARKS.md, "Report documents"). Starts the binary
# ($MCPO_BIN, default the release build) on a fresh SQLite store with the
# simulated provider, runs one workflow at a time (so each one's share of the
# document_generation_seconds histogram is its own) and prints per run and format
# the seconds and the bytes.
set -euo pipefail

BIN="${MCPO_BIN:-${CARGO_TARGET_DIR:-target}/release/mcp-orchestrator}"
RUNS="${RUNS:-3}"
dir="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
(
  cd "$dir"
  MCPO__SERVER__BIND=127.0.0.1:0 MCPO__STORAGE__SQLITE_PATH="$dir/o.db" \
    MCPO__PROVIDERS__SIMULATED__LATENCY_MS=0 MCPO__LOG__LEVEL=warn \
    exec "$BIN" > "$dir/stdout" 2> "$dir/server.log"
) &
pid=$!
base=""
for _ in $(seq 1 100); do
  base="$(sed -n 's/^mcp-orchestrator listening on //p' "$dir/stdout" | head -n1)"
  [ -n "$base" ] && break
  sleep 0.1
done
[ -n "$base" ] || { echo "the server did not start" >&2; cat "$dir/server.log" >&2; exit 1; }

# Sum of document_generation_seconds per format, as "format=sum" lines.
sums() {
  curl -sf "$base/metrics" | sed -n 's/^document_generation_seconds_sum{\(.*\)} \(.*\)$/\1 \2/p' \
    | sed -n 's/.*format="\([a-z]*\)".* \(.*\)$/\1=\2/p' | sort
}

echo "agents run format seconds bytes"
for agents in 5 20; do
  for run in $(seq 1 "$RUNS"); do
    before="$(sums)"
    body="{\"pattern\": \"research\", \"task\": \"Überblick: 研究 und Ελληνικά, run $run\", \"config\": {\"num_agents\": $agents, \"max_concurrent_agents\": 10, \"document_formats\": [\"markdown\", \"pdf\", \"docx\"]}}"
    id="$(curl -sf -XPOST "$base/v1/workflows" -H 'content-type: application/json' -d "$body" \
      | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')"
    for _ in $(seq 1 600); do
      st="$(curl -sf "$base/v1/workflows/$id" | python3 -c 'import json, sys; print(json.load(sys.stdin)["status"])')"
      [ "$st" = completed ] && break
      sleep 0.1
    done
    after="$(sums)"
    list="$(curl -sf "$base/v1/workflows/$id/documents")"
    python3 - "$agents" "$run" "$before" "$after" "$list" <<'EOF'
import json, sys
agents, run, before, after, listing = sys.argv[1:6]
def parse(s):
    return {k: float(v) for k, v in (l.split("=") for l in s.split() if "=" in l)}
b, a = parse(before), parse(after)
sizes = {d["format"]: d["bytes"] for d in json.loads(listing)["documents"]}
for f in ("markdown", "pdf", "docx"):
    print(agents, run, f, "%.4f" % (a.get(f, 0.0) - b.get(f, 0.0)), sizes.get(f))
EOF
  done
done
