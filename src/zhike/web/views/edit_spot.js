// Where a product stands in its scene, dragged on a preview: any tool whose fields have the canvas roles `scene`
// (the scene image) and `spot` (an object with x, y: the product's foot as shares of the scene) gets this panel
// under its scene picker (today subject_swap). The open image is the ghost the user drags; untouched, the server
// places the product itself (on the detected table or floor). Ids: #spot-panel, #spot-scene (img), #spot-ghost,
// #spot-value, #spot-auto (back to automatic).
import { addStrings, t } from "../i18n.js";
import { assetFileUrl } from "../api.js";
import { h, useCss } from "../dom.js";
import { canvasRoles } from "../ops.js";

addStrings({
  zh: {
    "edit.spot.hint": "在场景上拖动商品，选择它站立的位置；不拖动则自动放在桌面或地面上。",
    "edit.spot.auto": "自动摆放",
    "edit.spot.autoValue": "自动：放在检测到的桌面或地面上",
    "edit.spot.value": "落脚点 X {x} · Y {y}",
  },
  en: {
    "edit.spot.hint": "Drag the product on the scene to where it should stand; untouched, it goes on the detected table or floor.",
    "edit.spot.auto": "Place automatically",
    "edit.spot.autoValue": "Automatic: on the detected table or floor",
    "edit.spot.value": "Spot X {x} · Y {y}",
  },
});

const clamp = (v) => Math.min(1, Math.max(0, v));

export function spotPanel({ productId }) {
  useCss("views/edit_spot.css");
  let spot = null;
  let sceneId = "";
  let roles = {};
  let form = null;
  let observer = null;
  let dragging = false;
  const scene = h("img", { id: "spot-scene", alt: "", draggable: "false" });
  const ghost = h("img", { id: "spot-ghost", alt: "", draggable: "false", src: assetFileUrl(productId), hidden: true });
  const box = h("div", { class: "spot-box" }, scene, ghost);
  const value = h("span", { id: "spot-value", class: "muted" });
  const auto = h("button", { type: "button", class: "link", id: "spot-auto", dataset: { i18n: "edit.spot.auto" }, onclick: () => set(null) });
  const element = h(
    "div",
    { class: "spot-panel", id: "spot-panel", hidden: true },
    h("p", { class: "muted help", dataset: { i18n: "edit.spot.hint" } }),
    box,
    h("div", { class: "row spot-row" }, value, auto),
  );

  function set(next) {
    spot = next;
    ghost.hidden = !spot;
    auto.hidden = !spot;
    value.textContent = spot ? t("edit.spot.value", { x: spot.x.toFixed(2), y: spot.y.toFixed(2) }) : t("edit.spot.autoValue");
    if (spot) Object.assign(ghost.style, { left: `${spot.x * 100}%`, top: `${spot.y * 100}%` });
  }
  function move(ev) {
    const r = scene.getBoundingClientRect();
    if (r.width && r.height) set({ x: clamp((ev.clientX - r.left) / r.width), y: clamp((ev.clientY - r.top) / r.height) });
  }
  box.addEventListener("pointerdown", (ev) => {
    if (!sceneId) return;
    dragging = true;
    box.setPointerCapture(ev.pointerId);
    move(ev);
    ev.preventDefault();
  });
  box.addEventListener("pointermove", (ev) => dragging && move(ev));
  box.addEventListener("pointerup", () => (dragging = false));
  box.addEventListener("pointercancel", () => (dragging = false));

  // The scene field is an image picker: its thumbnail's src changes when another scene is picked.
  function refresh() {
    const id = (form && form.values()[roles.scene[0]]) || "";
    if (id !== sceneId) {
      sceneId = id;
      if (id) scene.src = assetFileUrl(id);
      set(null);
    }
    element.hidden = !sceneId;
  }
  set(null);

  return {
    element,
    // Follow the tool shown (op, its schemaForm); hidden for tools without both roles.
    show(op, f) {
      if (observer) observer.disconnect();
      roles = op ? canvasRoles(op) : {};
      form = roles.scene && roles.spot ? f : null;
      if (!form) {
        element.hidden = true;
        return;
      }
      const field = f.element.querySelector(`[data-field="${roles.scene[0]}"]`);
      if (field) field.after(element); // right under the scene picker, where the eye already is
      observer = new MutationObserver(refresh);
      observer.observe(f.element, { subtree: true, attributes: true, attributeFilter: ["src"] });
      refresh();
    },
    // The dragged spot into the request's params (the form's other placement values kept).
    apply(params) {
      if (!form || !spot) return;
      const key = roles.spot[0];
      params[key] = { ...(params[key] || {}), x: Number(spot.x.toFixed(3)), y: Number(spot.y.toFixed(3)) };
    },
    stop() {
      if (observer) observer.disconnect();
    },
  };
}
