// The Antenna web UI: served as /ui/app.js (no inline script: the page's CSP is script-src 'self').
"use strict";
// The keys stay in this tab (sessionStorage) and go only to this host, as HTTP Basic.
const pk = document.getElementById("pk"), sk = document.getElementById("sk"), main = document.getElementById("main");
pk.value = sessionStorage.getItem("pk") || ""; sk.value = sessionStorage.getItem("sk") || "";
let view = "traces";
// Each view reads the query API path its nav button names.
const endpoint = Object.fromEntries([...document.querySelectorAll("nav button")].map(b => [b.dataset.view, b.dataset.api]));

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) k === "onclick" ? node.addEventListener("click", v) : node.setAttribute(k, v);
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return node;
}

async function api(path) {
  const response = await fetch(path, { headers: { Authorization: "Basic " + btoa(pk.value + ":" + sk.value) } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || body.message || response.statusText);
  return body;
}

function table(columns, rows, onRow) {
  const head = el("tr", {}, ...columns.map(([title]) => el("th", {}, title)));
  const body = rows.map(row => {
    const tr = el("tr", onRow ? { class: "link", onclick: () => onRow(row) } : {},
      ...columns.map(([, get]) => el("td", {}, String(get(row) ?? ""))));
    return tr;
  });
  return el("table", {}, el("thead", {}, head), el("tbody", {}, ...body));
}

const tokens = t => `${t.input_tokens} in / ${t.output_tokens} out / ${t.cache_read_tokens + t.cache_creation_tokens} cache / ${t.reasoning_tokens} reasoning`;
const cost = c => c == null ? "" : "$" + c.toFixed(4);

async function show(render) {
  sessionStorage.setItem("pk", pk.value); sessionStorage.setItem("sk", sk.value);
  try { main.replaceChildren(await render()); }
  catch (e) { main.replaceChildren(el("p", { class: "error" }, e.message)); }
}

async function traces(query = "") {
  const page = await api(endpoint.traces + "?limit=200" + query);
  return table([
    ["start", t => t.start_time], ["agent", t => t.agent], ["user", t => t.user_id], ["session", t => t.session_id],
    ["models", t => t.models.join(", ")], ["tokens", tokens], ["cost", t => cost(t.cost_usd)],
    ["tools", t => t.tool_calls.length], ["prompt", t => (t.prompt || "").slice(0, 120)],
  ], page.data, t => show(() => trace(t.id)));
}

async function trace(id) {
  const t = await api(endpoint.traces + "/" + encodeURIComponent(id));
  return el("div", {},
    el("div", { class: "card" },
      el("h2", {}, `${t.agent} · ${t.start_time ?? ""}`),
      el("p", {}, `user ${t.user_id ?? "—"} · device ${t.device_id ?? "—"} · session ${t.session_id ?? "—"}`),
      el("p", {}, `${t.models.join(", ")} · ${tokens(t)} · ${cost(t.cost_usd)}`),
      el("h3", {}, "Prompt"), el("pre", {}, t.prompt ?? "—"),
      el("h3", {}, "Response"), el("pre", {}, t.response ?? "—"),
      t.errors.length ? el("p", { class: "error" }, t.errors.join("; ")) : ""),
    el("h3", {}, "Tool calls"),
    table([["name", c => c.name], ["args", c => c.args], ["result", c => (c.result || "").slice(0, 300)],
      ["ms", c => c.duration_ms], ["success", c => c.success], ["decision", c => c.decision]], t.tool_calls),
    el("h3", {}, "Observations"),
    table([["start", o => o.start_time], ["type", o => o.type], ["name", o => o.name],
      ["tokens", o => o.usage ? `${o.usage.input}/${o.usage.output}/${o.usage.cache_read}/${o.usage.reasoning}` : ""],
      ["via", o => (o.reported_via || []).join("+")], ["error", o => o.error]], t.observations));
}

async function sessions() {
  const page = await api(endpoint.sessions + "?limit=200");
  return table([
    ["start", s => s.start_time], ["end", s => s.end_time], ["agent", s => s.agent], ["user", s => s.user_id],
    ["session", s => s.id], ["traces", s => s.trace_count], ["tokens", tokens], ["cost", s => cost(s.cost_usd)],
  ], page.data, s => show(() => traces("&session_id=" + encodeURIComponent(s.id))));
}

async function users() {
  const page = await api(endpoint.users + "?limit=200");
  return table([
    ["user", u => u.id], ["last seen", u => u.last_seen], ["traces", u => u.traces], ["sessions", u => u.sessions],
    ["tokens", tokens], ["cost", u => cost(u.cost_usd)],
    ["agents", u => Object.entries(u.agents).map(([a, n]) => `${a} ${n}`).join(", ")],
  ], page.data, u => show(() => traces("&user_id=" + encodeURIComponent(u.id))));
}

const views = { traces: () => traces(), sessions, users };
for (const button of document.querySelectorAll("nav button")) {
  button.addEventListener("click", () => {
    document.querySelectorAll("nav button").forEach(b => b.classList.toggle("active", b === button));
    view = button.dataset.view; show(views[view]);
  });
}
for (const input of [pk, sk]) input.addEventListener("change", () => show(views[view]));
if (pk.value && sk.value) show(views[view]);
