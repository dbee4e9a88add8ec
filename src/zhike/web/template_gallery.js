// The template gallery (模板库): server-rendered previews of every template (bundled and the user's own), a search
// box over zh/en names and tags, category chips and a size filter. Used by batch design; any view can embed it:
//
//   const gallery = templateGallery({ onPick: (tpl) => ..., selected: "price_card", id: "my-gallery" });
//   parent.append(gallery);          // loads GET /api/v1/templates itself
//   gallery.select("coupon");        // mark a template chosen without calling onPick
//   gallery.relabel();               // after a language switch (ctx.onRelabel)
//   gallery.ready                    // a Promise of the template list (summaries, in gallery order)
//
// onPick(tpl) gets the API's summary ({id, name, width, height, columns, category, tags, sample, thumb, ...}).
// Ids for tests: .tg-search, .tg-size, .tg-chips [data-category], .tg-grid [data-template], .tg-count, .tg-empty;
// the element gets data-loaded="true" once the list is in.
import { api } from "./api.js";
import { errorText, h, useCss } from "./dom.js";
import { addStrings, pick, t, translate } from "./i18n.js";

addStrings({
  zh: {
    "tg.search": "搜索名称或标签，如 双十一、主图",
    "tg.all": "全部",
    "tg.allSizes": "全部尺寸",
    "tg.long": "{w}×长图",
    "tg.count": "{n} 个模板",
    "tg.empty": "没有符合条件的模板，换个关键词或分类试试。",
    "tg.mine": "我的模板",
  },
  en: {
    "tg.search": "Search names or tags, e.g. coupon, 618",
    "tg.all": "All",
    "tg.allSizes": "All sizes",
    "tg.long": "{w}× long image",
    "tg.count": "{n} templates",
    "tg.empty": "No template matches: try another word or category.",
    "tg.mine": "My templates",
  },
});

const LONG = 2.5; // taller than 2.5x its width: a long image (详情页), filtered by width alone

function sizeKey(tpl) {
  return tpl.height > tpl.width * LONG ? `${tpl.width}xlong` : `${tpl.width}x${tpl.height}`;
}

function sizeLabel(key) {
  const [w, hgt] = key.split("x");
  return hgt === "long" ? t("tg.long", { w }) : `${w}×${hgt}`;
}

// Every word of the query must appear in the template's names (both languages), tags, category or id.
function matches(tpl, words, categories) {
  if (!words.length) return true;
  const cat = categories[tpl.category] || {};
  const hay = [tpl.id, tpl.name?.zh, tpl.name?.en, tpl.description?.zh, tpl.description?.en, cat.zh, cat.en, ...(tpl.tags || [])]
    .filter(Boolean)
    .join(" ")
    .toLowerCase();
  return words.every((w) => hay.includes(w));
}

export function templateGallery({ onPick = () => {}, selected = null, id = null } = {}) {
  useCss("template_gallery.css");
  const state = { templates: [], categories: {}, category: "all", size: "all", query: "", selected };

  const search = h("input", { type: "search", class: "tg-search", dataset: { i18nPlaceholder: "tg.search" }, autocomplete: "off" });
  const size = h("select", { class: "tg-size" });
  const chips = h("div", { class: "tg-chips", role: "tablist" });
  const count = h("p", { class: "tg-count muted small" });
  const grid = h("div", { class: "tg-grid" }, h("p", { class: "muted", dataset: { i18n: "loading" } }));
  const empty = h("p", { class: "tg-empty muted", hidden: true, dataset: { i18n: "tg.empty" } });
  const el = h("div", { class: "tg", id }, h("div", { class: "tg-bar" }, search, size), chips, count, grid, empty);

  function visible() {
    const words = state.query.toLowerCase().split(/\s+/).filter(Boolean);
    return state.templates.filter(
      (tpl) =>
        (state.category === "all" || (state.category === "mine" ? !tpl.bundled : tpl.category === state.category)) &&
        (state.size === "all" || sizeKey(tpl) === state.size) &&
        matches(tpl, words, state.categories),
    );
  }

  function renderChips() {
    const keys = Object.keys(state.categories).filter((k) => state.templates.some((x) => x.category === k));
    const mine = state.templates.some((x) => !x.bundled);
    const chip = (key, label) =>
      h("button", { type: "button", role: "tab", class: `tg-chip${state.category === key ? " selected" : ""}`, "aria-selected": String(state.category === key), dataset: { category: key }, onclick: () => { state.category = key; renderChips(); renderGrid(); } }, label);
    chips.replaceChildren(chip("all", t("tg.all")), ...keys.map((k) => chip(k, pick(state.categories[k]))), ...(mine ? [chip("mine", t("tg.mine"))] : []));
  }

  function renderSizes() {
    const keys = [...new Set(state.templates.map(sizeKey))].sort((a, b) => parseInt(a) - parseInt(b) || a.localeCompare(b));
    if (!keys.includes(state.size)) state.size = "all";
    const n = (k) => state.templates.filter((x) => sizeKey(x) === k).length;
    size.replaceChildren(
      h("option", { value: "all" }, t("tg.allSizes")),
      ...keys.map((k) => h("option", { value: k, selected: state.size === k }, `${sizeLabel(k)} (${n(k)})`)),
    );
    size.value = state.size;
  }

  function card(tpl) {
    const cat = state.categories[tpl.category];
    const long = tpl.height > tpl.width * LONG;
    return h(
      "button",
      { type: "button", class: `tg-card${state.selected === tpl.id ? " selected" : ""}`, dataset: { template: tpl.id }, title: pick(tpl.description) || pick(tpl.name), "aria-pressed": String(state.selected === tpl.id), onclick: () => pick_(tpl) },
      h("span", { class: `tg-thumb${long ? " long" : ""}` }, h("img", { src: tpl.thumb, alt: pick(tpl.name), loading: "lazy", decoding: "async" })),
      h("strong", { class: "tg-name" }, pick(tpl.name)),
      h("span", { class: "tg-meta muted" }, [cat ? pick(cat) : t("tg.mine"), `${tpl.width}×${tpl.height}`].join(" · ")),
    );
  }

  function renderGrid() {
    const shown = visible();
    grid.replaceChildren(...shown.map(card));
    empty.hidden = shown.length > 0;
    count.textContent = t("tg.count", { n: shown.length });
  }

  function pick_(tpl) {
    el.select(tpl.id);
    onPick(tpl);
  }

  el.select = (tid) => {
    state.selected = tid;
    for (const c of grid.querySelectorAll(".tg-card")) {
      const on = c.dataset.template === tid;
      c.classList.toggle("selected", on);
      c.setAttribute("aria-pressed", String(on));
    }
  };
  el.relabel = () => {
    translate(el);
    renderChips();
    renderSizes();
    renderGrid();
  };

  search.addEventListener("input", () => {
    state.query = search.value.trim();
    renderGrid();
  });
  size.addEventListener("change", () => {
    state.size = size.value;
    renderGrid();
  });

  el.ready = api("/api/v1/templates")
    .then((res) => {
      state.categories = res.categories || {};
      // Category by category in the server's order (主图 first), your own after the bundled; stable within.
      const order = Object.keys(state.categories);
      const rank = (x) => (x.bundled ? (order.indexOf(x.category) + 1 || order.length + 1) : order.length + 2);
      state.templates = (res.templates || []).slice().sort((a, b) => rank(a) - rank(b));
      el.relabel();
      el.dataset.loaded = "true";
      return state.templates;
    })
    .catch((err) => {
      grid.replaceChildren(h("p", { class: "error", role: "alert" }, errorText(err)));
      throw err;
    });
  translate(el);
  return el;
}
