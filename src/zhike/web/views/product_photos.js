// Batch product photos (批量主图): drop or pick up to 200 photos (uploaded ≤ 3 at a time, named by their file
// names), choose the background, sizes, margin and shadow (a form generated from the op's Params), run one
// product_photos job, watch the finished images arrive, download the ZIP (files named after the photos).
// Ids for tests: #pp-drop, #pp-files (input), #pp-list (li[data-name][data-state]), #pp-upload-status, #pp-run,
// #pp-error, #pp-live (finished previews), #pp-done, #pp-archive, #pp-problems (li), progress ids from
// progressPanel("pp-") (#pp-progress[data-state], #pp-outputs).
import { UPLOAD_ACCEPT, uploadForm } from "../api.js";
import { dropFiles, errorText, h, useCss } from "../dom.js";
import { addStrings, pick, resultWarnings, t, translate } from "../i18n.js";
import { progressPanel, submitJob } from "../jobs.js";
import { loadOps } from "../ops.js";
import { schemaForm } from "../schema_form.js";

const MAX_PHOTOS = 200;
const PARALLEL_UPLOADS = 3;
// Which settings each background uses: the others are hidden while it is chosen.
const BY_BACKGROUND = { color: ["color"], gradient: ["gradient", "gradient_angle"], image: ["scene_image"], generate: ["scene_prompt", "model", "seed", "steps"] };

addStrings({
  zh: {
    "pp.title": "批量主图",
    "pp.intro": "一次放入多张商品照片：自动抠图、换成干净背景、加上自然的接地阴影，按电商平台尺寸居中排版，打包下载。",
    "pp.step1": "1. 添加商品照片",
    "pp.step2": "2. 背景与尺寸",
    "pp.drop": "把商品照片拖到这里，或点击选择（最多 {n} 张；JPG、PNG、WebP、HEIC…）",
    "pp.uploading": "正在上传 {done} / {total}",
    "pp.uploaded": "已上传 {done} 张",
    "pp.uploadedBad": "已上传 {done} 张，{bad} 张无法上传",
    "pp.tooMany": "最多 {n} 张，多出的 {extra} 张没有加入",
    "pp.clear": "清空",
    "pp.remove": "移除",
    "pp.run": "开始生成主图",
    "pp.running": "生成中…",
    "pp.needPhotos": "请先添加商品照片。",
    "pp.waitUploads": "请等待照片上传完成。",
    "pp.live": "已完成",
    "pp.done": "完成：{ok} 张照片，共 {images} 张主图；{failed} 张有问题",
    "pp.archive": "下载 ZIP",
    "pp.library": "在作品库中查看",
    "pp.problems": "有问题的照片",
  },
  en: {
    "pp.title": "Batch product photos",
    "pp.intro": "Drop many product photos at once: each is cut out, put on a clean background with a natural contact shadow, centred at marketplace sizes, and zipped for download.",
    "pp.step1": "1. Add product photos",
    "pp.step2": "2. Background and sizes",
    "pp.drop": "Drop product photos here, or click to choose (up to {n}; JPG, PNG, WebP, HEIC…)",
    "pp.uploading": "Uploading {done} / {total}",
    "pp.uploaded": "{done} uploaded",
    "pp.uploadedBad": "{done} uploaded, {bad} could not be uploaded",
    "pp.tooMany": "At most {n}: {extra} more were not added",
    "pp.clear": "Clear",
    "pp.remove": "Remove",
    "pp.run": "Make the main images",
    "pp.running": "Working…",
    "pp.needPhotos": "Add some product photos first.",
    "pp.waitUploads": "Wait for the uploads to finish.",
    "pp.live": "Finished",
    "pp.done": "Done: {ok} photos, {images} images; {failed} with problems",
    "pp.archive": "Download the ZIP",
    "pp.library": "See them in the library",
    "pp.problems": "Photos with problems",
  },
});

export default function productPhotosView(ctx) {
  useCss("views/product_photos.css");
  // photos: {file, name, url (object URL of the file), state: queued|uploading|ok|error, assetId, error}
  const state = { photos: [], dropped: 0, form: null, done: null };

  const fileInput = h("input", { type: "file", id: "pp-files", accept: UPLOAD_ACCEPT, multiple: true, hidden: true });
  const dropText = h("span", {});
  const drop = h("label", { class: "pp-drop", id: "pp-drop", for: "pp-files", tabindex: "0" }, dropText, fileInput);
  const uploadStatus = h("p", { class: "muted", id: "pp-upload-status", hidden: true });
  const clearBtn = h("button", { type: "button", class: "link", id: "pp-clear", hidden: true, dataset: { i18n: "pp.clear" } });
  const list = h("ul", { class: "pp-list", id: "pp-list" });
  const formBox = h("div", { class: "pp-form" }, h("p", { class: "muted", dataset: { i18n: "loading" } }));
  const runBtn = h("button", { type: "button", class: "primary", id: "pp-run", dataset: { i18n: "pp.run" } });
  const error = h("p", { class: "error", id: "pp-error", role: "alert", hidden: true });
  const panel = progressPanel("pp-");
  const live = h("div", { class: "pp-live", id: "pp-live", hidden: true });
  const result = h("div", { class: "pp-result", id: "pp-result", hidden: true });
  ctx.onLeave(() => {
    panel.stop();
    for (const p of state.photos) URL.revokeObjectURL(p.url);
  });

  const showError = (err) => {
    error.textContent = err ? (typeof err === "string" ? err : errorText(err)) : "";
    error.hidden = !err;
  };

  // -- photos ----------------------------------------------------------------------------------------------
  function renderList() {
    const total = state.photos.length;
    const ok = state.photos.filter((p) => p.state === "ok").length;
    const bad = state.photos.filter((p) => p.state === "error").length;
    const busy = total - ok - bad;
    uploadStatus.hidden = !total && !state.dropped;
    const lines = [busy ? t("pp.uploading", { done: ok + bad, total }) : bad ? t("pp.uploadedBad", { done: ok, bad }) : t("pp.uploaded", { done: ok })];
    if (state.dropped) lines.push(t("pp.tooMany", { n: MAX_PHOTOS, extra: state.dropped }));
    uploadStatus.textContent = lines.join(" · ");
    clearBtn.hidden = !total;
    dropText.textContent = t("pp.drop", { n: MAX_PHOTOS });
    list.replaceChildren(
      ...state.photos.map((p) =>
        h(
          "li",
          { dataset: { name: p.name, state: p.state }, title: p.error || p.name },
          h("img", { src: p.url, alt: "" }),
          h("span", { class: "pp-name" }, p.name),
          p.state === "error" ? h("span", { class: "pp-bad" }, p.error) : null,
          h("button", { type: "button", class: "pp-remove", "aria-label": t("pp.remove"), title: t("pp.remove"), onclick: () => removePhoto(p) }, "×"),
        ),
      ),
    );
  }

  function removePhoto(p) {
    URL.revokeObjectURL(p.url);
    state.photos = state.photos.filter((x) => x !== p);
    renderList();
  }

  function addFiles(files) {
    const room = MAX_PHOTOS - state.photos.length;
    const images = [...files].filter((f) => f.type.startsWith("image/") || /\.(heic|heif|avif|tiff?)$/i.test(f.name));
    state.dropped = Math.max(0, images.length - room);
    for (const file of images.slice(0, Math.max(0, room))) {
      state.photos.push({ file, name: file.name.replace(/\.[^.]+$/, ""), url: URL.createObjectURL(file), state: "queued", assetId: null, error: null });
    }
    renderList();
    pump();
  }

  // At most PARALLEL_UPLOADS uploads at once; each sends the file's own name (the asset's and the ZIP file's name).
  let active = 0;
  function pump() {
    while (active < PARALLEL_UPLOADS) {
      const next = state.photos.find((p) => p.state === "queued");
      if (!next) return;
      next.state = "uploading";
      active += 1;
      uploadForm("/api/v1/assets", next.file, { name: next.file.name, tags: "product_photos" })
        .then((asset) => {
          next.assetId = asset.id;
          next.state = "ok";
        })
        .catch((err) => {
          next.state = "error";
          next.error = errorText(err);
        })
        .finally(() => {
          active -= 1;
          renderList();
          pump();
        });
    }
    renderList();
  }

  dropFiles(drop, fileInput, addFiles);
  drop.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" || ev.key === " ") fileInput.click();
  });
  clearBtn.addEventListener("click", () => {
    for (const p of state.photos) URL.revokeObjectURL(p.url);
    state.photos = [];
    state.dropped = 0;
    renderList();
  });

  // -- settings: the op's own form, showing only what the chosen background uses ----------------------------
  function showForBackground() {
    if (!state.form) return;
    const bg = (state.form.values().background || "white").toString();
    for (const [kind, fields] of Object.entries(BY_BACKGROUND)) {
      for (const name of fields) {
        const el = state.form.element.querySelector(`[data-field="${name}"]`);
        if (el) el.hidden = kind !== bg;
      }
    }
  }

  // The gradient's colours (a list field: comma-separated text in the generated form) as two colour pickers.
  function gradientPickers(text) {
    if (!text) return;
    const [from = "#ffffff", to = "#e6ecf3"] = text.value.split(/[,，]/).map((x) => x.trim());
    const a = h("input", { type: "color", id: "pp-gradient-from", value: from, class: "sf-picker" });
    const b = h("input", { type: "color", id: "pp-gradient-to", value: to, class: "sf-picker" });
    const swatch = h("span", { class: "pp-gradient-swatch" });
    const sync = () => {
      text.value = `${a.value}, ${b.value}`;
      swatch.style.background = `linear-gradient(90deg, ${a.value}, ${b.value})`;
    };
    a.addEventListener("input", sync);
    b.addEventListener("input", sync);
    sync();
    text.hidden = true;
    text.after(h("span", { class: "pp-gradient" }, a, "→", b, swatch));
  }

  loadOps()
    .then((ops) => {
      const op = ops.find((o) => o.name === "product_photos");
      state.form = schemaForm(op, { omit: ["photos"], idPrefix: "pp-" });
      formBox.replaceChildren(state.form.element);
      gradientPickers(state.form.element.querySelector("#pp-gradient"));
      state.form.element.addEventListener("change", showForBackground);
      showForBackground();
      formBox.dataset.loaded = "true";
    })
    .catch(showError);

  // -- run -------------------------------------------------------------------------------------------------
  // Each finished photo shows up as the job's preview: keep a copy of each as a small live thumbnail.
  panel.image.addEventListener("load", () => {
    if (!panel.image.classList.contains("preview")) return;
    live.hidden = false;
    live.append(h("img", { src: panel.image.src, alt: "" }));
  });

  runBtn.addEventListener("click", async () => {
    showError(null);
    const ready = state.photos.filter((p) => p.state === "ok");
    if (state.photos.some((p) => p.state === "queued" || p.state === "uploading")) return showError(t("pp.waitUploads"));
    if (!ready.length) return showError(t("pp.needPhotos"));
    if (!state.form || !state.form.check()) return;
    runBtn.disabled = true;
    runBtn.textContent = t("pp.running");
    result.hidden = true;
    live.replaceChildren(h("p", { class: "muted", dataset: { i18n: "pp.live" } }, t("pp.live")));
    live.hidden = true;
    try {
      const job = await submitJob("product_photos", { ...state.form.values(), photos: ready.map((p) => p.assetId) });
      panel.reset();
      panel.run(job, (done) => {
        runBtn.disabled = false;
        runBtn.textContent = t("pp.run");
        live.hidden = true;
        if (done.state !== "succeeded") return;
        state.done = done;
        showResult();
      });
    } catch (err) {
      runBtn.disabled = false;
      runBtn.textContent = t("pp.run");
      showError(err);
    }
  });

  function showResult() {
    const done = state.done;
    if (!done) return;
    const r = done.result || {};
    const uploadBad = state.photos.filter((p) => p.state === "error");
    const problems = [
      ...(r.problems || []).map((p) => h("li", { dataset: { code: p.code } }, h("strong", {}, p.name || p.photo), " ", pick(p.message))),
      ...uploadBad.map((p) => h("li", { dataset: { code: "upload" } }, h("strong", {}, p.name), " ", p.error)),
    ];
    result.hidden = false;
    const parts = [
      h("p", { id: "pp-done" }, t("pp.done", { ok: r.photos_ok ?? 0, images: (r.outputs || []).length, failed: (r.photos_failed ?? 0) + uploadBad.length })),
      h("a", { id: "pp-archive", class: "primary-link", href: `/api/v1/jobs/${encodeURIComponent(done.id)}/archive`, download: `${t("pp.title")}-${done.id}.zip` }, t("pp.archive")),
      h("a", { href: "#/library?tag=product_photos", id: "pp-library" }, t("pp.library")),
      ...resultWarnings(r).map((w) => h("p", { class: "muted" }, w)),
    ];
    if (problems.length) parts.push(h("div", { class: "pp-problems" }, h("h3", {}, t("pp.problems")), h("ul", { id: "pp-problems" }, problems)));
    result.replaceChildren(...parts);
  }

  ctx.onRelabel(() => {
    renderList();
    if (state.form) state.form.relabel();
    panel.relabel();
    showResult();
    runBtn.textContent = t(runBtn.disabled ? "pp.running" : "pp.run");
  });

  renderList();
  const el = h(
    "section",
    { class: "pp" },
    h("h1", { dataset: { i18n: "pp.title" } }),
    h("p", { class: "muted", dataset: { i18n: "pp.intro" } }),
    h(
      "div",
      { class: "pp-grid" },
      h("div", { class: "card" }, h("h2", { dataset: { i18n: "pp.step1" } }), drop, h("div", { class: "pp-status-row" }, uploadStatus, clearBtn), list),
      h("div", { class: "card" }, h("h2", { dataset: { i18n: "pp.step2" } }), formBox, runBtn, error, result, live, panel.element),
    ),
  );
  translate(el);
  return el;
}
