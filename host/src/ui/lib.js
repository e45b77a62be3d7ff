// Shared helpers of the Antenna UI: DOM building (text only, never HTML), the API client,
// number and time formatting. No data is ever parsed as HTML.

/** Build an element: `attrs` are attributes (`on*` functions become listeners, `class` a class
 * list); children are nodes or text (null/undefined skipped). */
export function el(tag, attrs = {}, ...children) {
  const node = tag.startsWith("svg:")
    ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
    : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** An SVG element. */
export const svg = (tag, attrs = {}, ...children) => el("svg:" + tag, attrs, ...children);

/** A link inside the app. */
export const link = (href, ...children) => el("a", { href }, ...children);

/** Why an API call failed; `status` is the HTTP status (0: no answer). */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

let onUnauthorized = () => {};
/** What to do when the session is gone (show the sign-in form). */
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

/** Call this host's API; the session cookie goes along (same origin). JSON in, JSON out. */
export async function api(path, { method = "GET", body, headers = {}, quiet401 = false } = {}) {
  let response;
  try {
    response = await fetch(path, {
      method,
      credentials: "same-origin",
      headers: body === undefined ? headers : { "Content-Type": "application/json", ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, "The host did not answer: " + e.message);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    if (response.status === 401 && !quiet401 && !headers.Authorization) onUnauthorized();
    throw new ApiError(response.status, (data && (data.error || data.message)) || `${response.status} ${response.statusText}`);
  }
  return data;
}

/** Answers of read-only aggregate queries kept for a short while (switching the chart's stacking,
 * going back to the overview): path -> {at, promise}. Bounded; cleared on sign-out. */
const cache = new Map();
const CACHE_MS = 60_000;
const CACHE_MAX = 300;

/** `api(path)` for a GET whose answer may be reused for a minute. */
export function cachedApi(path) {
  const now = Date.now();
  const hit = cache.get(path);
  if (hit && now - hit.at < CACHE_MS) return hit.promise;
  const promise = api(path);
  cache.set(path, { at: now, promise });
  promise.catch(() => cache.delete(path));
  while (cache.size > CACHE_MAX) cache.delete(cache.keys().next().value);
  return promise;
}

export function clearCache() {
  cache.clear();
}

/** A query string from an object, skipping empty values. */
export function qs(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? "?" + text : "";
}

// ---- numbers ---------------------------------------------------------------------------------

/** Compact counts: 950, 12.3k, 4.56M, 1.2B. */
export function compact(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return "—";
  const abs = Math.abs(n);
  const scaled = (value, suffix) => {
    const digits = value >= 100 ? 0 : value >= 10 ? 1 : 2;
    return (n < 0 ? "-" : "") + Number(value.toFixed(digits)).toString() + suffix;
  };
  if (abs < 1000) return String(Math.round(n));
  if (abs < 1e6) return scaled(abs / 1e3, "k");
  if (abs < 1e9) return scaled(abs / 1e6, "M");
  return scaled(abs / 1e9, "B");
}

/** Whole numbers with the browser's grouping: 12,345. */
export const whole = (n) => (n === null || n === undefined ? "—" : Math.round(n).toLocaleString());

/** Dollars: $0.0249 under a dollar, $12.35, $1,234. */
export function usd(value) {
  if (value === null || value === undefined) return "—";
  if (value === 0) return "$0";
  const abs = Math.abs(value);
  if (abs < 0.0001) return "<$0.0001";
  if (abs < 1) return "$" + value.toFixed(4);
  if (abs < 1000) return "$" + value.toFixed(2);
  return "$" + Math.round(value).toLocaleString();
}

/** The five token counts of a row added up. */
export function totalTokens(row) {
  return (
    (row.input_tokens || 0) +
    (row.output_tokens || 0) +
    (row.cache_read_tokens || 0) +
    (row.cache_creation_tokens || 0) +
    (row.reasoning_tokens || 0)
  );
}

export const percent = (x) => (x === null || x === undefined ? "—" : (x * 100).toFixed(x < 0.1 ? 1 : 0) + "%");

// ---- times -----------------------------------------------------------------------------------

/** An RFC 3339 time in the browser's zone: "Nov 24, 2026, 6:41:27 PM". */
export function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

/** A `<time>` element with the local time shown and the exact UTC time as its title. */
export const timeEl = (iso) => el("time", { datetime: iso || undefined, title: iso || undefined }, when(iso));

/** A duration: 850 ms, 12.3 s, 4 min 05 s, 2 h 03 min. */
export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "—";
  if (ms < 1000) return Math.round(ms) + " ms";
  if (ms < 60_000) return (ms / 1000).toFixed(ms < 10_000 ? 2 : 1) + " s";
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

/** Milliseconds between two RFC 3339 times (null when either is missing). */
export function between(start, end) {
  if (!start || !end) return null;
  return new Date(end).getTime() - new Date(start).getTime();
}

// ---- placeholders ----------------------------------------------------------------------------

/** What a placeholder text means: `{kind: "not-captured", field, flag}`,
 * `{kind: "not-exported", field, agent}`, or null for real text. */
export function placeholder(text) {
  if (typeof text !== "string") return null;
  let m = /^\[(.+?) not captured: (.+?) is off\]$/.exec(text.trim());
  if (m) return { kind: "not-captured", field: m[1], flag: m[2] };
  m = /^\[(.+?) not exported by (.+?)\]$/.exec(text.trim());
  if (m) return { kind: "not-exported", field: m[1], agent: m[2] };
  return null;
}

/** A text shown as such, or as a hint when it is a placeholder. */
export function hintOr(text, { fold = 1200 } = {}) {
  if (text === null || text === undefined) return el("p", { class: "muted" }, "No data yet.");
  const p = placeholder(text);
  if (p && p.kind === "not-captured") {
    return el(
      "p",
      { class: "hint", role: "note" },
      `The ${p.field} was not captured: `,
      el("code", {}, p.flag),
      " is off. Turn it on in the agent's environment to record it.",
    );
  }
  if (p) return el("p", { class: "hint", role: "note" }, `The ${p.field} is not exported by ${p.agent}.`);
  return folded(text, fold);
}

/** A long text folded behind a disclosure, a short one shown whole. */
export function folded(text, limit = 1200) {
  if (text.length <= limit) return el("pre", { class: "text" }, text);
  return el(
    "details",
    { class: "fold" },
    el("summary", {}, el("pre", { class: "text" }, text.slice(0, Math.min(400, limit)) + " …"), el("span", { class: "more" }, `show all (${whole(text.length)} characters)`)),
    el("pre", { class: "text" }, text),
  );
}

/** The first line of a text, clipped. */
export function firstLine(text, max = 140) {
  if (!text) return "";
  const line = text.trim().split("\n")[0];
  return line.length > max ? line.slice(0, max - 1) + "…" : line;
}
