// Library: the user's assets, newest first.
import { api } from "../api.js";
import { errorText, h } from "../dom.js";
import { translate } from "../i18n.js";

export default function libraryView() {
  const grid = h("div", { class: "grid", id: "library-grid", "aria-busy": "true" }, h("p", { class: "muted", dataset: { i18n: "loading" } }));
  const load = async () => {
    grid.setAttribute("aria-busy", "true");
    try {
      const data = await api("/api/v1/assets?limit=100");
      const assets = data.assets || [];
      if (!assets.length) {
        grid.replaceChildren(h("p", { class: "muted empty", id: "library-empty", dataset: { i18n: "library.empty" } }));
      } else {
        grid.replaceChildren(
          ...assets.map((a) =>
            h(
              "figure",
              { class: "tile", dataset: { assetId: a.id } },
              h("a", { href: a.url, target: "_blank", rel: "noopener" }, h("img", { src: a.url, alt: a.params?.prompt || a.id, loading: "lazy" })),
              h("figcaption", {}, h("span", { class: "caption" }, a.params?.prompt || a.op || ""), h("span", { class: "muted" }, `${a.width}×${a.height}`)),
            ),
          ),
        );
      }
      translate(grid);
    } catch (err) {
      grid.replaceChildren(h("p", { class: "error" }, errorText(err)));
    } finally {
      grid.setAttribute("aria-busy", "false");
    }
  };
  load();
  const el = h(
    "section",
    { class: "library" },
    h("div", { class: "row" }, h("h1", { dataset: { i18n: "library.title" } }), h("button", { type: "button", class: "link", onclick: load, dataset: { i18n: "library.refresh" } })),
    grid,
  );
  translate(el);
  return el;
}
