// Jobs in the page: submit, follow live over server-sent events, and a progress panel with step previews.
import { api } from "./api.js";
import { h } from "./dom.js";
import { t } from "./i18n.js";

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

// Where a queued job stands: "2 jobs ahead" or "next up" (running jobs are not counted as ahead).
export function queuePosition(job) {
  return job.position ? t("progress.position", { n: job.position }) : t("progress.nextUp");
}

// The plain-words line for a job: state, queue position, step, error.
export function jobStatusText(job, done) {
  const parts = [t(`state.${job.state}`)];
  if (job.state === "queued") parts.push(queuePosition(job));
  if (job.state === "running" && job.total_steps) {
    parts.push(t("progress.step", { step: job.step || 0, total: job.total_steps }));
  }
  if (job.state === "failed" && job.error) parts.push(job.error.message || "");
  if (done && job.result && job.result.warnings && job.result.warnings.length) parts.push(job.result.warnings.join("; "));
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
