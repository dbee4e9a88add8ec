// The fill choice of Canvas modes whose op can fill without a model (erase, extend: `method` classical | diffusion
// | auto). The page always sends an explicit method: the quick classical fill by default, the AI fill only when the
// user picks it, with its expected time beside it. ("auto" would switch silently to a diffusion fill of minutes on a
// CPU as soon as any checkpoint is installed.)
//
// Ids for tests: #fill-method, #fill-classical, #fill-diffusion (radios), #fill-note, #fill-no-model.
import { h } from "../dom.js";
import { addStrings, has, t } from "../i18n.js";

addStrings({
  zh: {
    "edit.fill.title": "填充方式",
    "edit.fill.classical": "快速填充",
    "edit.fill.classical.erase": "快速擦除",
    "edit.fill.classical.extend": "快速补边",
    "edit.fill.diffusion": "AI 填充",
    "edit.fill.classicalNote": "传统算法，几秒完成，不需要模型。",
    "edit.fill.diffusionNote": "用生成模型重画这块，效果更自然；CPU 上通常要几分钟，有显卡时十几秒。",
    "edit.fill.noModel": "AI 填充需要先添加生成模型。",
    "edit.fill.modelsLink": "去“模型”页",
  },
  en: {
    "edit.fill.title": "Fill",
    "edit.fill.classical": "Quick fill",
    "edit.fill.classical.erase": "Quick erase",
    "edit.fill.classical.extend": "Quick fill",
    "edit.fill.diffusion": "AI fill",
    "edit.fill.classicalNote": "A classical method: done in seconds, no model needed.",
    "edit.fill.diffusionNote": "A generation model redraws the area for a more natural result; usually minutes on a CPU, seconds on a GPU.",
    "edit.fill.noModel": "AI fill needs a generation model first.",
    "edit.fill.modelsLink": "Go to Models",
  },
});

// Whether an op's `method` offers both fills.
export function hasFillChoice(op) {
  const e = op?.params_schema?.properties?.method?.enum || [];
  return e.includes("classical") && e.includes("diffusion");
}

export function fillChoice() {
  const radio = (value) => h("input", { type: "radio", name: "fill-method", value, id: `fill-${value}`, checked: value === "classical" });
  const classical = radio("classical");
  const diffusion = radio("diffusion");
  const classicalLabel = h("span", { dataset: { i18n: "edit.fill.classical" } });
  const note = h("p", { class: "muted fill-note", id: "fill-note" });
  const noModel = h(
    "p",
    { class: "fill-no-model", id: "fill-no-model", hidden: true },
    h("span", { dataset: { i18n: "edit.fill.noModel" } }),
    " ",
    h("a", { href: "#/models", dataset: { i18n: "edit.fill.modelsLink" } }),
  );
  const element = h(
    "fieldset",
    { class: "fill-method", id: "fill-method", dataset: { field: "method" }, hidden: true },
    h("legend", { dataset: { i18n: "edit.fill.title" } }),
    h("div", { class: "fill-options" }, h("label", { class: "check" }, classical, classicalLabel), h("label", { class: "check" }, diffusion, h("span", { dataset: { i18n: "edit.fill.diffusion" } }))),
    note,
    noModel,
  );
  const relabel = () => (note.textContent = t(diffusion.checked ? "edit.fill.diffusionNote" : "edit.fill.classicalNote"));
  element.addEventListener("change", relabel);
  relabel();
  return {
    element,
    value: () => (diffusion.checked ? "diffusion" : "classical"),
    relabel,
    // A mode's own name for the quick fill (快速擦除 for erase); shown only for ops that have the choice.
    show(op, modeId) {
      element.hidden = !hasFillChoice(op);
      classicalLabel.dataset.i18n = has(`edit.fill.classical.${modeId}`) ? `edit.fill.classical.${modeId}` : "edit.fill.classical";
      classicalLabel.textContent = t(classicalLabel.dataset.i18n);
    },
    // Without a checkpoint the AI fill cannot run: disabled, and the way to add one said.
    setHasModel(ready) {
      diffusion.disabled = !ready;
      noModel.hidden = ready;
      if (!ready) classical.checked = true;
      relabel();
    },
  };
}
