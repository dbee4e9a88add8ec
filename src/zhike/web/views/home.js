// Home (#/home, the page after sign-in): what can be done now. First the merchant tools that work with no model
// (the NAV entries with a `home` card, app.js), then the generation tools, with a notice up front when this server
// has no checkpoint yet, so nobody finds out only after pressing 生成.
//
// Ids for tests: #home, #home-tools (cards a.home-card[data-href]), #home-generate, #home-no-model (the notice),
// cards that need a model carry [data-needs-model] (a checkpoint) or [data-needs-llm] (a language model) and a
// .home-badge.
import { api } from "../api.js";
import { errorText, h, useCss } from "../dom.js";
import { addStrings, translate } from "../i18n.js";
import { llmChoices } from "../schema_form.js";

addStrings({
  zh: {
    "home.title": "今天想做什么？",
    "home.intro": "选一个工具，一步就能开始。",
    "home.ready": "马上能用（无需模型）",
    "home.generate": "AI 生成",
    "home.noModel": "需要先添加模型：文生图、图生图、局部重绘等 AI 生成功能要用 SD 1.5 或 SDXL 模型，这台服务器上还没有。",
    "home.noModelLink": "去“模型”页看怎么添加",
    "home.needsModel": "需要模型",
    "home.cutout.desc": "去掉背景，得到透明底或纯色底的商品图、人像。",
    "home.id_photo.desc": "一张正面照做成标准证件照：1 寸、2 寸，底色可选。",
    "home.productPhotos.desc": "一次放入很多张商品照，得到白底、居中的平台主图。",
    "home.upscale.desc": "把小图放大 2–4 倍，细节更清楚。",
    "home.resize.desc": "一张图做成淘宝、京东、抖音、小红书等各平台尺寸。",
    "home.subject_swap.desc": "把商品放进一张场景图里，商品本身保持不变。",
    "home.stock.desc": "自己上传的素材和自带的形状、徽章、背景。",
    "home.erase": "智能消除",
    "home.erase.desc": "在画布上涂掉路人、文字、杂物，周围自动补齐。",
    "home.design.desc": "拖动文字、图片和形状，做主图、海报、详情页。",
    "home.batch.desc": "一份表格加一个模板，批量生成几百张设计图。",
    "home.txt2img": "文生图",
    "home.txt2img.desc": "写一句画面描述，生成新图片。",
    "home.img2img": "图生图",
    "home.img2img.desc": "以一张图为底，按描述重新画。",
    "home.inpaint": "局部重绘",
    "home.inpaint.desc": "涂抹一块区域，按描述重画这一块。",
    "home.extend": "扩图",
    "home.extend.desc": "把画面向四周扩展；没有模型时用传统方法补边。",
    "home.control": "线稿 / 姿势控制",
    "home.control.desc": "沿用原图的线条或人物姿势生成新图。",
    "home.restyle": "风格修改",
    "home.restyle.desc": "保持构图，换一种画风。",
    "home.needsLlm": "需要语言模型",
    "home.words": "AI 文案",
    "home.words.desc": "商品标题和卖点、小红书笔记、直播脚本、中英互译。",
    "home.kb": "商品知识库",
    "home.kb.desc": "上传商品资料，让 AI 按资料回答顾客的问题并注明出处。",
  },
  en: {
    "home.title": "What would you like to make?",
    "home.intro": "Pick a tool and start in one step.",
    "home.ready": "Ready now (no model needed)",
    "home.generate": "AI generation",
    "home.noModel": "Add a model first: text to image, image to image, inpainting and the other generation tools need an SD 1.5 or SDXL model, and this server has none yet.",
    "home.noModelLink": "See how on the Models page",
    "home.needsModel": "Needs a model",
    "home.cutout.desc": "Remove the background: a product or person on transparency or a colour.",
    "home.id_photo.desc": "A standard ID photo from one front-facing portrait, in the size and colour you need.",
    "home.productPhotos.desc": "Drop many product photos, get white-background, centred marketplace images.",
    "home.upscale.desc": "Enlarge small images 2–4x with sharper detail.",
    "home.resize.desc": "One image in Taobao, JD, Douyin, Xiaohongshu… sizes.",
    "home.subject_swap.desc": "Put a product into a scene photo; the product itself is kept.",
    "home.stock.desc": "Your own uploads plus bundled shapes, badges and backgrounds.",
    "home.erase": "Smart erase",
    "home.erase.desc": "Paint over people, text or clutter on the canvas; the gap is filled in.",
    "home.design.desc": "Drag text, images and shapes into main images, posters and detail pages.",
    "home.batch.desc": "A spreadsheet and a template make hundreds of designs at once.",
    "home.txt2img": "Text to image",
    "home.txt2img.desc": "Describe a picture and generate it.",
    "home.img2img": "Image to image",
    "home.img2img.desc": "Redraw an image following a description.",
    "home.inpaint": "Inpaint",
    "home.inpaint.desc": "Paint an area and redraw just that part.",
    "home.extend": "Extend",
    "home.extend.desc": "Grow the picture outwards; without a model a classical fill is used.",
    "home.control": "Line art / pose control",
    "home.control.desc": "Generate a new image that keeps the lines or pose of the original.",
    "home.restyle": "Style change",
    "home.restyle.desc": "Keep the composition, change the style.",
    "home.needsLlm": "Needs a language model",
    "home.words": "AI copywriting",
    "home.words.desc": "Product titles and selling points, social posts, live-selling scripts, translation.",
    "home.kb": "Product knowledge base",
    "home.kb.desc": "Upload product documents; the AI answers shoppers from them and cites its source.",
  },
});

// The generation tools: [hash, label key, what it needs (true: a checkpoint, "llm": a language model), icon].
const GENERATE = [
  ["#/create", "home.txt2img", true, "spark"],
  ["#/create?op=img2img", "home.img2img", true, "img2img"],
  ["#/edit", "home.inpaint", true, "brush"],
  ["#/edit", "home.extend", false, "extend"],
  ["#/edit", "home.control", true, "pose"],
  ["#/create?op=restyle", "home.restyle", true, "palette"],
  ["#/words", "home.words", "llm", "words"],
  ["#/kb", "home.kb", "llm", "kb"],
];

// Simple line icons (24×24, stroke = currentColor), drawn here so nothing comes from elsewhere.
const ICONS = {
  cutout: '<path d="M4 4h4M4 4v4M20 4h-4M20 4v4M4 20h4M4 20v-4M20 20h-4M20 20v-4"/><path d="M12 7c-2 0-3.5 1.6-3.5 3.5S10 15 12 17c2-2 3.5-4.6 3.5-6.5S14 7 12 7z"/>',
  id: '<rect x="5" y="3" width="14" height="18" rx="2"/><circle cx="12" cy="10" r="3"/><path d="M7.5 18c.8-2.2 2.5-3.3 4.5-3.3s3.7 1.1 4.5 3.3"/>',
  photos: '<rect x="7" y="3" width="14" height="14" rx="2"/><path d="M3 7v12a2 2 0 0 0 2 2h12"/><path d="M10 13l3-3 2 2 2-2 2 2"/>',
  upscale: '<rect x="3" y="11" width="10" height="10" rx="1"/><path d="M14 3h7v7M21 3l-8 8"/>',
  resize: '<rect x="3" y="3" width="8" height="13" rx="1"/><rect x="13" y="8" width="8" height="8" rx="1"/><rect x="3" y="18" width="18" height="3" rx="1"/>',
  scene: '<path d="M3 18l5-6 4 4 3-3 6 5"/><rect x="9" y="4" width="6" height="7" rx="1"/><path d="M3 21h18"/>',
  stock: '<path d="M3 7l9-4 9 4-9 4z"/><path d="M3 12l9 4 9-4M3 17l9 4 9-4"/>',
  erase: '<path d="M14 4l6 6-9 9H6l-3-3z"/><path d="M9 9l6 6M11 19h9"/>',
  design: '<rect x="3" y="3" width="18" height="18" rx="2"/><path d="M7 8h10M12 8v9"/><rect x="14" y="14" width="4" height="4"/>',
  batch: '<rect x="3" y="3" width="7" height="7" rx="1"/><rect x="14" y="3" width="7" height="7" rx="1"/><rect x="3" y="14" width="7" height="7" rx="1"/><rect x="14" y="14" width="7" height="7" rx="1"/>',
  spark: '<path d="M12 3l2 6 6 2-6 2-2 6-2-6-6-2 6-2z"/><path d="M19 16l.8 2.2L22 19l-2.2.8L19 22l-.8-2.2L16 19l2.2-.8z"/>',
  img2img: '<rect x="3" y="3" width="8" height="8" rx="1"/><rect x="13" y="13" width="8" height="8" rx="1"/><path d="M15 5h2a2 2 0 0 1 2 2v2M9 19H7a2 2 0 0 1-2-2v-2"/>',
  brush: '<path d="M18 3l3 3-9 9-3-3z"/><path d="M9 12c-2.5 0-4 1.5-4 4 0 1.5-1 3-2 4 4 0 8-1 8-5"/>',
  extend: '<rect x="8" y="8" width="8" height="8" rx="1"/><path d="M3 12h3M18 12h3M12 3v3M12 18v3M3 3h4M3 3v4M21 21h-4M21 21v-4"/>',
  pose: '<circle cx="12" cy="4.5" r="2"/><path d="M12 7v7M6 10l6-1 6 1M9 21l3-7 3 7"/>',
  words: '<path d="M4 5h16M4 10h16M4 15h10M4 20h7"/><path d="M17 14l3 3-4 4h-3v-3z"/>',
  kb: '<path d="M4 4h11a3 3 0 0 1 3 3v13H7a3 3 0 0 1-3-3z"/><path d="M4 17a3 3 0 0 1 3-3h11"/><path d="M9 8h5"/>',
  palette: '<path d="M12 3a9 9 0 1 0 0 18c1.5 0 2-1 2-2 0-1.5-1-2 0-3s2.5 0 4-1 3-2.5 3-4.5C21 6.5 17 3 12 3z"/><circle cx="7.5" cy="11" r="1"/><circle cx="10" cy="7" r="1"/><circle cx="15" cy="7" r="1"/>',
};

function icon(name) {
  const box = h("span", { class: "home-icon", "aria-hidden": "true" });
  // A constant from ICONS above, never user data.
  box.innerHTML = `<svg viewBox="0 0 24 24" width="28" height="28" fill="none" stroke="currentColor" stroke-width="1.6" stroke-linecap="round" stroke-linejoin="round">${ICONS[name] || ICONS.spark}</svg>`;
  return box;
}

function card(href, titleKey, descKey, iconName, needsModel = false) {
  const needs = needsModel === "llm" ? { needsLlm: "" } : needsModel ? { needsModel: "" } : {};
  return h(
    "a",
    { class: "home-card", href, dataset: { href, ...needs } },
    icon(iconName),
    h(
      "span",
      { class: "home-card-text" },
      h("span", { class: "home-card-title", dataset: { i18n: titleKey } }),
      h("span", { class: "home-card-desc muted", dataset: { i18n: descKey } }),
      needsModel ? h("span", { class: "home-badge", hidden: true, dataset: { i18n: needsModel === "llm" ? "home.needsLlm" : "home.needsModel" } }) : null,
    ),
  );
}

export default function homeView(ctx) {
  useCss("views/home.css");
  const tools = ctx.nav.filter((item) => item.home).map((item) => card(item.href, item.home.key || item.key, item.home.desc, item.home.icon));
  const generate = GENERATE.map(([href, key, needs, ic]) => card(href, key, `${key}.desc`, ic, needs));
  const notice = h(
    "p",
    { class: "model-banner", id: "home-no-model", role: "status", hidden: true },
    h("span", { dataset: { i18n: "home.noModel" } }),
    " ",
    h("a", { href: "#/models", id: "home-models-link", dataset: { i18n: "home.noModelLink" } }),
  );
  const error = h("p", { class: "error", id: "home-error", role: "alert", hidden: true });
  const generateGrid = h("div", { class: "home-grid", id: "home-generate", "aria-busy": "true" }, generate);
  const el = h(
    "section",
    { class: "home", id: "home" },
    h("h1", { dataset: { i18n: "home.title" } }),
    h("p", { class: "muted home-intro", dataset: { i18n: "home.intro" } }),
    h("h2", { dataset: { i18n: "home.ready" } }),
    h("div", { class: "home-grid", id: "home-tools" }, tools),
    h("h2", { dataset: { i18n: "home.generate" } }),
    notice,
    error,
    generateGrid,
  );
  api("/api/v1/models")
    .then((data) => {
      const ready = (data.models || []).some((m) => m.kind === "checkpoint");
      notice.hidden = ready;
      el.dataset.hasModel = String(ready);
      for (const badge of generateGrid.querySelectorAll("[data-needs-model] .home-badge")) badge.hidden = ready;
      // A language model: a catalogue LLM (the embedded pack) or a configured remote server.
      return llmChoices().then((names) => {
        el.dataset.hasLlm = String(names.length > 0);
        for (const badge of generateGrid.querySelectorAll("[data-needs-llm] .home-badge")) badge.hidden = names.length > 0;
      });
    })
    .catch((err) => {
      error.textContent = errorText(err);
      error.hidden = false;
    })
    .finally(() => generateGrid.setAttribute("aria-busy", "false"));
  translate(el);
  return el;
}
