// An image input for asset-id parameters: shows the chosen image, picks one from the library or uploads a file.
// Library tiles say what each image is (assetCaption: its name, what made it — 抠图, 证件照…, or 上传 — and when),
// so an ID photo is not picked again by mistake; the Canvas picker uses the same captions.
import { api, assetThumbUrl, UPLOAD_ACCEPT, uploadAsset } from "./api.js";
import { errorText, h } from "./dom.js";
import { addStrings, getLang, has, pick, t, translate } from "./i18n.js";
import { loadOps } from "./ops.js";

addStrings({
  zh: {
    "picker.choose": "从作品库选择",
    "picker.upload": "上传图片",
    "picker.clear": "清除",
    "picker.none": "未选择图片",
    "picker.title": "选择一张图片",
    "picker.close": "关闭",
    "picker.empty": "作品库还是空的，请先上传。",
    "picker.uploading": "正在上传…",
    "picker.uploaded": "上传",
  },
  en: {
    "picker.choose": "Choose from library",
    "picker.upload": "Upload image",
    "picker.clear": "Clear",
    "picker.none": "No image chosen",
    "picker.title": "Choose an image",
    "picker.close": "Close",
    "picker.empty": "The library is empty: upload an image first.",
    "picker.uploading": "Uploading…",
    "picker.uploaded": "Upload",
  },
});

// What made an asset, in words: the op's short name in the nav (抠图) or on the Canvas (智能消除), else its title.
let titles = null;
export function loadOpWords() {
  titles ||= loadOps()
    .then((ops) => {
      const table = (lang) => Object.fromEntries(ops.map((o) => [`picker.op.${o.name}`, o.title?.[lang] || pick(o.title) || o.name]));
      addStrings({ zh: table("zh"), en: table("en") });
    })
    .catch(() => {
      titles = null; // the captions fall back to the op's name; try again next time
    });
  return titles;
}

function opWordKey(a) {
  if (!a.op || a.origin === "upload") return "picker.uploaded";
  for (const key of [`nav.${a.op}`, `op.${a.op}.s.label`, `picker.op.${a.op}`]) if (has(key)) return key;
  return null;
}

// "12/7 13:05": short enough for a tile (the API's asset times carry their zone).
function shortDate(iso) {
  const d = new Date(iso || "");
  if (Number.isNaN(d.getTime())) return "";
  return d.toLocaleString(getLang() === "zh" ? "zh-CN" : "en-US", { month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit", hour12: false });
}

// A tile's caption: the asset's name, then "抠图 · date" (call loadOpWords() first). Relabels with translate().
export function assetCaption(a) {
  const key = opWordKey(a);
  const what = h("span", { class: "asset-op", dataset: key ? { i18n: key } : {} }, key ? t(key) : a.op);
  return h(
    "span",
    { class: "asset-caption" },
    h("span", { class: "asset-name" }, a.name || a.id),
    h("span", { class: "asset-meta muted" }, what, " · ", h("time", { datetime: a.created_at || "" }, shortDate(a.created_at))),
  );
}

// The tooltip of a tile: name and pixel size.
export const assetTitle = (a) => `${a.name || a.id} · ${a.width}×${a.height}`;


// assetPicker({id, value, required, onChange}) -> {element, value(), setValue(id)}
export function assetPicker({ id, value = "", required = false, onChange = () => {} } = {}) {
  const hidden = h("input", { type: "hidden", id, value });
  const thumb = h("img", { class: "picker-thumb", alt: "", hidden: !value, src: value ? assetThumbUrl(value) : null });
  const none = h("span", { class: "muted picker-none", dataset: { i18n: "picker.none" }, hidden: Boolean(value) });
  const status = h("span", { class: "muted picker-status" });
  const fileInput = h("input", { type: "file", accept: UPLOAD_ACCEPT, hidden: true });
  const error = h("p", { class: "field-error", role: "alert", hidden: true });

  function setValue(next) {
    hidden.value = next || "";
    thumb.hidden = !next;
    none.hidden = Boolean(next);
    if (next) thumb.src = assetThumbUrl(next);
    clear.hidden = !next || required;
    onChange(hidden.value);
  }

  const dialogGrid = h("div", { class: "picker-grid" });
  const dialog = h(
    "dialog",
    { class: "picker-dialog" },
    h("div", { class: "row" }, h("h2", { dataset: { i18n: "picker.title" } }), h("button", { type: "button", class: "link", dataset: { i18n: "picker.close" }, onclick: () => dialog.close() })),
    dialogGrid,
  );

  async function openDialog() {
    dialogGrid.replaceChildren(h("p", { class: "muted", dataset: { i18n: "loading" } }));
    translate(dialog);
    dialog.showModal();
    try {
      const [data] = await Promise.all([api("/api/v1/assets?limit=60"), loadOpWords()]);
      const assets = data.assets || [];
      dialogGrid.replaceChildren(
        ...(assets.length
          ? assets.map((a) =>
              h(
                "button",
                { type: "button", class: "picker-tile", dataset: { assetId: a.id }, title: assetTitle(a), onclick: () => { setValue(a.id); dialog.close(); } },
                h("img", { src: a.thumb_url, alt: "", loading: "lazy" }),
                assetCaption(a),
              ),
            )
          : [h("p", { class: "muted", dataset: { i18n: "picker.empty" } })]),
      );
      translate(dialogGrid);
    } catch (err) {
      dialogGrid.replaceChildren(h("p", { class: "error" }, errorText(err)));
    }
  }

  fileInput.addEventListener("change", async () => {
    const file = fileInput.files[0];
    if (!file) return;
    error.hidden = true;
    status.textContent = t("picker.uploading");
    try {
      const asset = await uploadAsset(file);
      setValue(asset.id);
    } catch (err) {
      error.textContent = errorText(err);
      error.hidden = false;
    } finally {
      status.textContent = "";
      fileInput.value = "";
    }
  });

  const clear = h("button", { type: "button", class: "link", dataset: { i18n: "picker.clear" }, hidden: !value || required, onclick: () => setValue("") });
  const element = h(
    "div",
    { class: "asset-picker" },
    hidden,
    h("div", { class: "picker-preview" }, thumb, none),
    h(
      "div",
      { class: "picker-actions" },
      h("button", { type: "button", class: "link picker-choose", dataset: { i18n: "picker.choose" }, onclick: openDialog }),
      h("button", { type: "button", class: "link picker-upload", dataset: { i18n: "picker.upload" }, onclick: () => fileInput.click() }),
      clear,
      status,
    ),
    fileInput,
    error,
    dialog,
  );
  translate(element);
  return { element, value: () => hidden.value, setValue, input: fileInput };
}
