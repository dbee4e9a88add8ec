// Library: the user's assets, newest first, with search, filters, infinite scroll, a detail dialog (parameters,
// lineage, remix, edit, download, delete).
//
// Ids tests rely on: #library-grid (tiles: figure[data-asset-id]), #library-empty (no assets at all),
// #library-no-results (none for these filters), #library-search, #library-op, #library-model, #library-tag,
// #library-since, #library-until, #library-clear, #library-filters-toggle (phone), #library-sentinel,
// #asset-detail (the detail <dialog>), #detail-close, #detail-image, #detail-params, #detail-meta, #detail-parent,
// #detail-children, #detail-remix, #detail-edit, #detail-download, #detail-delete, #confirm-delete (the confirm
// <dialog>) with #confirm-delete-yes / #confirm-delete-no.
//
// State lives in the hash (#/library?q=..&op=..&asset=ID), so a reload or coming Back to the library restores the
// filters and the open detail. It is written with history.replaceState: the router (app.js) re-renders the whole
// view on every hashchange, and a pushed entry would make Back rebuild the grid and lose the scroll position.
// So Back leaves the library; the detail closes with its button, Esc or a click outside it.
import { api, assetFileUrl, assetThumbUrl } from "../api.js";
import { errorText, formatBytes, h, useCss } from "../dom.js";
import { addStrings, fieldLabel, getLang, has, pick, t, translate } from "../i18n.js";
import { loadOps } from "../ops.js";
import { resultPanel } from "../result_panel.js";
import { isTextMime, textResult } from "../text_result.js";

addStrings({
  zh: {
    "library.title": "作品库",
    "library.refresh": "刷新",
    "library.empty": "还没有作品。去“创作”生成第一张图吧。",
    "library.noResults": "没有符合这些筛选条件的作品。",
    "library.search": "搜索画面描述",
    "library.searchHint": "搜索画面描述，例如：茶壶",
    "library.search.all": "搜索画面描述或文案",
    "library.searchHint.all": "搜索画面描述或商品名称，例如：茶壶",
    "library.search.text": "搜索文案",
    "library.searchHint.text": "搜索商品名称或文案要求，例如：保温杯",
    "library.op": "类型",
    "library.allOps": "全部类型",
    "library.uploads": "上传的图片",
    "library.model": "模型",
    "library.allModels": "全部模型",
    "library.tag": "标签",
    "library.tagHint": "例如：主图",
    "library.since": "开始日期",
    "library.until": "结束日期",
    "library.clear": "清除筛选",
    "library.kind": "图片 / 文字",
    "library.kind.all": "全部",
    "library.kind.image": "图片",
    "library.kind.text": "文字",
    "library.textTag": "文字",
    "library.textLoading": "正在读取文字…",
    "library.filters": "筛选",
    "library.filtersOn": "筛选（{n}）",
    "library.loadingMore": "正在加载更多…",
    "library.end": "已经到底了",
    "library.uploaded": "上传的图片",
    "library.close": "关闭",
    "library.notFound": "找不到这张图片，可能已被删除。",
    "library.remix": "再来一张",
    "library.remixHint": "把这些参数带回“创作”",
    "library.edit": "在画布中编辑",
    "library.download": "下载",
    "library.delete": "删除",
    "library.params": "生成参数",
    "library.noParams": "上传的图片没有生成参数。",
    "library.info": "信息",
    "library.opLabel": "类型",
    "library.created": "创建时间",
    "library.size": "尺寸",
    "library.fileSize": "文件大小",
    "library.tags": "标签",
    "library.noTags": "无",
    "library.sha": "文件指纹",
    "library.origin": "来源",
    "origin.upload": "上传",
    "origin.generated": "AI 生成",
    "library.lineage": "来源与衍生",
    "library.parent": "原图",
    "library.noParent": "无（这是原创）",
    "library.parentDeleted": "原图已删除",
    "library.children": "由它生成的图片",
    "library.noChildren": "还没有由它生成的图片",
    "library.confirmTitle": "删除这张图片？",
    "library.confirmText": "删除后无法恢复。由它生成的图片会保留，其他作品不受影响。",
    "library.cancel": "取消",
    "library.confirmYes": "删除",
    "library.deleting": "正在删除…",
    "library.yes": "是",
    "library.no": "否",
    "library.param.prompt": "画面描述",
    "library.param.negative_prompt": "不想要的内容",
    "library.param.model": "模型",
    "library.param.seed": "随机种子",
    "library.param.steps": "步数",
    "library.param.guidance": "提示词相关性",
    "library.param.scheduler": "采样器",
    "library.param.width": "宽度",
    "library.param.height": "高度",
    "library.param.size": "尺寸",
    "library.param.preset": "风格",
    "library.param.applied_preset": "已应用风格",
    "library.param.loras": "LoRA",
    "library.param.batch_size": "张数",
    "library.param.clip_skip": "CLIP 跳过层数",
    "library.param.strength": "重绘幅度",
    "library.param.init_image": "原图",
    "library.param.image": "输入图片",
    "library.param.mask": "蒙版",
    "library.param.scale": "放大倍数",
    "library.param.tile": "分块大小",
    "library.param.controls": "ControlNet 控制",
    "library.param.background": "背景",
    "library.param.hires_scale": "高清放大倍数",
  },
  en: {
    "library.title": "Library",
    "library.refresh": "Refresh",
    "library.empty": "No images yet. Generate your first one under “Create”.",
    "library.noResults": "No images match these filters.",
    "library.search": "Search prompts",
    "library.searchHint": "Search prompts, e.g. teapot",
    "library.search.all": "Search prompts and copy",
    "library.searchHint.all": "Search prompts or product names, e.g. teapot",
    "library.search.text": "Search copy",
    "library.searchHint.text": "Search product names or briefs, e.g. travel mug",
    "library.op": "Type",
    "library.allOps": "All types",
    "library.uploads": "Uploaded images",
    "library.model": "Model",
    "library.allModels": "All models",
    "library.tag": "Tag",
    "library.tagHint": "e.g. main",
    "library.since": "From",
    "library.until": "To",
    "library.clear": "Clear filters",
    "library.kind": "Images / text",
    "library.kind.all": "All",
    "library.kind.image": "Images",
    "library.kind.text": "Text",
    "library.textTag": "Text",
    "library.textLoading": "Reading the text…",
    "library.filters": "Filters",
    "library.filtersOn": "Filters ({n})",
    "library.loadingMore": "Loading more…",
    "library.end": "That's everything",
    "library.uploaded": "Uploaded image",
    "library.close": "Close",
    "library.notFound": "This image was not found; it may have been deleted.",
    "library.remix": "Remix",
    "library.remixHint": "Load these parameters into Create",
    "library.edit": "Edit on canvas",
    "library.download": "Download",
    "library.delete": "Delete",
    "library.params": "Parameters",
    "library.noParams": "Uploaded images have no generation parameters.",
    "library.info": "Details",
    "library.opLabel": "Type",
    "library.created": "Created",
    "library.size": "Size",
    "library.fileSize": "File size",
    "library.tags": "Tags",
    "library.noTags": "None",
    "library.sha": "SHA-256",
    "library.origin": "Origin",
    "origin.upload": "Upload",
    "origin.generated": "AI generated",
    "library.lineage": "Lineage",
    "library.parent": "Made from",
    "library.noParent": "Nothing (an original)",
    "library.parentDeleted": "The original was deleted",
    "library.children": "Made from this image",
    "library.noChildren": "Nothing made from it yet",
    "library.confirmTitle": "Delete this image?",
    "library.confirmText": "This cannot be undone. Images made from it stay; nothing else is affected.",
    "library.cancel": "Cancel",
    "library.confirmYes": "Delete",
    "library.deleting": "Deleting…",
    "library.yes": "Yes",
    "library.no": "No",
    "library.param.prompt": "Prompt",
    "library.param.negative_prompt": "Negative prompt",
    "library.param.model": "Model",
    "library.param.seed": "Seed",
    "library.param.steps": "Steps",
    "library.param.guidance": "Guidance (CFG)",
    "library.param.scheduler": "Sampler",
    "library.param.width": "Width",
    "library.param.height": "Height",
    "library.param.size": "Size",
    "library.param.preset": "Style",
    "library.param.applied_preset": "Applied style",
    "library.param.loras": "LoRAs",
    "library.param.batch_size": "Images",
    "library.param.clip_skip": "CLIP skip",
    "library.param.strength": "Strength",
    "library.param.init_image": "Init image",
    "library.param.image": "Input image",
    "library.param.mask": "Mask",
    "library.param.scale": "Scale",
    "library.param.tile": "Tile size",
    "library.param.controls": "ControlNet",
    "library.param.background": "Background",
    "library.param.hires_scale": "Hires scale",
  },
});

const TEST_MODE = new URLSearchParams(location.search).has("test");
const PAGE = TEST_MODE ? 12 : 30; // tests scroll through a few small pages
const FILTERS = ["q", "kind", "op", "origin", "model", "tag", "since", "until"];
const FIRST_PARAMS = ["prompt", "negative_prompt", "model", "seed", "steps", "guidance", "scheduler", "width", "height"];
const ASSET_PARAMS = new Set(["init_image", "image", "mask", "background_image", "scene_image"]);

const localeTag = () => (getLang() === "zh" ? "zh-CN" : "en");
const when = (iso) => {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso || "" : d.toLocaleString(localeTag());
};
const paramLabel = (name) => (has(`library.param.${name}`) ? t(`library.param.${name}`) : fieldLabel(name, name));

// A local calendar date (yyyy-mm-dd from <input type=date>) as the UTC instant the API compares with.
function dayBound(value, end) {
  const [y, m, d] = value.split("-").map(Number);
  if (!y || !m || !d) return null;
  return new Date(y, m - 1, end ? d + 1 : d).toISOString();
}

function readHash() {
  const query = location.hash.replace(/^#\/?/, "").split("?")[1] || "";
  return new URLSearchParams(query);
}

function isLibraryHash() {
  return location.hash.replace(/^#\/?/, "").split("?")[0] === "library";
}

export default function libraryView(ctx) {
  useCss("views/library.css");
  const state = { filters: {}, next: null, loading: false, done: false, serial: 0, count: 0 };
  let ops = new Map(); // name -> {title}
  let detailId = null; // the asset shown in the detail dialog

  // -- toolbar ------------------------------------------------------------------------------------------------
  const search = h("input", { type: "search", id: "library-search", name: "q", maxlength: 500, autocomplete: "off", dataset: { i18nPlaceholder: "library.searchHint" } });
  const opSelect = h("select", { id: "library-op", name: "op" });
  const kindSelect = h("select", { id: "library-kind", name: "kind" }, ["all", "image", "text"].map((k) => h("option", { value: k === "all" ? "" : k, dataset: { i18n: `library.kind.${k}` } })));
  const modelSelect = h("select", { id: "library-model", name: "model" });
  const tagInput = h("input", { type: "text", id: "library-tag", name: "tag", maxlength: 200, autocomplete: "off", dataset: { i18nPlaceholder: "library.tagHint" } });
  const since = h("input", { type: "date", id: "library-since", name: "since" });
  const until = h("input", { type: "date", id: "library-until", name: "until" });
  const clear = h("button", { type: "button", class: "link", id: "library-clear", hidden: true, dataset: { i18n: "library.clear" } });
  const searchLabel = h("span", { dataset: { i18n: "library.search" } });
  const toggle = h("button", { type: "button", class: "link library-filters-toggle", id: "library-filters-toggle", "aria-expanded": "false", "aria-controls": "library-filters" });
  const field = (label, input, cls = "") => h("label", { class: `library-field ${cls}` }, h("span", { dataset: { i18n: label } }), input);
  const filters = h(
    "div",
    { class: "library-filters", id: "library-filters" },
    field("library.kind", kindSelect),
    field("library.op", opSelect),
    field("library.model", modelSelect),
    field("library.tag", tagInput),
    field("library.since", since, "date"),
    field("library.until", until, "date"),
    clear,
  );
  const toolbar = h(
    "form",
    { class: "library-toolbar card", role: "search", onsubmit: (ev) => ev.preventDefault() },
    h("div", { class: "library-searchrow" }, h("label", { class: "library-field search" }, searchLabel, search), toggle),
    filters,
  );

  let models = [];
  const fillOps = () => {
    const chosen = state.filters.origin === "upload" ? "origin:upload" : state.filters.op || "";
    opSelect.replaceChildren(
      h("option", { value: "" }, t("library.allOps")),
      h("option", { value: "origin:upload" }, t("library.uploads")),
      ...[...ops.values()].map((o) => h("option", { value: o.name }, pick(o.title) || o.name)),
    );
    if (chosen && ![...opSelect.options].some((o) => o.value === chosen)) opSelect.append(h("option", { value: chosen }, chosen));
    opSelect.value = chosen;
  };
  const fillModels = () => {
    const chosen = state.filters.model || "";
    const names = models.map((m) => m.name);
    if (chosen && !names.includes(chosen)) names.push(chosen);
    modelSelect.replaceChildren(h("option", { value: "" }, t("library.allModels")), ...names.map((n) => h("option", { value: n }, n)));
    modelSelect.value = chosen;
  };

  const activeCount = () => FILTERS.filter((k) => k !== "q" && state.filters[k]).length;
  const relabelToolbar = () => {
    const n = activeCount();
    toggle.textContent = n ? t("library.filtersOn", { n }) : t("library.filters");
    clear.hidden = !FILTERS.some((k) => state.filters[k]);
    // The search box says what it searches in: prompts of images, names and briefs of text (AssetService.list).
    const kind = kindSelect.value === "image" ? "" : `.${kindSelect.value || "all"}`;
    searchLabel.dataset.i18n = `library.search${kind}`;
    search.dataset.i18nPlaceholder = `library.searchHint${kind}`;
    searchLabel.textContent = t(searchLabel.dataset.i18n);
    search.placeholder = t(search.dataset.i18nPlaceholder);
  };

  function filtersFromInputs() {
    const f = {};
    if (search.value.trim()) f.q = search.value.trim();
    if (opSelect.value === "origin:upload") f.origin = "upload";
    else if (opSelect.value) f.op = opSelect.value;
    if (modelSelect.value) f.model = modelSelect.value;
    if (kindSelect.value) f.kind = kindSelect.value;
    if (tagInput.value.trim()) f.tag = tagInput.value.trim();
    if (since.value) f.since = since.value;
    if (until.value) f.until = until.value;
    return f;
  }

  // Show `f` in the inputs (state.filters is set by applyFilters, which compares against the old value).
  function inputsFromFilters(f = state.filters) {
    search.value = f.q || "";
    tagInput.value = f.tag || "";
    since.value = f.since || "";
    until.value = f.until || "";
    kindSelect.value = f.kind || "";
    const old = state.filters;
    state.filters = f; // the selects read it
    fillOps();
    fillModels();
    state.filters = old;
    relabelToolbar();
  }

  // The hash of the current state: filters, plus the open asset.
  function hashFor(filtersObj, asset) {
    const p = new URLSearchParams();
    for (const k of FILTERS) if (filtersObj[k]) p.set(k, filtersObj[k]);
    if (asset) p.set("asset", asset);
    const qs = p.toString();
    return `#/library${qs ? `?${qs}` : ""}`;
  }

  function applyFilters(f) {
    const same = FILTERS.every((k) => (state.filters[k] || "") === (f[k] || ""));
    state.filters = f;
    relabelToolbar();
    const target = hashFor(f, detailId);
    if (location.hash !== target) history.replaceState(history.state, "", target);
    if (!same) reload();
  }

  let debounce = null;
  const soon = () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => applyFilters(filtersFromInputs()), 300);
  };
  search.addEventListener("input", soon);
  tagInput.addEventListener("input", soon);
  search.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") {
      clearTimeout(debounce);
      applyFilters(filtersFromInputs());
    }
  });
  for (const el of [kindSelect, opSelect, modelSelect, since, until]) el.addEventListener("change", () => applyFilters(filtersFromInputs()));
  clear.addEventListener("click", () => {
    clearTimeout(debounce);
    inputsFromFilters({});
    applyFilters({});
  });
  toggle.addEventListener("click", () => {
    const open = !toolbar.classList.contains("open");
    toolbar.classList.toggle("open", open);
    toggle.setAttribute("aria-expanded", String(open));
  });

  // -- grid and infinite scroll -------------------------------------------------------------------------------
  const grid = h("div", { class: "grid library-grid", id: "library-grid", "aria-busy": "true" });
  const status = h("p", { class: "muted library-status", id: "library-status", "aria-live": "polite" });
  const sentinel = h("div", { class: "library-sentinel", id: "library-sentinel", "aria-hidden": "true" });
  const errorBox = h("p", { class: "error", id: "library-error", role: "alert", hidden: true });

  // A text asset is named from its first words (services/assets text_name); an image by its prompt.
  const captionOf = (a) =>
    (isTextMime(a.mime) && a.name) ||
    a.params?.prompt || (a.origin === "upload" ? (a.tags || []).join(" · ") || t("library.uploaded") : pick(ops.get(a.op)?.title) || a.op || "");

  function tile(a) {
    const caption = h("span", { class: "caption", title: captionOf(a) }, captionOf(a));
    caption.dataset.role = "caption";
    return h(
      "figure",
      { class: "tile", dataset: { assetId: a.id, origin: a.origin || "", prompt: a.params?.prompt || (isTextMime(a.mime) && a.name) || "", op: a.op || "", tagged: a.tags?.length ? "1" : "", kind: isTextMime(a.mime) ? "text" : "image" } },
      h(
        "a",
        { href: hashFor(state.filters, a.id), class: "tile-link", onclick: (ev) => openFromTile(ev, a.id) },
        h("img", { src: assetThumbUrl(a.id), alt: a.params?.prompt || a.id, loading: "lazy" }),
      ),
      h(
        "figcaption",
        {},
        caption,
        isTextMime(a.mime) ? h("span", { class: "muted size text-tag", dataset: { i18n: "library.textTag" } }, t("library.textTag")) : h("span", { class: "muted size" }, `${a.width}×${a.height}`),
      ),
    );
  }

  function showStatus() {
    const tiles = grid.querySelectorAll("figure[data-asset-id]").length;
    grid.querySelector("#library-empty")?.remove();
    grid.querySelector("#library-no-results")?.remove();
    if (!tiles && state.done) {
      const filtered = FILTERS.some((k) => state.filters[k]);
      grid.append(
        filtered
          ? h(
              "div",
              { class: "empty library-message", id: "library-no-results" },
              h("p", { class: "muted", dataset: { i18n: "library.noResults" } }),
              h("button", { type: "button", class: "link", onclick: () => clear.click(), dataset: { i18n: "library.clear" } }),
            )
          : h("p", { class: "muted empty", id: "library-empty", dataset: { i18n: "library.empty" } }),
      );
      translate(grid);
    }
    status.textContent = state.loading && tiles ? t("library.loadingMore") : state.done && tiles > PAGE ? t("library.end") : "";
  }

  async function loadPage() {
    if (state.loading || state.done) return;
    const serial = state.serial;
    state.loading = true;
    grid.setAttribute("aria-busy", "true");
    showStatus();
    const p = new URLSearchParams({ limit: String(PAGE) });
    const f = state.filters;
    for (const k of ["q", "kind", "op", "origin", "model", "tag"]) if (f[k]) p.set(k, f[k]);
    if (f.since && dayBound(f.since, false)) p.set("since", dayBound(f.since, false));
    if (f.until && dayBound(f.until, true)) p.set("until", dayBound(f.until, true));
    if (state.next) p.set("before", state.next);
    try {
      const data = await api(`/api/v1/assets?${p}`);
      if (serial !== state.serial) return; // the filters changed meanwhile
      errorBox.hidden = true;
      grid.querySelector(".library-loading")?.remove();
      grid.append(...(data.assets || []).map(tile));
      state.next = data.next || null;
      state.done = !state.next;
    } catch (err) {
      if (serial !== state.serial) return;
      grid.querySelector(".library-loading")?.remove();
      errorBox.textContent = errorText(err);
      errorBox.hidden = false;
      state.done = true; // stop the observer from retrying in a loop; Refresh tries again
    } finally {
      if (serial === state.serial) {
        state.loading = false;
        grid.setAttribute("aria-busy", "false");
        showStatus();
        // Re-observing reports the sentinel's current state: a page that does not fill the screen loads the next.
        if (!state.done) {
          observer.unobserve(sentinel);
          observer.observe(sentinel);
        }
      }
    }
  }

  function reload() {
    state.serial += 1;
    state.next = null;
    state.done = false;
    state.loading = false;
    grid.replaceChildren(h("p", { class: "muted library-loading", dataset: { i18n: "loading" } }));
    translate(grid);
    loadPage();
  }

  const observer = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) loadPage();
  }, { rootMargin: "0px 0px 200px 0px" });
  observer.observe(sentinel);

  // -- detail -------------------------------------------------------------------------------------------------
  const detailBody = h("div", { class: "detail-body" });
  const detailTitle = h("h2", { id: "detail-title" });
  const detail = h(
    "dialog",
    { class: "asset-detail", id: "asset-detail", "aria-labelledby": "detail-title" },
    h(
      "div",
      { class: "detail-head" },
      detailTitle,
      h("button", { type: "button", class: "link detail-close", id: "detail-close", onclick: () => closeDetail(), dataset: { i18n: "library.close" } }),
    ),
    detailBody,
  );
  let detailAsset = null;
  let detailChildren = [];
  let detailError = null;

  const confirmError = h("p", { class: "error", id: "confirm-delete-error", role: "alert", hidden: true });
  const confirmYes = h("button", { type: "button", class: "primary danger", id: "confirm-delete-yes", dataset: { i18n: "library.confirmYes" } });
  const confirmNo = h("button", { type: "button", class: "link", id: "confirm-delete-no", dataset: { i18n: "library.cancel" } });
  const confirmThumb = h("img", { class: "confirm-thumb", alt: "" });
  const confirm = h(
    "dialog",
    { class: "confirm-delete", id: "confirm-delete", "aria-labelledby": "confirm-delete-title" },
    h(
      "div",
      { class: "confirm-main" },
      confirmThumb,
      h("div", {}, h("h2", { id: "confirm-delete-title", dataset: { i18n: "library.confirmTitle" } }), h("p", { class: "muted", dataset: { i18n: "library.confirmText" } })),
    ),
    confirmError,
    h("div", { class: "confirm-actions" }, confirmNo, confirmYes),
  );
  confirmNo.addEventListener("click", () => confirm.close());

  // Opening a detail (and moving to its parent or children) adds a history entry, so Back steps back through
  // them and then closes the detail; the router hands the changed query to ctx.onParams below.
  let depth = 0; // detail entries pushed since the grid
  let pushing = false;
  function pushDetail(id) {
    pushing = true;
    depth += 1;
    location.hash = hashFor(state.filters, id);
  }

  function openFromTile(ev, id) {
    if (ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return; // new tab: let it go
    ev.preventDefault();
    pushDetail(id);
  }

  // Navigate inside the open dialog (parent, children).
  function gotoDetail(ev, id) {
    ev.preventDefault();
    pushDetail(id);
  }

  function closeDetail() {
    if (detail.open) detail.close(); // the close event tidies the hash
  }

  detail.addEventListener("close", () => {
    detailId = null;
    detailAsset = null;
    if (!isLibraryHash() || !readHash().get("asset")) return;
    if (depth > 0) {
      history.go(-depth); // back to the grid's entry: Back after closing leaves the library, as expected
      depth = 0;
    } else {
      history.replaceState(history.state, "", hashFor(state.filters, null));
    }
  });

  ctx.onParams((params) => {
    if (pushing) pushing = false;
    else depth = Math.max(0, depth - 1); // Back/Forward (or a typed address)
    const id = params.get("asset");
    if (id && id !== detailId) showDetail(id);
    else if (!id && detail.open) {
      depth = 0;
      detail.close();
    }
  });
  // A click on the backdrop (outside the dialog's box) closes it.
  detail.addEventListener("click", (ev) => {
    if (ev.target === detail) closeDetail();
  });

  async function showDetail(id) {
    detailId = id;
    detailAsset = null;
    detailError = null;
    detailChildren = [];
    detailTitle.textContent = "";
    detailBody.replaceChildren(h("p", { class: "muted", dataset: { i18n: "loading" } }));
    translate(detailBody);
    if (!detail.open) detail.showModal();
    detail.scrollTop = 0;
    try {
      const [asset, kids] = await Promise.all([
        api(`/api/v1/assets/${encodeURIComponent(id)}`),
        api(`/api/v1/assets?parent=${encodeURIComponent(id)}&limit=60`),
      ]);
      if (detailId !== id) return;
      detailAsset = asset;
      detailChildren = kids.assets || [];
    } catch (err) {
      if (detailId !== id) return;
      detailError = err;
    }
    renderDetail();
  }

  function valueText(name, v) {
    if (v === true) return t("library.yes");
    if (v === false) return t("library.no");
    if (name === "loras" && Array.isArray(v)) return v.map((l) => (l && l.name ? `${l.name} (${l.weight ?? 1})` : JSON.stringify(l))).join(", ");
    if (v && typeof v === "object") return JSON.stringify(v, null, 1);
    return String(v);
  }

  function paramRows(a) {
    const params = { ...(a.params || {}) };
    const all = { model: a.model, seed: a.seed, ...params };
    const names = Object.keys(all).filter((k) => {
      const v = all[k];
      return !(v === null || v === undefined || v === "" || (Array.isArray(v) && !v.length));
    });
    names.sort((x, y) => {
      const ix = FIRST_PARAMS.indexOf(x);
      const iy = FIRST_PARAMS.indexOf(y);
      return (ix < 0 ? 99 : ix) - (iy < 0 ? 99 : iy);
    });
    return names.map((name) => {
      const v = all[name];
      const cell = ASSET_PARAMS.has(name) && typeof v === "string"
        ? h("a", { href: hashFor(state.filters, v), onclick: (ev) => gotoDetail(ev, v) }, v)
        : valueText(name, v);
      return h("tr", { dataset: { param: name } }, h("th", { scope: "row", title: name }, paramLabel(name)), h("td", { class: typeof v === "object" ? "json" : "" }, cell));
    });
  }

  function thumb(a, extra = {}) {
    return h(
      "a",
      { href: hashFor(state.filters, a.id), class: "lineage-thumb", dataset: { assetId: a.id }, onclick: (ev) => gotoDetail(ev, a.id), title: a.params?.prompt || a.id, ...extra },
      h("img", { src: assetThumbUrl(a.id), alt: a.params?.prompt || a.id, loading: "lazy" }),
    );
  }

  function renderDetail() {
    if (!detail.open) return;
    if (detailError || !detailAsset) {
      detailTitle.textContent = "";
      const notFound = detailError && detailError.status === 404;
      detailBody.replaceChildren(h("p", { class: "error", id: "detail-error", role: "alert" }, notFound ? t("library.notFound") : errorText(detailError)));
      return;
    }
    const a = detailAsset;
    const text = isTextMime(a.mime);
    const opTitle = a.origin === "upload" ? t("origin.upload") : pick(ops.get(a.op)?.title) || a.op || "";
    detailTitle.textContent = a.origin === "upload" ? t("library.uploaded") : opTitle;

    const meta = h(
      "dl",
      { class: "detail-meta", id: "detail-meta" },
      ...[
        ["library.opLabel", opTitle, "op"],
        ["library.origin", t(`origin.${a.origin}`), "origin"],
        ["library.created", when(a.created_at), "created"],
        text ? null : ["library.size", `${a.width}×${a.height}`, "size"],
        ["library.fileSize", formatBytes(a.size_bytes), "file-size"],
        ["library.sha", (a.sha256 || "").slice(0, 12), "sha"],
      ]
        .filter(Boolean)
        .flatMap(([label, value, key]) => [h("dt", {}, t(label)), h("dd", { dataset: { meta: key }, title: key === "sha" ? a.sha256 : null }, value)]),
      h("dt", {}, t("library.tags")),
      h(
        "dd",
        { class: "detail-tags", dataset: { meta: "tags" } },
        a.tags && a.tags.length
          ? a.tags.map((tag) => h("button", { type: "button", class: "chip", onclick: () => filterByTag(tag) }, tag))
          : t("library.noTags"),
      ),
    );

    const hasParams = a.params && Object.keys(a.params).length;
    // Text goes back to its op's form on the 文案 page; images to Create.
    const remix = text ? `#/words/${encodeURIComponent(a.op || "")}?remix=${encodeURIComponent(a.id)}` : `#/create?remix=${encodeURIComponent(a.id)}`;
    const actions = h(
      "div",
      { class: "detail-actions" },
      hasParams ? h("a", { class: "button primary", id: "detail-remix", href: remix, title: text ? null : t("library.remixHint") }, t(text ? "text.remix" : "library.remix")) : null,
      text ? null : h("a", { class: "button", id: "detail-edit", href: `#/edit?asset=${encodeURIComponent(a.id)}` }, t("library.edit")),
      h("button", { type: "button", class: "button danger-outline", id: "detail-delete", onclick: askDelete }, t("library.delete")),
    );

    const params = hasParams
      ? h("table", { class: "detail-params", id: "detail-params" }, h("tbody", {}, paramRows(a)))
      : h("div", { class: "detail-params", id: "detail-params" }, h("p", { class: "muted" }, t("library.noParams")));

    let parent;
    if (!a.parent) parent = h("p", { class: "muted" }, t("library.noParent"));
    else if (a.parent.exists) parent = thumb({ id: a.parent.id });
    else parent = h("p", { class: "deleted", dataset: { deleted: a.parent.id } }, t("library.parentDeleted"));
    const children = detailChildren.length
      ? h("div", { class: "lineage-row" }, detailChildren.map((c) => thumb(c)))
      : h("p", { class: "muted" }, t("library.noChildren"));

    detailBody.replaceChildren(
      text
        ? detailTextView(a)
        : h("div", { class: "detail-image" }, h("a", { href: assetFileUrl(a.id), target: "_blank", rel: "noopener" }, h("img", { id: "detail-image", src: assetFileUrl(a.id), alt: a.params?.prompt || a.id }))),
      h(
        "div",
        { class: "detail-info" },
        actions,
        text ? null : resultPanel(a, { image: false, library: false, canvas: false, idPrefix: "detail-" }), // Download: format, size
        h("section", {}, h("h3", {}, t("library.params")), params),
        h(
          "section",
          { class: "lineage" },
          h("h3", {}, t("library.lineage")),
          h("div", { class: "lineage-part" }, h("h4", {}, t("library.parent")), h("div", { id: "detail-parent", dataset: { parentId: a.parent?.id || "" } }, parent)),
          h("div", { class: "lineage-part" }, h("h4", {}, t("library.children")), h("div", { id: "detail-children" }, children)),
        ),
        h("section", {}, h("h3", {}, t("library.info")), meta),
      ),
    );
  }

  // A text asset's words with their parts, Copy and Export (text_result.js): its job's result where the job is kept,
  // else the stored Markdown. Loaded once per asset; a relabel redraws from it.
  let detailText = null; // {id, result}
  function detailTextView(a) {
    const box = h("div", { class: "detail-text", id: "detail-text" });
    const draw = (result) => box.replaceChildren(textResult({ ...result, asset_id: a.id }, { idPrefix: "detail-" }));
    if (detailText && detailText.id === a.id) {
      draw(detailText.result);
      return box;
    }
    box.append(h("p", { class: "muted" }, t("library.textLoading")));
    const fromJob = a.job_id ? api(`/api/v1/jobs/${encodeURIComponent(a.job_id)}`).then((j) => (j.result && j.result.asset_id === a.id ? j.result : null)).catch(() => null) : Promise.resolve(null);
    fromJob
      .then(async (result) => {
        if (result) return result;
        const res = await fetch(`${assetFileUrl(a.id)}?format=md&notice=none`, { credentials: "same-origin" });
        if (!res.ok) throw new Error(res.statusText);
        return { text: await res.text(), data: {}, llm: a.model };
      })
      .then((result) => {
        detailText = { id: a.id, result };
        if (detailId === a.id && box.isConnected) draw(result);
      })
      .catch((err) => box.replaceChildren(h("p", { class: "error", role: "alert" }, errorText(err))));
    return box;
  }

  function filterByTag(tag) {
    detailId = null; // applyFilters writes the hash without the asset
    closeDetail();
    const f = { ...state.filters, tag };
    inputsFromFilters(f);
    applyFilters(f);
  }

  function askDelete() {
    confirmError.hidden = true;
    confirmYes.disabled = false;
    confirmYes.textContent = t("library.confirmYes");
    confirmThumb.src = detailAsset ? assetFileUrl(detailAsset.id) : "";
    confirm.showModal();
    confirmNo.focus(); // the safe choice first
  }

  confirmYes.addEventListener("click", async () => {
    const id = detailAsset?.id;
    if (!id) return;
    confirmYes.disabled = true;
    confirmYes.textContent = t("library.deleting");
    try {
      await api(`/api/v1/assets/${encodeURIComponent(id)}`, { method: "DELETE" });
    } catch (err) {
      confirmError.textContent = errorText(err);
      confirmError.hidden = false;
      confirmYes.disabled = false;
      confirmYes.textContent = t("library.confirmYes");
      return;
    }
    confirm.close();
    removeTile(id);
    closeDetail();
  });

  function removeTile(id) {
    const fig = grid.querySelector(`figure[data-asset-id="${CSS.escape(id)}"]`);
    fig?.remove();
    // The next page starts after the last tile shown; when that was the deleted one, use the one before it.
    if (state.next === id) {
      const last = [...grid.querySelectorAll("figure[data-asset-id]")].pop();
      if (last) state.next = last.dataset.assetId;
      else reload();
    }
    showStatus();
  }

  ctx.onLeave(() => {
    observer.disconnect();
    clearTimeout(debounce);
    if (confirm.open) confirm.close();
    if (detail.open) detail.close();
  });

  ctx.onRelabel(() => {
    translate(el);
    fillOps();
    fillModels();
    relabelToolbar();
    for (const fig of grid.querySelectorAll("figure[data-origin=upload][data-tagged=''] [data-role=caption]")) fig.textContent = t("library.uploaded");
    showStatus();
    if (!confirmYes.disabled) confirmYes.textContent = t("library.confirmYes");
    renderDetail();
  });

  const refresh = h("button", { type: "button", class: "link", id: "library-refresh", onclick: () => reload(), dataset: { i18n: "library.refresh" } });
  const el = h(
    "section",
    { class: "library" },
    h("div", { class: "row" }, h("h1", { dataset: { i18n: "library.title" } }), refresh),
    toolbar,
    errorBox,
    grid,
    sentinel,
    status,
    detail,
    confirm,
  );

  // Options for the filters; the grid does not wait for them.
  loadOps() // also registers the parameters' labels the detail shows
    .then((found) => {
      ops = new Map(found.map((o) => [o.name, o]));
      fillOps();
      opSelect.dataset.loaded = "true";
      for (const fig of grid.querySelectorAll("figure[data-asset-id]")) {
        const cap = fig.querySelector("[data-role=caption]");
        if (!fig.dataset.prompt && fig.dataset.origin !== "upload" && cap) cap.textContent = pick(ops.get(fig.dataset.op)?.title) || fig.dataset.op;
      }
      if (detail.open) renderDetail();
    })
    .catch(() => {}); // the grid still works; the select keeps "all types"
  api("/api/v1/models")
    .then((data) => {
      models = (data.models || []).filter((m) => !["lora", "controlnet", "vae"].includes(m.kind)); // never an image's model
      fillModels();
      modelSelect.dataset.loaded = "true";
    })
    .catch(() => {});

  // Start from the hash (reload and Back keep filters and the open detail).
  const start = readHash();
  for (const k of FILTERS) if (start.get(k)) state.filters[k] = start.get(k);
  inputsFromFilters();
  if (activeCount()) toolbar.classList.add("open");
  translate(el);
  reload();
  const firstAsset = start.get("asset");
  if (firstAsset) setTimeout(() => el.isConnected && showDetail(firstAsset)); // showModal needs the page attached
  return el;
}
