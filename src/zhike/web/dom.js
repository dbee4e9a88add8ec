// Small DOM helpers shared by every view: element builder, error text, field errors, per-view CSS.
import { ApiError } from "./api.js";
import { t, errorMessage } from "./i18n.js";

// h("div", {class: "x", onclick: fn, dataset: {id: 1}}, child, [children]) -> HTMLElement
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "value" && "value" in el) el.value = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

// The user-facing text of an error: the API's message in the page's language where it is known.
export function errorText(err) {
  if (err instanceof ApiError) {
    if (err.code === "network") return t("error.network");
    return errorMessage(err);
  }
  return t("error.generic", { msg: err && err.message ? err.message : String(err) });
}

// Show an API error next to the form field it names (`params.width` -> [data-field="width"]), else in `fallback`.
// Returns the element that shows it. Earlier field errors in the form are cleared.
export function showFormError(form, err, fallback) {
  clearFormErrors(form);
  const field = err instanceof ApiError ? err.field : null;
  const name = field ? field.replace(/^params\./, "") : null;
  const target = name ? fieldElement(form, name) : null;
  if (!target) {
    if (fallback) {
      fallback.textContent = errorText(err);
      fallback.hidden = false;
    }
    return fallback;
  }
  const msg = h("p", { class: "field-error", role: "alert", dataset: { errorFor: name } }, errorText(err));
  target.after(msg);
  target.classList.add("invalid");
  const input = target.matches("input, select, textarea") ? target : target.querySelector("input, select, textarea");
  if (input) {
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }
  if (fallback) fallback.hidden = true;
  return msg;
}

// The element for a field: the exact name, else its closest parent (`loras.0.weight` -> `loras.0` -> `loras`).
function fieldElement(form, name) {
  let parts = name.split(".");
  while (parts.length) {
    const el = form.querySelector(`[data-field="${CSS.escape(parts.join("."))}"]`);
    if (el) return el;
    parts = parts.slice(0, -1);
  }
  return null;
}

export function clearFormErrors(form) {
  for (const el of form.querySelectorAll(".field-error")) el.remove();
  for (const el of form.querySelectorAll(".invalid")) el.classList.remove("invalid");
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
}

// Each view keeps its own stylesheet next to it (views/NAME.css), linked once on first use.
export function useCss(path) {
  const href = `/static/${path}`;
  if (document.querySelector(`link[href="${href}"]`)) return;
  document.head.append(h("link", { rel: "stylesheet", href }));
}

export function formatDate(iso) {
  if (!iso) return "";
  // The API's times are UTC; a few come without a zone, which Date would read as local time.
  const d = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(iso) ? iso : `${iso}Z`);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export function formatBytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

// A modal confirmation <dialog class="confirm"> (ids: ID, ID-text, ID-yes, ID-no; labels are i18n keys).
// ask(text, onYes) opens it with "No" focused; onYes (async) runs on "Yes", then the dialog closes.
export function confirmDialog({ id, titleKey, yesKey, noKey }) {
  const text = h("p", { id: `${id}-text` });
  const yes = h("button", { type: "button", class: "primary danger", id: `${id}-yes`, dataset: { i18n: yesKey } });
  const no = h("button", { type: "button", class: "link", id: `${id}-no`, dataset: { i18n: noKey } });
  const element = h("dialog", { id, class: "confirm" }, h("h2", { dataset: { i18n: titleKey } }), text, h("div", { class: "dialog-actions" }, no, yes));
  let onYes = null;
  no.addEventListener("click", () => element.close());
  yes.addEventListener("click", async () => {
    yes.disabled = true;
    try {
      await onYes();
    } finally {
      yes.disabled = false;
      element.close();
    }
  });
  return {
    element,
    isOpen: () => element.open,
    setText: (value) => (text.textContent = value),
    ask(value, action) {
      onYes = action;
      text.textContent = value;
      element.showModal();
      no.focus();
    },
  };
}

// A page's error line and notice line (ids PREFIX-error, PREFIX-notice). The notice is an i18n key, said again
// in the new language by relabel().
export function statusLines(prefix) {
  const error = h("p", { class: "error", id: `${prefix}-error`, role: "alert", hidden: true });
  const notice = h("p", { class: "notice", id: `${prefix}-notice`, role: "status", hidden: true });
  let last = null;
  const showNotice = (key, vars) => {
    last = key ? [key, vars] : null;
    notice.textContent = key ? t(key, vars) : "";
    notice.hidden = !key;
  };
  return {
    error,
    notice,
    showNotice,
    showError(err) {
      error.textContent = err ? errorText(err) : "";
      error.hidden = !err;
    },
    relabel() {
      if (last) showNotice(...last);
    },
  };
}

/** Files dropped on `drop` or picked in `fileInput` go to `onFiles(FileList)`; `drop` shows "over" while dragged on. */
export function dropFiles(drop, fileInput, onFiles) {
  fileInput.addEventListener("change", () => {
    onFiles(fileInput.files);
    fileInput.value = ""; // picking the same files again adds them again
  });
  drop.addEventListener("dragover", (ev) => {
    ev.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    drop.classList.remove("over");
    onFiles(ev.dataTransfer.files);
  });
}
