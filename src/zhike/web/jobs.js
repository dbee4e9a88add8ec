// Jobs in the page: submit, follow live over server-sent events, and a progress panel with step previews.
import { api } from "./api.js";
import { h } from "./dom.js";
import { errorMessage, resultWarnings, t } from "./i18n.js";

export const TERMINAL = ["succeeded", "failed", "cancelled"];

export function submitJob(op, params) {
  return api("/api/v1/jobs", { method: "POST", body: { op, params } });
}

export function cancelJob(id) {
  return api(`/api/v1/jobs/${encodeURIComponent(id)}/cancel`, { method: "POST" });
}

// Follow a job until it ends: onUpdate(job, done) on every change. Returns stop().
export function followJob(job, onUpdate) {
  let stopped = false;
  const source = new EventSource(`/api/v1/jobs/${encodeURIComponent(job.id)}/events`);
  const stop = () => {
    stopped = true;
    source.close();
  };
  source.addEventListener("progress", (ev) => onUpdate(JSON.parse(ev.data), false));
  source.addEventListener("done", (ev) => {
    stop();
    onUpdate(JSON.parse(ev.data), true);
  });
  source.onerror = () => {
    if (stopped) return;
    // The stream dropped before `done`: long-poll the job so the page does not hang.
    stop();
    const poll = () =>
      api(`/api/v1/jobs/${encodeURIComponent(job.id)}?wait=30`)
        .then((j) => {
          const done = TERMINAL.includes(j.state);
          onUpdate(j, done);
          if (!done) poll();
        })
        .catch((err) => onUpdate({ ...job, state: "failed", error: { message: String(err.message || err) } }, true));
    poll();
  };
  return stop;
}

// About how long: "40 s", "2 min", "1.5 h" (an estimate: rounded, never finer than 5 s).
export function roughDuration(seconds) {
  if (seconds < 60) return t("duration.seconds", { n: Math.max(5, Math.round(seconds / 5) * 5) });
  if (seconds < 3600) return t("duration.minutes", { n: Math.round(seconds / 60) });
  return t("duration.hours", { n: Math.round(seconds / 360) / 10 });
}

// The API's estimate from recent durations (null when unknown): "starts in about 2 min" for a queued job once
// something is ahead of it, "done in about 40 s" for a running one.
export function jobEta(job) {
  if (job.state === "queued" && job.eta_start_seconds >= 5) return t("progress.etaStart", { t: roughDuration(job.eta_start_seconds) });
  if (job.state === "running" && job.eta_done_seconds != null) return t("progress.etaDone", { t: roughDuration(job.eta_done_seconds) });
  return "";
}

// Where a queued job stands: "2 jobs ahead" or "next up" (running jobs are not counted as ahead), and when it
// should start.
export function queuePosition(job) {
  const where = job.position ? t("progress.position", { n: job.position }) : t("progress.nextUp");
  return [where, jobEta(job)].filter(Boolean).join(" · ");
}

// The plain-words line for a job: state, queue position, step, error.
export function jobStatusText(job, done) {
  const parts = [t(`state.${job.state}`)];
  if (job.state === "queued") parts.push(queuePosition(job));
  if (job.state === "running" && job.total_steps) {
    parts.push(t("progress.step", { step: job.step || 0, total: job.total_steps }));
  }
  if (job.state === "running") parts.push(jobEta(job));
  if (job.state === "failed" && job.error) parts.push(errorMessage(job.error)); // by its code, in the page's language
  if (done) parts.push(resultWarnings(job.result).join("; "));
  return parts.filter(Boolean).join(" · ");
}

export function jobPercent(job, done) {
  return done && job.state === "succeeded" ? 100 : Math.round(100 * (job.progress || 0));
}

// A progress bar + status line + live preview/result image. `prefix` makes the ids unique per page
// (ids: {prefix}progress, {prefix}progress-fill, {prefix}progress-text, {prefix}result-image).
export function progressPanel(prefix = "") {
  const bar = h("div", { class: "bar-fill", id: `${prefix}progress-fill` });
  const text = h("p", { class: "progress-text", id: `${prefix}progress-text` });
  const cancel = h("button", { type: "button", class: "link cancel", id: `${prefix}cancel`, hidden: true, dataset: { i18n: "job.cancel" } });
  const progress = h(
    "div",
    { class: "progress", id: `${prefix}progress`, role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", hidden: true },
    h("div", { class: "bar" }, bar),
    h("div", { class: "progress-row" }, text, cancel),
  );
  const image = h("img", { id: `${prefix}result-image`, alt: "", hidden: true });
  const outputs = h("div", { class: "outputs", id: `${prefix}outputs` });
  let last = null;
  let lastDone = false;
  let stop = null;

  function show(job, done) {
    last = job;
    lastDone = done;
    const pct = jobPercent(job, done);
    progress.hidden = false;
    progress.dataset.state = job.state;
    progress.setAttribute("aria-valuenow", String(pct));
    bar.style.width = `${pct}%`;
    text.textContent = jobStatusText(job, done);
    cancel.hidden = done || TERMINAL.includes(job.state);
    cancel.textContent = t("job.cancel");
    if (done && job.state === "succeeded" && job.outputs && job.outputs.length) {
      image.src = job.outputs[0].url;
      image.dataset.assetId = job.outputs[0].asset_id;
      image.classList.remove("preview");
      image.hidden = false;
      outputs.replaceChildren(
        ...(job.outputs.length > 1
          ? job.outputs.map((o) => h("a", { href: `#/library?asset=${o.asset_id}` }, h("img", { src: o.thumb_url, alt: "", dataset: { assetId: o.asset_id } })))
          : []),
      );
    } else if (!done && job.preview_url) {
      image.src = `${job.preview_url}?step=${job.preview_step ?? ""}`;
      image.classList.add("preview");
      image.hidden = false;
    }
  }

  cancel.addEventListener("click", async () => {
    if (!last) return;
    cancel.disabled = true;
    try {
      show(await cancelJob(last.id), false);
    } catch {
      // the job may have just ended; the stream reports it
    } finally {
      cancel.disabled = false;
    }
  });

  return {
    element: h("div", { class: "job-panel" }, progress, h("div", { class: "frame" }, image), outputs),
    image,
    reset() {
      if (stop) stop();
      stop = null;
      last = null;
      progress.hidden = true;
      image.hidden = true;
      outputs.replaceChildren();
    },
    // Show a freshly submitted job and follow it; onDone(job) once it ends.
    run(job, onDone) {
      if (stop) stop();
      show(job, false);
      stop = followJob(job, (j, done) => {
        show(j, done);
        if (done && onDone) onDone(j);
      });
      return stop;
    },
    stop() {
      if (stop) stop();
      stop = null;
    },
    relabel() {
      if (last) show(last, lastDone);
    },
  };
}
