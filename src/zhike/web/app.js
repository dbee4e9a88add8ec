// Zhike studio: a router over hash routes (#/create, #/library?asset=ID, ...). Each page is a module in views/
// that exports `default function (ctx) -> HTMLElement`. Vanilla JS modules, no build step, nothing from a CDN.
import { api, ApiError, setCsrf } from "./api.js";
import { errorText, h } from "./dom.js";
import { getLang, setLang, t, translate } from "./i18n.js";

const view = document.getElementById("view");

// route -> [module, admin only]
const ROUTES = {
  login: ["./views/login.js", false],
  create: ["./views/create.js", false],
  edit: ["./views/edit.js", false],
  library: ["./views/library.js", false],
  batch: ["./views/batch.js", false],
  queue: ["./views/queue.js", false],
  models: ["./views/models.js", false],
  keys: ["./views/keys.js", false],
  users: ["./views/users.js", true],
};

const session = { user: null };
let page = null; // the current page's hooks: {leave: [], relabel: []}
let renderSerial = 0;

export async function loadMe() {
  try {
    const me = await api("/api/v1/auth/me");
    session.user = me.user;
    setCsrf(me.csrf_token);
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) throw err;
    session.user = null;
    setCsrf(null);
  }
}

function parseHash() {
  const [path, query] = location.hash.replace(/^#\/?/, "").split("?");
  return { name: ROUTES[path] ? path : "create", params: new URLSearchParams(query || "") };
}

function renderChrome(route) {
  const signedIn = Boolean(session.user);
  const admin = signedIn && session.user.role === "admin";
  document.getElementById("nav").hidden = !signedIn;
  document.getElementById("signout").hidden = !signedIn;
  document.getElementById("whoami").textContent = signedIn ? session.user.username : "";
  document.getElementById("lang").textContent = t("lang.switch");
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", a.dataset.route === route);
    if (a.dataset.admin !== undefined) a.hidden = !admin;
  }
  translate();
}

function leavePage() {
  if (!page) return;
  for (const fn of page.leave) {
    try {
      fn();
    } catch (err) {
      console.error(err);
    }
  }
  page = null;
}

async function render() {
  const serial = ++renderSerial;
  let { name, params } = parseHash();
  // A page that handles its own query (e.g. the library's open detail) is told instead of rebuilt, so Back and
  // Forward move within it without losing its state.
  if (page && page.params.length && session.user && view.dataset.route === name) {
    for (const fn of page.params) fn(params);
    return;
  }
  if (!session.user && name !== "login") {
    location.replace("#/login");
    return; // hashchange renders the sign-in page
  }
  if (session.user && name === "login") name = "create";
  if (ROUTES[name][1] && session.user.role !== "admin") name = "create";
  leavePage();
  const hooks = { leave: [], relabel: [], params: [] };
  page = hooks;
  const ctx = {
    user: session.user,
    params,
    onLeave: (fn) => hooks.leave.push(fn),
    onRelabel: (fn) => hooks.relabel.push(fn),
    onParams: (fn) => hooks.params.push(fn),
    navigate: (hash) => {
      location.hash = hash;
    },
    signedIn: async () => {
      await loadMe();
      location.hash = "#/create";
    },
  };
  let el;
  try {
    const mod = await import(ROUTES[name][0]);
    if (serial !== renderSerial) return; // a newer navigation won
    el = mod.default(ctx);
  } catch (err) {
    console.error(err);
    el = h("p", { class: "error", role: "alert" }, errorText(err));
  }
  view.replaceChildren(el);
  view.dataset.route = name;
  renderChrome(name);
  const first = view.querySelector("[autofocus], input:not([type=hidden]):not([type=radio]), textarea");
  if (first && (name === "login" || name === "create")) first.focus(); // where typing comes first
  document.body.dataset.route = name;
}

document.getElementById("lang").addEventListener("click", () => {
  setLang(getLang() === "zh" ? "en" : "zh");
  renderChrome(view.dataset.route);
  if (page) for (const fn of page.relabel) fn();
});

document.getElementById("signout").addEventListener("click", async () => {
  leavePage();
  try {
    await api("/api/v1/auth/logout", { method: "POST" });
  } catch {
    // Signed out either way on this page; the cookie is dropped by the server when it can be reached.
  }
  session.user = null;
  setCsrf(null);
  if (location.hash === "#/login") render();
  else location.hash = "#/login";
});

window.addEventListener("hashchange", render);

(async () => {
  try {
    await loadMe();
  } catch (err) {
    view.replaceChildren(h("p", { class: "error" }, errorText(err)));
    renderChrome(null);
    return;
  }
  await render();
  document.body.dataset.ready = "true";
})();
