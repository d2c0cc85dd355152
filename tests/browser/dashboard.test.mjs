// The dashboard in real headless Chromium (Debian's, driven by playwright-core;
// no browser is ever downloaded) against the real binary: the page loads without
// console errors, its cards equal the analytics endpoints (the stored history), a
// workflow started during the test appears and reaches completed without a
// reload, cancel from the page works, and after the server restarts the open page
// shows the same figures as before (they come from the store, not from counters).
// The server has an API key: the page asks for it once, keeps it in sessionStorage
// and sends it as a header on every call, never in a URL.
// Saves a screenshot to tests/browser/out/dashboard.png.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const HERE = dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const BIN = process.env.MCPO_BIN;
const TOKEN = "mcpo_" + randomBytes(32).toString("hex");

// `dir` and `bind` given: the same store and address again (a restart).
function startServer(dir = mkdtempSync(join(tmpdir(), "mcpo-browser-")), bind = "127.0.0.1:0") {
  assert.ok(BIN && existsSync(BIN), `MCPO_BIN must name the built binary (got ${BIN})`);
  const keys = join(dir, "keys.toml");
  const digest = createHash("sha256").update(TOKEN).digest("hex");
  writeFileSync(keys, `[[auth.keys]]\nname = "dashboard"\nsha256 = "${digest}"\nscopes = ["read", "write"]\n`);
  const child = spawn(BIN, [], {
    cwd: dir,
    stdio: ["ignore", "pipe", "inherit"],
    env: {
      ...process.env,
      RUST_LOG: "warn",
      MCPO__SERVER__BIND: bind,
      MCPO__STORAGE__SQLITE_PATH: join(dir, "orchestrator.db"),
      MCPO__AUTH__KEYS_FILE: keys,
      // The default provider takes ~0.3 s a call: a workflow lives a few seconds.
      MCPO__PROVIDERS__SIMULATED__LATENCY_MS: "300",
      // Slower: a workflow started during the test runs ~8 s, seen by several polls.
      MCPO__PROVIDERS__MEDIUM__KIND: "simulated",
      MCPO__PROVIDERS__MEDIUM__LATENCY_MS: "2000",
      // One that never finishes on its own, to cancel from the page.
      MCPO__PROVIDERS__SLOW__KIND: "simulated",
      MCPO__PROVIDERS__SLOW__LATENCY_MS: "600000",
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
  return { child, base, dir };
}

/** SIGTERM, and wait for the process to exit. */
function stopServer(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    child.once("exit", (code) => resolve(code));
    child.kill("SIGTERM");
  });
}

/** The cards as shown, and as the analytics endpoints say they must be. */
async function cards(page) {
  const out = {};
  for (const id of ["active", "completed", "cost", "success-rate", "created", "failed", "cancelled", "tokens"]) {
    out[id] = await page.textContent("#" + id);
  }
  return out;
}

async function expectedCards(base) {
  const w = (await api(base, "GET", "/analytics/workflows")).body;
  const c = (await api(base, "GET", "/analytics/costs")).body;
  const p = await api(base, "GET", "/analytics/performance");
  return {
    active: String(w.active),
    completed: String(w.completed),
    cost: "$" + Number(c.total_cost_usd).toFixed(4),
    "success-rate": p.status === 200 ? p.body.success_rate + "%" : "–",
    created: String(w.total),
    failed: String(w.failed),
    cancelled: String(w.cancelled),
    tokens: String(c.total_tokens),
  };
}

async function api(base, method, path, body) {
  const r = await fetch(base + path, {
    method,
    headers: { authorization: "Bearer " + TOKEN, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  return { status: r.status, body: text.startsWith("{") ? JSON.parse(text) : text };
}

// Polls from here: the page's CSP (rightly) forbids the eval that
// page.waitForFunction would need.
async function waitFor(what, fn, ms = 30000) {
  const t = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test("dashboard in headless Chromium", async () => {
  assert.ok(existsSync(CHROMIUM), `Chromium is missing at ${CHROMIUM}: apt-get install chromium`);
  let { child, base: baseP, dir } = startServer();
  const base = await baseP;
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  try {
    // Two finished before the page opens, so the numbers are not all zero.
    const done = [];
    for (const n of [3, 4]) {
      const r = await api(base, "POST", "/v1/workflows", { pattern: "research", task: `warm-up ${n}`, config: { num_agents: n } });
      assert.equal(r.status, 201);
      done.push(r.body.id);
    }
    for (const id of done) {
      await waitFor(`${id} completed`, async () => (await api(base, "GET", `/v1/workflows/${id}`)).body.status === "completed");
    }

    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const problems = [];
    let keyGiven = false;
    // While the server restarts the page's calls fail; that is expected then.
    let restarting = false;
    page.on("console", (m) => {
      if (restarting) return;
      // Before the key is given, the page's calls are expected to get 401.
      if (m.type() === "error" && (keyGiven || !m.text().includes("401"))) problems.push("console: " + m.text());
    });
    page.on("pageerror", (e) => problems.push("pageerror: " + e.message));
    page.on("requestfailed", (r) => {
      if (restarting) return;
      // An SSE stream the page closes itself is reported as aborted; that is fine.
      if (!r.url().endsWith("/events")) problems.push("requestfailed: " + r.url());
    });
    const external = [];
    const leaks = [];
    const apiCalls = { withKey: 0, withoutKey: [] };
    page.on("request", (r) => {
      if (!r.url().startsWith(base) && !r.url().startsWith("data:")) external.push(r.url());
      if (r.url().includes(TOKEN) || r.url().includes(TOKEN.slice(5, 25))) leaks.push(r.url());
      const path = r.url().slice(base.length);
      if (path.startsWith("/v1/") || path.startsWith("/analytics/")) {
        if (r.headers().authorization === "Bearer " + TOKEN) apiCalls.withKey += 1;
        else apiCalls.withoutKey.push(path);
      }
    });

    await page.goto(base + "/dashboard");
    await page.evaluate(() => { window.__noReload = true; });
    // The page asks for a key; nothing is shown until it has one.
    await page.waitForSelector('[data-testid="login"]:not([hidden])', { timeout: 15000 });
    assert.equal(await page.getAttribute("body", "data-refreshed"), null);
    keyGiven = true;
    await page.fill("#token", TOKEN);
    await page.click('#login button[type="submit"]');
    await waitFor("first refresh", async () => Number(await page.getAttribute("body", "data-refreshed")) >= 1);
    assert.equal(await page.isHidden("#login"), true);
    assert.equal(await page.evaluate(() => sessionStorage.getItem("mcpo-token")), TOKEN);
    assert.equal(await page.evaluate(() => localStorage.length), 0, "the key is kept for the tab only");
    apiCalls.withoutKey.length = 0; // the calls made before the key was given

    // The cards equal the analytics endpoints (nothing is running now, so they
    // are stable), and agree with the list of workflows.
    const completedList = (await api(base, "GET", "/v1/workflows?status=completed")).body.items;
    assert.deepEqual(await cards(page), await expectedCards(base));
    assert.equal(await page.textContent("#active"), "0");
    assert.equal(await page.textContent("#success-rate"), "100%");
    assert.equal(await page.textContent("#completed"), String(completedList.length));
    assert.equal(await page.textContent("#created"), "2");
    assert.equal(await page.locator("#recent-table tbody tr").count(), 2);

    // A workflow started now appears, and reaches completed without a reload.
    const live = (await api(base, "POST", "/v1/workflows", { pattern: "research", task: "live one", config: { num_agents: 3, provider: "medium" } })).body.id;
    await page.waitForSelector(`#active-table tr[data-id="${live}"]`, { timeout: 15000 });
    await page.click(`#active-table tr[data-id="${live}"]`);
    await page.waitForSelector('#timeline li[data-type="agent_completed"]', { timeout: 15000 });
    await waitFor("#detail-status = completed", async () => (await page.textContent("#detail-status")) === "completed", 30000);
    await page.waitForSelector('#timeline li[data-type="workflow_completed"]');
    await page.waitForSelector(`#recent-table tr[data-id="${live}"][data-status="completed"]`, { timeout: 15000 });
    assert.equal((await api(base, "GET", `/v1/workflows/${live}`)).body.status, "completed");
    await waitFor("#completed = 3", async () => (await page.textContent("#completed")) === "3", 15000);

    // Cancel from the page.
    const slow = (await api(base, "POST", "/v1/workflows", { pattern: "search", task: "never ends", config: { provider: "slow" } })).body.id;
    await page.waitForSelector(`#active-table tr[data-id="${slow}"]`, { timeout: 15000 });
    await page.click(`#active-table tr[data-id="${slow}"]`);
    await page.waitForSelector('#timeline li[data-type="workflow_started"]', { timeout: 15000 });
    await page.click("#detail-cancel");
    await waitFor("#detail-status = cancelled", async () => (await page.textContent("#detail-status")) === "cancelled", 15000);
    await page.waitForSelector(`#recent-table tr[data-id="${slow}"][data-status="cancelled"]`, { timeout: 15000 });
    assert.equal((await api(base, "GET", `/v1/workflows/${slow}`)).body.status, "cancelled");
    await waitFor("#cancelled = 1", async () => (await page.textContent("#cancelled")) === "1", 15000);
    // Two finished after the page opened: the cards follow, still equal to the endpoints.
    const want = await expectedCards(base);
    await waitFor("cards equal the analytics endpoints", async () =>
      JSON.stringify(await cards(page)) === JSON.stringify(want), 15000);
    assert.equal(want["success-rate"], "75%");

    // A restart on the same store and address: the open page, without a reload,
    // shows the same figures again (per-process counters would read 0 now).
    restarting = true;
    assert.equal(await stopServer(child), 0);
    ({ child, base: baseP } = startServer(dir, base.replace(/^http:\/\//, "")));
    assert.equal(await baseP, base);
    // A refresh that succeeds from now on read the new process.
    const refreshedBefore = Number(await page.getAttribute("body", "data-refreshed"));
    await waitFor("a refresh after the restart", async () =>
      Number(await page.getAttribute("body", "data-refreshed")) > refreshedBefore, 30000);
    restarting = false;
    assert.deepEqual(await expectedCards(base), want, "the endpoints after the restart");
    assert.deepEqual(await cards(page), want, "the cards after the restart");

    assert.equal(await page.evaluate(() => window.__noReload), true, "the page reloaded");
    // Every API call carried the key as a header; no URL ever carried it.
    assert.ok(apiCalls.withKey > 10, `${apiCalls.withKey} calls with the key`);
    assert.deepEqual(apiCalls.withoutKey, [], "API calls without the key");
    assert.deepEqual(leaks, [], "the key appeared in a URL");
    // Asked once: a reload in the same tab keeps the key.
    await page.reload();
    await waitFor("refresh after reload", async () => Number(await page.getAttribute("body", "data-refreshed")) >= 1);
    assert.equal(await page.isHidden("#login"), true);
    const out = join(HERE, "out");
    mkdirSync(out, { recursive: true });
    await page.screenshot({ path: join(out, "dashboard.png"), fullPage: true });
    assert.deepEqual(external, [], "the page fetched something from elsewhere");
    assert.deepEqual(problems, [], "console errors or failed requests");
  } catch (e) {
    const out = join(HERE, "out");
    mkdirSync(out, { recursive: true });
    for (const p of browser.contexts().flatMap((c) => c.pages())) {
      await p.screenshot({ path: join(out, "failure.png"), fullPage: true }).catch(() => {});
    }
    throw e;
  } finally {
    await browser.close();
    await stopServer(child);
  }
});
