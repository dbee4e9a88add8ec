// Canvas editor (#/edit?asset=ID[&mode=MODE|tools]). The modes and tools are not listed here: every op whose
// studio placement names a canvas mode gets a tab, every op marked `tool` is listed under Tools (ops.js), and a
// mode's controls follow from its fields' canvas roles (core/ui.py): `image` gets the open image, `mask` the
// painted mask, `prompt` the prompt box, `strength` the slider, `side` fields the extend handles (fields named
// left/right/top/bottom) and `aspect` the ratio buttons, `controls` the control panel (detector preview through
// the op's studio.preview op, then a ControlNet unit: edit_control.js). All other parameters go under "More
// settings", from the op's schema (schema_form.js). Without ?asset: a picker of recent images plus upload
// (edit_picker.js). The page's own words: edit_strings.js.
//
// Ids for tests: #edit-picker (picker grid; tiles [data-asset-id]), #edit-upload (file input); editor:
// #edit-form, #edit-stage, #edit-image (the base img), #mask-canvas, #tool-brush, #tool-eraser, #brush-size,
// #mask-undo, #mask-clear, mode buttons [data-mode=<studio.canvas id>|tools] (today erase, inpaint, material,
// extend, control), #edit-run (runs the current mode), #mode-help, #edit-prompt (the `prompt`-role field),
// #inpaint-strength (the `strength`-role slider), extend handles .extend-handle[data-side=left|right|top|bottom], inputs
// #extend-left|right|top|bottom, #extend-size (new size text), #control-detector, #control-preview (button),
// #control-map (the map img, [data-asset-id]), #control-net (ControlNet select), #tool-op (select), #tool-form,
// tool fields #tool-<param> (e.g. #tool-scale), #edit-error, progress ids of progressPanel("edit-") (#edit-progress,
// #edit-result-image ...), #edit-continue, #edit-open-library.
import { api, uploadAsset } from "../api.js";
import { extendHandles, maskPainter } from "../canvas.js";
import { clearFormErrors, errorText, h, showFormError, useCss } from "../dom.js";
import { has, pick, t, translate } from "../i18n.js";
import { progressPanel, submitJob } from "../jobs.js";
import { canvasModes, canvasRoles, loadOps, opKey, toolOps } from "../ops.js";
import { resultPanel } from "../result_panel.js";
import { schemaForm } from "../schema_form.js";
import { controlPanel } from "./edit_control.js";
import { spotPanel } from "./edit_spot.js";
import { fillChoice, hasFillChoice } from "./edit_fill.js";
import { picker } from "./edit_picker.js";
import "./edit_strings.js";

const TEST_MODE = new URLSearchParams(location.search).has("test");
const TOOLS = "tools"; // the mode that lists the tool ops
const SIDES = ["left", "right", "top", "bottom"];
const RATIOS = [
  [1, 1],
  [3, 4],
  [4, 3],
  [9, 16],
  [16, 9],
];
const MAX_ZOOM = 8; // small images are enlarged to paint comfortably, but not beyond this

export default function editView(ctx) {
  useCss("views/edit.css");
  const id = ctx.params.get("asset");
  const el = id ? editor(ctx, id) : picker(ctx);
  translate(el);
  return el;
}


function editor(ctx, assetId) {
  const state = {
    mode: ctx.params.get("mode") || null, // checked against the modes once the ops are loaded
    modes: [], // [{id, op, roles: {role: [field names]}}] from the ops' studio placement
    nat: null, // the image's pixel size {w, h}
    ext: { left: 0, right: 0, top: 0, bottom: 0 },
    scale: 1, // screen px per image px
    origin: { x: 0, y: 0 }, // the image's top-left in the stage, screen px
    dragging: false,
    maskVersion: 0,
    uploadedMask: null, // {version, id}
    ops: {},
    busy: false,
  };
  let painter = null;
  const cleanups = [];
  ctx.onLeave(() => cleanups.forEach((fn) => fn()));

  // ---- the stage: image, mask layer, extend outline ----
  const image = h("img", { id: "edit-image", alt: "", draggable: "false" });
  const overlay = h("img", { class: "control-overlay", alt: "", hidden: true });
  const maskCanvas = h("canvas", { id: "mask-canvas", "aria-label": "mask" });
  const imageBox = h("div", { class: "stage-image" }, image, overlay, maskCanvas);
  const amounts = Object.fromEntries(SIDES.map((s) => [s, h("span", { class: "extend-amount", dataset: { side: s }, hidden: true })]));
  const outline = h("div", { class: "stage-outline" }, ...Object.values(amounts));
  const loading = h("p", { class: "muted stage-loading", dataset: { i18n: "edit.loadingImage" } });
  const stage = h("div", { class: "stage", id: "edit-stage", dataset: { field: "image", stageMode: state.mode } }, outline, imageBox, loading);

  // ---- mask tools ----
  const brushBtn = h("button", { type: "button", class: "tool active", id: "tool-brush", "aria-pressed": "true", dataset: { i18n: "edit.brush" } });
  const eraserBtn = h("button", { type: "button", class: "tool", id: "tool-eraser", "aria-pressed": "false", dataset: { i18n: "edit.eraser" } });
  const sizeInput = h("input", { type: "range", id: "brush-size", min: 1, max: 64, value: 12 });
  const sizeValue = h("output", { id: "brush-size-value", for: "brush-size" });
  const undoBtn = h("button", { type: "button", class: "link", id: "mask-undo", disabled: true, dataset: { i18n: "edit.undo" } });
  const clearBtn = h("button", { type: "button", class: "link", id: "mask-clear", dataset: { i18n: "edit.clear" } });
  const maskTools = h(
    "div",
    { class: "mask-tools", id: "mask-tools", dataset: { field: "mask" } },
    h("div", { class: "seg" }, brushBtn, eraserBtn),
    h("label", { class: "brush-size", title: t("edit.keysHint") }, h("span", { dataset: { i18n: "edit.brushSize" } }), sizeInput, sizeValue),
    h("div", { class: "seg-actions" }, undoBtn, clearBtn),
  );
  const keysHint = h("p", { class: "muted keys-hint", dataset: { i18n: "edit.keysHint" } });

  const sizeLabel = h("span", { class: "muted", id: "edit-size" });
  const main = h(
    "section",
    { class: "card edit-main" },
    h(
      "div",
      { class: "row edit-head" },
      h("h1", { dataset: { i18n: "edit.title" } }),
      sizeLabel,
      h("a", { href: "#/edit", class: "edit-change", id: "edit-change", dataset: { i18n: "edit.change" } }),
    ),
    maskTools,
    stage,
    keysHint,
  );

  // ---- side panel: modes ----
  const tabs = h("div", { class: "modes", role: "tablist" });
  const fillTabs = () =>
    tabs.replaceChildren(
      ...state.modes.map((m) => h("button", { type: "button", role: "tab", class: "mode", dataset: { mode: m.id, i18n: m.op ? `op.${m.op}.s.label` : "edit.mode.tools" } })),
    );
  const modeDef = () => state.modes.find((m) => m.id === state.mode) || { id: state.mode, roles: {} };
  const roleField = (role) => (modeDef().roles[role] || [])[0];
  const isMasked = () => Boolean(roleField("mask"));

  // erase / inpaint
  const strength = h("input", { type: "range", id: "inpaint-strength", min: 0.05, max: 1, step: 0.05, value: 1 });
  const strengthValue = h("output", { for: "inpaint-strength" }, "1.00");
  strength.addEventListener("input", () => (strengthValue.textContent = Number(strength.value).toFixed(2)));
  // One help line per mode (its op's studio help); the blocks below show for the roles the mode's op has.
  const modeHelp = h("p", { class: "muted help", id: "mode-help" });
  const strengthLabel = h("span");
  const strengthBlock = h("label", { class: "range", dataset: { field: "strength" } }, strengthLabel, h("div", { class: "range-row" }, strength, strengthValue));
  const panels = { strength: strengthBlock };

  // extend
  const extInputs = Object.fromEntries(SIDES.map((s) => [s, h("input", { type: "number", id: `extend-${s}`, min: 0, max: 4096, step: 1, value: 0, inputmode: "numeric" })]));
  const extSize = h("p", { class: "extend-size", id: "extend-size", "aria-live": "polite" });
  panels.side = h(
    "div",
    { class: "mode-panel", dataset: { panel: "side" } },
    h(
      "div",
      { class: "extend-inputs" },
      ...SIDES.map((s) => h("label", { dataset: { field: s } }, h("span", { dataset: { i18n: `edit.extend.${s}` } }), h("div", { class: "px" }, extInputs[s], h("span", { class: "muted" }, "px")))),
    ),
    extSize,
  );
  panels.aspect = h(
    "div",
    { class: "mode-panel", dataset: { panel: "aspect" } },
    h(
      "div",
      { class: "ratios", dataset: { field: "aspect" } },
      h("span", { class: "muted", dataset: { i18n: "edit.extend.ratio" } }),
      ...RATIOS.map(([a, b]) => h("button", { type: "button", class: "link", dataset: { ratio: `${a}:${b}` }, onclick: () => extendToRatio(a, b) }, `${a}:${b}`)),
      h("button", { type: "button", class: "link", id: "extend-reset", dataset: { i18n: "edit.extend.reset" }, onclick: () => setExtend({ left: 0, right: 0, top: 0, bottom: 0 }) }),
    ),
  );

  // control units: the ControlNet panel (edit_control.js) for a mode with a `controls` field
  const control = controlPanel({
    ops: () => state.ops,
    modeDef,
    roleField,
    assetId,
    overlay,
    cleanups,
    onStart: () => {
      clearFormErrors(form);
      showError("");
    },
    onError: (err) => showFormError(form, err, error),
  });
  panels.controls = control.element;

  // tools
  const toolSelect = h("select", { id: "tool-op" });
  const toolHelp = h("p", { class: "muted help", id: "tool-help" });
  const toolForm = h("div", { class: "tool-form", id: "tool-form" });
  const spot = spotPanel({ productId: assetId }); // a product tool's scene: drag where it stands (edit_spot.js)
  cleanups.push(() => spot.stop());
  panels.tools = h(
    "div",
    { class: "mode-panel", dataset: { panel: TOOLS } },
    h("label", { dataset: { field: "op" } }, h("span", { dataset: { i18n: "edit.tools.op" } }), toolSelect),
    toolHelp,
    toolForm,
    spot.element,
  );

  // prompt (inpaint, extend, control) and per-mode "More settings"
  const prompt = h("textarea", { id: "edit-prompt", rows: 3, maxlength: 4000 });
  const promptLabel = h("span", { dataset: { i18n: "edit.prompt" } });
  const promptField = h("label", { class: "prompt-field", dataset: { field: "prompt" } }, promptLabel, prompt);
  const moreBox = h("div", { class: "more-box" });
  const moreForms = {}; // mode -> schemaForm
  const toolForms = {}; // op -> schemaForm

  const runBtn = h("button", { type: "submit", class: "primary", id: "edit-run" });
  const error = h("p", { class: "error", id: "edit-error", role: "alert", hidden: true });
  const panel = progressPanel("edit-");
  cleanups.push(() => panel.stop());
  const continueBtn = h("button", { type: "button", class: "link", id: "edit-continue", dataset: { i18n: "edit.continue" } });
  const libraryLink = h("a", { id: "edit-open-library", href: "#/library", dataset: { i18n: "edit.openLibrary" } });
  const result = h("div", { class: "result-slot", id: "edit-result-slot" }); // Download and the open links (result_panel.js)
  const actions = h("div", { class: "result-actions", hidden: true }, continueBtn, libraryLink);
  const output = h("div", { class: "edit-output", id: "edit-output", hidden: true }, h("h2", { dataset: { i18n: "edit.result" } }), panel.element, result, actions);
  let resultId = null;
  continueBtn.addEventListener("click", () => resultId && ctx.navigate(`#/edit?asset=${encodeURIComponent(resultId)}`));

  // erase / extend: quick classical fill or AI fill, chosen explicitly (edit_fill.js)
  const fill = fillChoice();

  const side = h("aside", { class: "card edit-side" }, tabs, modeHelp, ...Object.values(panels), fill.element, promptField, moreBox, runBtn, error, output);
  const form = h("form", { class: "edit", id: "edit-form", novalidate: true }, main, side);

  // ---- behaviour ----
  function showError(msg) {
    error.textContent = msg || "";
    error.hidden = !msg;
  }

  function setTool(tool) {
    if (painter) painter.setTool(tool);
    brushBtn.classList.toggle("active", tool === "brush");
    eraserBtn.classList.toggle("active", tool === "eraser");
    brushBtn.setAttribute("aria-pressed", String(tool === "brush"));
    eraserBtn.setAttribute("aria-pressed", String(tool === "eraser"));
  }
  brushBtn.addEventListener("click", () => setTool("brush"));
  eraserBtn.addEventListener("click", () => setTool("eraser"));

  function setBrush(n) {
    const v = Math.min(Number(sizeInput.max), Math.max(1, Math.round(n)));
    sizeInput.value = String(v);
    sizeValue.textContent = `${v} px`;
    if (painter) painter.setSize(v);
  }
  sizeInput.addEventListener("input", () => setBrush(Number(sizeInput.value)));
  undoBtn.addEventListener("click", () => painter && painter.undo());
  clearBtn.addEventListener("click", () => painter && painter.clear());

  // [ and ] change the brush (A1111's keys); Ctrl/Cmd+Z undoes a stroke. Not while typing in a field.
  const onKey = (ev) => {
    if (!painter || !isMasked()) return;
    if (ev.target.closest && ev.target.closest("input, textarea, select, [contenteditable]")) return;
    const size = Number(sizeInput.value);
    const step = Math.max(1, Math.round(size * 0.15));
    if (ev.key === "[") setBrush(size - step);
    else if (ev.key === "]") setBrush(size + step);
    else if ((ev.ctrlKey || ev.metaKey) && ev.key.toLowerCase() === "z") painter.undo();
    else return;
    ev.preventDefault();
  };
  document.addEventListener("keydown", onKey);
  cleanups.push(() => document.removeEventListener("keydown", onKey));

  // Fit the (extended) canvas into the stage. While a handle is dragged the scale and the image's place are
  // frozen, so the handle stays under the pointer; on release everything is fitted again.
  function layout() {
    if (!state.nat) return;
    const extending = Boolean(roleField("side"));
    const e = extending ? state.ext : { left: 0, right: 0, top: 0, bottom: 0 };
    const W = state.nat.w + e.left + e.right;
    const H = state.nat.h + e.top + e.bottom;
    if (!state.dragging) {
      const room = extending ? 0.74 : 0.96; // extend leaves space to drag into
      const sw = stage.clientWidth;
      const sh = stage.clientHeight;
      state.scale = Math.max(0.01, Math.min((sw * room) / W, (sh * room) / H, MAX_ZOOM));
      state.origin = { x: (sw - W * state.scale) / 2 + e.left * state.scale, y: (sh - H * state.scale) / 2 + e.top * state.scale };
    }
    const s = state.scale;
    Object.assign(imageBox.style, { left: `${state.origin.x}px`, top: `${state.origin.y}px`, width: `${state.nat.w * s}px`, height: `${state.nat.h * s}px` });
    Object.assign(outline.style, {
      left: `${state.origin.x - e.left * s}px`,
      top: `${state.origin.y - e.top * s}px`,
      width: `${W * s}px`,
      height: `${H * s}px`,
    });
    stage.dataset.scale = String(s);
  }
  const observer = new ResizeObserver(() => layout());
  observer.observe(stage);
  cleanups.push(() => observer.disconnect());

  function updateExtendText() {
    if (!state.nat) return;
    const { w, h: hh } = state.nat;
    const e = state.ext;
    extSize.textContent = t("edit.extend.newSize", { w: w + e.left + e.right, h: hh + e.top + e.bottom, ow: w, oh: hh });
    for (const s of SIDES) {
      amounts[s].textContent = `+${e[s]} px`;
      amounts[s].hidden = !e[s];
    }
  }

  function setExtend(next) {
    Object.assign(state.ext, next);
    for (const s of SIDES) extInputs[s].value = String(state.ext[s]);
    updateExtendText();
    layout();
  }
  for (const s of SIDES) {
    extInputs[s].addEventListener("input", () => {
      const v = Math.max(0, Math.min(4096, Math.round(Number(extInputs[s].value) || 0)));
      state.ext[s] = v;
      updateExtendText();
      layout();
    });
  }

  // Grow the short way to a ratio, the original centred (what outpaint's aspect + anchor=center does).
  function extendToRatio(a, b) {
    if (!state.nat) return;
    const { w, h: hh } = state.nat;
    const target = a / b;
    const next = { left: 0, right: 0, top: 0, bottom: 0 };
    if (target > w / hh) {
      const extra = Math.round(hh * target) - w;
      next.left = Math.floor(extra / 2);
      next.right = extra - next.left;
    } else {
      const extra = Math.round(w / target) - hh;
      next.top = Math.floor(extra / 2);
      next.bottom = extra - next.top;
    }
    setExtend(next);
  }

  extendHandles(outline, {
    scale: () => {
      state.dragging = true;
      return state.scale;
    },
    value: (side) => state.ext[side],
    onChange: (side, px) => {
      state.ext[side] = Math.min(4096, px);
      extInputs[side].value = String(state.ext[side]);
      updateExtendText();
      layout();
    },
    onEnd: () => {
      state.dragging = false;
      layout();
    },
  });

  function setMode(mode) {
    state.mode = mode;
    stage.dataset.stageMode = mode;
    for (const b of tabs.querySelectorAll("[data-mode]")) {
      const on = b.dataset.mode === mode;
      b.classList.toggle("active", on);
      b.setAttribute("aria-selected", String(on));
    }
    const def = modeDef();
    for (const [role, p] of Object.entries(panels)) p.hidden = role === TOOLS ? mode !== TOOLS : !def.roles[role];
    stage.dataset.extend = String(Boolean(def.roles.side));
    const masked = isMasked();
    maskTools.hidden = !masked;
    keysHint.hidden = !masked;
    maskCanvas.hidden = !masked;
    if (painter) painter.setEnabled(masked);
    control.showOverlay();
    modeHelp.dataset.i18n = def.op ? `op.${def.op}.s.help` : "";
    modeHelp.textContent = def.op && has(modeHelp.dataset.i18n) ? t(modeHelp.dataset.i18n) : "";
    modeHelp.hidden = !modeHelp.textContent;
    if (!def.op) delete modeHelp.dataset.i18n;
    // The prompt box serves the mode's `prompt` field (labelled as that field; e.g. material_swap's material).
    const promptName = roleField("prompt");
    promptField.hidden = !promptName;
    if (promptName) {
      promptField.dataset.field = promptName;
      promptLabel.dataset.i18n = has(opKey(def.op, "f", [promptName])) ? opKey(def.op, "f", [promptName]) : "edit.prompt";
      promptLabel.textContent = t(promptLabel.dataset.i18n);
      const hintKey = has(`op.${def.op}.s.hint`) ? `op.${def.op}.s.hint` : opKey(def.op, "p", [promptName]);
      if (has(hintKey)) prompt.dataset.i18nPlaceholder = hintKey;
      else delete prompt.dataset.i18nPlaceholder;
      prompt.placeholder = has(hintKey) ? t(hintKey) : "";
      prompt.maxLength = state.ops[def.op]?.params_schema?.properties?.[promptName]?.maxLength || 4000;
    }
    // The slider serves the mode's `strength` field, with its limits, step and default.
    const strengthName = roleField("strength");
    if (strengthName) {
      const fs = state.ops[def.op].params_schema.properties[strengthName];
      const fm = fs["x-zhike"] || {};
      const step = fm.step ?? 0.05;
      // The lowest value on the step grid (0.01 with step 0.05 -> 0.05), so the slider lands on round values.
      const low = Math.ceil((fs.minimum ?? 0) / step - 1e-9) * step;
      Object.assign(strength, { min: Number(low.toFixed(6)), max: fs.maximum ?? 1, step });
      strength.value = String(fs.default ?? fs.maximum ?? 1);
      strengthValue.textContent = Number(strength.value).toFixed(2);
      strengthBlock.dataset.field = strengthName;
      strengthLabel.dataset.i18n = opKey(def.op, "f", [strengthName]);
      strengthLabel.textContent = t(strengthLabel.dataset.i18n);
    }
    if (def.roles.controls) control.fill();
    fill.show(state.ops[def.op], mode);
    runBtn.dataset.i18n = def.op && has(`op.${def.op}.s.run`) ? `op.${def.op}.s.run` : "edit.run.tools";
    if (!state.busy) runBtn.textContent = t(runBtn.dataset.i18n);
    showMore();
    updateRunnable();
    clearFormErrors(form);
    showError("");
    layout();
  }
  tabs.addEventListener("click", (ev) => {
    const b = ev.target.closest("[data-mode]");
    if (b) setMode(b.dataset.mode);
  });

  // "More settings" of the current mode: the op's schema minus what the page sets.
  function showMore() {
    for (const f of Object.values(moreForms)) f.wrap.hidden = true;
    const op = modeDef().op;
    if (!op || !state.ops[op]) return;
    if (!moreForms[state.mode]) {
      const values = TEST_MODE ? { steps: 3 } : null;
      const omit = Object.values(modeDef().roles).flat(); // what the page's own controls set
      if (hasFillChoice(state.ops[op])) omit.push("method"); // the fill choice above the form
      const f = schemaForm(state.ops[op], { omit, idPrefix: `${state.mode}-more-`, values });
      f.wrap = h("details", { class: "edit-more", dataset: { more: state.mode } }, h("summary", { dataset: { i18n: "edit.more" } }), f.element);
      translate(f.wrap);
      moreForms[state.mode] = f;
      moreBox.append(f.wrap);
    }
    moreForms[state.mode].wrap.hidden = false;
  }

  function updateRunnable() {
    const noNetModel = Boolean(roleField("controls")) && !control.hasNet();
    const noTool = state.mode === TOOLS && !toolSelect.value;
    runBtn.disabled = state.busy || noNetModel || noTool;
  }

  // Tools: one schema form per op (the open image fills its `image`-role fields).
  // A tool's one sentence (its studio help), else its description
  const toolHelpText = (name) => (!name ? t("edit.tools.none") : has(`op.${name}.s.help`) ? t(`op.${name}.s.help`) : state.ops[name].description);

  function showTool() {
    const name = toolSelect.value;
    toolHelp.textContent = toolHelpText(name);
    if (!name) {
      toolForm.replaceChildren();
      spot.show(null);
      return;
    }
    if (!toolForms[name]) {
      const omit = canvasRoles(state.ops[name]).image || []; // the open image; everything else is the tool's form
      const f = schemaForm(state.ops[name], { omit, idPrefix: "tool-", values: TEST_MODE ? { steps: 3 } : null });
      translate(f.element);
      toolForms[name] = f;
    }
    toolForm.replaceChildren(toolForms[name].element);
    spot.show(state.ops[name], toolForms[name]);
  }
  toolSelect.addEventListener("change", () => {
    showTool();
    clearFormErrors(form);
    showError("");
  });

  function fillTools() {
    const chosen = toolSelect.value;
    const names = toolOps(Object.values(state.ops)).map((o) => o.name);
    toolSelect.replaceChildren(...names.map((n) => h("option", { value: n }, pick(state.ops[n].title))));
    if (names.includes(chosen)) toolSelect.value = chosen;
  }

  // The painted mask as an asset, uploaded once per version of the painting.
  async function maskAsset() {
    if (state.uploadedMask && state.uploadedMask.version === state.maskVersion) return state.uploadedMask.id;
    const version = state.maskVersion;
    const asset = await uploadAsset(await painter.toBlob(), { tags: ["mask"], filename: "mask.png" });
    state.uploadedMask = { version, id: asset.id };
    return asset.id;
  }

  // The op and params of the current mode; throws a plain message for what the page can tell before sending.
  async function request() {
    const def = modeDef();
    if (def.id === TOOLS) {
      const name = toolSelect.value;
      const params = toolForms[name].values();
      for (const f of canvasRoles(state.ops[name]).image || []) params[f] = assetId;
      spot.apply(params);
      return [name, params];
    }
    const params = moreForms[def.id] ? moreForms[def.id].values() : {};
    const roles = def.roles;
    for (const f of roles.image || []) params[f] = assetId;
    if (roles.mask) {
      if (!painter || painter.isEmpty()) throw new Error(t("edit.err.noMask"));
      params[roles.mask[0]] = await maskAsset();
    }
    if (roles.side) {
      if (!roles.side.some((s) => state.ext[s] > 0)) throw new Error(t("edit.err.noExtend"));
      for (const f of roles.side) params[f] = state.ext[f] ?? 0;
    }
    if (roles.prompt) params[roles.prompt[0]] = prompt.value.trim();
    if (roles.strength) params[roles.strength[0]] = Number(strength.value);
    if (hasFillChoice(state.ops[def.op])) params.method = fill.value();
    if (roles.controls) {
      params[roles.controls[0]] = [control.unit()];
    }
    return [def.op, params];
  }

  function setBusy(on) {
    state.busy = on;
    runBtn.textContent = t(on ? "edit.busy" : runBtn.dataset.i18n || "edit.run.tools");
    updateRunnable();
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (state.busy || !state.nat) return;
    clearFormErrors(form);
    showError("");
    let op;
    let params;
    setBusy(true);
    try {
      [op, params] = await request();
    } catch (err) {
      if (err && err.status !== undefined) showFormError(form, err, error);
      else showError(err.message);
      setBusy(false);
      return;
    }
    output.hidden = false;
    actions.hidden = true;
    result.replaceChildren();
    panel.reset();
    try {
      const job = await submitJob(op, params);
      panel.run(job, (done) => {
        setBusy(false);
        const first = done.state === "succeeded" && done.outputs && done.outputs[0];
        resultId = first ? first.asset_id : null;
        actions.hidden = !first;
        if (first) libraryLink.href = `#/library?asset=${encodeURIComponent(first.asset_id)}`;
        // The canvas link is "continue editing" here (it keeps the page's mode), so the panel leaves its own out.
        result.replaceChildren(first ? resultPanel(first, { image: false, canvas: false, library: false, idPrefix: "edit-result-" }) : "");
      });
    } catch (err) {
      showFormError(form, err, error);
      setBusy(false);
    }
  });

  // ---- load: the asset, its image, the ops and the ControlNet models ----
  api(`/api/v1/assets/${encodeURIComponent(assetId)}`)
    .then((asset) => {
      image.addEventListener(
        "load",
        () => {
          state.nat = { w: image.naturalWidth, h: image.naturalHeight };
          sizeLabel.textContent = `${state.nat.w} × ${state.nat.h}`;
          painter = maskPainter(maskCanvas, {
            width: state.nat.w,
            height: state.nat.h,
            onChange: () => {
              state.maskVersion += 1;
              if (error.textContent === t("edit.err.noMask")) showError("");
              undoBtn.disabled = !painter.canUndo();
            },
          });
          const long = Math.max(state.nat.w, state.nat.h);
          sizeInput.max = String(Math.max(16, Math.round(long / 3)));
          setBrush(Math.max(2, Math.min(120, Math.round(Math.min(state.nat.w, state.nat.h) / 12))));
          setTool("brush");
          painter.setEnabled(isMasked());
          loading.remove();
          stage.dataset.ready = "true";
          updateExtendText();
          layout();
        },
        { once: true },
      );
      image.addEventListener("error", () => (loading.textContent = t("edit.imageFailed")), { once: true });
      image.alt = asset.params?.prompt || asset.id;
      image.src = asset.url;
    })
    .catch((err) => {
      loading.textContent = errorText(err);
      loading.classList.add("error");
    });

  Promise.all([loadOps(), api("/api/v1/models")])
    .then(([ops, m]) => {
      state.ops = Object.fromEntries(ops.map((op) => [op.name, op]));
      state.modes = [...canvasModes(ops).map((op) => ({ id: op.studio.canvas, op: op.name, roles: canvasRoles(op) })), { id: TOOLS, op: null, roles: {} }];
      fillTabs();
      translate(tabs);
      fillTools();
      showTool();
      const nets = (m.models || []).filter((x) => x.kind === "controlnet");
      fill.setHasModel((m.models || []).some((x) => x.kind === "checkpoint"));
      control.setNets(nets);
      side.dataset.loaded = "true";
      setMode(state.modes.some((x) => x.id === state.mode) ? state.mode : state.modes[0].id);
    })
    .catch((err) => showError(errorText(err)));

  ctx.onRelabel(() => {
    translate(form);
    sizeInput.closest("label").title = t("edit.keysHint");
    if (prompt.dataset.i18nPlaceholder) prompt.placeholder = t(prompt.dataset.i18nPlaceholder);
    runBtn.textContent = t(state.busy ? "edit.busy" : runBtn.dataset.i18n || "edit.run.tools");
    updateExtendText();
    fillTools();
    control.fill();
    toolHelp.textContent = toolHelpText(toolSelect.value);
    fill.relabel();
    for (const f of [...Object.values(moreForms), ...Object.values(toolForms)]) {
      if (f.relabel) f.relabel();
      translate(f.element);
    }
    panel.relabel();
  });

  return form;
}
