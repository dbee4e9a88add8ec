// Zhike studio: hash routes #/login, #/create, #/library. Vanilla JS modules, no build step.
import { api, ApiError, setCsrf } from "./api.js";
import { getLang, pick, setLang, t, translate } from "./i18n.js";

const view = document.getElementById("view");
const TEST_MODE = new URLSearchParams(location.search).has("test");
const SIZES = [
  ...(TEST_MODE ? [{ w: 64, h: 64, label: "size.test" }] : []),
  { w: 512, h: 512, label: "size.square" },
  { w: 768, h: 512, label: "size.landscape" },
  { w: 512, h: 768, label: "size.portrait" },
];

const state = { user: null, relabel: null, events: null };

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c);
  return el;
}

function errorText(err) {
  if (err instanceof ApiError && err.code === "network") return t("error.network");
  return err && err.message ? err.message : t("error.generic", { msg: String(err) });
}

function closeEvents() {
  if (state.events) state.events.close();
  state.events = null;
}

// -- session -------------------------------------------------------------------------------------------
async function loadMe() {
  try {
    const me = await api("/api/v1/auth/me");
    state.user = me.user;
    setCsrf(me.csrf_token);
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) throw err;
    state.user = null;
    setCsrf(null);
  }
}

function renderChrome() {
  const signedIn = Boolean(state.user);
  document.getElementById("nav").hidden = !signedIn;
  document.getElementById("signout").hidden = !signedIn;
  document.getElementById("whoami").textContent = signedIn ? state.user.username : "";
  document.getElementById("lang").textContent = t("lang.switch");
  const route = currentRoute();
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.route === route);
  translate();
}

// -- sign in -------------------------------------------------------------------------------------------
function loginView() {
  const error = h("p", { class: "error", id: "login-error", role: "alert", hidden: true });
  const submit = h("button", { type: "submit", class: "primary", dataset: { i18n: "login.submit" } });
  const form = h(
    "form",
    { class: "card login", id: "login-form", novalidate: true },
    h("h1", { dataset: { i18n: "login.title" } }),
    h("p", { class: "muted", dataset: { i18n: "login.subtitle" } }),
    h(
      "label",
      {},
      h("span", { dataset: { i18n: "login.username" } }),
      h("input", { name: "username", id: "username", autocomplete: "username", required: true }),
    ),
    h(
      "label",
      {},
      h("span", { dataset: { i18n: "login.password" } }),
      h("input", { name: "password", id: "password", type: "password", autocomplete: "current-password" }),
    ),
    submit,
    error,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    submit.disabled = true;
    submit.textContent = t("login.busy");
    try {
      await api("/api/v1/auth/login", {
        method: "POST",
        body: { username: form.username.value.trim(), password: form.password.value },
      });
      await loadMe();
      location.hash = "#/create";
    } catch (err) {
      error.textContent = errorText(err);
      error.hidden = false;
    } finally {
      submit.disabled = false;
      submit.textContent = t("login.submit");
    }
  });
  return form;
}

// -- create --------------------------------------------------------------------------------------------
function createView() {
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
  api("/api/v1/presets")
    .then((data) => {
      presets = data.presets || [];
      fillPresets();
      presetSelect.dataset.loaded = "true";
    })
    .catch((err) => showError(errorText(err)));

  const sizeButtons = SIZES.map((s, i) =>
    h(
      "label",
      { class: "size" },
      h("input", { type: "radio", name: "size", value: `${s.w}x${s.h}`, checked: i === 0 }),
      h(
        "span",
        { class: "size-box" },
        h("span", { class: "shape", style: `aspect-ratio:${s.w}/${s.h}` }),
        h("span", { class: "size-name", dataset: { i18n: s.label } }),
        h("span", { class: "muted" }, `${s.w}×${s.h}`),
      ),
    ),
  );

  const prompt = h("textarea", { id: "prompt", name: "prompt", rows: 4, required: true, maxlength: 4000 });
  const submit = h("button", { type: "submit", class: "primary", id: "generate", dataset: { i18n: "create.submit" } });
  const error = h("p", { class: "error", id: "create-error", role: "alert", hidden: true });
  const form = h(
    "form",
    { class: "card create-form", id: "create-form" },
    h("h1", { dataset: { i18n: "create.title" } }),
    h("label", {}, h("span", { dataset: { i18n: "create.prompt" } }), prompt),
    h("label", {}, h("span", { dataset: { i18n: "create.preset" } }), presetSelect),
    h("fieldset", { class: "sizes" }, h("legend", { dataset: { i18n: "create.size" } }), sizeButtons),
    submit,
    error,
  );

  const bar = h("div", { class: "bar-fill", id: "progress-fill" });
  const progressText = h("p", { class: "progress-text", id: "progress-text" });
  const progress = h(
    "div",
    {
      class: "progress",
      id: "progress",
      role: "progressbar",
      "aria-valuemin": "0",
      "aria-valuemax": "100",
      hidden: true,
    },
    h("div", { class: "bar" }, bar),
    progressText,
  );
  const image = h("img", { id: "result-image", alt: "", hidden: true });
  const libraryLink = h("a", { href: "#/library", id: "to-library", hidden: true, dataset: { i18n: "create.openLibrary" } });
  const output = h("section", { class: "card output", id: "output", hidden: true }, progress, h("div", { class: "frame" }, image), libraryLink);

  function showError(msg) {
    error.textContent = msg;
    error.hidden = !msg;
  }

  let lastJob = null;
  function showJob(job, done) {
    lastJob = job;
    const pct = done && job.state === "succeeded" ? 100 : Math.round(100 * (job.progress || 0));
    progress.hidden = false;
    progress.dataset.state = job.state;
    progress.setAttribute("aria-valuenow", String(pct));
    bar.style.width = `${pct}%`;
    const parts = [t(`state.${job.state}`)];
    if (job.state === "queued" && job.position) parts.push(t("progress.position", { n: job.position }));
    if (job.state === "running" && job.total_steps) {
      parts.push(t("progress.step", { step: job.step || 0, total: job.total_steps }));
    }
    if (job.state === "failed" && job.error) parts.push(job.error.message || "");
    progressText.textContent = parts.filter(Boolean).join(" · ");
    if (done && job.state === "succeeded" && job.outputs && job.outputs.length) {
      image.src = job.outputs[0].url;
      image.dataset.assetId = job.outputs[0].asset_id;
      image.classList.remove("preview");
      image.hidden = false;
      libraryLink.hidden = false;
    } else if (!done && job.preview_url) {
      image.src = `${job.preview_url}?step=${job.preview_step ?? ""}`;
      image.classList.add("preview");
      image.hidden = false;
    }
  }

  function follow(job) {
    closeEvents();
    const source = new EventSource(`/api/v1/jobs/${encodeURIComponent(job.id)}/events`);
    state.events = source;
    source.addEventListener("progress", (ev) => showJob(JSON.parse(ev.data), false));
    source.addEventListener("done", (ev) => {
      closeEvents();
      showJob(JSON.parse(ev.data), true);
      submit.disabled = false;
      submit.textContent = t("create.submit");
    });
    source.onerror = () => {
      if (state.events !== source) return;
      // The stream dropped before `done`: read the job once so the page does not hang.
      closeEvents();
      api(`/api/v1/jobs/${encodeURIComponent(job.id)}?wait=30`)
        .then((j) => showJob(j, ["succeeded", "failed", "cancelled"].includes(j.state)))
        .catch((err) => showError(errorText(err)))
        .finally(() => {
          submit.disabled = false;
          submit.textContent = t("create.submit");
        });
    };
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    showError("");
    const text = prompt.value.trim();
    if (!text) {
      prompt.focus();
      return;
    }
    const [width, height] = form.size.value.split("x").map(Number);
    const params = { prompt: text, width, height };
    if (presetSelect.value) params.preset = presetSelect.value;
    if (TEST_MODE) params.steps = 3;
    submit.disabled = true;
    submit.textContent = t("create.busy");
    output.hidden = false;
    image.hidden = true;
    libraryLink.hidden = true;
    try {
      const job = await api("/api/v1/jobs", { method: "POST", body: { op: "txt2img", params } });
      showJob(job, false);
      follow(job);
    } catch (err) {
      showError(errorText(err));
      submit.disabled = false;
      submit.textContent = t("create.submit");
    }
  });

  state.relabel = () => {
    fillPresets();
    if (lastJob) showJob(lastJob, ["succeeded", "failed", "cancelled"].includes(lastJob.state));
    if (submit.disabled) submit.textContent = t("create.busy");
  };
  return h("div", { class: "create" }, form, output);
}

// -- library -------------------------------------------------------------------------------------------
function libraryView() {
  const grid = h("div", { class: "grid", id: "library-grid", "aria-busy": "true" }, h("p", { class: "muted", dataset: { i18n: "loading" } }));
  const load = async () => {
    grid.setAttribute("aria-busy", "true");
    try {
      const data = await api("/api/v1/assets?limit=100");
      const assets = data.assets || [];
      if (!assets.length) {
        grid.replaceChildren(h("p", { class: "muted empty", id: "library-empty", dataset: { i18n: "library.empty" } }));
      } else {
        grid.replaceChildren(
          ...assets.map((a) =>
            h(
              "figure",
              { class: "tile", dataset: { assetId: a.id } },
              h("a", { href: a.url, target: "_blank", rel: "noopener" }, h("img", { src: a.url, alt: a.params?.prompt || a.id, loading: "lazy" })),
              h("figcaption", {}, h("span", { class: "caption" }, a.params?.prompt || a.op || ""), h("span", { class: "muted" }, `${a.width}×${a.height}`)),
            ),
          ),
        );
      }
      translate(grid);
    } catch (err) {
      grid.replaceChildren(h("p", { class: "error" }, errorText(err)));
    } finally {
      grid.setAttribute("aria-busy", "false");
    }
  };
  load();
  return h(
    "section",
    { class: "library" },
    h("div", { class: "row" }, h("h1", { dataset: { i18n: "library.title" } }), h("button", { type: "button", class: "link", onclick: load, dataset: { i18n: "library.refresh" } })),
    grid,
  );
}

// -- router --------------------------------------------------------------------------------------------
const ROUTES = { login: loginView, create: createView, library: libraryView };

function currentRoute() {
  const name = location.hash.replace(/^#\/?/, "").split("?")[0];
  return ROUTES[name] ? name : "create";
}

function render() {
  let route = currentRoute();
  if (!state.user && route !== "login") {
    location.replace("#/login");
    return; // hashchange renders the login page
  }
  if (state.user && route === "login") route = "create";
  closeEvents();
  state.relabel = null;
  view.replaceChildren(ROUTES[route]());
  view.dataset.route = route;
  renderChrome();
  const first = view.querySelector("input, textarea");
  if (first) first.focus();
}

document.getElementById("lang").addEventListener("click", () => {
  setLang(getLang() === "zh" ? "en" : "zh");
  renderChrome();
  if (state.relabel) state.relabel();
});

document.getElementById("signout").addEventListener("click", async () => {
  closeEvents();
  try {
    await api("/api/v1/auth/logout", { method: "POST" });
  } catch {
    // Signed out either way on this page; the cookie is dropped by the server when it can be reached.
  }
  state.user = null;
  setCsrf(null);
  location.hash = "#/login";
  render();
});

window.addEventListener("hashchange", render);

(async () => {
  try {
    await loadMe();
  } catch (err) {
    view.replaceChildren(h("p", { class: "error" }, errorText(err)));
    renderChrome();
    return;
  }
  render();
  document.body.dataset.ready = "true";
})();
