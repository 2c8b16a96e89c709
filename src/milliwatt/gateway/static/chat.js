// milliwatt web chat: the OpenAI-compatible API, streamed, with each answer's route and cost.
"use strict";

const KEY = "milliwatt.apiKey";
const TITLES = "milliwatt.sessionTitles";
const $ = (id) => document.getElementById(id);
const state = { session: null, busy: false, titles: JSON.parse(localStorage.getItem(TITLES) || "{}") };

function headers(json) {
  const h = {};
  if (json) h["Content-Type"] = "application/json";
  const key = localStorage.getItem(KEY);
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: headers(Boolean(options.body)) });
  if (response.status === 401) {
    askKey("This server needs an API key (mw_...).");
    throw new Error("an API key is needed");
  }
  return response;
}

function askKey(reason) {
  const current = localStorage.getItem(KEY) || "";
  const key = window.prompt((reason ? reason + "\n" : "") + "API key (empty to forget it):", current);
  if (key === null) return;
  if (key.trim()) localStorage.setItem(KEY, key.trim()); else localStorage.removeItem(KEY);
  $("key").textContent = localStorage.getItem(KEY) ? "API key ✓" : "API key";
  init();
}

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function newSessionId() {
  const t = new Date().toISOString().replace(/[-:]/g, "").slice(0, 15);
  return `web-${t}-${Math.random().toString(36).slice(2, 8)}`;
}

async function loadAgents() {
  const body = await (await api("/v1/models")).json();
  const select = $("agent");
  const chosen = select.value || localStorage.getItem("milliwatt.agent");
  select.replaceChildren(...body.data.map((m) => el("option", "", m.id)));
  if (chosen && body.data.some((m) => m.id === chosen)) select.value = chosen;
}

async function loadSessions() {
  let list = [];
  try {
    list = (await (await api("/v1/sessions")).json()).data || [];
  } catch (e) { list = []; }
  const box = $("sessions");
  box.replaceChildren();
  for (const s of list) {
    const item = el("div", "session" + (s.id === state.session ? " active" : ""));
    item.dataset.session = s.id;
    item.append(el("div", "title", state.titles[s.id] || s.id));
    item.append(el("div", "meta", `${s.agent} · ${s.turns} turn${s.turns === 1 ? "" : "s"} · ${fmtJoules(s.joules_est)}`));
    item.addEventListener("click", () => openSession(s.id));
    box.append(item);
  }
}

async function openSession(id) {
  state.session = id;
  const body = await (await api(`/v1/sessions/${encodeURIComponent(id)}`)).json();
  const box = $("messages");
  box.replaceChildren();
  if (body.agent) $("agent").value = body.agent;
  for (const m of body.messages || []) addMessage(m.role, m.content);
  loadSessions();
}

function newChat() {
  state.session = null;
  $("messages").replaceChildren(emptyNote);
  loadSessions();
  $("input").focus();
}

function addMessage(role, text) {
  $("empty")?.remove();
  const msg = el("div", "msg " + role);
  msg.append(el("div", "who", role === "user" ? "you" : $("agent").value || "assistant"));
  const tools = el("div", "tools");
  const body = el("div", "body", text || "");
  msg.append(tools, body);
  $("messages").append(msg);
  msg.scrollIntoView({ block: "end" });
  return { msg, tools, body };
}

function showToolCall(box, call) {
  const card = el("div", "toolcall" + (call.ok ? "" : " failed"));
  card.dataset.tool = call.name;
  const head = el("div", "mono");
  head.append(el("span", "name", call.name), document.createTextNode(" " + JSON.stringify(call.arguments)));
  card.append(head, el("div", "result mono", "→ " + call.result));
  box.append(card);
}

function fmtJoules(j) {
  if (j === undefined || j === null) return "";
  if (j >= 1) return j.toFixed(2) + " J";
  if (j >= 0.001) return (j * 1000).toFixed(1) + " mJ";
  return (j * 1e6).toFixed(0) + " µJ";
}

function fmtMs(ms) { return ms >= 1000 ? (ms / 1000).toFixed(2) + " s" : ms.toFixed(ms < 10 ? 1 : 0) + " ms"; }

function showStats(msg, result, wallMs) {
  const stats = el("div", "stats");
  stats.dataset.route = result.route;
  const label = result.route === "tool" ? "tool" : result.model || result.route;
  stats.append(el("span", "badge " + result.route, label));
  const tokens = (result.usage?.prompt_tokens || 0) + (result.usage?.completion_tokens || 0);
  stats.append(el("span", "tokens", `${tokens} tokens`));
  stats.append(el("span", "time", `${fmtMs(result.cost.ms)} (${fmtMs(wallMs)} end to end)`));
  stats.append(el("span", "energy", `≈ ${fmtJoules(result.cost.joules_est)} est.`));
  if (result.stop !== "answer") stats.append(el("span", "badge refused", result.stop));
  msg.append(stats);
}

async function send(text) {
  if (state.busy || !text.trim()) return;
  state.busy = true;
  $("send").disabled = true;
  const fresh = !state.session;
  state.session = state.session || newSessionId();
  if (fresh) {
    state.titles[state.session] = text.slice(0, 60);
    localStorage.setItem(TITLES, JSON.stringify(state.titles));
  }
  addMessage("user", text);
  const { msg, tools, body } = addMessage("assistant", "");
  const started = performance.now();
  try {
    const response = await api("/v1/chat/completions", {
      method: "POST",
      body: JSON.stringify({
        model: $("agent").value, user: state.session, stream: true,
        messages: [{ role: "user", content: text }],
      }),
    });
    if (!response.ok) {
      const error = await response.json().catch(() => ({}));
      throw new Error(error.error?.message || `HTTP ${response.status}`);
    }
    await readStream(response, (chunk) => {
      if (chunk.error) throw new Error(chunk.error.message);
      const delta = chunk.choices?.[0]?.delta?.content;
      if (delta) { body.textContent += delta; msg.scrollIntoView({ block: "end" }); }
      const extra = chunk.milliwatt;
      if (extra?.tool_call) showToolCall(tools, extra.tool_call);
      else if (extra?.route) showStats(msg, extra, performance.now() - started);
    });
  } catch (e) {
    msg.append(el("div", "error-line", "⚠ " + e.message));
  } finally {
    state.busy = false;
    $("send").disabled = false;
    loadSessions();
  }
}

async function readStream(response, onChunk) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") return;
        onChunk(JSON.parse(data));
      }
    }
  }
}

let emptyNote;
async function init() {
  try {
    await loadAgents();
    await loadSessions();
  } catch (e) { /* askKey explains */ }
}

document.addEventListener("DOMContentLoaded", () => {
  emptyNote = $("empty");
  $("key").textContent = localStorage.getItem(KEY) ? "API key ✓" : "API key";
  $("key").addEventListener("click", () => askKey(""));
  $("new").addEventListener("click", newChat);
  $("agent").addEventListener("change", () => localStorage.setItem("milliwatt.agent", $("agent").value));
  $("composer").addEventListener("submit", (e) => { e.preventDefault(); const t = $("input").value; $("input").value = ""; send(t); });
  $("input").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("composer").requestSubmit(); }
  });
  init();
});
