// Batch design (批量设计): pick a template (live preview), import a data file (CSV/XLSX/JSON; rows checked
// against the template), choose sizes, run one batch_design job, download the ZIP.
// Ids for tests: #batch-templates ([data-template] cards), #batch-preview (img), #batch-preview-size,
// #batch-data-file, #batch-data-summary, #batch-errors, #batch-rows (tr[data-row]), [name=batch-size] checkboxes,
// #batch-run, #batch-error, #batch-result, #batch-archive, progress ids from progressPanel("batch-").
import { api, apiBlob, uploadForm } from "../api.js";
import { errorText, h, useCss } from "../dom.js";
import { addStrings, pick, t, translate } from "../i18n.js";
import { progressPanel, submitJob } from "../jobs.js";

addStrings({
  zh: {
    "nav.batch": "批量设计",
    "batch.title": "批量设计",
    "batch.intro": "选一个模板，导入表格数据，一次生成全部设计图，打包下载。",
    "batch.step1": "1. 选择模板",
    "batch.step2": "2. 导入数据",
    "batch.step3": "3. 输出尺寸",
    "batch.dataHint": "CSV（UTF-8 或 GBK）、Excel（.xlsx）或 JSON；第一行是列名。图片列填写已上传图片的编号或链接。",
    "batch.columns": "需要的列：{required}；可选：{optional}",
    "batch.none": "无",
    "batch.summary": "{format} · {rows} 行 · {ok} 行可用",
    "batch.missing": "文件缺少必需的列：{cols}",
    "batch.previewOf": "预览：第 {row} 行",
    "batch.previewSample": "预览：示例数据",
    "batch.templateSize": "模板尺寸 {w}×{h}",
    "batch.run": "开始批量生成",
    "batch.running": "生成中…",
    "batch.needData": "请先导入数据文件。",
    "batch.needSize": "请至少选择一个尺寸。",
    "batch.done": "完成：{ok} 张设计图，{failed} 行失败",
    "batch.archive": "下载 ZIP（含清单）",
    "batch.library": "在作品库中查看",
    "batch.sample": "示例",
  },
  en: {
    "nav.batch": "Batch design",
    "batch.title": "Batch design",
    "batch.intro": "Pick a template, import a spreadsheet, make every design in one go and download them as a ZIP.",
    "batch.step1": "1. Template",
    "batch.step2": "2. Data",
    "batch.step3": "3. Sizes",
    "batch.dataHint": "CSV (UTF-8 or GBK), Excel (.xlsx) or JSON; the first row holds the column names. Image columns hold ids or links of uploaded images.",
    "batch.columns": "Columns needed: {required}; optional: {optional}",
    "batch.none": "none",
    "batch.summary": "{format} · {rows} rows · {ok} usable",
    "batch.missing": "The file lacks required columns: {cols}",
    "batch.previewOf": "Preview: row {row}",
    "batch.previewSample": "Preview: sample data",
    "batch.templateSize": "Template size {w}×{h}",
    "batch.run": "Make the designs",
    "batch.running": "Working…",
    "batch.needData": "Import a data file first.",
    "batch.needSize": "Choose at least one size.",
    "batch.done": "Done: {ok} designs, {failed} row(s) failed",
    "batch.archive": "Download the ZIP (with manifest)",
    "batch.library": "See them in the library",
    "batch.sample": "Sample",
  },
});

export default function batchView(ctx) {
  useCss("views/batch.css");
  const state = { templates: [], template: null, data: null, row: null, previewUrl: null, previewSerial: 0, previewBusy: false, previewAgain: false, done: null };

  const cards = h("div", { id: "batch-templates", class: "batch-templates" }, h("p", { class: "muted", dataset: { i18n: "loading" } }));
  const columnsLine = h("p", { class: "muted", id: "batch-columns" });
  const previewImg = h("img", { id: "batch-preview", alt: "" });
  const previewCaption = h("p", { class: "muted", id: "batch-preview-caption" });
  const fileInput = h("input", { type: "file", id: "batch-data-file", accept: ".csv,.xlsx,.json,text/csv,application/json" });
  const summary = h("p", { id: "batch-data-summary", class: "muted", hidden: true });
  const errors = h("ul", { id: "batch-errors", class: "batch-errors", hidden: true });
  const rowsTable = h("div", { id: "batch-rows", class: "batch-rows" });
  const sizesBox = h("div", { class: "batch-sizes", id: "batch-sizes" });
  const runBtn = h("button", { type: "button", class: "primary", id: "batch-run", dataset: { i18n: "batch.run" } });
  const error = h("p", { class: "error", id: "batch-error", role: "alert", hidden: true });
  const panel = progressPanel("batch-");
  const result = h("div", { id: "batch-result", class: "batch-result", hidden: true });
  ctx.onLeave(() => {
    panel.stop();
    if (state.previewUrl) URL.revokeObjectURL(state.previewUrl);
  });

  const showError = (err) => {
    error.textContent = err ? (typeof err === "string" ? err : errorText(err)) : "";
    error.hidden = !err;
  };

  // -- templates and live preview --------------------------------------------------------------------------
  function sampleRow(tpl) {
    const row = {};
    for (const c of tpl.columns.required) row[c] = c === "price" ? "99" : `${t("batch.sample")} ${c}`;
    return row;
  }

  // One preview request at a time: clicks while one renders are folded into one more request for the latest
  // choice (the server allows a user two heavy requests at once and answers 429 beyond).
  async function refreshPreview() {
    if (state.previewBusy) {
      state.previewAgain = true;
      return;
    }
    state.previewBusy = true;
    try {
      await renderPreview();
    } finally {
      state.previewBusy = false;
      if (state.previewAgain) {
        state.previewAgain = false;
        refreshPreview();
      }
    }
  }

  async function renderPreview() {
    const tpl = state.template;
    if (!tpl) return;
    const serial = ++state.previewSerial;
    const row = state.row !== null && state.data ? state.data.rows[state.row] : sampleRow(tpl);
    previewCaption.textContent = state.row !== null && state.data ? t("batch.previewOf", { row: state.row + 1 }) : t("batch.previewSample");
    try {
      const blob = await apiBlob("/api/v1/templates/preview", { template: tpl.id, row });
      if (serial !== state.previewSerial) return;
      if (state.previewUrl) URL.revokeObjectURL(state.previewUrl);
      state.previewUrl = URL.createObjectURL(blob);
      previewImg.src = state.previewUrl;
      previewImg.dataset.template = tpl.id;
      previewImg.dataset.row = state.row === null ? "sample" : String(state.row);
      showError(null);
    } catch (err) {
      if (serial === state.previewSerial) showError(err);
    }
  }

  function renderCards() {
    cards.replaceChildren(
      ...state.templates.map((tpl) =>
        h(
          "button",
          { type: "button", class: `batch-card${state.template && state.template.id === tpl.id ? " selected" : ""}`, dataset: { template: tpl.id }, onclick: () => choose(tpl) },
          h("span", { class: "shape", style: `aspect-ratio:${tpl.width}/${tpl.height}` }),
          h("strong", {}, pick(tpl.name)),
          h("span", { class: "muted" }, `${tpl.width}×${tpl.height}`),
        ),
      ),
    );
  }

  function renderColumns() {
    const tpl = state.template;
    if (!tpl) return;
    const list = (xs) => (xs.length ? xs.join(", ") : t("batch.none"));
    columnsLine.textContent = t("batch.columns", { required: list(tpl.columns.required), optional: list(tpl.columns.optional) });
  }

  function choose(tpl) {
    state.template = tpl;
    renderCards();
    renderColumns();
    renderSizes();
    if (fileInput.files[0]) loadData(fileInput.files[0]); // re-check the rows against this template
    else refreshPreview();
  }

  // -- data ------------------------------------------------------------------------------------------------
  function renderData() {
    const d = state.data;
    if (!d) return;
    summary.hidden = false;
    summary.textContent = t("batch.summary", { format: d.format.toUpperCase(), rows: d.row_count, ok: d.rows_ok ?? d.row_count });
    const problems = [
      ...(d.missing_columns && d.missing_columns.length ? [t("batch.missing", { cols: d.missing_columns.join(", ") })] : []),
      ...(d.errors || []).map((e) => e.message), // the API's sentence names the row and column, in both languages
    ];
    errors.replaceChildren(...problems.map((p) => h("li", {}, p)));
    errors.hidden = !problems.length;
    const cols = d.columns;
    const bad = new Set((d.errors || []).map((e) => e.row));
    rowsTable.replaceChildren(
      h(
        "table",
        { class: "data-table" },
        h("thead", {}, h("tr", {}, h("th", {}, "#"), ...cols.map((c) => h("th", {}, c)))),
        h(
          "tbody",
          {},
          d.preview.map((r, i) =>
            h(
              "tr",
              { dataset: { row: String(i) }, class: `${state.row === i ? "selected" : ""}${bad.has(i + 1) ? " bad" : ""}`, onclick: () => { state.row = i; renderData(); refreshPreview(); } },
              h("td", {}, String(i + 1)),
              ...cols.map((c) => h("td", { dataset: { label: c } }, String(r[c] ?? ""))),
            ),
          ),
        ),
      ),
    );
  }

  async function loadData(file) {
    showError(null);
    try {
      state.data = await uploadForm("/api/v1/templates/data", file, { template: state.template?.id });
      state.row = state.data.rows.length ? 0 : null;
      renderData();
      refreshPreview();
    } catch (err) {
      state.data = null;
      summary.hidden = true;
      errors.hidden = true;
      rowsTable.replaceChildren();
      showError(err);
    }
  }
  fileInput.addEventListener("change", () => fileInput.files[0] && loadData(fileInput.files[0]));

  // -- sizes -----------------------------------------------------------------------------------------------
  let presets = [];
  function renderSizes() {
    const chosen = new Set([...sizesBox.querySelectorAll("input:checked")].map((i) => i.value));
    if (!chosen.size) chosen.add("template");
    const tpl = state.template;
    const option = (value, label) =>
      h("label", { class: "check" }, h("input", { type: "checkbox", name: "batch-size", value, checked: chosen.has(value) }), h("span", {}, label));
    sizesBox.replaceChildren(
      option("template", tpl ? t("batch.templateSize", { w: tpl.width, h: tpl.height }) : "template"),
      ...presets.map((p) => option(p.id, `${pick(p.name)} ${p.width}×${p.height}`)),
    );
  }

  // -- run -------------------------------------------------------------------------------------------------
  runBtn.addEventListener("click", async () => {
    showError(null);
    if (!state.data || !state.data.rows.length) return showError(t("batch.needData"));
    const sizes = [...sizesBox.querySelectorAll("input:checked")].map((i) => i.value);
    if (!sizes.length) return showError(t("batch.needSize"));
    runBtn.disabled = true;
    runBtn.textContent = t("batch.running");
    result.hidden = true;
    try {
      const job = await submitJob("batch_design", { template: state.template.id, rows: state.data.rows, sizes });
      panel.reset();
      panel.run(job, (done) => {
        runBtn.disabled = false;
        runBtn.textContent = t("batch.run");
        if (done.state !== "succeeded") return;
        state.done = done;
        showResult();
      });
    } catch (err) {
      runBtn.disabled = false;
      runBtn.textContent = t("batch.run");
      showError(err);
    }
  });

  function showResult() {
    const done = state.done;
    if (!done) return;
    const r = done.result || {};
    result.hidden = false;
    result.replaceChildren(
      h("p", { id: "batch-done" }, t("batch.done", { ok: r.designs_ok ?? 0, failed: r.rows_failed ?? 0 })),
      h("a", { id: "batch-archive", class: "primary-link", href: `/api/v1/jobs/${encodeURIComponent(done.id)}/archive`, download: `zhike-batch-${done.id}.zip` }, t("batch.archive")),
      h("a", { href: `#/library?tag=batch`, id: "batch-library" }, t("batch.library")),
    );
  }

  Promise.all([api("/api/v1/templates"), api("/api/v1/sizes")])
    .then(([tp, sz]) => {
      state.templates = tp.templates || [];
      presets = sz.sizes || [];
      cards.dataset.loaded = "true";
      if (state.templates.length) choose(state.templates.find((x) => x.id === ctx.params.get("template")) || state.templates[0]);
      else renderCards();
    })
    .catch(showError);

  ctx.onRelabel(() => {
    renderCards();
    renderColumns();
    renderSizes();
    renderData();
    panel.relabel();
    showResult();
    if (state.template) refreshPreview();
    if (runBtn.disabled) runBtn.textContent = t("batch.running");
  });

  const el = h(
    "section",
    { class: "batch" },
    h("h1", { dataset: { i18n: "batch.title" } }),
    h("p", { class: "muted", dataset: { i18n: "batch.intro" } }),
    h(
      "div",
      { class: "batch-grid" },
      h(
        "div",
        { class: "batch-steps" },
        h("div", { class: "card" }, h("h2", { dataset: { i18n: "batch.step1" } }), cards, columnsLine),
        h(
          "div",
          { class: "card" },
          h("h2", { dataset: { i18n: "batch.step2" } }),
          h("p", { class: "muted small", dataset: { i18n: "batch.dataHint" } }),
          fileInput,
          summary,
          errors,
          rowsTable,
        ),
        h("div", { class: "card" }, h("h2", { dataset: { i18n: "batch.step3" } }), sizesBox, runBtn, error, panel.element, result),
      ),
      h("div", { class: "card batch-preview" }, previewCaption, h("div", { class: "frame" }, previewImg)),
    ),
  );
  translate(el);
  return el;
}
