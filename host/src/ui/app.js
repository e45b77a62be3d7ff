// The Antenna web UI: sign-in, navigation and routing (#/page/id?query). Served as
// /ui/app.js under a CSP without inline code; pages are in pages.js.

import { api, el, setUnauthorizedHandler, ApiError, clearCache } from "./lib.js";
import { pages } from "./pages.js";

const $ = (id) => document.getElementById(id);
const view = $("view");
let signedIn = false;
let rendering = 0;

/** The route of the address: page name, id, query parameters. */
export function route() {
  const hash = location.hash.replace(/^#\/?/, "");
  const [path, query = ""] = hash.split("?");
  const [page = "overview", ...rest] = path.split("/");
  return { page: page || "overview", id: rest.length ? decodeURIComponent(rest.join("/")) : null, params: new URLSearchParams(query) };
}

function showSignIn(message) {
  signedIn = false;
  clearCache();
  $("nav").hidden = true;
  $("signout").hidden = true;
  $("who").hidden = true;
  view.replaceChildren();
  $("signin").hidden = false;
  $("signin-error").textContent = message || "";
  $("pk").focus();
}

function showApp(project) {
  signedIn = true;
  $("signin").hidden = true;
  $("nav").hidden = false;
  $("signout").hidden = false;
  $("who").hidden = false;
  $("who").textContent = project;
  $("sk").value = "";
}

async function render() {
  if (!signedIn) return;
  const ticket = ++rendering;
  const { page, id, params } = route();
  for (const a of document.querySelectorAll("#nav a")) {
    const current = a.dataset.page === plural(page);
    if (current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const renderer = pages[page] || pages.overview;
  const container = el("div", { class: "page", "aria-busy": "true" });
  view.replaceChildren(container);
  try {
    await renderer(container, { id, params, isCurrent: () => ticket === rendering });
  } catch (e) {
    if (ticket !== rendering) return;
    if (e instanceof ApiError && e.status === 401) return;
    container.append(el("p", { class: "error", role: "alert" }, e.message || String(e)));
  } finally {
    container.removeAttribute("aria-busy");
  }
  if (ticket === rendering) {
    const heading = container.querySelector("h1");
    document.title = heading ? `${heading.textContent} · Antenna` : "Antenna";
    $("status").textContent = heading ? `${heading.textContent} loaded` : "";
  }
}

/** The list a detail page belongs to (trace -> traces). */
function plural(page) {
  return { trace: "traces", session: "sessions", user: "users" }[page] || page;
}

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = event.target.querySelector("button");
  button.disabled = true;
  $("signin-error").textContent = "";
  try {
    await api("/api/ui/session", { method: "POST", body: { public_key: $("pk").value.trim(), secret_key: $("sk").value }, quiet401: true });
    await start();
  } catch (e) {
    $("signin-error").textContent = e.status === 401 ? "Unknown public key or wrong secret key." : e.message;
  } finally {
    button.disabled = false;
  }
});

$("signout").addEventListener("click", async () => {
  try {
    await api("/api/ui/session", { method: "DELETE", quiet401: true });
  } finally {
    showSignIn("Signed out.");
  }
});

setUnauthorizedHandler(() => showSignIn("Your session has ended. Sign in again."));
window.addEventListener("hashchange", render);

async function start() {
  try {
    const me = await api("/api/ui/session", { quiet401: true });
    showApp(me.project_id);
    if (!location.hash) history.replaceState(null, "", "#/overview");
    await render();
  } catch (e) {
    showSignIn(e.status === 401 ? "" : e.message);
  }
}

start();
