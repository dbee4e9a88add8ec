// One tool on its own page (#/tool/<op>[?asset=ID]): the op's form generated from its schema (schema_form.js; its
// image fields are pickers with upload), Run, live progress, then the result with Download (result_panel.js).
// Any op works here; the nav and Home link the merchant tools (app.js NAV). A words op is sent to its tab of 文案
// (#/words/<op>: streamed words, Cancel); another op whose result is text shows it as text (text_result.js).
//
// Ids for tests: #tool-page[data-op], #tool-title, #tool-help, #tool-form (fields: ids "tf-<param>", e.g. the image
// picker's hidden input #tf-image), #tool-run, #tool-error, progressPanel("tool-") ids (#tool-progress,
// #tool-progress-text, #tool-result-image), #tool-result (resultPanel with ids "tool-dl-": #tool-dl-download).
import { clearFormErrors, errorText, h, showFormError, useCss } from "../dom.js";
import { addStrings, has, pick, t, translate } from "../i18n.js";
import { progressPanel, submitJob } from "../jobs.js";
import { canvasRoles, loadOps } from "../ops.js";
import { resultPanel } from "../result_panel.js";
import { schemaForm } from "../schema_form.js";
import { isWordsOp } from "./words.js";

addStrings({
  zh: {
    "tool.run": "开始处理",
    "tool.busy": "处理中…",
    "tool.unknown": "没有这个工具：{name}",
    "tool.result": "结果",
    "tool.back": "← 全部工具",
  },
  en: {
    "tool.run": "Run",
    "tool.busy": "Working…",
    "tool.unknown": "There is no tool called {name}",
    "tool.result": "Result",
    "tool.back": "← All tools",
  },
});

const TEST_MODE = new URLSearchParams(location.search).has("test");

// The op's image fields (filled from ?asset=ID): its canvas `image` role, else every required asset-id field.
function imageFields(op) {
  const roles = canvasRoles(op).image;
  if (roles && roles.length) return roles;
  const props = op.params_schema?.properties || {};
  const required = op.params_schema?.required || [];
  return required.filter((name) => props[name]?.format === "asset-id");
}

export default function toolView(ctx) {
  useCss("views/tool.css");
  const name = ctx.path[0] || "";
  const title = h("h1", { id: "tool-title" });
  const help = h("p", { class: "muted tool-help", id: "tool-help" });
  const fields = h("div", { id: "tool-form" }, h("p", { class: "muted", dataset: { i18n: "loading" } }));
  const run = h("button", { type: "submit", class: "primary", id: "tool-run", disabled: true });
  const error = h("p", { class: "error", id: "tool-error", role: "alert", hidden: true });
  const form = h(
    "form",
    { class: "card tool-form-card", novalidate: true },
    h("a", { href: "#/home", class: "tool-back", dataset: { i18n: "tool.back" } }),
    title,
    help,
    fields,
    run,
    error,
  );
  const panel = progressPanel("tool-");
  const result = h("div", { id: "tool-result" });
  const output = h("section", { class: "card tool-output", id: "tool-output", hidden: true }, h("h2", { dataset: { i18n: "tool.result" } }), panel.element, result);
  const el = h("div", { class: "tool-page", id: "tool-page", dataset: { op: name } }, form, output);
  ctx.onLeave(() => panel.stop());

  let op = null;
  let sf = null;
  let busy = false;
  const runKey = () => (op && has(`op.${op.name}.s.run`) ? `op.${op.name}.s.run` : "tool.run");
  const label = () => {
    if (!op) return;
    title.textContent = pick(op.title);
    help.textContent = has(`op.${op.name}.s.help`) ? t(`op.${op.name}.s.help`) : op.description || "";
    run.textContent = t(busy ? "tool.busy" : runKey());
  };
  const showError = (msg) => {
    error.textContent = msg || "";
    error.hidden = !msg;
  };

  loadOps()
    .then((ops) => {
      op = ops.find((o) => o.name === name);
      if (!op) {
        title.textContent = "";
        fields.replaceChildren();
        showError(t("tool.unknown", { name }));
        return;
      }
      if (isWordsOp(op)) {
        location.replace(`#/words/${encodeURIComponent(op.name)}`);
        return;
      }
      const props = op.params_schema?.properties || {};
      const values = {};
      const asset = ctx.params.get("asset");
      if (asset) for (const f of imageFields(op)) values[f] = asset;
      if (TEST_MODE && props.steps) values.steps = 3;
      sf = schemaForm(op, { values, idPrefix: "tf-" });
      fields.replaceChildren(sf.element);
      run.disabled = false;
      el.dataset.loaded = "true";
      label();
    })
    .catch((err) => showError(errorText(err)));

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!sf || busy) return;
    clearFormErrors(form);
    showError("");
    const params = sf.values(); // an empty required field (the image) was said at the field already (schema_form.js)
    busy = true;
    run.disabled = true;
    label();
    const idle = () => {
      busy = false;
      run.disabled = false;
      label();
    };
    try {
      const job = await submitJob(op.name, params);
      output.hidden = false;
      result.replaceChildren();
      panel.reset();
      panel.run(job, (done) => {
        idle();
        const first = done.state === "succeeded" && done.outputs && done.outputs[0];
        if (first && typeof done.result?.text === "string") {
          // A text result (a plugin's words op): its words, Copy and the labelled exports, not an image.
          panel.image.hidden = true;
          result.replaceChildren(resultPanel(done.result, { idPrefix: "tool-dl-" }));
        } else if (first) result.replaceChildren(resultPanel(first, { image: false, idPrefix: "tool-dl-" }));
      });
    } catch (err) {
      showFormError(form, err, error);
      idle();
    }
  });

  ctx.onRelabel(() => {
    label();
    if (sf) sf.relabel();
    panel.relabel();
    translate(el);
  });
  translate(el);
  return el;
}
