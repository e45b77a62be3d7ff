// The pages of the Antenna UI. Each renders into a container from the query API (session
// cookie) or, for the operators' view, the admin API (bearer token held in memory only).

import {
  api, cachedApi, ApiError, el, link, qs, compact, whole, usd, totalTokens, percent, when, timeEl, duration, between,
  hintOr, folded, firstLine, placeholder,
} from "./lib.js";
import { stackedBars, barList } from "./charts.js";

const DAY_MS = 86_400_000;
/** Dollars on an axis: as few digits as the step needs. */
const usdAxis = (v) => (v === 0 ? "$0" : v < 0.1 ? "$" + v.toFixed(3) : v < 10 ? "$" + v.toFixed(2) : "$" + Math.round(v).toLocaleString());
const enc = encodeURIComponent;

// ---- shared pieces ---------------------------------------------------------------------------

function card(label, value, detail) {
  return el("div", { class: "card" }, el("div", { class: "card-label" }, label), el("div", { class: "card-value" }, value), detail ? el("div", { class: "card-detail" }, detail) : null);
}

/** A table: columns are [header, cell(row), {numeric}] */
function table(columns, rows, { caption, empty = "Nothing to show." } = {}) {
  if (!rows.length) return el("p", { class: "muted empty" }, empty);
  return el(
    "div",
    { class: "table-wrap" },
    el(
      "table",
      {},
      caption ? el("caption", { class: "sr-only" }, caption) : null,
      el("thead", {}, el("tr", {}, columns.map(([title, , opts]) => el("th", { scope: "col", class: cellClass(opts) }, title)))),
      el("tbody", {}, rows.map((row) => el("tr", {}, columns.map(([, cell, opts]) => el("td", { class: cellClass(opts) }, cell(row)))))),
    ),
  );
}

const cellClass = (opts) => (opts ? [opts.numeric ? "num" : "", opts.cls || ""].join(" ").trim() || undefined : undefined);
const userLink = (id) => (id ? link(`#/user/${enc(id)}`, id) : el("span", { class: "muted" }, "unattributed"));
const sessionLink = (id, label) => (id ? link(`#/session/${enc(id)}`, label || shortId(id)) : "—");
const traceLink = (t) => link(`#/trace/${enc(t.id)}`, promptLabel(t.prompt));
const shortId = (id) => (id && id.length > 18 ? id.slice(0, 8) + "…" + id.slice(-6) : id);
const agentChip = (agent) => el("span", { class: "chip" }, agent);

function promptLabel(prompt) {
  const p = placeholder(prompt);
  if (p) return el("span", { class: "muted" }, p.kind === "not-captured" ? "(prompt not captured)" : "(prompt not exported)");
  if (!prompt) return el("span", { class: "muted" }, "(no prompt)");
  return firstLine(prompt, 120);
}

function tokensCell(row) {
  const total = totalTokens(row);
  return el("span", { title: `input ${whole(row.input_tokens)}, output ${whole(row.output_tokens)}, cache read ${whole(row.cache_read_tokens)}, cache write ${whole(row.cache_creation_tokens)}, reasoning ${whole(row.reasoning_tokens)}` }, compact(total));
}

function toolsCell(t) {
  const calls = t.tool_calls || [];
  const failed = calls.filter((c) => c.success === false).length;
  return el("span", {}, String(calls.length), failed ? el("span", { class: "bad" }, ` (${failed} failed)`) : null);
}

/** A form of filters that writes them into the address (so the page can be linked). */
function filterForm(fields, params, base, { submitLabel = "Apply" } = {}) {
  const form = el("form", { class: "filters", role: "search" });
  for (const f of fields) {
    const id = `f-${f.name}`;
    let input;
    if (f.options) {
      input = el("select", { id, name: f.name }, el("option", { value: "" }, f.all || "all"), f.options.map((o) => el("option", { value: o, selected: params.get(f.name) === o }, o)));
      if (params.get(f.name) && !f.options.includes(params.get(f.name))) input.append(el("option", { value: params.get(f.name), selected: true }, params.get(f.name)));
    } else {
      input = el("input", { id, name: f.name, type: f.type || "text", value: params.get(f.name) || "", placeholder: f.placeholder, spellcheck: "false" });
    }
    form.append(el("div", { class: "field" + (f.wide ? " wide" : "") }, el("label", { for: id }, f.label), input));
  }
  form.append(el("div", { class: "field actions" }, el("button", { type: "submit" }, submitLabel), el("a", { href: base, class: "reset" }, "Reset")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const [key, value] of new FormData(form)) if (String(value).trim()) next.set(key, String(value).trim());
    for (const keep of ["range", "stack"]) if (params.get(keep) && !next.has(keep)) next.set(keep, params.get(keep));
    location.hash = base + (next.toString() ? "?" + next : "");
  });
  return form;
}

/** Cursor paging: the list's `next_cursor` and the cursors that led here (in the address). */
function pager(base, params, nextCursor) {
  const trail = (params.get("trail") || "").split(",").filter(Boolean);
  const nav = el("nav", { class: "pager", "aria-label": "Pages" });
  const go = (cursor, newTrail) => {
    const next = new URLSearchParams(params);
    if (cursor) next.set("cursor", cursor);
    else next.delete("cursor");
    if (newTrail.length) next.set("trail", newTrail.join(","));
    else next.delete("trail");
    return base + "?" + next;
  };
  if (params.get("cursor")) {
    const prev = trail.slice(0, -1);
    nav.append(el("a", { href: "#" + go(trail[trail.length - 1] === "0" ? null : trail[trail.length - 1], prev).slice(1), class: "button" }, "← Newer"));
  }
  nav.append(el("span", { class: "muted" }, `Page ${trail.length + 1}`));
  if (nextCursor) nav.append(el("a", { href: "#" + go(nextCursor, [...trail, params.get("cursor") || "0"]).slice(1), class: "button", rel: "next" }, "Older →"));
  return nav;
}

// ---- time range ------------------------------------------------------------------------------

const RANGES = { today: "Today", "7d": "7 days", "30d": "30 days", custom: "Custom" };

function localMidnight(date) {
  return new Date(date.getFullYear(), date.getMonth(), date.getDate());
}

/** {from, to} (Dates) of the range in the address; `to` is exclusive. */
function rangeOf(params) {
  const now = new Date();
  const range = params.get("range") || "7d";
  const today = localMidnight(now);
  // Up to the next whole minute: the same period (and cached answers) for a minute.
  const soon = new Date(Math.ceil((now.getTime() + 1) / 60_000) * 60_000);
  if (range === "today") return { from: today, to: soon };
  if (range === "custom" && params.get("from")) {
    const from = new Date(params.get("from") + "T00:00:00");
    const toDay = params.get("to") ? new Date(params.get("to") + "T00:00:00") : today;
    return { from, to: new Date(toDay.getTime() + DAY_MS) };
  }
  const days = range === "30d" ? 30 : 7;
  return { from: new Date(today.getTime() - (days - 1) * DAY_MS), to: soon };
}

/** The UTC day keys (YYYY-MM-DD) a range covers. */
function utcDays(from, to) {
  const days = [];
  let t = Date.UTC(from.getUTCFullYear(), from.getUTCMonth(), from.getUTCDate());
  while (t < to.getTime() && days.length < 400) {
    days.push(new Date(t).toISOString().slice(0, 10));
    t += DAY_MS;
  }
  return days;
}

function rangePicker(params, base) {
  const current = params.get("range") || "7d";
  const group = el("div", { class: "range", role: "group", "aria-label": "Time range" });
  for (const [key, label] of Object.entries(RANGES)) {
    const next = new URLSearchParams(params);
    next.set("range", key);
    if (key !== "custom") {
      next.delete("from");
      next.delete("to");
    }
    group.append(el("a", { href: base + "?" + next, class: "button" + (key === current ? " on" : ""), "aria-pressed": key === current ? "true" : "false" }, label));
  }
  if (current === "custom") {
    const form = el("form", { class: "custom-range" });
    const from = el("input", { type: "date", id: "range-from", name: "from", value: params.get("from") || "", required: true });
    const to = el("input", { type: "date", id: "range-to", name: "to", value: params.get("to") || "" });
    form.append(el("label", { for: "range-from" }, "From"), from, el("label", { for: "range-to" }, "to"), to, el("button", { type: "submit" }, "Show"));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const next = new URLSearchParams(params);
      next.set("range", "custom");
      next.set("from", from.value);
      if (to.value) next.set("to", to.value);
      else next.delete("to");
      location.hash = base + "?" + next;
    });
    group.append(form);
  }
  return group;
}

// ---- usage helpers ---------------------------------------------------------------------------

const FILTERS = [
  ["agent", "Agent"],
  ["user_id", "User"],
  ["model", "Model"],
  ["repository", "Repository"],
  ["team", "Team"],
];

/** Every row of a usage grouping (follows next_cursor, at most `max` rows). */
async function usageAll(groupBy, filters, max = 500) {
  const rows = [];
  let cursor = null;
  do {
    const page = await cachedApi("/api/public/usage" + qs({ ...filters, group_by: groupBy, limit: 500, cursor }));
    rows.push(...(page.data || []));
    cursor = page.next_cursor;
  } while (cursor && rows.length < max);
  return { rows, more: Boolean(cursor) };
}

function sumRows(rows) {
  const sum = { prompts: 0, sessions: 0, input_tokens: 0, output_tokens: 0, cache_read_tokens: 0, cache_creation_tokens: 0, reasoning_tokens: 0, cost_usd: 0, unpriced_prompts: 0, tool_calls: 0, tool_failures: 0 };
  let anyCost = false;
  for (const r of rows) {
    for (const key of Object.keys(sum)) if (key !== "cost_usd") sum[key] += r[key] || 0;
    if (r.cost_usd !== null && r.cost_usd !== undefined) {
      sum.cost_usd += r.cost_usd;
      anyCost = true;
    }
  }
  if (!anyCost) sum.cost_usd = null;
  return sum;
}

const byCost = (a, b) => (b.cost_usd || 0) - (a.cost_usd || 0) || totalTokens(b) - totalTokens(a);

// ---- overview --------------------------------------------------------------------------------

async function overview(root, { params, isCurrent }) {
  const { from, to } = rangeOf(params);
  const filters = { from: from.toISOString(), to: to.toISOString() };
  for (const [name] of FILTERS) if (params.get(name)) filters[name] = params.get(name);
  const filtered = FILTERS.some(([name]) => params.get(name));
  const stack = params.get("stack") || "agent";

  root.append(el("div", { class: "page-head" }, el("h1", {}, "Overview"), rangePicker(params, "#/overview")));

  // The cards first (one query), then every panel as its own answer arrives.
  let byAgent;
  try {
    byAgent = await usageAll("agent", filters);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) {
      root.append(el("p", { class: "error", role: "alert" }, "This host has no usage endpoint (GET /api/public/usage): the overview needs it."));
      return;
    }
    throw e;
  }
  if (!isCurrent()) return;
  const filterSlot = el("div", {}, filterForm(FILTERS.map(([name, label]) => ({ name, label, options: [] })), params, "#/overview"));
  root.append(filterSlot);

  const total = sumRows(byAgent.rows);
  const tokens = totalTokens(total);
  const usersCard = card("Active users", "…");
  const cards = el(
    "div",
    { class: "cards", "data-testid": "cards" },
    card("Prompts", whole(total.prompts)),
    card("Sessions", whole(total.sessions)),
    usersCard,
    card("Tokens", compact(tokens), `${compact(total.input_tokens)} in · ${compact(total.output_tokens)} out · ${compact(total.cache_read_tokens + total.cache_creation_tokens)} cache`),
    card(
      "Cost",
      usd(total.cost_usd),
      total.unpriced_prompts
        ? el("span", { class: "warn" }, `${whole(total.unpriced_prompts)} prompts without a price are not in it`)
        : total.prompts ? `${usd((total.cost_usd || 0) / total.prompts)} per prompt` : null,
    ),
    card("Failed tool calls", whole(total.tool_failures), total.tool_calls ? `of ${whole(total.tool_calls)} (${percent(total.tool_failures / total.tool_calls)})` : null),
  );
  Object.assign(cards.dataset, { prompts: String(total.prompts), tokens: String(tokens), cost: String(total.cost_usd ?? ""), from: filters.from, to: filters.to });
  root.append(cards);

  // Slots, filled as their data comes.
  const slot = (label) => el("div", { class: "slot", "aria-busy": "true" }, el("p", { class: "muted loading" }, `Loading ${label}…`));
  const stackPicker = el("div", { class: "range", role: "group", "aria-label": "Stack the charts by" }, el("span", { class: "muted" }, "Stack by"));
  for (const key of ["agent", "model", "user"]) {
    const next = new URLSearchParams(params);
    next.set("stack", key);
    stackPicker.append(el("a", { href: "#/overview?" + next, class: "button" + (key === stack ? " on" : ""), "aria-pressed": String(key === stack) }, key));
  }
  const chartsSlot = slot("charts");
  const topsSlot = slot("top lists");
  const failSlot = slot("failures");
  const outcomesSlot = el("div");
  root.append(el("div", { class: "section-head" }, el("h2", {}, "Per day"), stackPicker), chartsSlot, el("p", { class: "muted small" }, "Days are UTC days."), topsSlot, failSlot, outcomesSlot);
  const fill = (target, node) => {
    target.replaceChildren(node);
    target.removeAttribute("aria-busy");
  };

  const byUserP = usageAll("user", filters);
  const byModelP = usageAll("model", filters);
  const byRepoP = usageAll("repository", filters);
  const byTeamP = usageAll("team", filters).catch(() => ({ rows: [] }));
  const agentsP = filtered ? usageAll("agent", { from: filters.from, to: filters.to }) : Promise.resolve(byAgent);
  const keys = (g) => g.rows.map((r) => r.key).filter((k) => k !== null && k !== undefined && k !== "");

  const tasks = [];
  // Filters: their options from the period.
  tasks.push(
    Promise.all([agentsP, byUserP, byModelP, byRepoP, byTeamP]).then(([agents, users, models, repos, teams]) => {
      if (!isCurrent()) return;
      const options = { agent: keys(agents), user_id: keys(users), model: keys(models), repository: keys(repos), team: keys(teams) };
      filterSlot.replaceChildren(filterForm(FILTERS.map(([name, label]) => ({ name, label, options: options[name] })), params, "#/overview"));
      const active = users.rows.filter((r) => r.key !== null).length;
      usersCard.querySelector(".card-value").textContent = whole(active) + (users.more ? "+" : "");
    }),
  );

  // Charts per day, stacked by the chosen dimension (top 6 and the rest).
  const days = utcDays(from, to);
  const dayIndex = new Map(days.map((d, i) => [d, i]));
  const stackSource = { agent: [Promise.resolve(byAgent), "agent"], model: [byModelP, "model"], user: [byUserP, "user_id"] }[stack] || [Promise.resolve(byAgent), "agent"];
  tasks.push(
    (async () => {
      const [group, byDay] = await Promise.all([stackSource[0], usageAll("day", filters)]);
      const top = group.rows.filter((r) => r.key !== null && r.key !== "").sort(byCost).slice(0, 6);
      // One key covering everything needs no query of its own.
      const perKey = top.length === 1 && sumRows(group.rows).prompts === top[0].prompts
        ? [byDay]
        : await Promise.all(top.map((r) => usageAll("day", { ...filters, [stackSource[1]]: r.key })));
      if (!isCurrent()) return;
      const seriesOf = (metric) => {
        const series = top.map((r, k) => {
          const values = new Array(days.length).fill(0);
          for (const row of perKey[k].rows) if (dayIndex.has(row.key)) values[dayIndex.get(row.key)] = metric(row);
          return { key: String(r.key), values };
        });
        const totals = new Array(days.length).fill(0);
        for (const row of byDay.rows) if (dayIndex.has(row.key)) totals[dayIndex.get(row.key)] = metric(row);
        const other = totals.map((t, i) => Math.max(0, t - series.reduce((sum, x) => sum + x.values[i], 0)));
        if (other.some((v) => v > 1e-9)) series.push({ key: "other", values: other });
        return series;
      };
      fill(
        chartsSlot,
        el(
          "div",
          { class: "charts" },
          stackedBars({ title: "Cost (USD)", days, series: seriesOf((r) => r.cost_usd || 0), format: usd, axis: usdAxis }),
          stackedBars({ title: "Tokens", days, series: seriesOf(totalTokens), format: compact }),
        ),
      );
    })(),
  );

  // Top lists.
  const topRows = (g, hrefOf) =>
    g.rows
      .filter((r) => r.key !== null && r.key !== "")
      .sort(byCost)
      .slice(0, 8)
      .map((r) => ({ label: String(r.key), value: r.cost_usd || 0, extra: `${compact(totalTokens(r))} tokens · ${whole(r.prompts)} prompt${r.prompts === 1 ? "" : "s"}`, href: hrefOf ? hrefOf(r.key) : null }));
  tasks.push(
    Promise.all([byUserP, byModelP, byRepoP]).then(([users, models, repos]) => {
      if (!isCurrent()) return;
      fill(
        topsSlot,
        el(
          "div",
          { class: "grid3" },
          barList({ title: "Top users", rows: topRows(users, (k) => `#/user/${enc(k)}`), format: usd }),
          barList({ title: "Top models", rows: topRows(models), format: usd }),
          barList({ title: "Top repositories", rows: topRows(repos, (k) => `#/traces?repository=${enc(k)}`), format: usd, empty: "No repository reported in this period." }),
        ),
      );
    }),
  );

  // Where it failed: tool calls by agent, batches that failed to normalize or were not claimed.
  tasks.push(
    api("/api/public/batches?limit=100")
      .catch(() => null)
      .then((problems) => {
        if (!isCurrent()) return;
        const failing = byAgent.rows.filter((r) => r.tool_failures > 0);
        const failedBatches = problems ? problems.data || [] : [];
        fill(
          failSlot,
          el(
            "div",
            { class: "grid2" },
            el(
              "section",
              { class: "panel" },
              el("h3", {}, "Failed tool calls"),
              table(
                [
                  ["Agent", (r) => r.key],
                  ["Failed", (r) => el("span", { class: "bad" }, whole(r.tool_failures)), { numeric: true }],
                  ["Of", (r) => whole(r.tool_calls), { numeric: true }],
                  ["", (r) => link(`#/traces?agent=${enc(r.key)}`, "traces")],
                ],
                failing,
                { empty: "No failed tool call in this period." },
              ),
            ),
            el(
              "section",
              { class: "panel" },
              el("h3", {}, "Plugin errors"),
              failedBatches.length
                ? el(
                    "div",
                    {},
                    el("p", {}, `${whole(failedBatches.length)}${problems.next_cursor ? "+" : ""} stored batches failed to normalize or were not claimed. `, link("#/operators", "Open the operators' view")),
                    el("ul", { class: "errors" }, [...new Set(failedBatches.map((b) => b.error || `${b.status} (${b.signal})`))].slice(0, 5).map((e) => el("li", {}, firstLine(e, 200)))),
                  )
                : el("p", { class: "muted" }, "No failed or unclaimed batch."),
            ),
          ),
        );
      }),
  );

  // Outcomes, when the host reports them.
  tasks.push(
    api("/api/public/outcomes" + qs({ ...filters, group_by: "agent" }))
      .catch(() => null)
      .then((outcomes) => {
        if (!isCurrent() || !outcomes || !outcomes.data || !outcomes.data.length) return;
        outcomesSlot.append(
          el(
            "section",
            { class: "panel" },
            el("h3", {}, "Outcomes"),
            table(
              [
                ["Agent", (r) => r.key ?? "—"],
                ["Lines added", (r) => whole(r.lines_added), { numeric: true }],
                ["Lines removed", (r) => whole(r.lines_removed), { numeric: true }],
                ["Commits", (r) => whole(r.commits), { numeric: true }],
                ["Pull requests", (r) => whole(r.pull_requests), { numeric: true }],
                ["Edits accepted", (r) => percent(r.acceptance_rate), { numeric: true }],
                ["Active time", (r) => duration((r.active_seconds || 0) * 1000), { numeric: true }],
              ],
              outcomes.data,
            ),
          ),
        );
      }),
  );

  const results = await Promise.allSettled(tasks);
  const failed = results.find((r) => r.status === "rejected");
  if (failed && isCurrent()) {
    for (const target of [chartsSlot, topsSlot, failSlot]) if (target.hasAttribute("aria-busy")) fill(target, el("p", { class: "error" }, failed.reason.message || String(failed.reason)));
  }
}

// ---- traces ----------------------------------------------------------------------------------

const TRACE_FILTERS = [
  { name: "q", label: "Search prompts", type: "search", placeholder: "words in the prompt", wide: true },
  { name: "agent", label: "Agent" },
  { name: "user_id", label: "User" },
  { name: "session_id", label: "Session" },
  { name: "repository", label: "Repository" },
  { name: "team", label: "Team" },
  { name: "from", label: "From", type: "date" },
  { name: "to", label: "To", type: "date" },
];

async function traces(root, { params, isCurrent }) {
  root.append(el("div", { class: "page-head" }, el("h1", {}, "Traces")));
  root.append(filterForm(TRACE_FILTERS.map((f) => (f.name === "agent" ? { ...f, options: [] } : f)), params, "#/traces", { submitLabel: "Search" }));
  // The agents of the select come after the list (a usage query over every trace).
  const agentSelect = root.querySelector("#f-agent");
  const agentsLoaded = cachedApi("/api/public/usage?group_by=agent&limit=100")
    .then((p) => {
      for (const agent of p.data.map((r) => r.key).filter(Boolean)) {
        if (![...agentSelect.options].some((o) => o.value === agent)) agentSelect.append(el("option", { value: agent }, agent));
      }
    })
    .catch(() => {});
  const query = { limit: 50, cursor: params.get("cursor") };
  for (const f of TRACE_FILTERS) {
    const value = params.get(f.name);
    if (!value) continue;
    if (f.type === "date") {
      const day = new Date(value + "T00:00:00");
      query[f.name] = new Date(f.name === "to" ? day.getTime() + DAY_MS : day.getTime()).toISOString();
    } else query[f.name] = value;
  }
  const page = await api("/api/public/traces" + qs(query));
  if (!isCurrent()) return;
  root.append(
    table(
      [
        ["Time", (t) => timeEl(t.start_time)],
        ["Prompt", traceLink, { cls: "prompt" }],
        ["Agent", (t) => agentChip(t.agent)],
        ["User", (t) => userLink(t.user_id)],
        ["Models", (t) => (t.models || []).join(", ")],
        ["Tokens", tokensCell, { numeric: true }],
        ["Cost", (t) => usd(t.cost_usd), { numeric: true }],
        ["Tools", toolsCell, { numeric: true }],
        ["Duration", (t) => duration(between(t.start_time, t.end_time)), { numeric: true }],
      ],
      page.data,
      { caption: "Traces, newest first", empty: "No trace matches." },
    ),
    pager("#/traces", params, page.next_cursor),
  );
  root.querySelector(".table-wrap, .empty").dataset.count = String(page.data.length);
  void agentsLoaded;
}

// ---- one trace -------------------------------------------------------------------------------

async function trace(root, { id }) {
  const t = await api(`/api/public/traces/${enc(id)}`);
  const obs = t.observations || [];
  const ms = between(t.start_time, t.end_time);
  root.append(
    el("p", { class: "crumbs" }, link("#/traces", "Traces"), " / ", shortId(t.id)),
    el("h1", { class: "prompt-title" }, promptLabel(t.prompt)),
    el(
      "dl",
      { class: "facts" },
      fact("Agent", agentChip(t.agent)),
      fact("User", userLink(t.user_id)),
      fact("Session", sessionLink(t.session_id)),
      fact("Device", t.device_id || "—"),
      t.repository ? fact("Repository", t.repository + (t.branch ? ` @ ${t.branch}` : "")) : null,
      t.team ? fact("Team", t.team) : null,
      fact("Started", timeEl(t.start_time)),
      fact("Duration", duration(ms)),
      fact("Models", (t.models || []).join(", ") || "—"),
      fact("Tokens", tokensCell(t)),
      fact("Cost", usd(t.cost_usd) + (t.cost_source ? ` (${t.cost_source === "agent" ? "reported by the agent" : "from the price table"})` : "")),
    ),
  );
  if ((t.errors || []).length) {
    root.append(el("section", { class: "panel bad-panel" }, el("h2", {}, "Errors"), el("ul", { class: "errors" }, t.errors.map((e) => el("li", {}, folded(e, 600))))));
  }
  // A long prompt's detail carries the first 500 entries; the rest page from the API.
  const moreTimeline = t.observations_next_cursor
    ? el("p", { class: "muted" }, `Showing the first ${obs.length} of ${t.observation_count} entries (the rest: GET /api/public/traces/${t.id}/observations).`)
    : null;
  root.append(el("section", { class: "panel" }, el("h2", {}, "Timeline"), moreTimeline, waterfall(t, obs)));
  root.append(
    el("div", { class: "grid2" },
      el("section", { class: "panel" }, el("h2", {}, "Prompt"), hintOr(t.prompt)),
      el("section", { class: "panel" }, el("h2", {}, "Response"), hintOr(t.response)),
    ),
  );
  const calls = t.tool_calls || [];
  const callCount = t.tool_call_count ?? calls.length;
  const title = callCount > calls.length ? `Tool calls (first ${calls.length} of ${callCount})` : `Tool calls (${calls.length})`;
  root.append(el("section", { class: "panel" }, el("h2", {}, title), calls.length ? el("div", { class: "tools" }, calls.map(toolCall)) : el("p", { class: "muted" }, "No tool call.")));
}

function fact(label, value) {
  return el("div", {}, el("dt", {}, label), el("dd", {}, value));
}

function toolCall(c) {
  const status = c.success === false ? el("span", { class: "bad" }, "failed") : c.success === true ? el("span", { class: "good" }, "ok") : el("span", { class: "muted" }, "?");
  return el(
    "details",
    { class: "tool" },
    el("summary", {}, el("strong", {}, c.name || "tool"), " · ", status, " · ", duration(c.duration_ms), c.decision ? ` · ${c.decision}${c.decision_source ? ` (${c.decision_source})` : ""}` : ""),
    el("h3", {}, "Arguments"),
    hintOr(c.args, { fold: 800 }),
    el("h3", {}, "Result"),
    hintOr(c.result, { fold: 800 }),
  );
}

/** The waterfall: one row per model call and tool call (events as ticks when asked). */
function waterfall(t, observations) {
  const timed = observations.filter((o) => o.start_time);
  const starts = timed.map((o) => new Date(o.start_time).getTime());
  const ends = timed.map((o) => new Date(o.end_time || o.start_time).getTime());
  const t0 = Math.min(...starts, t.start_time ? new Date(t.start_time).getTime() : Infinity);
  const t1 = Math.max(...ends, t.end_time ? new Date(t.end_time).getTime() : -Infinity);
  const span = Math.max(1, t1 - t0);
  const toolsById = new Map((t.tool_calls || []).map((c) => [c.id, c]));
  const rows = observations.filter((o) => o.type === "llm_call" || o.type === "tool_call");
  const events = observations.filter((o) => o.type !== "llm_call" && o.type !== "tool_call");
  if (!rows.length && !events.length) return el("p", { class: "muted" }, "No timeline.");

  const list = el("ol", { class: "waterfall", "aria-label": "Model calls and tool calls in time order" });
  const scale = el("li", { class: "wf-row wf-scale", "aria-hidden": "true" }, el("span", { class: "wf-label" }, ""), el("span", { class: "wf-track" }, [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const tick = el("span", { class: "wf-tick" }, duration(f * span));
    tick.style.left = `${f * 100}%`;
    return tick;
  })));
  list.append(scale);
  for (const o of rows) {
    const start = o.start_time ? new Date(o.start_time).getTime() : t0;
    const end = o.end_time ? new Date(o.end_time).getTime() : start;
    const tool = o.type === "tool_call" ? toolsById.get(o.id) : null;
    const failed = Boolean(o.error) || (tool && tool.success === false);
    const u = o.usage;
    const detail = o.type === "llm_call"
      ? `${u ? compact(totalTokens({ input_tokens: u.input, output_tokens: u.output, cache_read_tokens: u.cache_read, cache_creation_tokens: u.cache_creation, reasoning_tokens: u.reasoning })) + " tokens" : "no usage"}${o.cost_usd != null ? " · " + usd(o.cost_usd) : ""}`
      : failed ? "failed" : tool && tool.success === true ? "ok" : "";
    const bar = el("span", { class: `wf-bar ${o.type === "llm_call" ? "llm" : "tool"}${failed ? " failed" : ""}` });
    bar.style.left = `${((start - t0) / span) * 100}%`;
    bar.style.width = `${Math.max(0.4, ((end - start) / span) * 100)}%`;
    list.append(
      el(
        "li",
        { class: "wf-row", "data-type": o.type, title: o.error || undefined },
        el("span", { class: "wf-label" }, el("span", { class: `wf-kind ${o.type === "llm_call" ? "llm" : "tool"}` }, o.type === "llm_call" ? "model" : "tool"), " ", el("span", { class: "wf-name" }, o.name), el("span", { class: "wf-meta" + (failed ? " bad" : "") }, `+${duration(start - t0)} · ${duration(end - start)}${detail ? " · " + detail : ""}`)),
        el("span", { class: "wf-track" }, bar),
      ),
    );
  }
  const box = el("div", {}, list);
  if (events.length) {
    box.append(
      el(
        "details",
        { class: "events" },
        el("summary", {}, `${events.length} other events`),
        table(
          [
            ["Time", (o) => timeEl(o.start_time)],
            ["Event", (o) => o.name],
            ["Error", (o) => (o.error ? el("span", { class: "bad" }, firstLine(o.error, 160)) : "")],
          ],
          events,
        ),
      ),
    );
  }
  return box;
}

// ---- sessions --------------------------------------------------------------------------------

async function sessions(root, { params, isCurrent }) {
  // A period (7 days unless chosen): the list aggregates the period's traces, not all of them.
  const { from, to } = rangeOf(params);
  root.append(el("div", { class: "page-head" }, el("h1", {}, "Sessions"), rangePicker(params, "#/sessions")));
  const page = await api("/api/public/sessions" + qs({ limit: 50, cursor: params.get("cursor"), from: from.toISOString(), to: to.toISOString() }));
  if (!isCurrent()) return;
  root.append(
    table(
      [
        ["Started", (s) => timeEl(s.start_time)],
        ["Session", (s) => sessionLink(s.id)],
        ["Agent", (s) => agentChip(s.agent)],
        ["User", (s) => userLink(s.user_id)],
        ["Device", (s) => s.device_id || "—"],
        ["Prompts", (s) => whole(s.trace_count), { numeric: true }],
        ["Tokens", tokensCell, { numeric: true }],
        ["Cost", (s) => usd(s.cost_usd), { numeric: true }],
        ["Length", (s) => duration(between(s.start_time, s.end_time)), { numeric: true }],
      ],
      page.data,
      { caption: "Sessions, latest first", empty: "No session in this period." },
    ),
    pager("#/sessions", params, page.next_cursor),
  );
}

async function session(root, { id }) {
  const s = await api(`/api/public/sessions/${enc(id)}`);
  const traces = s.traces || [];
  const devices = [...new Set([s.device_id, ...traces.map((t) => t.device_id)].filter(Boolean))];
  root.append(
    el("p", { class: "crumbs" }, link("#/sessions", "Sessions"), " / ", shortId(s.id)),
    el("h1", {}, "Session ", el("code", {}, shortId(s.id))),
    el(
      "div",
      { class: "cards" },
      card("Prompts", whole(s.trace_count)),
      card("Tokens", compact(totalTokens(s))),
      card("Cost", usd(s.cost_usd)),
      card("Length", duration(between(s.start_time, s.end_time)), `${when(s.start_time)} → ${when(s.end_time)}`),
    ),
    el("dl", { class: "facts" }, fact("Agent", agentChip(s.agent)), fact("User", userLink(s.user_id)), fact("Devices", devices.join(", ") || "—"), fact("Session id", el("code", {}, s.id))),
    el("h2", {}, "Prompts in order"),
    table(
      [
        ["#", (t) => String(traces.indexOf(t) + 1), { numeric: true }],
        ["Time", (t) => timeEl(t.start_time)],
        ["Prompt", traceLink, { cls: "prompt" }],
        ["Models", (t) => (t.models || []).join(", ")],
        ["Tokens", tokensCell, { numeric: true }],
        ["Cost", (t) => usd(t.cost_usd), { numeric: true }],
        ["Tools", toolsCell, { numeric: true }],
        ["Duration", (t) => duration(between(t.start_time, t.end_time)), { numeric: true }],
      ],
      traces,
      { empty: "No prompt in this session." },
    ),
  );
}

// ---- users -----------------------------------------------------------------------------------

async function users(root, { params, isCurrent }) {
  root.append(el("div", { class: "page-head" }, el("h1", {}, "Users")));
  const page = await api("/api/public/users" + qs({ limit: 50, cursor: params.get("cursor") }));
  if (!isCurrent()) return;
  root.append(
    table(
      [
        ["User", (u) => userLink(u.id)],
        ["Agents", (u) => Object.entries(u.agents || {}).map(([a, n]) => el("span", { class: "chip", title: `${n} prompts` }, `${a} ${whole(n)}`))],
        ["Prompts", (u) => whole(u.traces), { numeric: true }],
        ["Sessions", (u) => whole(u.sessions), { numeric: true }],
        ["Tokens", tokensCell, { numeric: true }],
        ["Cost", (u) => usd(u.cost_usd), { numeric: true }],
        ["Last seen", (u) => timeEl(u.last_seen)],
      ],
      page.data,
      { caption: "Users", empty: "No user yet." },
    ),
    pager("#/users", params, page.next_cursor),
  );
}

async function user(root, { id, params, isCurrent }) {
  const { from, to } = rangeOf(params.get("range") ? params : new URLSearchParams("range=30d"));
  const filters = { user_id: id, from: from.toISOString(), to: to.toISOString() };
  root.append(el("p", { class: "crumbs" }, link("#/users", "Users"), " / ", id), el("div", { class: "page-head" }, el("h1", {}, id), rangePicker(params.get("range") ? params : new URLSearchParams("range=30d"), `#/user/${enc(id)}`)));
  const [byAgent, byDevice, byDay, recent] = await Promise.all([
    usageAll("agent", filters).catch(() => null),
    usageAll("device", filters).catch(() => null),
    usageAll("day", filters).catch(() => null),
    api("/api/public/traces" + qs({ user_id: id, limit: 20 })),
  ]);
  if (!isCurrent()) return;
  if (byAgent) {
    const total = sumRows(byAgent.rows);
    root.append(el("div", { class: "cards" }, card("Prompts", whole(total.prompts)), card("Sessions", whole(total.sessions)), card("Tokens", compact(totalTokens(total))), card("Cost", usd(total.cost_usd))));
    const days = utcDays(from, to);
    const index = new Map(days.map((d, i) => [d, i]));
    const agents = byAgent.rows.filter((r) => r.key !== null).sort(byCost).slice(0, 6);
    const perAgent = await Promise.all(agents.map((r) => usageAll("day", { ...filters, agent: r.key })));
    const series = (metric) => agents.map((r, k) => {
      const values = new Array(days.length).fill(0);
      for (const row of perAgent[k].rows) if (index.has(row.key)) values[index.get(row.key)] = metric(row);
      return { key: r.key, values };
    });
    root.append(
      el("div", { class: "charts" }, stackedBars({ title: "Cost (USD) by agent", days, series: series((r) => r.cost_usd || 0), format: usd, axis: usdAxis }), stackedBars({ title: "Tokens by agent", days, series: series(totalTokens), format: compact })),
      el("div", { class: "grid2" },
        el("section", { class: "panel" }, el("h3", {}, "Agents"), table([["Agent", (r) => agentChip(r.key)], ["Prompts", (r) => whole(r.prompts), { numeric: true }], ["Tokens", tokensCell, { numeric: true }], ["Cost", (r) => usd(r.cost_usd), { numeric: true }]], byAgent.rows)),
        el("section", { class: "panel" }, el("h3", {}, "Devices"), byDevice ? table([["Device", (r) => r.key ?? "—"], ["Prompts", (r) => whole(r.prompts), { numeric: true }], ["Tokens", tokensCell, { numeric: true }], ["Cost", (r) => usd(r.cost_usd), { numeric: true }]], byDevice.rows) : el("p", { class: "muted" }, "—")),
      ),
    );
    void byDay;
  }
  root.append(
    el("h2", {}, "Latest prompts"),
    table(
      [
        ["Time", (t) => timeEl(t.start_time)],
        ["Prompt", traceLink, { cls: "prompt" }],
        ["Agent", (t) => agentChip(t.agent)],
        ["Tokens", tokensCell, { numeric: true }],
        ["Cost", (t) => usd(t.cost_usd), { numeric: true }],
        ["Session", (t) => sessionLink(t.session_id)],
      ],
      recent.data,
      { empty: "No prompt." },
    ),
    el("p", {}, link(`#/traces?user_id=${enc(id)}`, "All of this user's traces →")),
  );
}

// ---- operators -------------------------------------------------------------------------------

/** The admin token, in this page's memory only (gone on reload). */
let adminToken = "";

async function operators(root, { params, isCurrent }) {
  root.append(el("div", { class: "page-head" }, el("h1", {}, "Operators")));
  const form = el("form", { class: "filters", autocomplete: "off" });
  const input = el("input", { id: "admin-token", type: "password", autocomplete: "off", value: adminToken, spellcheck: "false" });
  form.append(el("div", { class: "field wide" }, el("label", { for: "admin-token" }, "Admin token (ANTENNA_ADMIN_TOKEN; kept in this tab's memory only)"), input), el("div", { class: "field actions" }, el("button", { type: "submit" }, "Use token")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    adminToken = input.value.trim();
    operators(root.replaceChildren() || root, { params, isCurrent });
  });
  root.append(form);
  const admin = (path, options = {}) => api(path, { ...options, headers: { Authorization: `Bearer ${adminToken}` } });

  if (adminToken) {
    try {
      const plugins = await admin("/api/admin/plugins");
      if (!isCurrent()) return;
      root.append(
        el("h2", {}, "Plugins"),
        table(
          [
            ["Name", (p) => el("strong", {}, p.name)],
            ["Version", (p) => p.version],
            ["Agent", (p) => agentChip(p.agent)],
            ["Source", (p) => sourceText(p.source)],
            ["State", (p) => (p.put_aside ? el("span", { class: "bad" }, "put aside") : p.active ? el("span", { class: "good" }, "active") : el("span", { class: "muted" }, "shadowed"))],
            ["Claims", (p) => claimsText(p.claims)],
            ["Batches", (p) => whole(p.batches), { numeric: true }],
            ["Failures", (p) => (p.failures ? el("span", { class: "bad" }, whole(p.failures)) : "0"), { numeric: true }],
            ["Last error", (p) => (p.last_error ? folded(p.last_error, 200) : "")],
          ],
          plugins.data || [],
          { caption: "Plugins", empty: "No plugin loaded." },
        ),
        el("h2", {}, "Refused files"),
        table([["File", (r) => el("code", {}, r.file)], ["Reason", (r) => r.reason]], plugins.refused || [], { empty: "No file refused." }),
      );
    } catch (e) {
      root.append(el("p", { class: "error", role: "alert" }, e.status === 401 ? "The admin token was refused." : e.status === 403 ? "The admin API is off on this host (start it with ANTENNA_ADMIN_TOKEN)." : e.message));
    }
  } else {
    root.append(el("p", { class: "muted" }, "Enter the admin token to see the plugins and to replay batches."));
  }

  // Failed and unclaimed batches of this project (paged by id, oldest first).
  const page = await api("/api/public/batches" + qs({ limit: 50, cursor: params.get("cursor") }));
  if (!isCurrent()) return;
  const result = el("p", { class: "status", role: "status" });
  const me = document.getElementById("who").textContent;
  const replay = async (body, button) => {
    if (!adminToken) {
      result.textContent = "Enter the admin token first.";
      input.focus();
      return;
    }
    button.disabled = true;
    result.textContent = "Replaying…";
    try {
      const r = await admin("/api/admin/replay", { method: "POST", body: { project_id: me, ...body } });
      result.textContent = `Replayed ${whole(r.batches)} batches: ${whole(r.done)} done, ${whole(r.failed)} failed, ${whole(r.unclaimed)} unclaimed.`;
    } catch (e) {
      result.textContent = "Replay failed: " + e.message;
    } finally {
      button.disabled = false;
    }
  };
  const all = el("button", { type: "button" }, "Replay all failed batches");
  all.addEventListener("click", () => replay({ failed_only: true }, all));
  root.append(
    el("div", { class: "section-head" }, el("h2", {}, "Failed and unclaimed batches"), all),
    result,
    table(
      [
        ["Id", (b) => String(b.id), { numeric: true }],
        ["Received", (b) => timeEl(b.received_at)],
        ["Signal", (b) => b.signal],
        ["Status", (b) => el("span", { class: b.status === "failed" ? "bad" : "warn" }, b.status)],
        ["Agents", (b) => b.agents || "—"],
        ["Error", (b) => (b.error ? folded(b.error, 200) : "—")],
        ["", (b) => {
          const button = el("button", { type: "button", class: "small", "aria-label": `Replay batch ${b.id}` }, "Replay");
          const at = new Date(b.received_at).getTime();
          button.addEventListener("click", () => replay({ from: new Date(at).toISOString(), to: new Date(at + 1).toISOString(), failed_only: b.status === "failed" }, button));
          return button;
        }],
      ],
      page.data || [],
      { caption: "Failed and unclaimed batches", empty: "No failed or unclaimed batch." },
    ),
    pager("#/operators", params, page.next_cursor),
  );
}

function sourceText(source) {
  if (!source || typeof source !== "object") return String(source ?? "");
  const kind = String(source.kind || "").replace(/_/g, "-");
  const rest = Object.entries(source).filter(([k]) => k !== "kind").map(([, v]) => String(v));
  return rest.length ? el("span", {}, kind, " ", el("code", {}, rest.join(" "))) : kind;
}

function claimsText(claims) {
  if (!claims || typeof claims !== "object") return "";
  return Object.entries(claims)
    .filter(([, v]) => Array.isArray(v) && v.length)
    .map(([k, v]) => `${k.replace(/_/g, " ")}: ${v.join(", ")}`)
    .join("; ");
}

export const pages = { overview, traces, trace, sessions, session, users, user, operators };
