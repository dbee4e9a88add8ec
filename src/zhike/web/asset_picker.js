// An image input for asset-id parameters: shows the chosen image, picks one from the library or uploads a file.
import { api, assetThumbUrl, UPLOAD_ACCEPT, uploadAsset } from "./api.js";
import { errorText, h } from "./dom.js";
import { addStrings, t, translate } from "./i18n.js";

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
  },
});


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
      const data = await api("/api/v1/assets?limit=60");
      const assets = data.assets || [];
      dialogGrid.replaceChildren(
        ...(assets.length
          ? assets.map((a) =>
              h(
                "button",
                { type: "button", class: "picker-tile", dataset: { assetId: a.id }, title: a.params?.prompt || a.id, onclick: () => { setValue(a.id); dialog.close(); } },
                h("img", { src: a.thumb_url, alt: "", loading: "lazy" }),
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
