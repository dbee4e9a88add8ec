// Canvas editor (#/edit?asset=ID[&mode=erase|inpaint|extend|control|tools]): paint a mask over an image and run
// smart erase / inpaint, drag the edges to extend (outpaint), preview a control map and generate with ControlNet,
// or run a tool (cutout, ID photo, upscale, product in scene, marketplace sizes). Without ?asset: a picker of
// recent images plus upload. Parameters beyond the fixed controls come from each op's schema (schema_form.js).
//
// Ids for tests: #edit-picker (picker grid; tiles [data-asset-id]), #edit-upload (file input); editor:
// #edit-form, #edit-stage, #edit-image (the base img), #mask-canvas, #tool-brush, #tool-eraser, #brush-size,
// #mask-undo, #mask-clear, mode buttons [data-mode=erase|inpaint|material|extend|control|tools], #edit-run (runs the current
// mode), #edit-prompt, #inpaint-strength, extend handles .extend-handle[data-side=left|right|top|bottom], inputs
// #extend-left|right|top|bottom, #extend-size (new size text), #control-detector, #control-preview (button),
// #control-map (the map img, [data-asset-id]), #control-net (ControlNet select), #tool-op (select), #tool-form,
// tool fields #tool-<param> (e.g. #tool-scale), #edit-error, progress ids of progressPanel("edit-") (#edit-progress,
// #edit-result-image ...), #edit-continue, #edit-open-library.
import { api, uploadAsset } from "../api.js";
import { extendHandles, maskPainter } from "../canvas.js";
import { clearFormErrors, errorText, h, showFormError, useCss } from "../dom.js";
import { addStrings, has, pick, t, translate } from "../i18n.js";
import { followJob, jobStatusText, progressPanel, submitJob } from "../jobs.js";
import { schemaForm } from "../schema_form.js";

addStrings({
  zh: {
    "edit.title": "画布编辑",
    "edit.pick.title": "选择要编辑的图片",
    "edit.pick.hint": "从最近的作品中选一张，或上传一张新图片。",
    "edit.pick.empty": "还没有图片。上传一张，或先去“创作”生成。",
    "edit.upload": "上传图片",
    "edit.uploading": "正在上传…",
    "edit.change": "换一张图",
    "edit.loadingImage": "正在载入图片…",
    "edit.imageFailed": "无法载入这张图片。",
    "edit.brush": "画笔",
    "edit.eraser": "橡皮擦",
    "edit.brushSize": "笔刷",
    "edit.undo": "撤销",
    "edit.clear": "清空",
    "edit.keysHint": "按 [ 和 ] 调整笔刷大小",
    "edit.mode.erase": "智能消除",
    "edit.mode.inpaint": "局部重绘",
    "edit.mode.material": "材质替换",
    "edit.material.help": "涂抹要换材质的物体（沙发、包、桌面…），写下新材质。没涂到的地方保持原样。",
    "edit.material": "新材质",
    "edit.material.hint": "例如：棕色真皮、浅色木纹、亚麻布",
    "edit.run.material": "替换材质",
    "edit.prompt.material": "",
    "edit.mode.extend": "扩图",
    "edit.mode.control": "控制",
    "edit.mode.tools": "工具",
    "edit.erase.help": "用画笔涂抹想去掉的东西（路人、文字、杂物），再点“开始消除”。没涂到的地方保持原样。",
    "edit.inpaint.help": "涂抹要重画的区域，写下想要的内容。没涂到的地方保持原样。",
    "edit.strength": "重绘幅度",
    "edit.extend.help": "拖动画布四边的把手向外扩展，或直接输入每边增加的像素。原图像素保持不变。",
    "edit.extend.left": "左",
    "edit.extend.right": "右",
    "edit.extend.top": "上",
    "edit.extend.bottom": "下",
    "edit.extend.newSize": "新尺寸 {w} × {h}（原图 {ow} × {oh}）",
    "edit.extend.ratio": "按比例扩展",
    "edit.extend.reset": "重置",
    "edit.control.help": "选一种控制方式，先预览控制图，再写画面描述生成新图；新图会沿用原图的轮廓或姿势。",
    "edit.control.detector": "控制方式",
    "edit.detector.canny": "边缘（Canny）",
    "edit.detector.softedge": "柔和边缘（HED）",
    "edit.detector.scribble": "涂鸦",
    "edit.detector.lineart": "线稿",
    "edit.detector.pose": "人体姿势",
    "edit.control.preview": "预览控制图",
    "edit.control.previewing": "正在生成控制图…",
    "edit.control.overlay": "叠加显示在原图上",
    "edit.control.net": "ControlNet 模型",
    "edit.control.noModel": "还没有安装 ControlNet 模型，暂时不能生成；预览控制图不受影响。请管理员在“模型”页添加。",
    "edit.control.usesMap": "生成时使用上面预览的控制图。",
    "edit.control.usesPhoto": "生成时会按所选方式自动处理原图。",
    "edit.tools.op": "工具",
    "edit.tools.none": "这台服务器上没有可用的工具。",
    "edit.tool.cutout": "去掉背景，得到透明底 PNG，或换成纯色、图片背景。",
    "edit.tool.id_photo": "用单人正面照生成标准证件照（尺寸、底色可选）。",
    "edit.tool.upscale": "用超分模型把图片放大 1–4 倍，细节更清晰。",
    "edit.tool.subject_swap": "把商品放进新场景（场景图或文字描述），商品本身保持不变。",
    "edit.tool.resize_design": "一键生成淘宝、抖音、小红书等平台尺寸，主体保持完整。",
    "edit.sizes": "目标尺寸",
    "edit.prompt": "画面描述",
    "edit.prompt.inpaint": "例如：一束白色郁金香",
    "edit.prompt.extend": "可选：描述扩展出来的部分，例如：木质桌面",
    "edit.prompt.control": "例如：水彩风格的城市街景",
    "edit.more": "更多参数",
    "edit.run.erase": "开始消除",
    "edit.run.inpaint": "开始重绘",
    "edit.run.extend": "开始扩图",
    "edit.run.control": "生成",
    "edit.run.tools": "开始处理",
    "edit.busy": "处理中…",
    "edit.err.noMask": "请先用画笔涂抹要处理的区域。",
    "edit.err.noExtend": "请先拖动边缘，或输入要扩展的像素。",
    "edit.err.noSizes": "请至少选择一个尺寸。",
    "edit.result": "结果",
    "edit.continue": "在此结果上继续编辑",
    "edit.openLibrary": "在作品库中查看",
  },
  en: {
    "edit.title": "Canvas",
    "edit.pick.title": "Choose an image to edit",
    "edit.pick.hint": "Pick one of your recent images or upload a new one.",
    "edit.pick.empty": "No images yet. Upload one, or generate one under “Create” first.",
    "edit.upload": "Upload image",
    "edit.uploading": "Uploading…",
    "edit.change": "Change image",
    "edit.loadingImage": "Loading the image…",
    "edit.imageFailed": "This image could not be loaded.",
    "edit.brush": "Brush",
    "edit.eraser": "Eraser",
    "edit.brushSize": "Brush",
    "edit.undo": "Undo",
    "edit.clear": "Clear",
    "edit.keysHint": "[ and ] change the brush size",
    "edit.mode.erase": "Erase",
    "edit.mode.inpaint": "Inpaint",
    "edit.mode.material": "Material",
    "edit.material.help": "Paint the object whose material should change (sofa, bag, table top…) and name the new material. Unpainted pixels stay as they are.",
    "edit.material": "New material",
    "edit.material.hint": "e.g. brown leather, light oak, linen",
    "edit.run.material": "Swap material",
    "edit.prompt.material": "",
    "edit.mode.extend": "Extend",
    "edit.mode.control": "Control",
    "edit.mode.tools": "Tools",
    "edit.erase.help": "Paint over what should go (people, text, clutter), then press “Erase”. Unpainted pixels stay as they are.",
    "edit.inpaint.help": "Paint the area to redraw and describe what should be there. Unpainted pixels stay as they are.",
    "edit.strength": "Strength",
    "edit.extend.help": "Drag the handles on the canvas edges outwards, or type the pixels to add per side. The original pixels are kept.",
    "edit.extend.left": "Left",
    "edit.extend.right": "Right",
    "edit.extend.top": "Top",
    "edit.extend.bottom": "Bottom",
    "edit.extend.newSize": "New size {w} × {h} (was {ow} × {oh})",
    "edit.extend.ratio": "Extend to a ratio",
    "edit.extend.reset": "Reset",
    "edit.control.help": "Choose a control type, preview its map, then describe the picture and generate; it follows the photo's outlines or pose.",
    "edit.control.detector": "Control type",
    "edit.detector.canny": "Edges (Canny)",
    "edit.detector.softedge": "Soft edges (HED)",
    "edit.detector.scribble": "Scribble",
    "edit.detector.lineart": "Line art",
    "edit.detector.pose": "Pose",
    "edit.control.preview": "Preview map",
    "edit.control.previewing": "Making the map…",
    "edit.control.overlay": "Show over the photo",
    "edit.control.net": "ControlNet model",
    "edit.control.noModel": "No ControlNet model is installed, so Generate is off; previewing maps still works. An admin can add one under “Models”.",
    "edit.control.usesMap": "Generate uses the map previewed above.",
    "edit.control.usesPhoto": "Generate makes the map from the photo with the chosen type.",
    "edit.tools.op": "Tool",
    "edit.tools.none": "No tools are available on this server.",
    "edit.tool.cutout": "Remove the background: a transparent PNG, or the subject on a colour or image.",
    "edit.tool.id_photo": "A standard ID photo from a front-facing portrait (size and background colour to choose).",
    "edit.tool.upscale": "Enlarge 1–4x with a super-resolution model for sharper detail.",
    "edit.tool.subject_swap": "Put a product into a new scene (a photo or a description); the product itself is kept.",
    "edit.tool.resize_design": "Make Taobao, Douyin, Xiaohongshu... sizes in one go, keeping the subject whole.",
    "edit.sizes": "Sizes",
    "edit.prompt": "Prompt",
    "edit.prompt.inpaint": "e.g. a bunch of white tulips",
    "edit.prompt.extend": "Optional: what the new area shows, e.g. a wooden table top",
    "edit.prompt.control": "e.g. a watercolour city street",
    "edit.more": "More settings",
    "edit.run.erase": "Erase",
    "edit.run.inpaint": "Inpaint",
    "edit.run.extend": "Extend",
    "edit.run.control": "Generate",
    "edit.run.tools": "Run",
    "edit.busy": "Working…",
    "edit.err.noMask": "Paint over the area to change first.",
    "edit.err.noExtend": "Drag an edge or type the pixels to add first.",
    "edit.err.noSizes": "Choose at least one size.",
    "edit.result": "Result",
    "edit.continue": "Continue editing this result",
    "edit.openLibrary": "Open in library",
  },
});

const TEST_MODE = new URLSearchParams(location.search).has("test");
const MODES = ["erase", "inpaint", "material", "extend", "control", "tools"];
const MODE_OP = { erase: "erase", inpaint: "inpaint", material: "material_swap", extend: "outpaint", control: "control" };
const MASKED = ["erase", "inpaint", "material"]; // modes that paint a mask
const isMasked = (mode) => MASKED.includes(mode);
// Fields each mode's page controls set itself; the op's other parameters go under "More settings".
const OMIT = {
  erase: ["image", "mask"],
  inpaint: ["image", "mask", "prompt", "strength"],
  material: ["image", "mask", "material"],
  extend: ["image", "left", "right", "top", "bottom", "aspect", "anchor", "prompt"],
  control: ["controls", "prompt"],
};
const TOOL_OPS = ["cutout", "id_photo", "upscale", "subject_swap", "resize_design"];
const TOOL_OMIT = { resize_design: ["image", "sizes"] };
const DETECTORS = ["canny", "softedge", "scribble", "lineart", "pose"];
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

// No asset chosen: recent images (masks left out) and an upload button.
function picker(ctx) {
  const grid = h("div", { class: "grid edit-picker-grid", id: "edit-picker", "aria-busy": "true" }, h("p", { class: "muted", dataset: { i18n: "loading" } }));
  const error = h("p", { class: "error", id: "edit-error", role: "alert", hidden: true });
  const file = h("input", { type: "file", id: "edit-upload", accept: "image/png,image/jpeg,image/webp", hidden: true });
  const button = h("button", { type: "button", class: "primary", id: "edit-upload-button", dataset: { i18n: "edit.upload" }, onclick: () => file.click() });
  file.addEventListener("change", async () => {
    const f = file.files[0];
    if (!f) return;
    error.hidden = true;
    button.disabled = true;
    button.textContent = t("edit.uploading");
    try {
      const asset = await uploadAsset(f);
      ctx.navigate(`#/edit?asset=${encodeURIComponent(asset.id)}`);
    } catch (err) {
      error.textContent = errorText(err);
      error.hidden = false;
    } finally {
      button.disabled = false;
      button.textContent = t("edit.upload");
      file.value = "";
    }
  });
  api("/api/v1/assets?limit=30")
    .then((data) => {
      const assets = (data.assets || []).filter((a) => !(a.tags || []).includes("mask"));
      grid.replaceChildren(
        ...(assets.length
          ? assets.map((a) =>
              h(
                "a",
                { class: "tile edit-pick", href: `#/edit?asset=${encodeURIComponent(a.id)}`, dataset: { assetId: a.id }, title: a.params?.prompt || a.id },
                h("img", { src: a.thumb_url, alt: a.params?.prompt || a.id, loading: "lazy" }),
                h("span", { class: "muted" }, `${a.width}×${a.height}`),
              ),
            )
          : [h("p", { class: "muted empty", id: "edit-picker-empty", dataset: { i18n: "edit.pick.empty" } })]),
      );
      translate(grid);
    })
    .catch((err) => grid.replaceChildren(h("p", { class: "error" }, errorText(err))))
    .finally(() => grid.setAttribute("aria-busy", "false"));
  return h(
    "section",
    { class: "card edit-picker" },
    h("div", { class: "row" }, h("h1", { dataset: { i18n: "edit.pick.title" } }), button),
    h("p", { class: "muted", dataset: { i18n: "edit.pick.hint" } }),
    file,
    error,
    grid,
  );
}

function editor(ctx, assetId) {
  const state = {
    mode: MODES.includes(ctx.params.get("mode")) ? ctx.params.get("mode") : "erase",
    nat: null, // the image's pixel size {w, h}
    ext: { left: 0, right: 0, top: 0, bottom: 0 },
    scale: 1, // screen px per image px
    origin: { x: 0, y: 0 }, // the image's top-left in the stage, screen px
    dragging: false,
    maskVersion: 0,
    uploadedMask: null, // {version, id}
    map: null, // the previewed control map {id, url, detector}
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
  const tabs = h(
    "div",
    { class: "modes", role: "tablist" },
    ...MODES.map((m) => h("button", { type: "button", role: "tab", class: "mode", dataset: { mode: m, i18n: `edit.mode.${m}` } })),
  );

  // erase / inpaint
  const strength = h("input", { type: "range", id: "inpaint-strength", min: 0.05, max: 1, step: 0.05, value: 1 });
  const strengthValue = h("output", { for: "inpaint-strength" }, "1.00");
  strength.addEventListener("input", () => (strengthValue.textContent = Number(strength.value).toFixed(2)));
  const panels = {
    erase: h("div", { class: "mode-panel", dataset: { panel: "erase" } }, h("p", { class: "muted help", dataset: { i18n: "edit.erase.help" } })),
    inpaint: h(
      "div",
      { class: "mode-panel", dataset: { panel: "inpaint" } },
      h("p", { class: "muted help", dataset: { i18n: "edit.inpaint.help" } }),
      h("label", { class: "range", dataset: { field: "strength" } }, h("span", { dataset: { i18n: "edit.strength" } }), h("div", { class: "range-row" }, strength, strengthValue)),
    ),
  };
  const material = h("input", { id: "edit-material", maxlength: 200, dataset: { i18nPlaceholder: "edit.material.hint" } });
  panels.material = h(
    "div",
    { class: "mode-panel", dataset: { panel: "material" } },
    h("p", { class: "muted help", dataset: { i18n: "edit.material.help" } }),
    h("label", { dataset: { field: "material" } }, h("span", { dataset: { i18n: "edit.material" } }), material),
  );

  // extend
  const extInputs = Object.fromEntries(SIDES.map((s) => [s, h("input", { type: "number", id: `extend-${s}`, min: 0, max: 4096, step: 1, value: 0, inputmode: "numeric" })]));
  const extSize = h("p", { class: "extend-size", id: "extend-size", "aria-live": "polite" });
  panels.extend = h(
    "div",
    { class: "mode-panel", dataset: { panel: "extend" } },
    h("p", { class: "muted help", dataset: { i18n: "edit.extend.help" } }),
    h(
      "div",
      { class: "extend-inputs" },
      ...SIDES.map((s) => h("label", { dataset: { field: s } }, h("span", { dataset: { i18n: `edit.extend.${s}` } }), h("div", { class: "px" }, extInputs[s], h("span", { class: "muted" }, "px")))),
    ),
    extSize,
    h(
      "div",
      { class: "ratios", dataset: { field: "aspect" } },
      h("span", { class: "muted", dataset: { i18n: "edit.extend.ratio" } }),
      ...RATIOS.map(([a, b]) => h("button", { type: "button", class: "link", dataset: { ratio: `${a}:${b}` }, onclick: () => extendToRatio(a, b) }, `${a}:${b}`)),
      h("button", { type: "button", class: "link", id: "extend-reset", dataset: { i18n: "edit.extend.reset" }, onclick: () => setExtend({ left: 0, right: 0, top: 0, bottom: 0 }) }),
    ),
  );

  // control
  const detector = h("select", { id: "control-detector" });
  let detectors = DETECTORS;
  // The preprocessors come from the preprocess op's schema, so a new one appears here (labelled by its id).
  const fillDetectors = () => {
    const chosen = detector.value;
    detector.replaceChildren(...detectors.map((d) => h("option", { value: d }, has(`edit.detector.${d}`) ? t(`edit.detector.${d}`) : d)));
    if (detectors.includes(chosen)) detector.value = chosen;
  };
  fillDetectors();
  const previewBtn = h("button", { type: "button", class: "link", id: "control-preview", dataset: { i18n: "edit.control.preview" } });
  const mapStatus = h("p", { class: "muted", id: "control-status", "aria-live": "polite" });
  const mapImg = h("img", { id: "control-map", alt: "", hidden: true });
  const overlayBox = h("input", { type: "checkbox", id: "control-overlay" });
  const overlayLabel = h("label", { class: "check", hidden: true }, overlayBox, h("span", { dataset: { i18n: "edit.control.overlay" } }));
  const netSelect = h("select", { id: "control-net" });
  const noNet = h("p", { class: "muted note", id: "control-no-model", hidden: true, dataset: { i18n: "edit.control.noModel" } });
  const mapUse = h("p", { class: "muted", id: "control-uses", dataset: { i18n: "edit.control.usesPhoto" } });
  panels.control = h(
    "div",
    { class: "mode-panel", dataset: { panel: "control" } },
    h("p", { class: "muted help", dataset: { i18n: "edit.control.help" } }),
    h("label", { dataset: { field: "mode" } }, h("span", { dataset: { i18n: "edit.control.detector" } }), h("div", { class: "inline" }, detector, previewBtn)),
    mapStatus,
    h("div", { class: "map-frame" }, mapImg),
    overlayLabel,
    h("label", { dataset: { field: "controls" } }, h("span", { dataset: { i18n: "edit.control.net" } }), netSelect),
    noNet,
    mapUse,
  );

  // tools
  const toolSelect = h("select", { id: "tool-op" });
  const toolHelp = h("p", { class: "muted help", id: "tool-help" });
  const toolForm = h("div", { class: "tool-form", id: "tool-form" });
  panels.tools = h(
    "div",
    { class: "mode-panel", dataset: { panel: "tools" } },
    h("label", { dataset: { field: "op" } }, h("span", { dataset: { i18n: "edit.tools.op" } }), toolSelect),
    toolHelp,
    toolForm,
  );

  // prompt (inpaint, extend, control) and per-mode "More settings"
  const prompt = h("textarea", { id: "edit-prompt", rows: 3, maxlength: 4000 });
  const promptField = h("label", { class: "prompt-field", dataset: { field: "prompt" } }, h("span", { dataset: { i18n: "edit.prompt" } }), prompt);
  const moreBox = h("div", { class: "more-box" });
  const moreForms = {}; // mode -> schemaForm
  const toolForms = {}; // op -> schemaForm (+ sizes for resize_design)

  const runBtn = h("button", { type: "submit", class: "primary", id: "edit-run" });
  const error = h("p", { class: "error", id: "edit-error", role: "alert", hidden: true });
  const panel = progressPanel("edit-");
  cleanups.push(() => panel.stop());
  const continueBtn = h("button", { type: "button", class: "link", id: "edit-continue", dataset: { i18n: "edit.continue" } });
  const libraryLink = h("a", { id: "edit-open-library", href: "#/library", dataset: { i18n: "edit.openLibrary" } });
  const actions = h("div", { class: "result-actions", hidden: true }, continueBtn, libraryLink);
  const output = h("div", { class: "edit-output", id: "edit-output", hidden: true }, h("h2", { dataset: { i18n: "edit.result" } }), panel.element, actions);
  let resultId = null;
  continueBtn.addEventListener("click", () => resultId && ctx.navigate(`#/edit?asset=${encodeURIComponent(resultId)}`));

  const side = h("aside", { class: "card edit-side" }, tabs, ...Object.values(panels), promptField, moreBox, runBtn, error, output);
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
    if (!painter || !isMasked(state.mode)) return;
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
    const e = state.mode === "extend" ? state.ext : { left: 0, right: 0, top: 0, bottom: 0 };
    const W = state.nat.w + e.left + e.right;
    const H = state.nat.h + e.top + e.bottom;
    if (!state.dragging) {
      const room = state.mode === "extend" ? 0.74 : 0.96; // extend leaves space to drag into
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
    for (const [m, p] of Object.entries(panels)) p.hidden = m !== mode;
    const masked = isMasked(mode);
    maskTools.hidden = !masked;
    keysHint.hidden = !masked;
    maskCanvas.hidden = !masked;
    if (painter) painter.setEnabled(masked);
    overlay.hidden = !(mode === "control" && overlayBox.checked && state.map);
    promptField.hidden = !["inpaint", "extend", "control"].includes(mode);
    prompt.dataset.i18nPlaceholder = `edit.prompt.${mode}`;
    prompt.placeholder = t(`edit.prompt.${mode}`);
    runBtn.dataset.i18n = `edit.run.${mode}`;
    if (!state.busy) runBtn.textContent = t(`edit.run.${mode}`);
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
    const op = MODE_OP[state.mode];
    if (!op || !state.ops[op]) return;
    if (!moreForms[state.mode]) {
      const values = TEST_MODE ? { steps: 3 } : null;
      const f = schemaForm(state.ops[op], { omit: OMIT[state.mode], idPrefix: `${state.mode}-more-`, values });
      f.wrap = h("details", { class: "edit-more", dataset: { more: state.mode } }, h("summary", { dataset: { i18n: "edit.more" } }), f.element);
      translate(f.wrap);
      moreForms[state.mode] = f;
      moreBox.append(f.wrap);
    }
    moreForms[state.mode].wrap.hidden = false;
  }

  function updateRunnable() {
    const noNetModel = state.mode === "control" && !netSelect.value;
    const noTool = state.mode === "tools" && !toolSelect.value;
    runBtn.disabled = state.busy || noNetModel || noTool;
  }

  // Tools: one schema form per op; resize_design's sizes are checkboxes of the marketplace sizes.
  function showTool() {
    const name = toolSelect.value;
    toolHelp.textContent = name ? t(`edit.tool.${name}`) : t("edit.tools.none");
    if (!name) {
      toolForm.replaceChildren();
      return;
    }
    if (!toolForms[name]) {
      const f = schemaForm(state.ops[name], { omit: TOOL_OMIT[name] || ["image"], idPrefix: "tool-", values: TEST_MODE ? { steps: 3 } : null });
      if (name === "resize_design") {
        f.sizes = h("fieldset", { class: "sizes-pick", dataset: { field: "sizes" } }, h("legend", { dataset: { i18n: "edit.sizes" } }));
        api("/api/v1/sizes")
          .then((data) => {
            f.sizeList = data.sizes || [];
            f.sizes.append(
              ...f.sizeList.map((s, i) =>
                h("label", { class: "check" }, h("input", { type: "checkbox", value: s.id, checked: i === 0, dataset: { sizeId: s.id } }), h("span", { class: "size-name", dataset: { sizeId: s.id } }, pick(s.name)), h("span", { class: "muted" }, `${s.width}×${s.height}`)),
              ),
            );
          })
          .catch((err) => f.sizes.append(h("p", { class: "error" }, errorText(err))));
        f.element.prepend(f.sizes);
      }
      translate(f.element);
      toolForms[name] = f;
    }
    toolForm.replaceChildren(toolForms[name].element);
  }
  toolSelect.addEventListener("change", () => {
    showTool();
    clearFormErrors(form);
    showError("");
  });

  function fillTools() {
    const chosen = toolSelect.value;
    const names = TOOL_OPS.filter((n) => state.ops[n]);
    toolSelect.replaceChildren(...names.map((n) => h("option", { value: n }, pick(state.ops[n].title))));
    if (names.includes(chosen)) toolSelect.value = chosen;
  }

  // Control map preview: a `preprocess` job on this image; Generate then passes the map with preprocess "none".
  let stopPreview = null;
  cleanups.push(() => stopPreview && stopPreview());
  function setMap(map) {
    state.map = map;
    mapImg.hidden = !map;
    overlayLabel.hidden = !map;
    if (map) {
      mapImg.src = map.url;
      mapImg.dataset.assetId = map.id;
      overlay.src = map.url;
    } else {
      mapImg.removeAttribute("src");
      delete mapImg.dataset.assetId;
    }
    overlay.hidden = !(state.mode === "control" && overlayBox.checked && map);
    mapUse.dataset.i18n = map ? "edit.control.usesMap" : "edit.control.usesPhoto";
    mapUse.textContent = t(mapUse.dataset.i18n);
  }
  detector.addEventListener("change", () => {
    if (state.map && state.map.detector !== detector.value) setMap(null);
    mapStatus.textContent = "";
  });
  overlayBox.addEventListener("change", () => (overlay.hidden = !(overlayBox.checked && state.map)));
  previewBtn.addEventListener("click", async () => {
    clearFormErrors(form);
    showError("");
    if (stopPreview) stopPreview();
    previewBtn.disabled = true;
    mapStatus.textContent = t("edit.control.previewing");
    const mode = detector.value;
    try {
      const job = await submitJob("preprocess", { image: assetId, mode });
      stopPreview = followJob(job, (j, done) => {
        if (!done) {
          mapStatus.textContent = `${t("edit.control.previewing")} ${jobStatusText(j, false)}`;
          return;
        }
        previewBtn.disabled = false;
        if (j.state === "succeeded" && j.outputs && j.outputs.length) {
          mapStatus.textContent = "";
          setMap({ id: j.outputs[0].asset_id, url: j.outputs[0].url, detector: mode });
        } else {
          mapStatus.textContent = jobStatusText(j, true);
        }
      });
    } catch (err) {
      previewBtn.disabled = false;
      mapStatus.textContent = "";
      showFormError(form, err, error);
    }
  });

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
    const mode = state.mode;
    const more = moreForms[mode] ? moreForms[mode].values() : {};
    if (isMasked(mode)) {
      if (!painter || painter.isEmpty()) throw new Error(t("edit.err.noMask"));
      const params = { ...more, image: assetId, mask: await maskAsset() };
      if (mode === "inpaint") Object.assign(params, { prompt: prompt.value.trim(), strength: Number(strength.value) });
      if (mode === "material") params.material = material.value.trim();
      return [MODE_OP[mode], params];
    }
    if (mode === "extend") {
      if (!SIDES.some((s) => state.ext[s] > 0)) throw new Error(t("edit.err.noExtend"));
      return ["outpaint", { ...more, image: assetId, ...state.ext, prompt: prompt.value.trim() }];
    }
    if (mode === "control") {
      const unit = state.map && state.map.detector === detector.value
        ? { model: netSelect.value, image: state.map.id, preprocess: "none" }
        : { model: netSelect.value, image: assetId, preprocess: detector.value };
      return ["control", { ...more, controls: [unit], prompt: prompt.value.trim() }];
    }
    const name = toolSelect.value;
    const f = toolForms[name];
    const params = { ...f.values(), image: assetId };
    if (f.sizes) {
      params.sizes = [...f.sizes.querySelectorAll("input:checked")].map((i) => i.value);
      if (!params.sizes.length) throw new Error(t("edit.err.noSizes"));
    }
    return [name, params];
  }

  function setBusy(on) {
    state.busy = on;
    runBtn.textContent = t(on ? "edit.busy" : `edit.run.${state.mode}`);
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
    panel.reset();
    try {
      const job = await submitJob(op, params);
      panel.run(job, (done) => {
        setBusy(false);
        const first = done.state === "succeeded" && done.outputs && done.outputs[0];
        resultId = first ? first.asset_id : null;
        actions.hidden = !first;
        if (first) libraryLink.href = `#/library?asset=${encodeURIComponent(first.asset_id)}`;
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
          painter.setEnabled(isMasked(state.mode));
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

  Promise.all([api("/api/v1/ops"), api("/api/v1/models")])
    .then(([o, m]) => {
      state.ops = Object.fromEntries((o.ops || []).map((op) => [op.name, op]));
      fillTools();
      showTool();
      const modes = state.ops.preprocess?.params_schema?.properties?.mode?.enum;
      if (Array.isArray(modes) && modes.length) {
        detectors = modes;
        fillDetectors();
      }
      const nets = (m.models || []).filter((x) => x.kind === "controlnet");
      netSelect.replaceChildren(...nets.map((x) => h("option", { value: x.name }, x.name)));
      noNet.hidden = nets.length > 0;
      netSelect.closest("label").hidden = !nets.length;
      side.dataset.loaded = "true";
      showMore();
      updateRunnable();
    })
    .catch((err) => showError(errorText(err)));

  ctx.onRelabel(() => {
    translate(form);
    sizeInput.closest("label").title = t("edit.keysHint");
    prompt.placeholder = t(`edit.prompt.${state.mode}`);
    runBtn.textContent = t(state.busy ? "edit.busy" : `edit.run.${state.mode}`);
    updateExtendText();
    fillTools();
    fillDetectors();
    toolHelp.textContent = toolSelect.value ? t(`edit.tool.${toolSelect.value}`) : t("edit.tools.none");
    for (const f of [...Object.values(moreForms), ...Object.values(toolForms)]) {
      if (f.relabel) f.relabel();
      translate(f.element);
      if (f.sizes && f.sizeList) {
        for (const s of f.sizeList) {
          const el = f.sizes.querySelector(`.size-name[data-size-id="${CSS.escape(s.id)}"]`);
          if (el) el.textContent = pick(s.name);
        }
      }
    }
    panel.relabel();
  });

  setMode(state.mode);
  return form;
}
