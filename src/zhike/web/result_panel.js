// The result panel every tool shows under its output: the image, Download (format + marketplace size) and
// "open in library" / "open in canvas" (text: text_result.js). One piece of code for all result areas (create, canvas tools, library
// detail, tool pages): resultPanel(asset, {image, library, canvas, idPrefix}).
//
// The file itself is made by the server (GET /api/v1/assets/{id}/file?download=1&format=&size=&lang=): converted,
// fitted, labelled and named from what it is ("抠图-咖啡杯-800x800.png"), so the browser only follows a link.
import { api, assetFileUrl } from "./api.js";
import { h, useCss } from "./dom.js";
import { addStrings, getLang, translate } from "./i18n.js";
import { isTextMime, textResult } from "./text_result.js";

addStrings({
  zh: {
    "result.download": "下载",
    "result.format": "格式",
    "result.size": "尺寸",
    "result.original": "原尺寸",
    "result.openLibrary": "在作品库中打开",
    "result.openCanvas": "在画布中打开",
    "result.fitHint": "选了尺寸时整张图居中放入，空白处 JPEG 补白色、PNG/WebP 留透明",
  },
  en: {
    "result.download": "Download",
    "result.format": "Format",
    "result.size": "Size",
    "result.original": "Original size",
    "result.openLibrary": "Open in library",
    "result.openCanvas": "Open in canvas",
    "result.fitHint": "With a size, the whole image is centred; JPEG pads with white, PNG/WebP with transparency",
  },
});

export const FORMATS = [
  ["png", "PNG"],
  ["jpeg", "JPEG"],
  ["webp", "WebP"],
];

// GET /api/v1/sizes once per page load; each preset's name becomes an i18n string so a language switch relabels it.
let sizes = null;
export function loadSizes() {
  sizes ||= api("/api/v1/sizes")
    .then((r) => {
      const list = r.sizes || [];
      const label = (code) => Object.fromEntries(list.map((s) => [`result.size.${s.id}`, `${s.name[code] || s.name.en} ${s.width}×${s.height}`]));
      addStrings({ zh: label("zh"), en: label("en") });
      return list;
    })
    .catch(() => {
      sizes = null; // try again next time; the panel still offers the original size
      return [];
    });
  return sizes;
}

// The download URL of an asset in a format and size, named in the page's language.
export function downloadUrl(id, { format = "", size = "" } = {}) {
  const q = new URLSearchParams({ download: "1", lang: getLang() });
  if (format) q.set("format", format);
  if (size) q.set("size", size);
  return `${assetFileUrl(id)}?${q}`;
}

// asset: {id | asset_id, url?}. opts.image=false leaves the image out (the view shows it already);
// opts.library / opts.canvas = false leave those links out; opts.idPrefix makes ids unique (default "result-").
export function resultPanel(asset, opts = {}) {
  useCss("result_panel.css");
  // Text (a words op's TextResult, or a text asset's record): its words with Copy and the text exports instead.
  if (typeof asset.text === "string" || isTextMime(asset.mime)) return textResult(asset, { idPrefix: opts.idPrefix });
  const id = asset.id || asset.asset_id;
  const p = opts.idPrefix ?? "result-";
  const enc = encodeURIComponent(id);
  const format = h("select", { id: `${p}format`, class: "result-format" }, FORMATS.map(([v, label]) => h("option", { value: v }, label)));
  format.value = { "image/jpeg": "jpeg", "image/webp": "webp" }[asset.mime] || "png"; // its own format first
  const original = h("option", { value: "", dataset: { i18n: "result.original" } });
  const size = h("select", { id: `${p}size`, class: "result-size" }, original);
  loadSizes().then((list) => {
    size.append(...list.map((s) => h("option", { value: s.id, dataset: { i18n: `result.size.${s.id}` } })));
    translate(size);
  });
  const download = h("a", { class: "button primary", id: `${p}download`, href: downloadUrl(id), download: "", dataset: { i18n: "result.download" } });
  // The link is filled in on click: the language or the selects may have changed since it was drawn.
  const refresh = () => (download.href = downloadUrl(id, { format: format.value, size: size.value }));
  download.addEventListener("click", refresh);
  format.addEventListener("change", refresh);
  size.addEventListener("change", refresh);

  const links = [
    opts.library === false ? null : h("a", { class: "button", id: `${p}open-library`, href: `#/library?asset=${enc}`, dataset: { i18n: "result.openLibrary" } }),
    opts.canvas === false ? null : h("a", { class: "button", id: `${p}open-canvas`, href: `#/edit?asset=${enc}`, dataset: { i18n: "result.openCanvas" } }),
  ];
  const element = h(
    "div",
    { class: "result-panel", id: `${p}panel`, dataset: { assetId: id } },
    opts.image === false ? null : h("div", { class: "frame" }, h("img", { id: `${p}image`, src: asset.url || assetFileUrl(id), alt: "" })),
    h(
      "div",
      { class: "result-actions" },
      h("label", { class: "result-field" }, h("span", { dataset: { i18n: "result.format" } }), format),
      h("label", { class: "result-field", dataset: { i18nTitle: "result.fitHint" } }, h("span", { dataset: { i18n: "result.size" } }), size),
      download,
      ...links,
    ),
  );
  translate(element);
  return element;
}
