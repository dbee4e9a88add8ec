// Zhike studio: a router over hash routes (#/create, #/library?asset=ID, ...). Each page is a module in views/
// that exports `default function (ctx) -> HTMLElement`. Vanilla JS modules, no build step, nothing from a CDN.
import { api, ApiError, setCsrf } from "./api.js";
import { errorText, h } from "./dom.js";
import { addStrings, getLang, setLang, t, translate } from "./i18n.js";

const view = document.getElementById("view");

// route -> [module, admin only]. A hash's first segment is the route; the rest is ctx.path (#/tool/cutout).
const ROUTES = {
  login: ["./views/login.js", false],
  home: ["./views/home.js", false],
  tool: ["./views/tool.js", false],
  create: ["./views/create.js", false],
  edit: ["./views/edit.js", false],
  library: ["./views/library.js", false],
  batch: ["./views/batch.js", false],
  "product-photos": ["./views/product_photos.js", false],
  design: ["./views/designer.js", false],
  queue: ["./views/queue.js", false],
  models: ["./views/models.js", false],
  keys: ["./views/keys.js", false],
  stock: ["./views/stock.js", false],
  brand: ["./views/brand.js", false],
  words: ["./views/words.js", false],
  kb: ["./views/kb.js", false],
  users: ["./views/users.js", true],
};

// The nav, one line per entry (others add theirs here): the hash it opens, its label key, `group: "tools"` for
// the 工具 menu, `admin` for admins only, `home: {icon, desc}` for a card among the home page's ready-to-use tools
// (icons: views/home.js). An entry whose route has no page in ROUTES is left out, so a line may come first.
const NAV = [
  { href: "#/home", key: "nav.home" },
  { href: "#/tool/cutout", key: "nav.cutout", group: "tools", home: { icon: "cutout", desc: "home.cutout.desc" } },
  { href: "#/tool/id_photo", key: "nav.id_photo", group: "tools", home: { icon: "id", desc: "home.id_photo.desc" } },
  { href: "#/product-photos", key: "nav.productPhotos", group: "tools", home: { icon: "photos", desc: "home.productPhotos.desc" } },
  { href: "#/tool/upscale", key: "nav.upscale", group: "tools", home: { icon: "upscale", desc: "home.upscale.desc" } },
  { href: "#/tool/resize_design", key: "nav.resize_design", group: "tools", home: { icon: "resize", desc: "home.resize.desc" } },
  { href: "#/tool/subject_swap", key: "nav.subject_swap", group: "tools", home: { icon: "scene", desc: "home.subject_swap.desc" } },
  { href: "#/stock", key: "nav.stock", group: "tools", home: { icon: "stock", desc: "home.stock.desc" } },
  { href: "#/brand", key: "nav.brand", group: "tools" },
  { href: "#/words", key: "nav.words", group: "tools" },
  { href: "#/kb", key: "nav.kb", group: "tools" },
  { href: "#/create", key: "nav.create" },
  { href: "#/edit", key: "nav.edit", home: { icon: "erase", desc: "home.erase.desc", key: "home.erase" } },
  { href: "#/design", key: "nav.design", home: { icon: "design", desc: "home.design.desc" } },
  { href: "#/batch", key: "nav.batch", home: { icon: "batch", desc: "home.batch.desc" } },
  { href: "#/library", key: "nav.library" },
  { href: "#/queue", key: "nav.queue" },
  { href: "#/models", key: "nav.models" },
  { href: "#/keys", key: "nav.keys" },
  { href: "#/users", key: "nav.users", admin: true },
];

addStrings({
  zh: {
    "nav.home": "首页",
    "nav.tools": "工具",
    "nav.menu": "菜单",
    "nav.cutout": "抠图",
    "nav.id_photo": "证件照",
    "nav.productPhotos": "批量主图",
    "nav.upscale": "超分",
    "nav.resize_design": "尺寸变换",
    "nav.subject_swap": "商品换景",
    "nav.stock": "素材库",
    "nav.brand": "品牌",
    "nav.design": "设计编辑器",
    "nav.words": "文案",
    "nav.kb": "知识库",
  },
  en: {
    "nav.home": "Home",
    "nav.tools": "Tools",
    "nav.menu": "Menu",
    "nav.cutout": "Cutout",
    "nav.id_photo": "ID photo",
    "nav.productPhotos": "Product photos",
    "nav.upscale": "Upscale",
    "nav.resize_design": "Resize",
    "nav.subject_swap": "Product in scene",
    "nav.stock": "Stock",
    "nav.brand": "Brand",
    "nav.design": "Design editor",
    "nav.words": "Copywriting",
    "nav.kb": "Knowledge base",
  },
});

// An entry's route path ("tool/cutout") and route name ("tool").
const navPath = (item) => item.href.replace(/^#\/?/, "").split("?")[0];
const navRoute = (item) => navPath(item).split("/")[0];
const hasRoute = (name) => name in ROUTES;

const session = { user: null };
let page = null; // the current page's hooks: {leave: [], relabel: []}
let renderSerial = 0;
let currentPath = []; // the shown page's ctx.path, for relabelling the nav

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
  const [full, query] = location.hash.replace(/^#\/?/, "").split("?");
  const [path, ...rest] = full.split("/");
  const known = Boolean(ROUTES[path]);
  return { name: known ? path : "home", path: known ? rest.map(decodeURIComponent) : [], params: new URLSearchParams(query || "") };
}

// The nav from NAV: top-level links, and the 工具 menu (a hover/click dropdown; at phone width the whole nav folds
// behind the menu button and the tools list inline).
const navEl = document.getElementById("nav");
const navToggle = document.getElementById("nav-toggle");
function buildNav() {
  const link = (item) => h("a", { href: item.href, dataset: { route: navPath(item), i18n: item.key, ...(item.admin ? { admin: "" } : {}) } });
  const present = NAV.filter((item) => hasRoute(navRoute(item)));
  const tools = present.filter((item) => item.group === "tools");
  const button = h("button", { type: "button", class: "nav-menu-button", id: "nav-tools", "aria-expanded": "false", "aria-haspopup": "true" }, h("span", { dataset: { i18n: "nav.tools" } }), " ▾");
  const menu = h("div", { class: "nav-menu", dataset: { menu: "tools" } }, button, h("div", { class: "nav-menu-list", id: "nav-tools-list" }, tools.map(link)));
  button.addEventListener("click", () => button.setAttribute("aria-expanded", String(button.getAttribute("aria-expanded") !== "true")));
  // After a click the pointer still rests on the list: it stays shut until the pointer leaves the menu.
  menu.addEventListener("mouseleave", () => menu.classList.remove("just-used"));
  menu.addEventListener("focusout", (ev) => {
    if (!menu.contains(ev.relatedTarget)) button.setAttribute("aria-expanded", "false");
  });
  const top = present.filter((item) => item.group !== "tools").map(link);
  navEl.replaceChildren(...top.slice(0, 1), tools.length ? menu : null, ...top.slice(1));
}
buildNav();
navToggle.addEventListener("click", () => {
  const open = navToggle.getAttribute("aria-expanded") !== "true";
  navToggle.setAttribute("aria-expanded", String(open));
  document.body.classList.toggle("nav-open", open);
});

function renderChrome(route, path = []) {
  const signedIn = Boolean(session.user);
  const admin = signedIn && session.user.role === "admin";
  navEl.hidden = !signedIn;
  navToggle.hidden = !signedIn;
  document.getElementById("signout").hidden = !signedIn;
  document.getElementById("whoami").textContent = signedIn ? session.user.username : "";
  document.getElementById("lang").textContent = t("lang.switch");
  const here = [route, ...path].join("/");
  for (const a of navEl.querySelectorAll("a")) {
    a.classList.toggle("active", a.dataset.route === here || a.dataset.route === route);
    if (a.dataset.admin !== undefined) a.hidden = !admin;
  }
  navEl.querySelector(".nav-menu")?.classList.toggle("active", Boolean(navEl.querySelector(".nav-menu a.active")));
  // A route change closes the phone menu and the tools menu.
  navToggle.setAttribute("aria-expanded", "false");
  document.body.classList.remove("nav-open");
  navEl.querySelector(".nav-menu-button")?.setAttribute("aria-expanded", "false");
  navEl.querySelector(".nav-menu:hover")?.classList.add("just-used");
  if (navEl.contains(document.activeElement)) document.activeElement.blur(); // a focused menu link keeps it open
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
  let { name, path, params } = parseHash();
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
  if (session.user && name === "login") name = "home";
  if (ROUTES[name][1] && session.user.role !== "admin") name = "home";
  leavePage();
  const hooks = { leave: [], relabel: [], params: [] };
  page = hooks;
  const ctx = {
    user: session.user,
    path,
    params,
    nav: NAV.filter((item) => hasRoute(navRoute(item))),
    onLeave: (fn) => hooks.leave.push(fn),
    onRelabel: (fn) => hooks.relabel.push(fn),
    onParams: (fn) => hooks.params.push(fn),
    navigate: (hash) => {
      location.hash = hash;
    },
    signedIn: async () => {
      await loadMe();
      location.hash = "#/home";
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
  currentPath = path;
  renderChrome(name, path);
  const first = view.querySelector("[autofocus], input:not([type=hidden]):not([type=radio]), textarea");
  if (first && (name === "login" || name === "create")) first.focus(); // where typing comes first
  document.body.dataset.route = name;
}

document.getElementById("lang").addEventListener("click", () => {
  setLang(getLang() === "zh" ? "en" : "zh");
  renderChrome(view.dataset.route, currentPath);
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
