// The Canvas page without ?asset: recent images (masks left out) and an upload button.
import { api, UPLOAD_ACCEPT, uploadAsset } from "../api.js";
import { assetCaption, assetTitle, loadOpWords } from "../asset_picker.js";
import { errorText, h } from "../dom.js";
import { t, translate } from "../i18n.js";

export function picker(ctx) {
  const grid = h("div", { class: "grid edit-picker-grid", id: "edit-picker", "aria-busy": "true" }, h("p", { class: "muted", dataset: { i18n: "loading" } }));
  const error = h("p", { class: "error", id: "edit-error", role: "alert", hidden: true });
  const file = h("input", { type: "file", id: "edit-upload", accept: UPLOAD_ACCEPT, hidden: true });
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
  Promise.all([api("/api/v1/assets?limit=30"), loadOpWords()])
    .then(([data]) => {
      const assets = (data.assets || []).filter((a) => !(a.tags || []).includes("mask"));
      grid.replaceChildren(
        ...(assets.length
          ? assets.map((a) =>
              h(
                "a",
                { class: "tile edit-pick", href: `#/edit?asset=${encodeURIComponent(a.id)}`, dataset: { assetId: a.id }, title: assetTitle(a) },
                h("img", { src: a.thumb_url, alt: a.name || a.id, loading: "lazy" }),
                assetCaption(a),
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
