// The live dashboard: polls /analytics/*, /health and /v1/workflows, draws the
// charts in plain SVG and streams a selected workflow's events over SSE. No
// dependencies. The cards (the plan's Active Workflows, Completed, Total Cost and
// Success Rate, and more) come from the analytics endpoints, which read the
// stored history: the same after a restart and on every instance, unlike this
// process's Prometheus counters.
// When the server asks for a key (401), the page asks for it once, keeps it in
// sessionStorage (this tab only) and sends it as an Authorization header: never
// in a URL, so it stays out of history, logs and Referer headers. The event
// stream is read with fetch for that reason (EventSource cannot send headers).
"use strict";

const POLL_MS = 2000;
const MAX_SAMPLES = 90;
const TERMINAL = ["completed", "failed", "cancelled"];
const EVENT_TYPES = ["workflow_started", "task_decomposed", "agent_started", "agent_progress",
  "agent_completed", "synthesis_started", "synthesis_completed", "documents_generated",
  "workflow_completed", "workflow_failed", "workflow_cancelled", "workflow_interrupted",
  "workflow_resumed", "error"];

const $ = (id) => document.getElementById(id);
const samples = [];
let selected = null; // { id, source }

const TOKEN_KEY = "mcpo-token";

function authHeaders(extra = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { ...extra, authorization: "Bearer " + token } : extra;
}

class Unauthorized extends Error {}

/** fetch with the key; a 401 asks for one (again). */
async function call(path, init = {}) {
  const r = await fetch(path, { ...init, headers: authHeaders(init.headers || {}) });
  if (r.status === 401) {
    askForToken();
    throw new Unauthorized(`${path}: HTTP 401`);
  }
  return r;
}

async function getJson(path) {
  const r = await call(path, { headers: { accept: "application/json" } });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

/** Like getJson, but null for 404 (the old performance route: nothing finished yet). */
async function getJsonOr404(path) {
  const r = await call(path, { headers: { accept: "application/json" } });
  if (r.status === 404) return null;
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

function askForToken() {
  sessionStorage.removeItem(TOKEN_KEY);
  $("login").hidden = false;
  $("token").focus();
}

$("login").addEventListener("submit", (e) => {
  e.preventDefault();
  const token = $("token").value.trim();
  if (!token) return;
  sessionStorage.setItem(TOKEN_KEY, token);
  $("token").value = "";
  $("login").hidden = true;
  refresh();
});

/** Reads an SSE response body; calls onEvent({type, data}) per event. */
async function readSse(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      let type = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) type = line.slice(7);
        else if (line.startsWith("data: ")) data.push(line.slice(6));
      }
      if (data.length) onEvent({ type, data: data.join("\n") });
    }
  }
}

function text(el, v) { if (el.textContent !== String(v)) el.textContent = v; }
function usd(v) { return "$" + Number(v || 0).toFixed(4); }
function short(id) { return id.length > 14 ? id.slice(0, 7) + "…" + id.slice(-6) : id; }
function secs(v) { return v == null ? "–" : Number(v).toFixed(2) + " s"; }

function cell(tr, content, cls) {
  const td = document.createElement("td");
  if (content instanceof Node) td.appendChild(content); else td.textContent = content;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function cancelButton(id) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = "Cancel";
  b.dataset.cancel = id;
  b.addEventListener("click", (e) => { e.stopPropagation(); cancel(id); });
  return b;
}

// A table row for a workflow: id, pattern, status; opens its detail on click.
function workflowRow(w) {
  const tr = document.createElement("tr");
  tr.dataset.id = w.id;
  tr.dataset.status = w.status;
  cell(tr, short(w.id)).title = w.id;
  cell(tr, w.pattern);
  cell(tr, w.status, "status-" + w.status);
  tr.addEventListener("click", () => select(w.id));
  return tr;
}

function fillActive(items) {
  const body = $("active-table").tBodies[0];
  body.replaceChildren(...items.map((w) => {
    const tr = workflowRow(w);
    cell(tr, `${w.progress.completed_agents}/${w.progress.total_agents} · ${Math.round(w.progress.percent)}%`);
    cell(tr, cancelButton(w.id));
    return tr;
  }));
}

function fillRecent(items) {
  const body = $("recent-table").tBodies[0];
  body.replaceChildren(...items.map((w) => {
    const tr = workflowRow(w);
    cell(tr, secs(w.execution_time));
    cell(tr, usd(w.total_cost_usd));
    return tr;
  }));
}

/** A line chart of `values` into an SVG element, scaled to its maximum. */
function draw(svg, values, fmt) {
  const W = 400, H = 140, pad = 4;
  const max = Math.max(...values, 1e-9);
  const n = Math.max(values.length - 1, 1);
  const pts = values.map((v, i) => `${(i / n) * W},${H - pad - (v / max) * (H - 2 * pad)}`).join(" ");
  const ns = "http://www.w3.org/2000/svg";
  const axis = document.createElementNS(ns, "line");
  Object.entries({ x1: 0, y1: H - pad, x2: W, y2: H - pad, class: "axis" }).forEach(([k, v]) => axis.setAttribute(k, v));
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("class", "line");
  line.setAttribute("points", pts);
  svg.replaceChildren(axis, line);
  // The label lives outside the stretched SVG so its text keeps its shape.
  text($(svg.id + "-label"), "· max " + fmt(max === 1e-9 ? 0 : max) + " · now " + fmt(values[values.length - 1] || 0));
}

function charts() {
  const thr = samples.map((s, i) => {
    if (i === 0) return 0;
    const p = samples[i - 1];
    const dt = (s.t - p.t) / 60000;
    return dt > 0 ? Math.max(0, s.finished - p.finished) / dt : 0;
  });
  draw($("chart-throughput"), thr, (v) => v.toFixed(1) + "/min");
  draw($("chart-cost"), samples.map((s) => s.cost), usd);
}

async function refresh() {
  try {
    const [counts, costs, performance, health, running, pending, interrupted, recent] = await Promise.all([
      getJson("/analytics/workflows"),
      getJson("/analytics/costs"),
      getJsonOr404("/analytics/performance"),
      getJson("/health"),
      getJson("/v1/workflows?status=running&limit=100"),
      getJson("/v1/workflows?status=pending&limit=100"),
      getJson("/v1/workflows?status=interrupted&limit=100"),
      getJson("/v1/workflows?limit=100"),
    ]);
    // The plan's cards, as its dashboard computed them.
    text($("active"), counts.active);
    text($("completed"), counts.completed);
    const cost = costs.total_cost_usd;
    text($("cost"), usd(cost));
    text($("success-rate"), performance && performance.success_rate != null ? performance.success_rate + "%" : "–");
    text($("created"), counts.total);
    text($("failed"), counts.failed);
    text($("cancelled"), counts.cancelled);
    text($("tokens"), costs.total_tokens);
    const totals = { completed: counts.completed, failed: counts.failed, cancelled: counts.cancelled };
    const h = $("health");
    text(h, health.status);
    h.className = "pill " + health.status;
    samples.push({ t: Date.now(), finished: totals.completed + totals.failed + totals.cancelled, cost });
    if (samples.length > MAX_SAMPLES) samples.shift();
    charts();
    fillActive([...running.items, ...pending.items, ...interrupted.items]);
    fillRecent(recent.items.filter((w) => TERMINAL.includes(w.status))
      .sort((a, b) => String(b.completed_at).localeCompare(String(a.completed_at))).slice(0, 10));
    text($("updated"), "updated " + new Date().toLocaleTimeString());
    document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
  } catch (e) {
    text($("updated"), e instanceof Unauthorized ? "waiting for an API key" : "refresh failed: " + e.message);
  }
}

function showWorkflow(w) {
  text($("detail-id"), w.id);
  text($("detail-title"), w.title);
  text($("detail-status"), w.status);
  $("detail-status").className = "status-" + w.status;
  text($("detail-progress"), `${w.progress.stage} ${Math.round(w.progress.percent)}%`);
  text($("detail-cost"), usd(w.total_cost_usd));
  $("detail-cancel").hidden = TERMINAL.includes(w.status);
}

async function loadDetail(id) {
  try {
    const w = await getJson("/v1/workflows/" + encodeURIComponent(id));
    if (selected && selected.id === id) showWorkflow(w);
  } catch (e) {
    text($("detail-status"), "unavailable: " + e.message);
  }
}

function closeDetail() {
  if (selected && selected.source) selected.source.abort();
  selected = null;
  $("detail").hidden = true;
}

/** Opens a workflow's detail view; its events stream live over SSE. */
function select(id) {
  closeDetail();
  selected = { id, source: null };
  $("detail").hidden = false;
  $("timeline").replaceChildren();
  history.replaceState(null, "", "#wf=" + encodeURIComponent(id));
  loadDetail(id);
  const source = new AbortController();
  selected.source = source;
  const onEvent = (msg) => {
    let ev;
    try { ev = JSON.parse(msg.data); } catch (_) { return; }
    const li = document.createElement("li");
    li.dataset.type = ev.type || msg.type;
    li.textContent = `#${ev.seq} ${new Date(ev.timestamp).toLocaleTimeString()} ${ev.type || msg.type}` +
      (ev.data && ev.data.agent_id ? " " + ev.data.agent_id : "");
    $("timeline").appendChild(li);
    loadDetail(id);
    // The server closes the stream after the terminal event: do not reconnect.
    if (["workflow_completed", "workflow_failed", "workflow_cancelled"].includes(msg.type)) source.abort();
  };
  call("/v1/workflows/" + encodeURIComponent(id) + "/events", { headers: { accept: "text/event-stream" }, signal: source.signal })
    .then((r) => (r.ok ? readSse(r, (m) => { if (EVENT_TYPES.includes(m.type)) onEvent(m); }) : null))
    .catch(() => {})
    .finally(() => { if (selected && selected.id === id) loadDetail(id); });
}

async function cancel(id) {
  const r = await call("/v1/workflows/" + encodeURIComponent(id) + "/cancel", { method: "POST" });
  if (!r.ok && r.status !== 409) text($("updated"), `cancel failed: HTTP ${r.status}`);
  if (selected && selected.id === id) loadDetail(id);
  refresh();
}

$("detail-close").addEventListener("click", closeDetail);
$("detail-cancel").addEventListener("click", () => selected && cancel(selected.id));
const fromHash = location.hash.match(/^#wf=(.+)$/);
if (fromHash) select(decodeURIComponent(fromHash[1]));
refresh();
setInterval(refresh, POLL_MS);
