// Queue: every job of the user, newest first, with live state, progress, queue position, errors, cancel and retry.
import { api } from "../api.js";
import { errorText, formatDate, h, useCss } from "../dom.js";
import { addStrings, errorMessage, pick, t, translate } from "../i18n.js";
import { cancelJob, jobEta, queuePosition, TERMINAL } from "../jobs.js";
import { loadOps } from "../ops.js";

addStrings({
  zh: {
    "queue.title": "任务队列",
    "queue.filter": "状态",
    "queue.all": "全部",
    "queue.refresh": "刷新",
    "queue.empty": "还没有任务。去“创作”生成一张图，任务会出现在这里。",
    "queue.emptyFilter": "没有这个状态的任务。",
    "queue.retry": "重试",
    "queue.retrying": "正在重新提交…",
    "queue.cancelling": "正在取消…",
    "queue.waiting": "等待开始",
    "queue.starting": "正在准备（加载模型）…",
    "queue.created": "提交于 {time}",
    "queue.finished": "结束于 {time}",
    "queue.retryOf": "重试自任务 {id}",
    "queue.noPrompt": "（无文字描述）",
    "queue.outputs": "生成结果",
    "queue.cancelledMsg": "任务已取消，没有生成图片。",
    "queue.updated": "列表会自动更新",
  },
  en: {
    "queue.title": "Job queue",
    "queue.filter": "State",
    "queue.all": "All",
    "queue.refresh": "Refresh",
    "queue.empty": "No jobs yet. Generate an image under “Create” and it shows up here.",
    "queue.emptyFilter": "No jobs in this state.",
    "queue.retry": "Retry",
    "queue.retrying": "Submitting again…",
    "queue.cancelling": "Cancelling…",
    "queue.waiting": "Waiting to start",
    "queue.starting": "Getting ready (loading the model)…",
    "queue.created": "Submitted {time}",
    "queue.finished": "Finished {time}",
    "queue.retryOf": "Retry of job {id}",
    "queue.noPrompt": "(no prompt)",
    "queue.outputs": "Results",
    "queue.cancelledMsg": "Cancelled; no image was made.",
    "queue.updated": "This list updates by itself",
  },
});

const STATES = ["queued", "running", "succeeded", "failed", "cancelled"];
const FAST_MS = 1500; // while something is queued or running
const SLOW_MS = 6000; // otherwise: jobs submitted elsewhere (API, another tab) still show up
const LIMIT = 100;

// A job's error in the page's language: the API's structured error {code, type, message, field, kind, ctx}.
function jobError(job) {
  const err = job.error || {};
  if (!err.message) return job.message || "";
  return errorMessage(err);
}

function progressLine(job) {
  if (job.state === "queued") return queuePosition(job);
  if (job.state === "running") {
    const step = job.total_steps ? t("progress.step", { step: job.step || 0, total: job.total_steps }) : t("queue.starting");
    return [step, jobEta(job)].filter(Boolean).join(" · ");
  }
  return "";
}

export default function queueView(ctx) {
  useCss("views/queue.css");
  let titles = {}; // op name -> {zh, en}
  let jobs = [];
  let loaded = false;
  const retried = new Map(); // new job id -> the job it retries (the API says so only in the retry answer)
  const busy = new Set(); // job ids with a cancel/retry request in flight
  const rows = new Map(); // job id -> {el, sig}
  let timer = null;
  let left = false;

  const stateSelect = h(
    "select",
    { id: "queue-state", name: "state" },
    h("option", { value: "", dataset: { i18n: "queue.all" } }),
    ...STATES.map((s) => h("option", { value: s, dataset: { i18n: `state.${s}` } })),
  );
  const list = h("div", { id: "queue-list", class: "queue-list", "aria-busy": "true", "aria-live": "polite" }, h("p", { class: "muted", dataset: { i18n: "loading" } }));
  const error = h("p", { class: "error", id: "queue-error", role: "alert", hidden: true });

  function showError(err) {
    error.textContent = err ? errorText(err) : "";
    error.hidden = !err;
  }

  function actionButton(job) {
    if (!TERMINAL.includes(job.state)) {
      return h("button", { type: "button", class: "link job-cancel", disabled: busy.has(job.id), onclick: () => cancel(job) }, t(busy.has(job.id) ? "queue.cancelling" : "job.cancel"));
    }
    if (job.state === "failed" || job.state === "cancelled") {
      return h("button", { type: "button", class: "link job-retry", disabled: busy.has(job.id), onclick: () => retry(job) }, t(busy.has(job.id) ? "queue.retrying" : "queue.retry"));
    }
    return null;
  }

  function renderRow(job) {
    const prompt = job.params && typeof job.params.prompt === "string" ? job.params.prompt : "";
    const pct = job.state === "succeeded" ? 100 : Math.round(100 * (job.progress || 0));
    const active = job.state === "queued" || job.state === "running";
    const meta = [t("queue.created", { time: formatDate(job.created_at) })];
    if (job.finished_at) meta.push(t("queue.finished", { time: formatDate(job.finished_at) }));
    const origin = retried.get(job.id);
    let thumbs = [];
    if (job.outputs && job.outputs.length) {
      thumbs = job.outputs.map((o) =>
        h("a", { href: `#/library?asset=${encodeURIComponent(o.asset_id)}`, class: "thumb", title: t("queue.outputs") }, h("img", { src: o.thumb_url, alt: prompt || t("queue.outputs"), loading: "lazy", dataset: { assetId: o.asset_id } })),
      );
    } else if (job.state === "running" && job.preview_url) {
      thumbs = [h("span", { class: "thumb preview" }, h("img", { src: `${job.preview_url}?step=${job.preview_step ?? ""}`, alt: "" }))];
    }
    let problem = null;
    if (job.state === "failed") {
      problem = h("p", { class: "job-error", role: "alert" }, jobError(job));
    } else if (job.state === "cancelled") {
      problem = h("p", { class: "job-note muted" }, t("queue.cancelledMsg"));
    }
    const title = titles[job.op] ? pick(titles[job.op]) : job.op;
    return h(
      "article",
      { class: "job", dataset: { jobId: job.id, state: job.state } },
      h(
        "div",
        { class: "job-main" },
        h("div", { class: "job-head" }, h("span", { class: "job-op" }, title), h("span", { class: `badge state-${job.state}` }, t(`state.${job.state}`))),
        h("p", { class: prompt ? "job-prompt" : "job-prompt muted", title: prompt || null }, prompt || t("queue.noPrompt")),
        h("p", { class: "job-meta muted" }, meta.join(" · "), origin ? h("span", { class: "job-origin" }, ` · ${t("queue.retryOf", { id: origin })}`) : null),
        active
          ? h(
              "div",
              { class: "job-progress", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(pct) },
              h("div", { class: "bar" }, h("div", { class: "bar-fill", style: `width:${pct}%` })),
              h("span", { class: "job-step muted" }, progressLine(job)),
            )
          : null,
        problem,
      ),
      thumbs.length ? h("div", { class: "job-outputs" }, thumbs) : null,
      h("div", { class: "job-actions" }, actionButton(job)),
    );
  }

  // Re-render only the rows whose job changed, so a click or hover on one row survives another's update.
  function render() {
    if (!jobs.length) {
      rows.clear();
      list.replaceChildren(h("p", { class: "muted empty", id: "queue-empty" }, t(stateSelect.value ? "queue.emptyFilter" : "queue.empty")));
      return;
    }
    const keep = new Set();
    const els = jobs.map((job) => {
      keep.add(job.id);
      const sig = JSON.stringify([job.state, job.step, job.total_steps, job.position, jobEta(job), job.preview_step, job.error, job.outputs, job.finished_at, busy.has(job.id), retried.get(job.id)]);
      const old = rows.get(job.id);
      if (old && old.sig === sig) return old.el;
      const el = renderRow(job);
      rows.set(job.id, { el, sig });
      return el;
    });
    for (const id of [...rows.keys()]) if (!keep.has(id)) rows.delete(id);
    const current = [...list.children];
    if (current.length !== els.length || current.some((el, i) => el !== els[i])) list.replaceChildren(...els);
  }

  async function load() {
    clearTimeout(timer);
    const query = new URLSearchParams({ limit: String(LIMIT) });
    if (stateSelect.value) query.set("state", stateSelect.value);
    try {
      const data = await api(`/api/v1/jobs?${query}`);
      if (left) return;
      jobs = data.jobs || [];
      loaded = true;
      showError(null);
      render();
    } catch (err) {
      if (left) return;
      showError(err);
    } finally {
      list.setAttribute("aria-busy", "false");
      list.dataset.loaded = String(loaded);
    }
    if (left) return;
    const active = jobs.some((j) => j.state === "queued" || j.state === "running");
    timer = setTimeout(load, active ? FAST_MS : SLOW_MS);
  }

  async function cancel(job) {
    busy.add(job.id);
    render();
    try {
      const updated = await cancelJob(job.id);
      jobs = jobs.map((j) => (j.id === updated.id ? updated : j));
    } catch (err) {
      showError(err); // e.g. it ended meanwhile; the next load shows how
    } finally {
      busy.delete(job.id);
    }
    render();
    load();
  }

  async function retry(job) {
    busy.add(job.id);
    render();
    try {
      const fresh = await api(`/api/v1/jobs/${encodeURIComponent(job.id)}/retry`, { method: "POST" });
      retried.set(fresh.id, fresh.retry_of || job.id);
      if (!stateSelect.value || stateSelect.value === fresh.state) jobs = [fresh, ...jobs];
      showError(null);
    } catch (err) {
      showError(err);
    } finally {
      busy.delete(job.id);
    }
    render();
    list.querySelector(`[data-job-id="${CSS.escape(jobs[0]?.id || "")}"]`)?.scrollIntoView({ block: "nearest" });
    load();
  }

  stateSelect.addEventListener("change", () => {
    list.setAttribute("aria-busy", "true");
    load();
  });

  loadOps()
    .then((found) => {
      titles = Object.fromEntries(found.map((op) => [op.name, op.title]));
      rows.clear();
      if (loaded) render();
    })
    .catch(() => {}); // titles are a nicety: the op's name shows instead
  load();

  ctx.onLeave(() => {
    left = true;
    clearTimeout(timer);
  });
  ctx.onRelabel(() => {
    rows.clear();
    if (loaded) render();
  });

  const el = h(
    "section",
    { class: "queue" },
    h(
      "div",
      { class: "row queue-bar" },
      h("div", {}, h("h1", { dataset: { i18n: "queue.title" } }), h("p", { class: "muted queue-hint", dataset: { i18n: "queue.updated" } })),
      h(
        "div",
        { class: "queue-tools" },
        h("label", { class: "queue-filter" }, h("span", { dataset: { i18n: "queue.filter" } }), stateSelect),
        h("button", { type: "button", class: "link", id: "queue-refresh", onclick: load, dataset: { i18n: "queue.refresh" } }),
      ),
    ),
    error,
    list,
  );
  translate(el);
  return el;
}
