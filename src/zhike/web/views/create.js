// Create: simple mode (prompt, style, size, Generate) and pro mode (any operation, every parameter, the form
// generated from its JSON schema). #/create?remix=ASSET loads an asset's operation and parameters into pro mode;
// #/create?op=NAME opens pro mode on that operation.
import { api } from "../api.js";
import { clearFormErrors, errorText, h, showFormError } from "../dom.js";
import { addStrings, errorMessage, pick, t, translate } from "../i18n.js";
import { followJob, progressPanel, submitJob } from "../jobs.js";
import { loadOps } from "../ops.js";
import { resultPanel } from "../result_panel.js";
import { schemaForm } from "../schema_form.js";

addStrings({
  zh: {
    "create.mode": "模式",
    "create.simple": "简单",
    "create.pro": "专业",
    "create.op": "功能",
    "create.proTitle": "专业模式",
    "create.remixing": "正在复用作品 {id} 的参数",
    "create.remixMissing": "这件作品没有可复用的参数（例如上传的图片）。",
    "create.noModel": "这台服务器还没有生成模型，现在点“生成”会失败。先添加一个 SD 1.5 或 SDXL 模型。",
    "create.noModelLink": "去“模型”页看怎么添加",
    "create.emptyPrompt": "请填写画面描述",
    "create.expand": "扩写提示词",
    "create.expanding": "正在扩写…",
    "create.expandEmpty": "先写一句想法，再点“扩写提示词”",
    "create.expandDone": "已填入英文提示词和推荐风格，可以修改后再生成",
    "create.negative": "反向提示词",
  },
  en: {
    "create.mode": "Mode",
    "create.simple": "Simple",
    "create.pro": "Pro",
    "create.op": "Operation",
    "create.proTitle": "Pro mode",
    "create.remixing": "Remixing the parameters of {id}",
    "create.remixMissing": "This asset has no parameters to remix (e.g. an upload).",
    "create.noModel": "This server has no generation model yet, so Generate would fail. Add an SD 1.5 or SDXL model first.",
    "create.noModelLink": "See how on the Models page",
    "create.emptyPrompt": "Describe the picture",
    "create.expand": "Expand prompt",
    "create.expanding": "Expanding…",
    "create.expandEmpty": "Write an idea first, then expand it",
    "create.expandDone": "The English prompt and a suggested style are filled in: edit them or generate",
    "create.negative": "Negative prompt",
  },
});
const MODE_KEY = "zhike.createMode";

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

function simpleForm(ctx, launch) {
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
  // 扩写提示词: the prompt_expand job's words stream into `expandOut`, then fill the prompt, negative and style.
  const negative = h("textarea", { id: "negative", name: "negative_prompt", rows: 2, maxlength: 4000 });
  const negativeField = h("label", { dataset: { field: "negative_prompt" }, hidden: true }, h("span", { dataset: { i18n: "create.negative" } }), negative);
  const expand = h("button", { type: "button", id: "expand-prompt", dataset: { i18n: "create.expand" } });
  const expandOut = h("p", { class: "muted expand-out", id: "expand-out", role: "status", hidden: true });
  let stopExpand = () => {};
  // A message in the page's words keeps its key (relabelled with the page); streamed words and errors do not.
  const say = (text, key = null) => {
    expandOut.hidden = false;
    if (key) expandOut.dataset.i18n = key;
    else delete expandOut.dataset.i18n;
    expandOut.textContent = key ? t(key) : text;
  };
  ctx.onLeave(() => stopExpand());
  expand.addEventListener("click", async () => {
    const idea = prompt.value.trim();
    if (!idea) return say("", "create.expandEmpty");
    expand.disabled = true;
    expand.textContent = t("create.expanding");
    say("");
    const idle = () => {
      expand.disabled = false;
      expand.textContent = t("create.expand");
    };
    try {
      const job = await submitJob("prompt_expand", { idea });
      stopExpand = followJob(job, (j, done) => {
        if (!done) return say(j.partial_text || "", j.partial_text ? null : "create.expanding");
        idle();
        const r = j.result;
        if (j.state !== "succeeded" || !r) return say(j.error ? errorMessage(j.error) : "");
        prompt.value = r.prompt;
        negative.value = r.negative_prompt || "";
        negativeField.hidden = !negative.value;
        if (r.preset && presets.some((p) => p.id === r.preset)) presetSelect.value = r.preset;
        say("", "create.expandDone");
      });
    } catch (err) {
      idle();
      say(errorText(err));
    }
  });
  const form = h(
    "form",
    { class: "card create-form", id: "create-form", novalidate: true },
    h("h1", { dataset: { i18n: "create.title" } }),
    h("label", { dataset: { field: "prompt" } }, h("span", { dataset: { i18n: "create.prompt" } }), prompt),
    h("div", { class: "expand-row" }, expand, expandOut),
    negativeField,
    h("label", { dataset: { field: "preset" } }, h("span", { dataset: { i18n: "create.preset" } }), presetSelect),
    sizeSet,
    submit,
    error,
  );

  function showError(msg) {
    error.textContent = msg;
    error.hidden = !msg;
  }

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    showError("");
    clearFormErrors(form);
    const text = prompt.value.trim();
    if (!text) {
      // Said at the field, like the server's field errors (cleared with them).
      const field = prompt.closest("[data-field]");
      field.after(h("p", { class: "field-error", role: "alert", id: "prompt-error", dataset: { errorFor: "prompt", i18n: "create.emptyPrompt" } }, t("create.emptyPrompt")));
      field.classList.add("invalid");
      prompt.setAttribute("aria-invalid", "true");
      prompt.focus();
      return;
    }
    const [width, height] = form.querySelector("input[name=size]:checked").value.split("x").map(Number);
    const params = { prompt: text, width, height };
    if (presetSelect.value) params.preset = presetSelect.value;
    if (negative.value.trim()) params.negative_prompt = negative.value.trim();
    if (TEST_MODE) params.steps = 3;
    launch(form, submit, error, "txt2img", params);
  });

  ctx.onRelabel(() => {
    fillPresets();
    fillSizes();
    if (submit.disabled) submit.textContent = t("create.busy");
    if (expand.disabled) expand.textContent = t("create.expanding");
  });
  return form;
}

// Pro mode: choose any operation; its parameters come from GET /api/v1/ops.
function proForm(ctx, launch) {
  const opSelect = h("select", { id: "pro-op", name: "op" });
  const fields = h("div", { id: "pro-fields" }, h("p", { class: "muted", dataset: { i18n: "loading" } }));
  const note = h("p", { class: "muted", id: "pro-note", hidden: true });
  const submit = h("button", { type: "submit", class: "primary", id: "pro-generate", dataset: { i18n: "create.submit" } });
  const error = h("p", { class: "error", id: "pro-error", role: "alert", hidden: true });
  const form = h(
    "form",
    { class: "card create-form pro-form", id: "pro-form", novalidate: true },
    h("h1", { dataset: { i18n: "create.proTitle" } }),
    note,
    h("label", {}, h("span", { dataset: { i18n: "create.op" } }), opSelect),
    fields,
    submit,
    error,
  );
  let ops = [];
  let current = null;

  const fillOps = () => {
    const chosen = opSelect.value;
    opSelect.replaceChildren(...ops.map((o) => h("option", { value: o.name, title: o.description }, `${pick(o.title)} · ${o.name}`)));
    if (chosen) opSelect.value = chosen;
  };
  function showOp(name, values = null) {
    const op = ops.find((o) => o.name === name) || ops[0];
    if (!op) return;
    opSelect.value = op.name;
    current = schemaForm(op, { values, idPrefix: "pro-" });
    fields.replaceChildren(current.element);
    clearFormErrors(form);
    error.hidden = true;
  }
  opSelect.addEventListener("change", () => showOp(opSelect.value));

  const ready = loadOps().then((found) => {
    ops = found;
    fillOps();
    showOp(ctx.params.get("op") || "txt2img");
    form.dataset.loaded = "true";
  });
  ready.catch((err) => {
    error.textContent = errorText(err);
    error.hidden = false;
  });

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (!current) return;
    clearFormErrors(form);
    error.hidden = true;
    launch(form, submit, error, current.op.name, current.values());
  });
  ctx.onRelabel(() => {
    fillOps();
    if (current) current.relabel();
    if (submit.disabled) submit.textContent = t("create.busy");
    if (note.dataset.assetId) note.textContent = t("create.remixing", { id: note.dataset.assetId });
  });

  return {
    form,
    ready,
    // Load an asset's operation and parameters (its seed too: the same seed re-makes the same image).
    remix(asset) {
      if (!asset.op || !ops.some((o) => o.name === asset.op) || !asset.params) {
        note.textContent = t("create.remixMissing");
        note.hidden = false;
        return;
      }
      // The seed of each image of a batch is on the asset (params hold the batch's settings).
      const values = asset.seed === null || asset.seed === undefined ? asset.params : { ...asset.params, seed: asset.seed, batch_size: 1 };
      showOp(asset.op, values);
      note.dataset.assetId = asset.id;
      note.textContent = t("create.remixing", { id: asset.id });
      note.hidden = false;
    },
  };
}

export default function createView(ctx) {
  const panel = progressPanel("");
  const libraryLink = h("a", { href: "#/library", id: "to-library", hidden: true, dataset: { i18n: "create.openLibrary" } });
  const result = h("div", { class: "result-slot", id: "result-slot" }); // Download and the open links (result_panel.js)
  const output = h("section", { class: "card output", id: "output", hidden: true }, panel.element, result, libraryLink);
  ctx.onLeave(() => panel.stop());
  ctx.onRelabel(() => panel.relabel());
  const started = () => {
    output.hidden = false;
    panel.reset();
    libraryLink.hidden = true;
    result.replaceChildren();
  };
  const finished = (job) => {
    const first = job.state === "succeeded" && job.outputs && job.outputs[0];
    libraryLink.hidden = !first;
    result.replaceChildren(first ? resultPanel(first, { image: false }) : "");
  };

  // Submit a job from either form: the button shows it is busy; API errors go next to the field they name.
  async function launch(form, submit, error, op, params) {
    const idle = () => {
      submit.disabled = false;
      submit.textContent = t("create.submit");
    };
    submit.disabled = true;
    submit.textContent = t("create.busy");
    try {
      const job = await submitJob(op, params);
      started();
      panel.run(job, (done) => {
        idle();
        finished(done);
      });
    } catch (err) {
      showFormError(form, err, error);
      idle();
    }
  }

  const simple = simpleForm(ctx, launch);
  const pro = proForm(ctx, launch);
  const modeRadio = (mode) =>
    h("label", { class: "seg" }, h("input", { type: "radio", name: "create-mode", value: mode, id: `mode-${mode}` }), h("span", { dataset: { i18n: `create.${mode}` } }));
  const modes = h("div", { class: "create-modes", role: "radiogroup", "aria-label": t("create.mode") }, modeRadio("simple"), modeRadio("pro"));
  const setMode = (mode) => {
    modes.querySelector(`#mode-${mode}`).checked = true;
    simple.hidden = mode !== "simple";
    pro.form.hidden = mode !== "pro";
    localStorage.setItem(MODE_KEY, mode);
  };
  modes.addEventListener("change", (ev) => setMode(ev.target.value));

  const remixId = ctx.params.get("remix");
  setMode(remixId || ctx.params.get("op") ? "pro" : localStorage.getItem(MODE_KEY) === "pro" ? "pro" : "simple");
  if (remixId) {
    Promise.all([api(`/api/v1/assets/${encodeURIComponent(remixId)}`), pro.ready])
      .then(([asset]) => pro.remix(asset))
      .catch((err) => showFormError(pro.form, err, pro.form.querySelector("#pro-error")));
  }

  // No checkpoint on this server: say so before anyone writes a prompt (generation would fail).
  const banner = h(
    "p",
    { class: "model-banner", id: "create-no-model", role: "status", hidden: true },
    h("span", { dataset: { i18n: "create.noModel" } }),
    " ",
    h("a", { href: "#/models", dataset: { i18n: "create.noModelLink" } }),
  );
  api("/api/v1/models")
    .then((m) => (banner.hidden = (m.models || []).some((x) => x.kind === "checkpoint")))
    .catch(() => {}); // the forms' own loading reports an unreachable server

  const el = h("div", { class: "create" }, h("div", { class: "create-left" }, banner, modes, simple, pro.form), output);
  translate(el);
  return el;
}
