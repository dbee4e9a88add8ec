// API keys: the user's own keys; create one (its secret is shown once, with Copy) and revoke with a confirm.
import { api } from "../api.js";
import { clearFormErrors, confirmDialog, formatDate, h, showFormError, statusLines, useCss } from "../dom.js";
import { addStrings, t, translate } from "../i18n.js";

addStrings({
  zh: {
    "keys.title": "API 密钥",
    "keys.intro": "用 API 密钥可以从脚本或其他程序调用智客，效果和你本人登录一样：能看到你的任务和作品。请像密码一样保管。",
    "keys.name": "名称",
    "keys.prefix": "开头",
    "keys.created": "创建时间",
    "keys.lastUsed": "最近使用",
    "keys.status": "状态",
    "keys.never": "从未使用",
    "keys.active": "有效",
    "keys.revoked": "已吊销",
    "keys.revoke": "吊销",
    "keys.empty": "你还没有 API 密钥。",
    "keys.create": "新建密钥",
    "keys.nameLabel": "名称",
    "keys.nameHint": "例如：店铺后台脚本",
    "keys.createSubmit": "创建",
    "keys.secretTitle": "新密钥“{name}”已创建",
    "keys.secretWarn": "请现在复制并妥善保存。关闭或离开本页后，这个密钥不会再显示。",
    "keys.copy": "复制",
    "keys.copied": "已复制",
    "keys.copyFailed": "无法自动复制，请手动选中复制",
    "keys.usage": "用法示例：",
    "keys.doneSecret": "我已保存",
    "keys.confirmTitle": "吊销这个密钥？",
    "keys.confirmText": "吊销“{name}”后，使用它的程序会立即无法访问，此操作不能撤销。",
    "keys.confirmYes": "吊销",
    "keys.confirmNo": "取消",
    "keys.revokedMsg": "已吊销密钥“{name}”。",
  },
  en: {
    "keys.title": "API keys",
    "keys.intro": "API keys let scripts and other programs use Zhike as you: they see your jobs and images. Keep them like passwords.",
    "keys.name": "Name",
    "keys.prefix": "Starts with",
    "keys.created": "Created",
    "keys.lastUsed": "Last used",
    "keys.status": "Status",
    "keys.never": "Never",
    "keys.active": "Active",
    "keys.revoked": "Revoked",
    "keys.revoke": "Revoke",
    "keys.empty": "You have no API keys yet.",
    "keys.create": "New key",
    "keys.nameLabel": "Name",
    "keys.nameHint": "e.g. shop back-office script",
    "keys.createSubmit": "Create",
    "keys.secretTitle": "Key “{name}” created",
    "keys.secretWarn": "Copy it now and keep it safe. It will not be shown again once you close or leave this page.",
    "keys.copy": "Copy",
    "keys.copied": "Copied",
    "keys.copyFailed": "Could not copy; select the key and copy it by hand",
    "keys.usage": "Example:",
    "keys.doneSecret": "I have saved it",
    "keys.confirmTitle": "Revoke this key?",
    "keys.confirmText": "Programs using “{name}” lose access at once. This cannot be undone.",
    "keys.confirmYes": "Revoke",
    "keys.confirmNo": "Cancel",
    "keys.revokedMsg": "Revoked key “{name}”.",
  },
});

// The API writes naive UTC times for keys; read them as UTC.

export default function keysView(ctx) {
  useCss("views/keys.css");
  let keys = null;
  const list = h("div", { id: "keys-list", class: "keys-list", "aria-busy": "true" }, h("p", { class: "muted", dataset: { i18n: "loading" } }));
  const status = statusLines("keys");
  const { showError, showNotice } = status;


  function render() {
    if (!keys) return;
    if (!keys.length) {
      list.replaceChildren(h("p", { class: "muted", id: "keys-empty" }, t("keys.empty")));
      return;
    }
    const cell = (col, content, cls) => h("td", { class: cls || null, dataset: { label: t(`keys.${col}`) } }, content);
    list.replaceChildren(
      h(
        "table",
        { class: "keys-table data-table" },
        h("thead", {}, h("tr", {}, ...["name", "prefix", "created", "lastUsed", "status"].map((c) => h("th", { scope: "col" }, t(`keys.${c}`))), h("th", {}, ""))),
        h(
          "tbody",
          {},
          keys.map((k) =>
            h(
              "tr",
              { dataset: { keyId: k.id, revoked: String(k.revoked) } },
              cell("name", h("strong", {}, k.name), "key-name"),
              cell("prefix", h("code", {}, `${k.prefix}…`)),
              cell("created", formatDate(k.created_at)),
              cell("lastUsed", k.last_used_at ? formatDate(k.last_used_at) : t("keys.never"), "key-last-used"),
              cell("status", h("span", { class: `tag ${k.revoked ? "tag-revoked" : "tag-active"}` }, t(k.revoked ? "keys.revoked" : "keys.active"))),
              cell("actions", k.revoked ? null : h("button", { type: "button", class: "link key-revoke", onclick: () => askRevoke(k) }, t("keys.revoke")), "key-actions"),
            ),
          ),
        ),
      ),
    );
  }

  async function load() {
    try {
      keys = (await api("/api/v1/keys")).keys || [];
      showError(null);
      render();
    } catch (err) {
      showError(err);
    } finally {
      list.setAttribute("aria-busy", "false");
    }
  }

  // -- create: the secret is in this page's memory only, until "I have saved it" or leaving the page --------
  const nameInput = h("input", { id: "key-name", name: "name", required: true, maxlength: 200, autocomplete: "off", dataset: { i18nPlaceholder: "keys.nameHint" } });
  const createBtn = h("button", { type: "submit", class: "primary", id: "key-create", dataset: { i18n: "keys.createSubmit" } });
  const formError = h("p", { class: "error", id: "key-create-error", role: "alert", hidden: true });
  const form = h(
    "form",
    { class: "card key-create", id: "key-create-form", novalidate: true },
    h("h2", { dataset: { i18n: "keys.create" } }),
    h("div", { class: "key-create-fields" }, h("label", { class: "grow", dataset: { field: "name" } }, h("span", { dataset: { i18n: "keys.nameLabel" } }), nameInput), h("div", { class: "key-create-submit" }, createBtn)),
    formError,
  );

  let created = null;
  const secretTitle = h("h2", { id: "key-secret-title" });
  const secret = h("code", { id: "key-secret", class: "secret", tabindex: "0" });
  const copyState = h("span", { class: "muted", id: "key-copy-state", role: "status" });
  const copyBtn = h("button", { type: "button", class: "primary", id: "key-copy", dataset: { i18n: "keys.copy" } });
  const usage = h("pre", { class: "usage" });
  const secretBox = h(
    "section",
    { class: "card secret-box", id: "key-secret-box", hidden: true, role: "alert" },
    secretTitle,
    h("p", { class: "warn", dataset: { i18n: "keys.secretWarn" } }),
    h("div", { class: "secret-row" }, secret, copyBtn),
    copyState,
    h("p", { class: "muted usage-label", dataset: { i18n: "keys.usage" } }),
    usage,
    h("button", { type: "button", class: "link", id: "key-secret-done", dataset: { i18n: "keys.doneSecret" }, onclick: () => hideSecret() }),
  );
  function showSecret() {
    secretTitle.textContent = t("keys.secretTitle", { name: created.name });
    secret.textContent = created.key;
    usage.textContent = `curl -H "Authorization: Bearer ${created.key}" ${location.origin}/api/v1/jobs`;
    secretBox.hidden = false;
  }
  function hideSecret() {
    created = null;
    secret.textContent = "";
    usage.textContent = "";
    copyState.textContent = "";
    secretBox.hidden = true;
  }
  copyBtn.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(created.key);
      copyState.textContent = t("keys.copied");
    } catch {
      getSelection().selectAllChildren(secret);
      copyState.textContent = t("keys.copyFailed");
    }
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearFormErrors(form);
    formError.hidden = true;
    showNotice(null);
    createBtn.disabled = true;
    try {
      created = await api("/api/v1/keys", { method: "POST", body: { name: nameInput.value.trim() } });
      form.reset();
      copyState.textContent = "";
      showSecret();
      await load();
    } catch (err) {
      showFormError(form, err, formError);
    } finally {
      createBtn.disabled = false;
    }
  });

  // -- revoke --------------------------------------------------------------------------------------------------
  let revoking = null;
  const confirm = confirmDialog({ id: "confirm-revoke", titleKey: "keys.confirmTitle", yesKey: "keys.confirmYes", noKey: "keys.confirmNo" });
  function askRevoke(k) {
    revoking = k;
    confirm.ask(t("keys.confirmText", { name: k.name }), async () => {
      try {
        await api(`/api/v1/keys/${encodeURIComponent(k.id)}`, { method: "DELETE" });
        showNotice("keys.revokedMsg", { name: k.name });
        showError(null);
      } catch (err) {
        showError(err);
      }
      load();
    });
  }

  load();
  ctx.onLeave(hideSecret);
  ctx.onRelabel(() => {
    render();
    status.relabel();
    if (created) showSecret();
    if (revoking && confirm.isOpen()) confirm.setText(t("keys.confirmText", { name: revoking.name }));
  });

  const el = h(
    "section",
    { class: "keys" },
    h("h1", { tabindex: "-1", autofocus: true, dataset: { i18n: "keys.title" } }), // focused first: the page opens at its top
    h("p", { class: "muted keys-intro", dataset: { i18n: "keys.intro" } }),
    secretBox,
    status.notice,
    status.error,
    h("div", { class: "card keys-card table-card" }, list),
    form,
    confirm.element,
  );
  translate(el);
  return el;
}
