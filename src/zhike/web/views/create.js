// Create: simple mode (prompt, style, size, Generate). Pro mode is added by createPro below.
import { api } from "../api.js";
import { clearFormErrors, errorText, h, showFormError } from "../dom.js";
import { pick, t, translate } from "../i18n.js";
import { progressPanel, submitJob } from "../jobs.js";

const TEST_MODE = new URLSearchParams(location.search).has("test");
const GENERIC_SIZES = [
  ...(TEST_MODE ? [{ id: "test", w: 64, h: 64, label: "size.test", exact: true }] : []),
  { id: "square", w: 1, h: 1, label: "size.square" },
  { id: "landscape", w: 3, h: 2, label: "size.landscape" },
  { id: "portrait", w: 2, h: 3, label: "size.portrait" },
];

// A generation size with the target's aspect and about the model's native area, in multiples of 8.
export function generationSize(w, h, native = 512) {
  const scale = native / Math.sqrt(w * h);
  const side = (v) => Math.min(2048, Math.max(64, Math.round((v * scale) / 8) * 8));
  return [side(w), side(h)];
}

function sizeOption(s, native, checked) {
  const [w, h2] = s.exact ? [s.w, s.h] : generationSize(s.w, s.h, native);
  const name = s.label ? h("span", { class: "size-name", dataset: { i18n: s.label } }) : h("span", { class: "size-name" }, pick(s.name));
  return h(
    "label",
    { class: "size", title: s.target ? `${s.target}` : null },
    h("input", { type: "radio", name: "size", value: `${w}x${h2}`, checked, dataset: { sizeId: s.id } }),
    h(
      "span",
      { class: "size-box" },
      h("span", { class: "shape", style: `aspect-ratio:${s.w}/${s.h}` }),
      name,
      h("span", { class: "muted" }, `${w}×${h2}`),
    ),
  );
}

export default function createView(ctx) {
  const presetSelect = h("select", { id: "preset", name: "preset" });
  let presets = [];
  const fillPresets = () => {
    const chosen = presetSelect.value;
    presetSelect.replaceChildren(
      h("option", { value: "" }, t("create.noPreset")),
      ...presets.map((p) => h("option", { value: p.id, title: pick(p.description) }, pick(p.name))),
    );
    presetSelect.value = chosen;
  };
  fillPresets();

  let native = 512;
  let marketSizes = [];
  const sizeSet = h("fieldset", { class: "sizes", dataset: { field: "width" } });
  const fillSizes = () => {
    const chosen = sizeSet.querySelector("input:checked")?.dataset.sizeId;
    const all = [...GENERIC_SIZES, ...marketSizes.map((m) => ({ id: m.id, w: m.width, h: m.height, name: m.name, target: `${m.width}×${m.height}` }))];
    sizeSet.replaceChildren(
      h("legend", { dataset: { i18n: "create.size" } }),
      ...all.map((s, i) => sizeOption(s, native, chosen ? s.id === chosen : i === 0)),
    );
    translate(sizeSet);
  };
  fillSizes();

  Promise.all([api("/api/v1/presets"), api("/api/v1/sizes"), api("/api/v1/models")])
    .then(([p, s, m]) => {
      presets = p.presets || [];
      fillPresets();
      presetSelect.dataset.loaded = "true";
      marketSizes = s.sizes || [];
      const first = (m.models || []).find((x) => x.kind === "checkpoint");
      if (first && /xl/i.test(first.family || "")) native = 1024;
      fillSizes();
    })
    .catch((err) => showError(errorText(err)));

  const prompt = h("textarea", { id: "prompt", name: "prompt", rows: 4, required: true, maxlength: 4000, dataset: { i18nPlaceholder: "create.promptHint" } });
  const submit = h("button", { type: "submit", class: "primary", id: "generate", dataset: { i18n: "create.submit" } });
  const error = h("p", { class: "error", id: "create-error", role: "alert", hidden: true });
  const form = h(
    "form",
    { class: "card create-form", id: "create-form", novalidate: true },
    h("h1", { dataset: { i18n: "create.title" } }),
    h("label", { dataset: { field: "prompt" } }, h("span", { dataset: { i18n: "create.prompt" } }), prompt),
    h("label", { dataset: { field: "preset" } }, h("span", { dataset: { i18n: "create.preset" } }), presetSelect),
    sizeSet,
    submit,
    error,
  );

  const panel = progressPanel("");
  const libraryLink = h("a", { href: "#/library", id: "to-library", hidden: true, dataset: { i18n: "create.openLibrary" } });
  const output = h("section", { class: "card output", id: "output", hidden: true }, panel.element, libraryLink);
  ctx.onLeave(() => panel.stop());

  function showError(msg) {
    error.textContent = msg;
    error.hidden = !msg;
  }

  function idle() {
    submit.disabled = false;
    submit.textContent = t("create.submit");
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    showError("");
    clearFormErrors(form);
    const text = prompt.value.trim();
    if (!text) {
      prompt.focus();
      return;
    }
    const [width, height] = form.querySelector("input[name=size]:checked").value.split("x").map(Number);
    const params = { prompt: text, width, height };
    if (presetSelect.value) params.preset = presetSelect.value;
    if (TEST_MODE) params.steps = 3;
    submit.disabled = true;
    submit.textContent = t("create.busy");
    output.hidden = false;
    panel.reset();
    libraryLink.hidden = true;
    try {
      const job = await submitJob("txt2img", params);
      panel.run(job, (done) => {
        idle();
        libraryLink.hidden = done.state !== "succeeded";
      });
    } catch (err) {
      showFormError(form, err, error);
      idle();
    }
  });

  ctx.onRelabel(() => {
    fillPresets();
    fillSizes();
    panel.relabel();
    if (submit.disabled) submit.textContent = t("create.busy");
  });
  const el = h("div", { class: "create" }, form, output);
  translate(el);
  return el;
}
