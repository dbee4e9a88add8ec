// Batch design (批量设计): pick a template (live preview), import a data file (CSV/XLSX/JSON; rows checked
// against the template), choose sizes, run one batch_design job, download the ZIP.
// Ids for tests: #batch-templates (the template gallery: [data-template] cards), #batch-preview (img), #batch-preview-size,
// #batch-data-file, #batch-data-summary, #batch-errors, #batch-rows (tr[data-row]), [name=batch-size] checkboxes,
// #batch-run, #batch-error, #batch-result, #batch-archive, progress ids from progressPanel("batch-").
import { api, apiBlob, ApiError, UPLOAD_ACCEPT, uploadForm } from "../api.js";
import { errorText, h, useCss } from "../dom.js";
import { addStrings, pick, t, tNodes, translate } from "../i18n.js";
import { progressPanel, submitJob } from "../jobs.js";
import { templateGallery } from "../template_gallery.js";

addStrings({
  zh: {
    "nav.batch": "批量设计",
    "batch.title": "批量设计",
    "batch.intro": "选一个模板，导入表格数据，一次生成全部设计图，打包下载。",
    "batch.step1": "1. 选择模板",
    "batch.step2": "2. 导入数据",
    "batch.photos": "图片列填写照片文件名（如 咖啡杯.jpg）时，在这里放入这些照片或照片的 ZIP：",
    "batch.photosBusy": "正在上传照片 {done} / {total}…",
    "batch.photosDone": "已上传 {n} 张照片",
    "batch.step3": "3. 输出尺寸",
    "batch.dataHint": "CSV（UTF-8 或 GBK）、Excel（.xlsx）或 JSON；第一行是列名。图片列填写已上传图片的编号或链接。",
    "batch.columns": "需要的列：{required}；可选：{optional}",
    "batch.none": "无",
    "batch.summary": "{format} · {rows} 行 · {ok} 行可用",
    "batch.missing": "文件缺少必需的列：{cols}",
    "batch.problem.column_missing": "第 {row} 行：缺少必需的列“{column}”",
    "batch.problem.value_empty": "第 {row} 行：“{column}”不能为空",
    "batch.problem.photo_not_sent": "第 {row} 行“{column}”：没有随数据上传名为“{value}”的图片",
    "batch.problem.image_ref_invalid": "第 {row} 行“{column}”：“{value}”不是图片编号、链接或随数据上传的图片名",
    "batch.problem.image_unknown": "第 {row} 行“{column}”：找不到图片 {value}",
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
  },
  en: {
    "nav.batch": "Batch design",
    "batch.title": "Batch design",
    "batch.intro": "Pick a template, import a spreadsheet, make every design in one go and download them as a ZIP.",
    "batch.step1": "1. Template",
    "batch.step2": "2. Data",
    "batch.photos": "When an image column holds photo file names (e.g. cup.jpg), add those photos or a ZIP of them here:",
    "batch.photosBusy": "Uploading photos {done} / {total}…",
    "batch.photosDone": "{n} photos uploaded",
    "batch.step3": "3. Sizes",
    "batch.dataHint": "CSV (UTF-8 or GBK), Excel (.xlsx) or JSON; the first row holds the column names. Image columns hold ids or links of uploaded images.",
    "batch.columns": "Columns needed: {required}; optional: {optional}",
    "batch.none": "none",
    "batch.summary": "{format} · {rows} rows · {ok} usable",
    "batch.missing": "The file lacks required columns: {cols}",
    "batch.problem.column_missing": "Row {row}: the required column “{column}” is missing",
    "batch.problem.value_empty": "Row {row}: “{column}” is empty",
    "batch.problem.photo_not_sent": "Row {row}, “{column}”: no photo named “{value}” came with the data",
    "batch.problem.image_ref_invalid": "Row {row}, “{column}”: “{value}” is not an image id, link or the name of a photo sent with the data",
    "batch.problem.image_unknown": "Row {row}, “{column}”: image {value} not found",
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
  },
});

// A data-row problem in the page's language, from its code (the API's `message` is English).
function rowProblemText(e) {
  const key = `batch.problem.${e.code}`;
  const text = t(key, { row: e.row, column: e.column ?? "", value: e.value ?? "" });
  return text === key ? e.message : text;
}

export default function batchView(ctx) {
  useCss("views/batch.css");
  const state = { templates: [], template: null, data: null, row: null, previewUrl: null, previewSerial: 0, previewBusy: false, previewAgain: false, done: null };

  const cards = templateGallery({ id: "batch-templates", onPick: (tpl) => choose(tpl) });
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
    return { ...tpl.sample }; // the template's own sample data (every required column)
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

  function renderColumns() {
    const tpl = state.template;
    if (!tpl) return;
    // Column names are the data file's own words, shown as code in either language.
    const list = (xs) => (xs.length ? xs.flatMap((x, i) => [...(i ? [", "] : []), h("code", {}, x)]) : t("batch.none"));
    columnsLine.replaceChildren(...tNodes("batch.columns", { required: list(tpl.columns.required), optional: list(tpl.columns.optional) }));
  }

  function choose(tpl) {
    state.template = tpl;
    cards.select(tpl.id);
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
      ...(d.errors || []).map(rowProblemText),
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
      const photos = Object.keys(state.photos).length ? JSON.stringify(state.photos) : null;
      state.data = await uploadForm("/api/v1/templates/data", file, { template: state.template?.id, photos });
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

  // -- photos sent with the data: image cells may name them by file name --------------------------------------
  // Each file (an image, or a ZIP of them) goes to /templates/photos, 3 at a time; the names found map to asset ids
  // that the data check resolves (`photos`).
  const photoInput = h("input", { type: "file", id: "batch-photos", multiple: true, accept: `${UPLOAD_ACCEPT},.zip,application/zip` });
  const photoSummary = h("p", { class: "muted small", id: "batch-photos-summary", hidden: true });
  const photoProblems = h("ul", { class: "batch-errors", id: "batch-photo-problems", hidden: true });
  state.photos = {};
  async function addPhotos(files) {
    const queue = [...files];
    const total = queue.length;
    let done = 0;
    const problems = [];
    const show = () => {
      photoSummary.hidden = false;
      photoSummary.textContent = done < total ? t("batch.photosBusy", { done, total }) : t("batch.photosDone", { n: Object.keys(state.photos).length });
    };
    show();
    const worker = async () => {
      for (let f = queue.shift(); f; f = queue.shift()) {
        try {
          const r = await uploadForm("/api/v1/templates/photos", f);
          for (const p of r.photos) state.photos[p.name] = p.asset_id;
          problems.push(...r.problems.map((p) => `${p.name}: ${errorText(new ApiError(422, p.message, p.code))}`));
        } catch (err) {
          problems.push(`${f.name}: ${errorText(err)}`);
        }
        done += 1;
        show();
      }
    };
    await Promise.all([worker(), worker(), worker()]);
    photoProblems.replaceChildren(...problems.map((p) => h("li", {}, p)));
    photoProblems.hidden = !problems.length;
    if (fileInput.files[0]) loadData(fileInput.files[0]); // the rows' photo names resolve now
  }
  photoInput.addEventListener("change", () => photoInput.files.length && addPhotos(photoInput.files));

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

  Promise.all([cards.ready, api("/api/v1/sizes")])
    .then(([templates, sz]) => {
      state.templates = templates;
      presets = sz.sizes || [];
      if (state.templates.length) choose(state.templates.find((x) => x.id === ctx.params.get("template")) || state.templates[0]);
    })
    .catch(showError);

  ctx.onRelabel(() => {
    cards.relabel();
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
          h("p", { class: "muted small", dataset: { i18n: "batch.photos" } }),
          photoInput,
          photoSummary,
          photoProblems,
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
