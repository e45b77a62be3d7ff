// The web UI in a real browser: a real `antenna serve` (debug build, temporary SQLite, ephemeral
// port), the fixture captures posted over real HTTP, Debian's Chromium driven by playwright-core.
// It checks what a person sees: sign-in, the overview's totals against the API's, the traces
// list narrowed by filters and search, a trace's waterfall, sessions, users, the operators'
// view, and that sign-out ends the session. Screenshots of every page go to
// target/browser-screenshots/ (not committed).
//
//   cd tests/browser && npm ci && node --test
//
// ANTENNA_BIN: the host binary (default target/debug/antenna); CHROMIUM: the browser
// (default /usr/bin/chromium).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, mkdirSync, rmSync, existsSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const BIN = process.env.ANTENNA_BIN || join(ROOT, "target", "debug", "antenna");
const BROWSER = process.env.CHROMIUM || "/usr/bin/chromium";
const SHOTS = join(ROOT, "target", "browser-screenshots");
const PUBLIC = "pk-browser";
const SECRET = "sk-browser-0123456789abcdef0123456789";
const ADMIN = "admin-token-0123456789abcdef";
const BASIC = "Basic " + Buffer.from(`${PUBLIC}:${SECRET}`).toString("base64");

let host, base, dir, browser, context, page;

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitReady() {
  for (let i = 0; i < 600; i++) {
    if (host.exitCode !== null) throw new Error(`the host exited (${host.exitCode}):\n${host.log}`);
    try {
      const r = await fetch(`${base}/readyz`);
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error("the host never became ready:\n" + host.log);
}

/** Every OTLP capture folder under fixtures/ (the Cursor hook payloads are not OTLP). */
function captures() {
  const folders = [];
  for (const agent of readdirSync(join(ROOT, "fixtures"))) {
    const agentDir = join(ROOT, "fixtures", agent);
    if (agent === "cursor" || agent === "fuzz-regressions" || !existsSync(agentDir) || agentDir.endsWith(".md")) continue;
    for (const capture of readdirSync(agentDir)) {
      const folder = join(agentDir, capture);
      if (readdirSync(folder).some((f) => f.endsWith(".meta.json"))) folders.push(folder);
    }
  }
  return folders;
}

async function postCaptures() {
  let posted = 0;
  for (const folder of captures()) {
    for (const metaFile of readdirSync(folder).filter((f) => f.endsWith(".meta.json")).sort()) {
      const meta = JSON.parse(readFileSync(join(folder, metaFile), "utf8"));
      const body = readFileSync(join(folder, meta.body_file));
      const path = meta.path.startsWith("/api/") ? meta.path : `/api/public/otel${meta.path}`;
      const r = await fetch(base + path, {
        method: "POST",
        headers: { Authorization: BASIC, "Content-Type": meta.content_type },
        body,
      });
      assert.equal(r.status, 200, `${folder}/${meta.body_file}: ${r.status} ${await r.text()}`);
      posted++;
    }
  }
  return posted;
}

/** The API with the project's Basic keys (what the UI must agree with). */
async function apiJson(path) {
  const r = await fetch(base + path, { headers: { Authorization: BASIC } });
  assert.equal(r.status, 200, `${path}: ${r.status}`);
  return r.json();
}

async function shot(name, { width = 1280, fullPage = true } = {}) {
  await page.setViewportSize({ width, height: 900 });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage });
}

async function goto(hash) {
  await page.evaluate((h) => {
    location.hash = h;
  }, hash);
  await page.waitForFunction(() => !document.querySelector("[aria-busy=true]"));
}

before(async () => {
  assert.ok(existsSync(BIN), `no host binary at ${BIN}: cargo build -p antenna first`);
  mkdirSync(SHOTS, { recursive: true });
  dir = mkdtempSync(join(tmpdir(), "antenna-browser-"));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const cache = join(ROOT, "target", "browser-compiled-plugins");
  mkdirSync(cache, { recursive: true, mode: 0o700 });
  host = spawn(BIN, ["serve"], {
    env: {
      ...process.env,
      ANTENNA_LISTEN: `127.0.0.1:${port}`,
      ANTENNA_GRPC_LISTEN: "off",
      ANTENNA_DATABASE_URL: `sqlite://${join(dir, "antenna.db")}`,
      ANTENNA_CACHE_DIR: cache,
      ANTENNA_PUBLIC_KEY: PUBLIC,
      ANTENNA_SECRET_KEY: SECRET,
      ANTENNA_ADMIN_TOKEN: ADMIN,
      RUST_LOG: process.env.RUST_LOG || "warn",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  host.log = "";
  for (const stream of [host.stdout, host.stderr]) stream.on("data", (d) => (host.log = (host.log + d).slice(-20000)));
  await waitReady();
  const posted = await postCaptures();
  assert.ok(posted >= 10, `posted ${posted} captured requests`);

  browser = await chromium.launch({ executablePath: BROWSER, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.on("pageerror", (e) => {
    throw new Error("script error in the page: " + e.message);
  });
  page.csp = [];
  page.on("console", (m) => {
    if (m.type() === "error") page.csp.push(m.text());
  });
});

after(async () => {
  await browser?.close();
  if (host && host.exitCode === null) {
    host.kill("SIGTERM");
    await new Promise((r) => host.once("exit", r));
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("sign-in: wrong keys are refused, right keys give an HttpOnly SameSite=Strict session", async () => {
  await page.goto(base + "/");
  await page.getByLabel("Public key").fill(PUBLIC);
  await page.getByLabel("Secret key").fill("not-the-secret");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("alert").filter({ hasText: "wrong secret" }).waitFor();
  await shot("00-sign-in");

  await page.getByLabel("Secret key").fill(SECRET);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Overview" }).waitFor();
  const [cookie] = (await context.cookies()).filter((c) => c.name === "antenna_session");
  assert.ok(cookie, "a session cookie");
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, "Strict");
  assert.ok(cookie.expires > Date.now() / 1000, "it expires");
  // Scripts cannot read it, and the page keeps no secret.
  assert.equal(await page.evaluate(() => document.cookie), "");
  assert.equal(await page.evaluate(() => document.getElementById("sk").value), "");
  // The page's headers.
  const r = await fetch(base + "/");
  assert.match(r.headers.get("content-security-policy"), /script-src 'self'/);
  assert.match(r.headers.get("content-security-policy"), /frame-ancestors 'none'/);
  assert.equal(r.headers.get("x-content-type-options"), "nosniff");
});

test("overview: the cards' totals equal the usage API's for the same period", async () => {
  await goto("#/overview?range=custom&from=2026-11-01&to=2026-11-30");
  const cards = page.locator("[data-testid=cards]");
  await cards.waitFor();
  const shown = await cards.evaluate((c) => ({ ...c.dataset }));
  const period = new URLSearchParams({ from: shown.from, to: shown.to });
  const usage = await apiJson(`/api/public/usage?group_by=agent&${period}`);
  const sum = (k) => usage.data.reduce((s, r) => s + (r[k] || 0), 0);
  const tokens = ["input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens", "reasoning_tokens"].reduce((s, k) => s + sum(k), 0);
  assert.ok(sum("prompts") > 0, "the captures made prompts in the period");
  assert.equal(Number(shown.prompts), sum("prompts"));
  assert.equal(Number(shown.tokens), tokens);
  assert.ok(Math.abs(Number(shown.cost || 0) - sum("cost_usd")) < 1e-9);
  // What a person reads: the Prompts card shows that number.
  const promptsCard = page.locator(".card", { hasText: "Prompts" }).locator(".card-value");
  assert.equal((await promptsCard.textContent()).replace(/\D/g, ""), String(sum("prompts")));
  // And the prompts are the traces the list API has in that period.
  const traces = await apiJson(`/api/public/traces?limit=500&${period}`);
  assert.equal(traces.data.length, sum("prompts"));
  // Charts drawn, top lists filled.
  assert.ok((await page.locator("svg.chart rect").count()) > 0, "bars drawn");
  assert.ok((await page.locator(".barlist li").count()) > 0, "top lists");
  await shot("01-overview");
  await shot("01-overview-narrow", { width: 390 });
  await goto("#/overview?range=custom&from=2026-11-01&to=2026-11-30&stack=model");
  await shot("01-overview-by-model");
});

test("traces: filters and full-text search narrow the list", async () => {
  await goto("#/traces");
  const rows = page.locator("table tbody tr");
  const all = await rows.count();
  assert.ok(all >= 4, `${all} traces listed`);
  await shot("02-traces");

  // Filter by agent through the form.
  await page.getByLabel("Agent").selectOption("codex");
  await page.getByRole("button", { name: "Search" }).click();
  // Until the filtered list is the one shown (a render may still be replacing the page).
  await page.waitForFunction(() => {
    if (!location.hash.includes("agent=codex") || document.querySelector("[aria-busy=true]")) return false;
    const chips = [...document.querySelectorAll("table tbody tr td:nth-child(3)")].map((c) => c.textContent.trim());
    return chips.length > 0 && chips.every((chip) => chip === "codex");
  });
  const codex = await rows.count();
  assert.ok(codex > 0 && codex < all, `agent filter: ${codex} of ${all}`);
  for (const chip of await page.locator("table tbody tr td:nth-child(3)").allTextContents()) assert.equal(chip.trim(), "codex");

  // Full-text search: a word of one captured prompt.
  const api = await apiJson("/api/public/traces?limit=500");
  const withPrompt = api.data.find((t) => t.prompt && !t.prompt.startsWith("[") && /[A-Za-z]{5,}/.test(t.prompt));
  assert.ok(withPrompt, "a captured prompt");
  const word = withPrompt.prompt.match(/[A-Za-z]{5,}/)[0];
  await goto("#/traces");
  await page.getByLabel("Search prompts").fill(word);
  await page.getByRole("button", { name: "Search" }).click();
  await page.waitForFunction(() => location.hash.includes("q=") && !document.querySelector("[aria-busy=true]"));
  const found = await rows.count();
  const expected = (await apiJson(`/api/public/traces?limit=500&q=${encodeURIComponent(word)}`)).data;
  assert.ok(found >= 1 && found < all, `search ${word}: ${found} of ${all}`);
  assert.equal(found, expected.length);
  for (const t of expected) assert.match(t.prompt.toLowerCase(), new RegExp(word.toLowerCase()));
  await shot("02-traces-search");

  // Nothing matches a word no prompt has.
  await goto("#/traces?q=zzqqxxnothing");
  await page.getByText("No trace matches.").waitFor();
});

test("a trace page: waterfall of its model and tool calls, prompt, folded tools, links", async () => {
  const api = await apiJson("/api/public/traces?limit=500");
  const busiest = api.data.slice().sort((a, b) => b.tool_calls.length - a.tool_calls.length)[0];
  const full = await apiJson(`/api/public/traces/${encodeURIComponent(busiest.id)}`);
  const calls = full.observations.filter((o) => o.type === "llm_call" || o.type === "tool_call");
  assert.ok(calls.length > 1, "a trace with calls");

  await goto("#/traces");
  await page.locator(`a[href="#/trace/${encodeURIComponent(busiest.id)}"]`).first().click();
  await page.getByRole("heading", { name: "Timeline" }).waitFor();
  await page.waitForFunction(() => !document.querySelector("[aria-busy=true]"));
  const rows = page.locator(".waterfall li[data-type]");
  assert.equal(await rows.count(), calls.length, "one waterfall row per model or tool call");
  const names = await page.locator(".waterfall li[data-type] .wf-name").allTextContents();
  assert.deepEqual(names, calls.map((o) => o.name));
  assert.equal(await page.locator("details.tool").count(), full.tool_calls.length);
  if (full.session_id) assert.equal(await page.locator(`a[href="#/session/${encodeURIComponent(full.session_id)}"]`).count() > 0, true);
  if (full.user_id) assert.equal(await page.locator(`a[href="#/user/${encodeURIComponent(full.user_id)}"]`).count() > 0, true);
  await shot("03-trace");
  await page.locator("details.tool summary").first().click();
  await shot("03-trace-tool-open");
  await shot("03-trace-narrow", { width: 390 });

  // A trace whose prompt was not captured shows how to turn capture on.
  const hidden = api.data.find((t) => /not captured: .* is off/.test(t.prompt || ""));
  if (hidden) {
    await goto(`#/trace/${encodeURIComponent(hidden.id)}`);
    const hint = page.locator(".hint").first();
    await hint.waitFor();
    assert.match(await hint.textContent(), /is off\. Turn it on/);
    await shot("03-trace-not-captured");
  }
});

test("sessions and users pages list what the API lists", async () => {
  await goto("#/sessions?range=custom&from=2020-01-01&to=2099-12-31");
  const sessions = await apiJson("/api/public/sessions?limit=50");
  assert.ok(sessions.data.length > 0);
  assert.equal(await page.locator("table tbody tr").count(), sessions.data.length);
  await shot("04-sessions");
  await page.locator("table tbody tr a[href^='#/session/']").first().click();
  await page.getByRole("heading", { name: "Prompts in order" }).waitFor();
  await page.waitForFunction(() => !document.querySelector("[aria-busy=true]"));
  await shot("04-session");

  await goto("#/users");
  const users = await apiJson("/api/public/users?limit=50");
  assert.equal(await page.locator("table tbody tr").count(), users.data.length);
  await shot("05-users");
  await page.locator("table tbody tr a[href^='#/user/']").first().click();
  await page.getByRole("heading", { name: "Latest prompts" }).waitFor();
  await page.waitForFunction(() => !document.querySelector("[aria-busy=true]"));
  await shot("05-user");
});

test("operators' view: plugins with the admin token, problem batches", async () => {
  await goto("#/operators");
  await page.getByLabel(/Admin token/).fill(ADMIN);
  await page.getByRole("button", { name: "Use token" }).click();
  await page.getByRole("heading", { name: "Plugins" }).waitFor();
  const names = await page.locator("table").first().locator("tbody tr td:first-child").allTextContents();
  for (const plugin of ["claude-code", "codex", "copilot", "gemini"]) assert.ok(names.some((n) => n.includes(plugin)), `${plugin} listed: ${names}`);
  await page.getByRole("heading", { name: "Failed and unclaimed batches" }).waitFor();
  await shot("06-operators");
});

test("sign-out ends the session: the cookie no longer opens the API", async () => {
  const [cookie] = (await context.cookies()).filter((c) => c.name === "antenna_session");
  const withCookie = () => fetch(base + "/api/public/traces?limit=1", { headers: { Cookie: `antenna_session=${cookie.value}` } });
  assert.equal((await withCookie()).status, 200, "the cookie works while signed in");
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { name: "Sign in" }).waitFor();
  const refused = await withCookie();
  assert.equal(refused.status, 401, "revoked on the server, not only forgotten by the browser");
  assert.equal(refused.headers.get("www-authenticate"), null, "no browser password dialog");
  assert.equal((await context.cookies()).filter((c) => c.name === "antenna_session").length, 0);
  await page.reload();
  await page.getByRole("heading", { name: "Sign in" }).waitFor();
  assert.deepEqual(page.csp.filter((m) => /Content Security Policy/i.test(m)), [], "no CSP violation");
});
