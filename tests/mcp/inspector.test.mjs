// The MCP Inspector CLI (npm @modelcontextprotocol/inspector, pinned in
// package.json) against the real binary: `--cli <url> --method tools/list` lists
// the six tools, each with input and output schemas, sending an API key with
// --header. The Inspector speaks the initialize handshake (Mcp-Session-Id)
// through the official TypeScript SDK.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const HERE = dirname(fileURLToPath(import.meta.url));
const BIN = process.env.MCPO_BIN;
const INSPECTOR = join(HERE, "node_modules", ".bin", "mcp-inspector");
const TOKEN = "mcpo_" + randomBytes(32).toString("hex");

function startServer() {
  assert.ok(BIN && existsSync(BIN), `MCPO_BIN must name the built binary (got ${BIN})`);
  const dir = mkdtempSync(join(tmpdir(), "mcpo-mcp-inspector-"));
  const keys = join(dir, "keys.toml");
  const digest = createHash("sha256").update(TOKEN).digest("hex");
  writeFileSync(keys, `[[auth.keys]]\nname = "inspector"\nsha256 = "${digest}"\nscopes = ["read"]\n`);
  const child = spawn(BIN, [], {
    cwd: dir,
    stdio: ["ignore", "pipe", "inherit"],
    env: {
      ...process.env,
      RUST_LOG: "warn",
      MCPO__SERVER__BIND: "127.0.0.1:0",
      MCPO__STORAGE__SQLITE_PATH: join(dir, "orchestrator.db"),
      MCPO__AUTH__KEYS_FILE: keys,
    },
  });
  const base = new Promise((resolve, reject) => {
    let buf = "";
    child.stdout.on("data", (d) => {
      buf += d;
      const m = buf.match(/listening on (http:\/\/\S+)/);
      if (m) resolve(m[1]);
    });
    child.on("exit", (code) => reject(new Error(`server exited early with ${code}`)));
  });
  return { child, base };
}

test("the MCP Inspector CLI lists the tools", async () => {
  assert.ok(existsSync(INSPECTOR), "run npm ci in tests/mcp first");
  const { child, base } = startServer();
  try {
    const url = (await base) + "/mcp";
    const { stdout } = await promisify(execFile)(
      INSPECTOR,
      ["--cli", url, "--method", "tools/list", "--header", `Authorization: Bearer ${TOKEN}`],
      { timeout: 120_000, env: { ...process.env, NO_COLOR: "1" } },
    );
    const listed = JSON.parse(stdout.slice(stdout.indexOf("{")));
    const names = listed.tools.map((t) => t.name).sort();
    assert.deepEqual(names, [
      "cancel_orchestration",
      "get_orchestration_result",
      "get_orchestration_status",
      "list_orchestrator_patterns",
      "orchestrate_research",
      "orchestrate_search",
    ]);
    for (const t of listed.tools) {
      assert.equal(t.inputSchema.type, "object", t.name);
      assert.equal(t.outputSchema.type, "object", t.name);
    }
  } finally {
    child.kill("SIGTERM");
  }
});
