// Design editor (设计编辑器): open a template (bundled or yours), move / resize / rotate its layers, edit text in
// place, add text, images and shapes, bind layers to data columns, preview one data row as the server renders it,
// and save as a new template or a new version of your own. The template JSON is the document (docs/TEMPLATES.md).
// Ids for tests: #design-picker (#design-gallery: template_gallery.js), #design-undo, #design-redo, #design-save-new,
// #design-save-version, #design-notice, #design-error, #design-preview (img; data-state idle|busy|ready|error),
// #design-row ([data-column] inputs), #design-add-text, #design-add-image, #design-add-shape [data-shape].
import { api, apiBlob } from "../api.js";
import { h, statusLines, useCss } from "../dom.js";
import { pick, t, translate } from "../i18n.js";
import { assetPicker } from "../asset_picker.js";
import { templateGallery } from "../template_gallery.js";
import { createPanels } from "./designer_panel.js";
import { BRAND_PLACEHOLDERS, createStage, cssColour, PLACEHOLDER } from "./designer_stage.js";
import "./designer_strings.js";

const HISTORY_MAX = 200;
const PREVIEW_DELAY_MS = 600;
const COALESCE_MS = 1200;

// Load the renderer's own font files once, so text on the stage is drawn with the faces the server uses.
let fontsLoaded = null;
function loadFonts() {
  fontsLoaded ||= api("/api/v1/fonts")
    .then(({ fonts }) => {
      const rules = [];
      for (const f of fonts) {
        if (f.regular) rules.push(`@font-face{font-family:"zk-${f.family}";font-weight:400;font-display:swap;src:url("${encodeURI(f.regular)}")}`);
        if (f.bold) rules.push(`@font-face{font-family:"zk-${f.family}";font-weight:700;font-display:swap;src:url("${encodeURI(f.bold)}")}`);
      }
      document.head.append(h("style", { id: "design-fonts" }, rules.join("\n")));
      return fonts;
    })
    .catch(() => []);
  return fontsLoaded;
}

function columnsOf(tpl) {
  const cols = new Set();
  for (const l of tpl.layers) {
    if (l.hidden) continue;
    for (const text of [l.text, l.src, l.prompt]) if (text) for (const m of text.matchAll(PLACEHOLDER)) if (!BRAND_PLACEHOLDERS.includes(m[1])) cols.add(m[1]);
    if (l.when) cols.add(l.when);
  }
  return [...cols];
}

export default function designerView(ctx) {
  useCss("views/designer.css");
  const state = { tpl: null, source: null, sel: null, row: {}, scale: 1, undo: [], redo: [], last: null, dirty: false, fonts: [], brand: [], brandInfo: {}, lastAsset: null };
  const status = statusLines("design");
  let previewTimer = null;
  let previewSerial = 0;
  let previewUrl = null;

  // -- history ------------------------------------------------------------------------------------------------
  function edit(fn, { key = null, keepPanel = false, resize = false } = {}) {
    const now = Date.now();
    if (!(key && state.last && state.last.key === key && now - state.last.at < COALESCE_MS)) {
      state.undo.push(JSON.stringify(state.tpl));
      if (state.undo.length > HISTORY_MAX) state.undo.shift();
    }
    state.last = { key, at: now };
    state.redo = [];
    fn(state.tpl);
    changed({ panel: !keepPanel, resize });
  }

  function travel(from, to) {
    if (!from.length) return;
    to.push(JSON.stringify(state.tpl));
    state.tpl = JSON.parse(from.pop());
    state.last = null;
    if (state.sel !== null && state.sel >= state.tpl.layers.length) state.sel = null;
    changed({ panel: true, resize: true });
  }
  const undo = () => travel(state.undo, state.redo);
  const redo = () => travel(state.redo, state.undo);

  function changed({ panel = true, resize = false } = {}) {
    state.dirty = true;
    if (resize) fit();
    stage.render();
    panels.renderLayers();
    if (panel) panels.renderProps();
    renderRow();
    syncButtons();
    status.showNotice("design.unsaved");
    schedulePreview();
  }

  function select(i) {
    if (state.sel === i) return;
    state.sel = i;
    stage.placeSelection();
    panels.renderLayers();
    panels.renderProps();
  }

  const stage = createStage({ state, edit, select });
  const panels = createPanels({ state, edit, select, fonts: () => state.fonts, brandColours: () => state.brand, css: (v) => cssColour(v, state.brandInfo) });

  // -- toolbar --------------------------------------------------------------------------------------------------
  const tb = (id, key, onclick, extra = {}) => h("button", { type: "button", class: "link", id, dataset: { i18n: key }, onclick, ...extra });
  const undoBtn = tb("design-undo", "design.undo", undo);
  const redoBtn = tb("design-redo", "design.redo", redo);
  const saveNewBtn = h("button", { type: "button", class: "primary", id: "design-save-new", dataset: { i18n: "design.saveNew" }, onclick: () => save(false) });
  const saveVersionBtn = tb("design-save-version", "design.saveVersion", () => save(true));
  const shapeMenu = h(
    "details",
    { class: "dz-menu", id: "design-add-shape" },
    h("summary", { class: "link", dataset: { i18n: "design.addShape" } }),
    h(
      "div",
      { class: "dz-menu-list" },
      ...["rect", "rounded", "ellipse", "line"].map((s) => h("button", { type: "button", dataset: { shape: s, i18n: `design.shape.${s}` }, onclick: () => addShape(s) })),
    ),
  );
  // Lay the server's render over the stage (same size): what a batch run draws, at the editor's scale.
  const compareBtn = tb("design-compare", "design.compare", () => {
    const on = compareBtn.getAttribute("aria-pressed") !== "true";
    compareBtn.setAttribute("aria-pressed", String(on));
    stage.showOverlay(on ? previewUrl : null);
  }, { "aria-pressed": "false" });
  const imageDialog = h("dialog", { class: "dz-dialog", id: "design-image-dialog" });
  const toolbar = h(
    "div",
    { class: "dz-toolbar", role: "toolbar" },
    tb("design-open", "design.open", () => ctx.navigate("#/design")),
    h("span", { class: "dz-sep" }),
    tb("design-add-text", "design.addText", addText),
    tb("design-add-image", "design.addImage", openImageDialog),
    shapeMenu,
    h("span", { class: "dz-sep" }),
    undoBtn,
    redoBtn,
    h("span", { class: "dz-sep" }),
    compareBtn,
    h("span", { class: "dz-grow" }),
    saveVersionBtn,
    saveNewBtn,
  );

  function syncButtons() {
    undoBtn.disabled = !state.undo.length;
    redoBtn.disabled = !state.redo.length;
    saveVersionBtn.hidden = !state.source || state.source.bundled;
  }

  function place(w, hh) {
    const { width, height } = state.tpl;
    return { x: Math.round((width - w) / 2), y: Math.round((height - hh) / 2), w: Math.round(w), h: Math.round(hh) };
  }

  function add(layer) {
    edit((tpl) => tpl.layers.push(layer));
    select(state.tpl.layers.length - 1);
  }

  function addText() {
    const size = Math.max(12, Math.round(Math.min(state.tpl.width, state.tpl.height) / 12));
    add({ type: "text", text: t("design.newText"), box: place(state.tpl.width * 0.6, size * 1.6), font_size: size, color: "#222222", align: "center", valign: "middle" });
  }

  function addShape(kind) {
    shapeMenu.open = false;
    const s = Math.min(state.tpl.width, state.tpl.height) / 3;
    if (kind === "line") add({ type: "shape", shape: "rect", box: place(s * 1.5, Math.max(2, Math.round(s / 40))), fill: "#222222" });
    else add({ type: "shape", shape: kind === "ellipse" ? "ellipse" : "rect", box: place(s, s), fill: "#e4393c", radius: kind === "rounded" ? Math.round(s / 8) : 0 });
  }

  function addImage(src, w = 1, hh = 1) {
    imageDialog.close();
    state.lastAsset = src;
    const s = Math.min(state.tpl.width, state.tpl.height) / 3;
    const k = s / Math.max(w, hh);
    add({ type: "image", src, box: place(w * k, hh * k), fit: "contain" });
  }

  async function openImageDialog() {
    const picker = assetPicker({
      id: "design-image-asset",
      onChange: async (id) => {
        if (!id) return;
        let size = [1, 1];
        try {
          const a = await api(`/api/v1/assets/${encodeURIComponent(id)}`);
          if (a.width && a.height) size = [a.width, a.height];
        } catch {
          // the picker's own thumbnail showed it; a square box is fine
        }
        addImage(id, ...size);
      },
    });
    imageDialog.replaceChildren(
      h("div", { class: "row" }, h("h2", { dataset: { i18n: "design.imageFrom" } }), h("button", { type: "button", class: "link", dataset: { i18n: "picker.close" }, onclick: () => imageDialog.close() })),
      picker.element,
      await extraImageSources(),
    );
    translate(imageDialog);
    imageDialog.showModal();
  }

  // The brand kit's logo (GET /api/v1/brand: {kit: {logo}}) when the user saved one, and the bundled stock
  // library's shapes, badges and backgrounds (GET /api/v1/stock/bundled; a template names one as `stock:ID`).
  async function extraImageSources() {
    const logo = state.brandInfo.kit?.logo;
    const logoBtn = logo ? h("button", { type: "button", class: "link", id: "design-brand-logo", dataset: { i18n: "design.brandLogo" }, onclick: () => addImage(logo) }) : null;
    let items = [];
    try {
      items = (await api("/api/v1/stock/bundled")).items || [];
    } catch {
      // a deployment without the bundled stock
    }
    const tiles = items.map((it) =>
      h(
        "button",
        { type: "button", class: "dz-stock-tile", title: pick(it.name), dataset: { ref: it.ref }, onclick: () => addImage(it.ref, it.width || 1, it.height || 1) },
        h("img", { src: it.thumb_url, alt: pick(it.name), loading: "lazy" }),
      ),
    );
    return h(
      "div",
      { class: "dz-extra" },
      logoBtn,
      tiles.length ? h("h3", { dataset: { i18n: "design.stock" } }) : null,
      tiles.length ? h("div", { class: "dz-stock", id: "design-stock" }, ...tiles) : null,
    );
  }

  // -- data row and server preview ------------------------------------------------------------------------------
  const rowBox = h("div", { id: "design-row", class: "dz-row" });
  const previewImg = h("img", { id: "design-preview", alt: "", dataset: { state: "idle" } });
  const previewMsg = h("p", { class: "muted dz-preview-msg", id: "design-preview-msg" });

  function renderRow() {
    const cols = columnsOf(state.tpl);
    const images = new Set(state.tpl.layers.filter((l) => l.type === "image").flatMap((l) => [...l.src.matchAll(PLACEHOLDER)].map((m) => m[1])));
    for (const c of cols) if (!(c in state.row)) state.row[c] = images.has(c) ? "" : c === "price" ? "99" : `${t("design.sample")} ${c}`;
    const shown = [...rowBox.querySelectorAll("[data-column]")].map((i) => i.dataset.column);
    if (shown.join("\n") === cols.join("\n")) return; // keep focus while typing
    rowBox.replaceChildren(
      ...(cols.length
        ? cols.map((c) => {
            if (images.has(c)) {
              // An image column: pick or upload the sample image (its asset id is the cell's value).
              const chooser = assetPicker({ id: `design-row-${c}`, value: state.row[c] || "", onChange: (id) => {
                state.row[c] = id;
                stage.render();
                schedulePreview();
              } });
              chooser.element.querySelector("input[type=hidden]").dataset.column = c;
              return h("div", { class: "dz-field" }, h("span", {}, c), chooser.element);
            }
            const input = h("input", { type: "text", value: state.row[c] ?? "", dataset: { column: c }, maxlength: 2000 });
            input.addEventListener("input", () => {
              state.row[c] = input.value;
              stage.render();
              schedulePreview();
            });
            return h("label", { class: "dz-field" }, h("span", {}, c), input);
          })
        : [h("p", { class: "muted" }, t("design.noColumns"))]),
    );
  }

  function schedulePreview() {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(renderPreview, PREVIEW_DELAY_MS);
  }

  async function renderPreview() {
    const serial = ++previewSerial;
    previewImg.dataset.state = "busy";
    previewMsg.textContent = t("design.previewBusy");
    const row = Object.fromEntries(Object.entries(state.row).filter(([, v]) => String(v).trim() !== ""));
    try {
      const blob = await apiBlob("/api/v1/templates/preview", { template_json: state.tpl, row });
      if (serial !== previewSerial) return;
      if (previewUrl) URL.revokeObjectURL(previewUrl);
      previewUrl = URL.createObjectURL(blob);
      previewImg.onload = () => serial === previewSerial && (previewImg.dataset.state = "ready");
      previewImg.src = previewUrl;
      if (compareBtn.getAttribute("aria-pressed") === "true") stage.showOverlay(previewUrl);
      previewImg.dataset.serial = String(serial);
      previewMsg.textContent = t("design.previewHint");
    } catch (err) {
      if (serial !== previewSerial) return;
      previewImg.dataset.state = "error";
      previewMsg.textContent = "";
      status.showError(err);
      return;
    }
    status.showError(null);
  }

  // -- open and save --------------------------------------------------------------------------------------------
  const workspace = h(
    "div",
    { class: "dz-work", hidden: true },
    toolbar,
    h(
      "div",
      { class: "dz-main" },
      h(
        "aside",
        { class: "dz-side dz-left" },
        h("h3", { dataset: { i18n: "design.layers" } }),
        panels.layersList,
        h("h3", { dataset: { i18n: "design.row" } }),
        h("p", { class: "muted dz-hint", dataset: { i18n: "design.rowHint" } }),
        rowBox,
        h("h3", { dataset: { i18n: "design.preview" } }),
        h("div", { class: "dz-preview" }, previewImg),
        previewMsg,
      ),
      h("section", { class: "dz-center" }, stage.element, h("p", { class: "muted dz-keys", dataset: { i18n: "design.keys" } }), status.notice, status.error),
      h("aside", { class: "dz-side dz-right" }, panels.props),
    ),
    imageDialog,
  );
  const picker = h("div", { id: "design-picker", class: "dz-picker", hidden: true });
  const title = h("h1", { dataset: { i18n: "design.title" } });
  const root = h("div", { class: "designer" }, h("div", { class: "row dz-head" }, title, h("span", { class: "muted", id: "design-name" })), picker, workspace);

  // Opening: the template gallery (bundled and the user's own, with previews, search and categories).
  let gallery = null;
  function showPicker() {
    workspace.hidden = true;
    picker.hidden = false;
    gallery = templateGallery({ id: "design-gallery", onPick: (tp) => ctx.navigate(`#/design?template=${encodeURIComponent(tp.id)}`) });
    picker.replaceChildren(h("h2", { dataset: { i18n: "design.pickTitle" } }), h("p", { class: "muted", dataset: { i18n: "design.pickHint" } }), gallery);
    translate(picker);
  }

  async function open(id) {
    picker.hidden = true;
    try {
      const [got, fonts] = await Promise.all([api(`/api/v1/templates/${encodeURIComponent(id)}`), loadFonts()]);
      state.fonts = fonts;
      state.brandInfo = await brandInfo();
      const slots = Object.keys(state.brandInfo.kit?.colors || state.brandInfo.defaults?.colors || {});
      state.brand = slots.map((slot) => ({ value: `brand.${slot}`, css: cssColour(`brand.${slot}`, state.brandInfo) }));
      load(got);
    } catch (err) {
      status.showError(err);
      workspace.hidden = false;
    }
  }

  // The brand kit (GET /api/v1/brand: {kit: {name, logo, colors, fonts} | null, defaults}): `brand.*` colours
  // and placeholders on the stage, and its colours first among the swatches (as references that follow the kit).
  async function brandInfo() {
    try {
      return await api("/api/v1/brand");
    } catch {
      return {}; // a deployment without brand kits
    }
  }

  function load(got) {
    state.tpl = got.template;
    state.source = { id: got.id, bundled: got.bundled, version: got.version, name: got.name };
    state.sel = null;
    state.undo = [];
    state.redo = [];
    state.dirty = false;
    state.row = {};
    workspace.hidden = false;
    workspace.dataset.template = got.id;
    workspace.dataset.version = String(got.version);
    document.getElementById("design-name").textContent = `${pick(got.name)} · ${got.width}×${got.height}${got.bundled ? "" : ` · v${got.version}`}`;
    fit();
    stage.render();
    panels.renderLayers();
    panels.renderProps();
    renderRow();
    syncButtons();
    status.showNotice(null);
    schedulePreview();
    document.fonts?.ready.then(() => state.tpl && stage.render()); // re-fit text once the faces have loaded
  }

  async function save(asVersion) {
    status.showError(null);
    if (!state.tpl.name.zh?.trim() || !state.tpl.name.en?.trim()) {
      status.error.textContent = t("design.needName");
      status.error.hidden = false;
      return;
    }
    const btn = asVersion ? saveVersionBtn : saveNewBtn;
    btn.disabled = true;
    try {
      const body = { ...state.tpl, id: state.source?.bundled === false ? state.source.id : "draft" };
      const src = state.source?.name || {};
      if (!asVersion && body.name.zh === src.zh && body.name.en === src.en) {
        body.name = { zh: `${src.zh} 副本`.slice(0, 200), en: `${src.en} copy`.slice(0, 200) }; // not two of one name
      }
      const got = asVersion
        ? await api(`/api/v1/templates/${encodeURIComponent(state.source.id)}`, { method: "PUT", body })
        : await api("/api/v1/templates", { method: "POST", body });
      const keep = { sel: state.sel, undo: state.undo, redo: state.redo, row: state.row };
      load(got);
      Object.assign(state, keep);
      stage.placeSelection();
      panels.renderLayers();
      panels.renderProps();
      renderRow();
      syncButtons();
      status.showNotice(asVersion ? "design.savedVersion" : "design.saved", { name: pick(got.name), version: got.version });
      history.replaceState(null, "", `#/design?template=${encodeURIComponent(got.id)}`);
    } catch (err) {
      status.showError(err);
    } finally {
      btn.disabled = false;
    }
  }

  // -- scale, keys, page hooks ----------------------------------------------------------------------------------
  function fit() {
    if (!state.tpl) return;
    const center = stage.element.parentElement;
    const availW = Math.max(200, (center?.clientWidth || 600) - 24);
    const availH = Math.max(240, window.innerHeight - 230);
    const { width, height } = state.tpl;
    // A long image (详情页, 750 x 3000+) is edited at a readable scale and scrolled, not shrunk to the window.
    const tall = height > 2.2 * width ? Math.max(availH / height, 0.45) : availH / height;
    stage.setScale(Math.min(1, availW / width, tall));
  }

  function onKey(e) {
    if (workspace.hidden || !state.tpl || stage.isEditing()) return;
    const el = e.target;
    if (el.closest?.("input, textarea, select, [contenteditable=true], [contenteditable=plaintext-only], dialog[open]")) return;
    const mod = e.ctrlKey || e.metaKey;
    if (mod && e.key.toLowerCase() === "z") {
      e.preventDefault();
      (e.shiftKey ? redo : undo)();
      return;
    }
    if (mod && e.key.toLowerCase() === "y") {
      e.preventDefault();
      redo();
      return;
    }
    if (state.sel === null) return;
    const layer = state.tpl.layers[state.sel];
    if ((e.key === "Delete" || e.key === "Backspace") && !layer.locked) {
      e.preventDefault();
      const i = state.sel;
      edit((tpl) => tpl.layers.splice(i, 1));
      select(null);
      return;
    }
    if (e.key === "Escape") return select(null);
    const step = e.shiftKey ? 10 : 1;
    const d = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] }[e.key];
    if (d && !layer.locked) {
      e.preventDefault();
      const i = state.sel;
      edit(
        (tpl) => {
          tpl.layers[i].box.x += d[0];
          tpl.layers[i].box.y += d[1];
        },
        { key: `${i}.nudge` },
      );
    }
  }

  document.addEventListener("keydown", onKey);
  const onResize = () => {
    if (!state.tpl) return;
    fit();
  };
  window.addEventListener("resize", onResize);
  ctx.onLeave(() => {
    document.removeEventListener("keydown", onKey);
    window.removeEventListener("resize", onResize);
    clearTimeout(previewTimer);
    if (previewUrl) URL.revokeObjectURL(previewUrl);
  });
  ctx.onRelabel(() => {
    translate(root);
    status.relabel();
    if (state.tpl) {
      panels.renderLayers();
      panels.renderProps();
      rowBox.replaceChildren();
      renderRow();
    } else if (!picker.hidden) gallery?.relabel();
  });
  const route = (params) => {
    const id = params.get("template");
    if (!id) showPicker();
    else if (!state.source || state.source.id !== id) open(id);
  };
  ctx.onParams(route);
  translate(root);
  route(ctx.params);
  return root;
}
