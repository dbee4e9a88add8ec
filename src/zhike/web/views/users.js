// Users (admins only): list, create, disable/enable, change role, set a password.
import { api } from "../api.js";
import { clearFormErrors, formatDate, h, showFormError, statusLines, useCss } from "../dom.js";
import { addStrings, t, translate } from "../i18n.js";

addStrings({
  zh: {
    "users.title": "用户",
    "users.intro": "可以登录工作室的账号。停用的账号不能登录，它的 API 密钥也会失效。",
    "users.name": "用户名",
    "users.role": "角色",
    "users.status": "状态",
    "users.created": "创建时间",
    "users.actions": "操作",
    "users.enabled": "正常",
    "users.disabled": "已停用",
    "users.disable": "停用",
    "users.enable": "启用",
    "users.setPassword": "设置密码",
    "users.you": "（你）",
    "role.user": "普通用户",
    "role.admin": "管理员",
    "users.create": "新建用户",
    "users.username": "用户名",
    "users.usernameHint": "字母、数字、中文、“.”“_”“-”",
    "users.password": "初始密码",
    "users.passwordHint": "至少 8 个字符",
    "users.createSubmit": "创建",
    "users.createdMsg": "已创建用户“{name}”。",
    "users.updatedMsg": "已更新用户“{name}”。",
    "users.passwordSet": "已为“{name}”设置新密码。",
    "users.pwTitle": "为“{name}”设置新密码",
    "users.pwLabel": "新密码",
    "users.pwSave": "保存",
    "users.pwCancel": "取消",
  },
  en: {
    "users.title": "Users",
    "users.intro": "Accounts that can sign in to the studio. A disabled account cannot sign in and its API keys stop working.",
    "users.name": "Username",
    "users.role": "Role",
    "users.status": "Status",
    "users.created": "Created",
    "users.actions": "Actions",
    "users.enabled": "Active",
    "users.disabled": "Disabled",
    "users.disable": "Disable",
    "users.enable": "Enable",
    "users.setPassword": "Set password",
    "users.you": "(you)",
    "role.user": "User",
    "role.admin": "Admin",
    "users.create": "New user",
    "users.username": "Username",
    "users.usernameHint": "letters, digits, Chinese, '.', '_' or '-'",
    "users.password": "Password",
    "users.passwordHint": "at least 8 characters",
    "users.createSubmit": "Create",
    "users.createdMsg": "Created user “{name}”.",
    "users.updatedMsg": "Updated user “{name}”.",
    "users.passwordSet": "Set a new password for “{name}”.",
    "users.pwTitle": "New password for “{name}”",
    "users.pwLabel": "New password",
    "users.pwSave": "Save",
    "users.pwCancel": "Cancel",
  },
});



export default function usersView(ctx) {
  useCss("views/users.css");
  const me = ctx.user || {};
  let users = null;
  const list = h("div", { id: "users-list", class: "users-list", "aria-busy": "true" }, h("p", { class: "muted", dataset: { i18n: "loading" } }));
  const status = statusLines("users");
  const { showError, showNotice } = status;


  async function patch(u, body, okKey) {
    try {
      await api(`/api/v1/users/${encodeURIComponent(u.id)}`, { method: "PATCH", body });
      showNotice(okKey, { name: u.username });
      showError(null);
    } catch (err) {
      showNotice(null);
      showError(err);
    }
    await load();
  }

  function render() {
    if (!users) return;
    const cell = (col, content, cls) => h("td", { class: cls || null, dataset: { label: t(`users.${col}`) } }, content);
    const rows = users.map((u) => {
      const self = u.id === me.id;
      const role = h(
        "select",
        { class: "user-role", "aria-label": `${t("users.role")} ${u.username}`, disabled: self, onchange: (ev) => patch(u, { role: ev.target.value }, "users.updatedMsg") },
        ...["user", "admin"].map((r) => h("option", { value: r, selected: u.role === r }, t(`role.${r}`))),
      );
      return h(
        "tr",
        { dataset: { user: u.username, role: u.role, disabled: String(u.disabled) } },
        cell("name", h("span", {}, h("strong", {}, u.username), self ? h("span", { class: "muted" }, ` ${t("users.you")}`) : null), "user-name"),
        cell("role", role),
        cell("status", h("span", { class: `tag ${u.disabled ? "tag-disabled" : "tag-enabled"}` }, t(u.disabled ? "users.disabled" : "users.enabled")), "user-status"),
        cell("created", formatDate(u.created_at)),
        cell(
          "actions",
          h(
            "span",
            { class: "user-actions" },
            self ? null : h("button", { type: "button", class: "link user-toggle", onclick: () => patch(u, { disabled: !u.disabled }, "users.updatedMsg") }, t(u.disabled ? "users.enable" : "users.disable")),
            h("button", { type: "button", class: "link user-password", onclick: () => askPassword(u) }, t("users.setPassword")),
          ),
          "user-actions-cell",
        ),
      );
    });
    list.replaceChildren(
      h(
        "table",
        { class: "users-table data-table" },
        h("thead", {}, h("tr", {}, ...["name", "role", "status", "created"].map((c) => h("th", { scope: "col" }, t(`users.${c}`))), h("th", { scope: "col" }, t("users.actions")))),
        h("tbody", {}, rows),
      ),
    );
  }

  async function load() {
    try {
      users = (await api("/api/v1/users")).users || [];
      render();
    } catch (err) {
      showError(err);
    } finally {
      list.setAttribute("aria-busy", "false");
    }
  }

  // -- create ----------------------------------------------------------------------------------------------
  const username = h("input", { id: "new-username", name: "username", required: true, maxlength: 64, autocomplete: "off", dataset: { i18nPlaceholder: "users.usernameHint" } });
  const password = h("input", { id: "new-password", name: "password", type: "password", required: true, autocomplete: "new-password", dataset: { i18nPlaceholder: "users.passwordHint" } });
  const roleSelect = h("select", { id: "new-role", name: "role" }, h("option", { value: "user", dataset: { i18n: "role.user" } }), h("option", { value: "admin", dataset: { i18n: "role.admin" } }));
  const createBtn = h("button", { type: "submit", class: "primary", id: "user-create", dataset: { i18n: "users.createSubmit" } });
  const formError = h("p", { class: "error", id: "user-create-error", role: "alert", hidden: true });
  const form = h(
    "form",
    { class: "card user-create", id: "user-create-form", novalidate: true },
    h("h2", { dataset: { i18n: "users.create" } }),
    h(
      "div",
      { class: "user-create-fields" },
      h("label", { dataset: { field: "username" } }, h("span", { dataset: { i18n: "users.username" } }), username),
      h("label", { dataset: { field: "password" } }, h("span", { dataset: { i18n: "users.password" } }), password),
      h("label", { dataset: { field: "role" } }, h("span", { dataset: { i18n: "users.role" } }), roleSelect),
      h("div", { class: "user-create-submit" }, createBtn),
    ),
    formError,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearFormErrors(form);
    formError.hidden = true;
    showNotice(null);
    createBtn.disabled = true;
    try {
      const u = await api("/api/v1/users", { method: "POST", body: { username: username.value.trim(), password: password.value, role: roleSelect.value } });
      form.reset();
      showNotice("users.createdMsg", { name: u.username });
      await load();
    } catch (err) {
      showFormError(form, err, formError);
    } finally {
      createBtn.disabled = false;
    }
  });

  // -- set a password ----------------------------------------------------------------------------------------
  let target = null;
  const pwTitle = h("h2", { id: "password-dialog-title" });
  const pwInput = h("input", { id: "set-password", name: "password", type: "password", autocomplete: "new-password", dataset: { i18nPlaceholder: "users.passwordHint" } });
  const pwError = h("p", { class: "error", role: "alert", hidden: true });
  const pwCancel = h("button", { type: "button", class: "link", id: "password-cancel", dataset: { i18n: "users.pwCancel" } });
  const pwForm = h(
    "form",
    { id: "password-form", novalidate: true },
    pwTitle,
    h("label", { dataset: { field: "password" } }, h("span", { dataset: { i18n: "users.pwLabel" } }), pwInput),
    pwError,
    h("div", { class: "dialog-actions" }, pwCancel, h("button", { type: "submit", class: "primary", id: "password-save", dataset: { i18n: "users.pwSave" } })),
  );
  const pwDialog = h("dialog", { id: "password-dialog", class: "confirm" }, pwForm);
  function askPassword(u) {
    target = u;
    pwTitle.textContent = t("users.pwTitle", { name: u.username });
    pwForm.reset();
    clearFormErrors(pwForm);
    pwError.hidden = true;
    pwDialog.showModal();
    pwInput.focus();
  }
  pwCancel.addEventListener("click", () => pwDialog.close());
  pwForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api(`/api/v1/users/${encodeURIComponent(target.id)}`, { method: "PATCH", body: { password: pwInput.value } });
      pwDialog.close();
      showNotice("users.passwordSet", { name: target.username });
    } catch (err) {
      showFormError(pwForm, err, pwError);
    }
  });

  load();
  ctx.onRelabel(() => {
    render();
    status.relabel();
    if (target && pwDialog.open) pwTitle.textContent = t("users.pwTitle", { name: target.username });
  });

  const el = h(
    "section",
    { class: "users" },
    h("h1", { tabindex: "-1", autofocus: true, dataset: { i18n: "users.title" } }), // focused first: the page opens at its top
    h("p", { class: "muted users-intro", dataset: { i18n: "users.intro" } }),
    status.notice,
    status.error,
    h("div", { class: "card users-card table-card" }, list),
    form,
    pwDialog,
  );
  translate(el);
  return el;
}
