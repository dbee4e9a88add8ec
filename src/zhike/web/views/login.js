// Sign in with a username and password (the session cookie is HttpOnly; the CSRF token comes from /auth/me).
import { api } from "../api.js";
import { errorText, h } from "../dom.js";
import { t } from "../i18n.js";

export default function loginView(ctx) {
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
      await ctx.signedIn();
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
