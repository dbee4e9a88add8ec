// 文案 (#/words[/<op>][?remix=ASSET]): the words operations on one page, a tab each. Each form is generated from
// the op's Params (schema_form.js; its LLM field lists this server's chat models); the words appear as the model
// writes them (the job's partial_text over the job's event stream), Cancel stops it, and the result is shown with
// its parts, Copy, Export and Remix (text_result.js). No LLM: a notice says how to add one.
//
// Ids for tests: #words, #words-tabs (button[data-op]), #words-no-llm, #words-form (fields "wf-<param>"),
// #words-run, #words-error, #words-output, #words-status, #words-cancel, #words-live, #words-result (textResult
// with prefix "words-": #words-export, #words-body, #words-parts...).
import { api } from "../api.js";
import { clearFormErrors, errorText, h, showFormError, useCss } from "../dom.js";
import { addStrings, has, pick, t, translate } from "../i18n.js";
import { cancelJob, followJob, jobStatusText, TERMINAL, submitJob } from "../jobs.js";
import { loadOps } from "../ops.js";
import { llmChoices, schemaForm } from "../schema_form.js";
import { textResult } from "../text_result.js";

addStrings({
  zh: {
    "words.title": "文案",
    "words.intro": "写商品标题和卖点、营销文案、直播脚本，或中英互译。文字由大语言模型生成，生成后可复制、导出和再改写。",
    "words.none": "这台服务器还没有文案功能。",
    "words.noLlm": "还没有可用的大语言模型：请管理员运行下面的命令下载内置模型（约 1.1 GB），或在设置中填写一个兼容 OpenAI 的远程服务器。",
    "words.noLlmLink": "去“模型”页查看",
    "words.run": "开始写",
    "words.busy": "正在写…",
    "words.output": "结果",
    "words.waiting": "文字会在这里逐字出现。",
    "words.cancelled": "已取消，上面是取消前写出的部分。",
    "words.remixMissing": "找不到要改写的那篇文案，可能已被删除。",
  },
  en: {
    "words.title": "Copywriting",
    "words.intro": "Write product titles and selling points, marketing copy, live-selling scripts, or translate between Chinese and English. A language model writes the text; copy, export or rewrite it afterwards.",
    "words.none": "This server has no copywriting operations.",
    "words.noLlm": "No language model is available yet: an admin can download the built-in one (about 1.1 GB) with the command below, or set an OpenAI-compatible remote server in the settings.",
    "words.noLlmLink": "See the Models page",
    "words.run": "Write",
    "words.busy": "Writing…",
    "words.output": "Result",
    "words.waiting": "The words appear here as they are written.",
    "words.cancelled": "Cancelled; above is what was written before.",
    "words.remixMissing": "The copy to rewrite was not found; it may have been deleted.",
  },
});

// The words operations are the ops tagged "words" (product_copy, marketing_copy, live_script, translate,
// prompt_expand, and any a plugin adds), in their studio order: no list of them here.
export const isWordsOp = (o) => (o.tags || []).includes("words");
const byStudioOrder = (a, b) => (a.studio?.order ?? 100) - (b.studio?.order ?? 100) || a.name.localeCompare(b.name);
export const FETCH_LLM = "zhike models fetch-embedded --pack llm";

// A notice for pages that need a language model (this page, the knowledge base): shown when none is available.
export function noLlmNotice(id) {
  const notice = h(
    "div",
    { class: "model-banner words-no-llm", id, role: "status", hidden: true },
    h("p", { dataset: { i18n: "words.noLlm" } }),
    h("p", {}, h("code", {}, FETCH_LLM)),
    h("a", { href: "#/models", dataset: { i18n: "words.noLlmLink" } }),
  );
  llmChoices().then((names) => {
    notice.hidden = names.length > 0;
    notice.dataset.checked = "true";
  });
  return notice;
}

export default function wordsView(ctx) {
  useCss("views/words.css");
  useCss("text_result.css");
  const tabs = h("div", { class: "words-tabs", id: "words-tabs", role: "tablist" });
  const help = h("p", { class: "muted words-help", id: "words-help" });
  const fields = h("div", { id: "words-form" }, h("p", { class: "muted", dataset: { i18n: "loading" } }));
  const run = h("button", { type: "submit", class: "primary", id: "words-run", disabled: true, dataset: { i18n: "words.run" } });
  const error = h("p", { class: "error", id: "words-error", role: "alert", hidden: true });
  const form = h("form", { class: "card words-form", novalidate: true }, help, fields, run, error);
  const status = h("p", { class: "progress-text words-status", id: "words-status", role: "status" });
  const cancel = h("button", { type: "button", class: "link cancel", id: "words-cancel", hidden: true, dataset: { i18n: "job.cancel" } });
  const live = h("div", { class: "words-live", id: "words-live", "aria-live": "polite" });
  const result = h("div", { id: "words-result" });
  const output = h(
    "section",
    { class: "card words-output", id: "words-output" },
    h("div", { class: "words-output-head" }, h("h2", { dataset: { i18n: "words.output" } }), cancel),
    status,
    live,
    result,
  );
  const el = h(
    "section",
    { class: "words", id: "words" },
    h("h1", { dataset: { i18n: "words.title" } }),
    h("p", { class: "muted words-intro", dataset: { i18n: "words.intro" } }),
    noLlmNotice("words-no-llm"),
    tabs,
    h("div", { class: "words-grid" }, form, output),
  );

  let ops = [];
  let op = null;
  const forms = new Map(); // op name -> its schema form (switching tabs keeps what was typed)
  let job = null; // the job shown
  let lastDone = false;
  let stop = null;
  let shown = null; // the result shown: {result, op}
  ctx.onLeave(() => stop && stop());

  const showError = (msg) => {
    error.textContent = msg || "";
    error.hidden = !msg;
  };

  function renderTabs() {
    tabs.replaceChildren(
      ...ops.map((o) =>
        h(
          "button",
          { type: "button", role: "tab", class: "words-tab", id: `words-tab-${o.name}`, "aria-selected": String(o === op), dataset: { op: o.name }, onclick: () => choose(o.name) },
          pick(o.studio?.label) || pick(o.title) || o.name,
        ),
      ),
    );
  }

  function label() {
    if (!op) return;
    help.textContent = has(`op.${op.name}.s.help`) ? t(`op.${op.name}.s.help`) : op.description || "";
    run.textContent = t(job && !lastDone ? "words.busy" : has(`op.${op.name}.s.run`) ? `op.${op.name}.s.run` : "words.run");
  }

  function choose(name, values = null) {
    op = ops.find((o) => o.name === name) || ops[0];
    let sf = forms.get(op.name);
    if (!sf) {
      sf = schemaForm(op, { idPrefix: "wf-" });
      forms.set(op.name, sf);
    }
    if (values) sf.setValues(values);
    fields.replaceChildren(sf.element);
    clearFormErrors(form);
    showError("");
    renderTabs();
    label();
    el.dataset.op = op.name;
    const hash = `#/words/${op.name}`;
    if (location.hash !== hash) history.replaceState(history.state, "", hash);
  }

  function showJob(j, done) {
    job = j;
    lastDone = done;
    status.textContent = jobStatusText(j, done);
    status.dataset.state = j.state;
    cancel.hidden = done || TERMINAL.includes(j.state);
    // The words so far; the result replaces them once it is there.
    const text = j.partial_text || "";
    if (!(done && j.state === "succeeded")) live.textContent = text || (done ? "" : t("words.waiting"));
    live.classList.toggle("waiting", !text);
    live.hidden = done && j.state === "succeeded";
    if (done && j.state === "cancelled" && text) status.textContent = `${status.textContent} · ${t("words.cancelled")}`;
    label();
  }

  function showResult(res, opName) {
    shown = { res, opName };
    const id = res.asset_id || res.id;
    result.replaceChildren(textResult(res, { idPrefix: "words-", remix: id ? `#/words/${opName}?remix=${encodeURIComponent(id)}` : null }));
  }

  cancel.addEventListener("click", async () => {
    if (!job) return;
    cancel.disabled = true;
    try {
      showJob(await cancelJob(job.id), false);
    } catch {
      // it may have just ended; the stream says so
    } finally {
      cancel.disabled = false;
    }
  });

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const sf = op && forms.get(op.name);
    if (!sf || (job && !lastDone)) return;
    clearFormErrors(form);
    showError("");
    run.disabled = true;
    try {
      const submitted = await submitJob(op.name, sf.values());
      const opName = op.name;
      result.replaceChildren();
      shown = null;
      showJob(submitted, false);
      if (stop) stop();
      stop = followJob(submitted, (j, done) => {
        showJob(j, done);
        if (done) {
          run.disabled = false;
          label();
          if (j.state === "succeeded" && j.result) showResult(j.result, opName);
        }
      });
    } catch (err) {
      showFormError(form, err, error);
      run.disabled = false;
    }
  });

  // A text asset's parameters back in its op's form (Remix from a result or the library).
  async function remix(id) {
    try {
      const asset = await api(`/api/v1/assets/${encodeURIComponent(id)}`);
      if (!ops.some((o) => o.name === asset.op)) return choose(ctx.path[0] || ops[0].name);
      choose(asset.op, asset.params || {});
    } catch (err) {
      showError(err.status === 404 ? t("words.remixMissing") : errorText(err));
    }
  }

  loadOps()
    .then((found) => {
      ops = found.filter(isWordsOp).sort(byStudioOrder);
      if (!ops.length) {
        fields.replaceChildren(h("p", { class: "muted", id: "words-none", dataset: { i18n: "words.none" } }));
        translate(fields);
        return;
      }
      run.disabled = false;
      const id = ctx.params.get("remix");
      if (id) remix(id).finally(() => (el.dataset.loaded = "true"));
      else {
        choose(ctx.path[0] || ops[0].name);
        el.dataset.loaded = "true";
      }
    })
    .catch((err) => showError(errorText(err)));

  ctx.onRelabel(() => {
    translate(el);
    renderTabs();
    for (const sf of forms.values()) sf.relabel();
    label();
    if (job) showJob(job, lastDone);
    else live.textContent = t("words.waiting");
    if (shown) showResult(shown.res, shown.opName);
  });
  live.textContent = t("words.waiting");
  live.classList.add("waiting");
  translate(el);
  return el;
}
