// milliwatt console: every figure comes from /console/api/ (JSON), drawn with uPlot.
"use strict";

const KEY = "milliwatt.apiKey";
const $ = (id) => document.getElementById(id);
const COLORS = { tool: "#3ecf8e", refused: "#ff6b6b", error: "#f5a524", cancelled: "#8b93a5" };
const MODEL_COLORS = ["#5eb1ff", "#a78bfa", "#f472b6", "#22d3ee", "#facc15"];
const state = { charts: {}, lastSeq: null, timer: null };

async function get(path) {
  const key = localStorage.getItem(KEY);
  const response = await fetch(path, { headers: key ? { Authorization: "Bearer " + key } : {} });
  if (response.status === 401) throw new Error("this console needs an API key (button above)");
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}
function row(cells, attrs = {}) {
  const tr = el("tr");
  for (const [k, v] of Object.entries(attrs)) tr.dataset[k] = v;
  for (const c of cells) {
    const td = typeof c === "object" && c !== null && c.node ? c.node : el("td", c?.num ? "num" : "", c?.text ?? c);
    if (c?.num && !c.node) td.className = "num";
    tr.append(td);
  }
  return tr;
}
const num = (text) => ({ text, num: true });
const fmtInt = (n) => (n ?? 0).toLocaleString("en");
function fmtJ(j) {
  if (j === null || j === undefined) return "–";
  const a = Math.abs(j);
  if (a >= 1000) return (j / 1000).toFixed(2) + " kJ";
  if (a >= 1) return j.toFixed(2) + " J";
  if (a >= 0.001) return (j * 1000).toFixed(1) + " mJ";
  return (j * 1e6).toFixed(0) + " µJ";
}
const fmtMs = (ms) => (ms === null || ms === undefined ? "–" : ms >= 100 ? ms.toFixed(0) : ms.toFixed(2));
function laneColor(lane, lanes) {
  if (COLORS[lane]) return COLORS[lane];
  const models = lanes.filter((l) => !COLORS[l]);
  return MODEL_COLORS[models.indexOf(lane) % MODEL_COLORS.length];
}
function badge(lane, route) {
  const td = el("td");
  td.append(el("span", "badge " + (route || lane), lane));
  return { node: td };
}

function renderSummary(s) {
  const total = s.requests;
  $("kpi-requests").textContent = fmtInt(total);
  const minutes = Math.max(1, (s.window.until - s.window.since) / 60);
  $("kpi-requests-sub").textContent = `${(total / minutes).toFixed(2)} per minute`;
  const tool = s.routes.tool || 0;
  const answered = tool + (s.routes.model || 0);
  $("kpi-tool").textContent = answered ? Math.round((100 * tool) / answered) + "%" : "–";
  $("kpi-tool-sub").textContent = `${fmtInt(tool)} by tools, ${fmtInt(s.routes.model || 0)} by models`;
  $("kpi-tokens").textContent = fmtInt(s.tokens.total);
  $("kpi-tokens-sub").textContent = `${fmtInt(s.tokens.prompt)} in · ${fmtInt(s.tokens.completion)} out`;
  $("kpi-joules").textContent = fmtJ(s.joules_est);
  $("kpi-joules-sub").textContent = total ? `${fmtJ(s.joules_est / total)} per request` : "";
  const saved = s.saved;
  $("kpi-saved").textContent = saved.joules_est === null ? "–" : fmtJ(saved.joules_est);
  $("kpi-saved-sub").textContent = saved.joules_est === null
    ? "needs one answer of the smallest model to price"
    : `${fmtInt(saved.tokens)} tokens; ${saved.joules_ratio ? saved.joules_ratio + "× cheaper than " + saved.baseline_model + " alone" : ""}`;
  $("kpi-refused").textContent = fmtInt(s.routes.refused || 0);
  $("kpi-refused-sub").textContent = `${fmtInt(s.waf.blocks)} by the WAF · ${fmtInt(s.routes.error || 0)} errors`;

  const latency = $("latency").tBodies[0];
  latency.replaceChildren(...Object.entries(s.latency_ms).map(([lane, l]) =>
    row([badge(lane, routeOf(lane)), num(fmtInt(l.count)), num(fmtMs(l.p50)), num(fmtMs(l.p90)), num(fmtMs(l.p99))], { lane })));
  if (!latency.rows.length) latency.append(row(["no requests in this window"]));

  $("waf-families").tBodies[0].replaceChildren(...Object.entries(s.waf.families).map(([f, n]) => row([f, num(fmtInt(n))], { family: f })));
  if (!s.waf.blocks) $("waf-families").tBodies[0].append(row(["no blocks", num("0")]));
  $("waf-rules").tBodies[0].replaceChildren(...s.waf.top_rules.map((r) => row([r.id, r.family, num(fmtInt(r.count))], { rule: r.id })));
  $("denials").tBodies[0].replaceChildren(...Object.entries(s.denials).map(([k, n]) => row([k, num(fmtInt(n))], { kind: k })));
  $("budgets").tBodies[0].replaceChildren(...s.budgets.map((b) => {
    const share = b.limit && b.max !== null ? Math.min(100, (100 * b.max) / b.limit) : 0;
    const bar = el("td"); const fill = el("div", "bar"); fill.style.width = share + "%"; bar.style.width = "25%"; bar.append(fill);
    return row([b.agent, b.budget.replaceAll("_", " "), num(b.limit ?? "none"), num(b.max ?? "–"), num(b.mean ?? "–"), { node: bar }]);
  }));
  state.models = s.models;
}

function routeOf(lane) { return COLORS[lane] ? lane : "model"; }

function renderModels(health) {
  const answers = state.models || {};
  $("models").tBodies[0].replaceChildren(...Object.entries(health.models).map(([name, m]) => row([
    name, m.state ?? "remote", num(m.running ?? "–"), num(m.waiting ?? "–"), num(m.restarts ?? "–"), num(fmtInt(answers[name] || 0)),
  ], { model: name })));
}

function chartWidth(id) { return Math.max(300, $(id).clientWidth); }
function axisStyle() { return { stroke: "#8b93a5", grid: { stroke: "#2a2f3a" }, ticks: { stroke: "#2a2f3a" } }; }

function renderRoutes(ts) {
  const lanes = Object.keys(ts.lanes);
  // stacked: each series is the sum of the lanes up to it; drawn from the top down
  const stacked = []; let running = ts.t.map(() => 0);
  for (const lane of lanes) { running = running.map((v, i) => v + ts.lanes[lane][i]); stacked.push(running); }
  const order = lanes.map((_, i) => lanes.length - 1 - i);
  const data = [ts.t, ...order.map((i) => stacked[i])];
  const series = [{}, ...order.map((i) => {
    const c = laneColor(lanes[i], lanes);
    return { label: lanes[i], stroke: c, fill: c + "cc", width: 1, points: { show: false }, paths: bars(),
      value: (u, v, si, idx) => (idx === null ? "–" : ts.lanes[lanes[i]][idx]) };
  })];
  draw("chart-routes", data, series, [{ ...axisStyle() }, { ...axisStyle(), label: "requests" }], xPadded(ts.step));
}

function renderCost(ts) {
  const data = [ts.t, ts.tokens, ts.joules_est.map((j) => j || null)];  // no dots along zero
  const series = [{},
    { label: "tokens", stroke: "#5eb1ff", fill: "#5eb1ff99", width: 1, scale: "tokens", points: { show: false }, paths: bars() },
    { label: "joules (est.)", stroke: "#3ecf8e", width: 2, scale: "J", points: { show: true, size: 5, fill: "#3ecf8e" } }];
  const axes = [{ ...axisStyle() }, { ...axisStyle(), scale: "tokens", label: "tokens" },
    { ...axisStyle(), scale: "J", side: 1, label: "joules", grid: { show: false } }];
  draw("chart-cost", data, series, axes, { ...xPadded(ts.step), tokens: { auto: true, range: (u, min, max) => [0, Math.max(1, max)] }, J: { auto: true, range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } });
}

// one bar per interval; the x axis keeps half an interval free at each end
function bars() { return uPlot.paths.bars({ size: [0.8, 40] }); }
function xPadded(step) { return { x: { time: true, range: (u, min, max) => [min - step / 2, max + step / 2] } }; }

function draw(id, data, series, axes, scales) {
  const old = state.charts[id];
  const labels = series.map((s) => s.label).join("|");
  if (old && old.labels === labels) { old.chart.setData(data); return; }
  if (old) old.chart.destroy();
  const opts = { width: chartWidth(id), height: 240, series, axes, scales: { x: { time: true }, ...scales },
    cursor: { points: { show: false } }, legend: { live: true } };
  state.charts[id] = { chart: new uPlot(opts, data, $(id)), labels };
}

function renderFeed(rows, replace) {
  const body = $("feed").tBodies[0];
  const made = rows.map((r) => {
    const notes = [...r.denials, ...(r.route === "refused" && r.waf_rules.length ? ["rules " + r.waf_rules.slice(0, 3).join(",")] : []), ...(r.stop && r.stop !== "answer" ? [r.stop] : [])];
    const tr = row([
      new Date(r.ts * 1000).toLocaleTimeString(), badge(r.lane, r.route), r.agent ?? "", r.model ?? "",
      r.tools.map((t) => t.name + (t.ok ? "" : " ✗")).join(", "), num(r.status), num(fmtMs(r.duration_ms)),
      num(fmtInt(r.tokens)), num(fmtJ(r.joules_est)), notes.join("; "),
    ], { id: r.id, route: r.route });
    if (!replace) tr.classList.add("fresh");
    return tr;
  });
  if (replace) body.replaceChildren(...made); else body.prepend(...made);
  while (body.rows.length > 200) body.deleteRow(-1);
}

async function refresh(full) {
  const w = $("window").value;
  try {
    const [summary, ts, health] = await Promise.all([
      get(`/console/api/summary?window=${w}`), get(`/console/api/timeseries?window=${w}`), get("/console/api/health"),
    ]);
    renderSummary(summary); renderModels(health); renderRoutes(ts); renderCost(ts);
    const feed = await get(full || state.lastSeq === null ? "/console/api/requests?limit=100" : `/console/api/requests?after=${state.lastSeq}&limit=200`);
    if (feed.data.length) state.lastSeq = feed.data[0].seq;
    if (full || feed.data.length) renderFeed(feed.data, full);
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
    document.body.dataset.loaded = "1";
  } catch (e) {
    $("updated").textContent = "⚠ " + e.message;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("key").textContent = localStorage.getItem(KEY) ? "API key ✓" : "API key";
  $("key").addEventListener("click", () => {
    const key = window.prompt("API key (empty to forget it):", localStorage.getItem(KEY) || "");
    if (key === null) return;
    if (key.trim()) localStorage.setItem(KEY, key.trim()); else localStorage.removeItem(KEY);
    $("key").textContent = localStorage.getItem(KEY) ? "API key ✓" : "API key";
    refresh(true);
  });
  $("window").addEventListener("change", () => refresh(true));
  window.addEventListener("resize", () => { for (const [id, c] of Object.entries(state.charts)) c.chart.setSize({ width: chartWidth(id), height: 240 }); });
  refresh(true);
  state.timer = setInterval(() => refresh(false), 2000);
});
