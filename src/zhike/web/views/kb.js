// 知识库 (#/kb[/<id>]): the user's product knowledge bases (create, rename, delete), their documents (drop several
// files at once: each with its own progress and its own clear error; each then indexed in the background, its status
// (排队中 / 解析中 x% / 可用 / 失败 and why) kept live in the table by polling while any is in progress; delete), and
// "try questions": a chat whose
// answers stream in with their citations (document, where, passage) underneath, "不知道" marked as such, the
// conversation kept (per knowledge base, for this browser tab) until "New conversation". API: api/routes/kb.py.
//
// Ids for tests: #kb, #kb-list (button[data-kb-id]), #kb-new-name, #kb-create, #kb-main[data-kb-id], #kb-name,
// #kb-rename, #kb-rename-input, #kb-rename-save, #kb-delete, #confirm-kb (dialog), #kb-drop, #kb-file,
// #kb-uploads (li[data-file][data-state=uploading|reading|indexing|done|error] with .kb-upload-error), #kb-docs
// (tr[data-doc-id][data-status=queued|indexing|ready|failed], .kb-doc-status, .kb-doc-error), #kb-question, #kb-ask, #kb-new-chat, #kb-chat (.kb-msg[data-role], .kb-answer[data-answered],
// .kb-citation), #kb-error.
import { api, ApiError, apiStream, sseEvents, uploadWithProgress } from "../api.js";
import { confirmDialog, dropFiles, errorText, formatBytes, formatDate, h, statusLines, useCss } from "../dom.js";
import { addStrings, errorMessage, t, translate } from "../i18n.js";
import { noLlmNotice } from "./words.js";

addStrings({
  zh: {
    "kb.title": "商品知识库",
    "kb.intro": "上传商品资料（说明书、FAQ 表格、商品参数），AI 客服只根据这些资料回答顾客的问题，并注明出处；资料里没有的，会回答“不知道，请咨询人工客服”。",
    "kb.mine": "我的知识库",
    "kb.none": "还没有知识库，先建一个吧。",
    "kb.newName": "新知识库名称",
    "kb.newHint": "例如：店铺商品",
    "kb.create": "新建",
    "kb.counts": "{docs} 个文档 · {chunks} 段",
    "kb.pick": "在左边选择或新建一个知识库。",
    "kb.rename": "重命名",
    "kb.save": "保存",
    "kb.cancel": "取消",
    "kb.delete": "删除知识库",
    "kb.confirmTitle": "删除这个知识库？",
    "kb.confirmText": "“{name}”的所有文档和对话都会被删除，无法恢复。",
    "kb.confirmYes": "删除",
    "kb.docs": "文档",
    "kb.drop": "把文件拖到这里，或点击选择（可一次多个）",
    "kb.formats": "支持 TXT、Markdown、PDF、DOCX、XLSX、CSV；同名文件会替换原来的文档。",
    "kb.uploading": "上传中 {pct}%",
    "kb.reading": "正在检查文件…",
    "kb.queued": "已上传，排队等待建立索引",
    "kb.indexing": "正在建立索引 {pct}%",
    "kb.uploaded": "已加入：{pages} 页，{chunks} 段",
    "kb.replaced": "已替换同名文档：{pages} 页，{chunks} 段",
    "kb.unchanged": "和已有文档完全相同，未重复读取",
    "kb.noDocs": "还没有文档。",
    "kb.col.name": "文件",
    "kb.col.kind": "类型",
    "kb.col.pages": "页数",
    "kb.col.chunks": "段数",
    "kb.col.size": "大小",
    "kb.col.updated": "更新时间",
    "kb.col.status": "状态",
    "kb.status.queued": "排队中",
    "kb.status.indexing": "解析中 {pct}%",
    "kb.status.ready": "可用",
    "kb.status.failed": "失败",
    "kb.replacing": "新版本建立索引前，仍用旧版本回答",
    "kb.keptOld": "旧版本仍在使用",
    "kb.removeDoc": "删除",
    "kb.chat": "试着提问",
    "kb.chatHint": "像顾客一样提问，例如：这款杯子能放洗碗机吗？",
    "kb.ask": "提问",
    "kb.asking": "回答中…",
    "kb.newChat": "新对话",
    "kb.you": "顾客",
    "kb.bot": "AI 客服",
    "kb.unknown": "资料里没有答案",
    "kb.sources": "出处",
    "kb.citedNone": "回答没有标注编号；这些是找到的资料：",
    "kb.emptyQuestion": "请先输入问题",
  },
  en: {
    "kb.title": "Product knowledge base",
    "kb.intro": "Upload product documents (manuals, FAQ sheets, product specs): the AI assistant answers shoppers only from them and cites where; what they do not say is answered with “I don't know — please ask our customer service staff”.",
    "kb.mine": "My knowledge bases",
    "kb.none": "No knowledge base yet: create one first.",
    "kb.newName": "New knowledge base",
    "kb.newHint": "e.g. Shop products",
    "kb.create": "Create",
    "kb.counts": "Documents: {docs} · passages: {chunks}",
    "kb.pick": "Choose or create a knowledge base on the left.",
    "kb.rename": "Rename",
    "kb.save": "Save",
    "kb.cancel": "Cancel",
    "kb.delete": "Delete knowledge base",
    "kb.confirmTitle": "Delete this knowledge base?",
    "kb.confirmText": "Every document and conversation of “{name}” will be deleted. This cannot be undone.",
    "kb.confirmYes": "Delete",
    "kb.docs": "Documents",
    "kb.drop": "Drop files here, or click to choose (several at once)",
    "kb.formats": "TXT, Markdown, PDF, DOCX, XLSX and CSV; a file with the same name replaces that document.",
    "kb.uploading": "Uploading {pct}%",
    "kb.reading": "Checking the file…",
    "kb.queued": "Uploaded; waiting to be indexed",
    "kb.indexing": "Indexing {pct}%",
    "kb.uploaded": "Added: {pages} pages, {chunks} passages",
    "kb.replaced": "Replaced the document of that name: {pages} pages, {chunks} passages",
    "kb.unchanged": "The same file is there already; not read again",
    "kb.noDocs": "No documents yet.",
    "kb.col.name": "File",
    "kb.col.kind": "Type",
    "kb.col.pages": "Pages",
    "kb.col.chunks": "Passages",
    "kb.col.size": "Size",
    "kb.col.updated": "Updated",
    "kb.col.status": "Status",
    "kb.status.queued": "Queued",
    "kb.status.indexing": "Indexing {pct}%",
    "kb.status.ready": "Ready",
    "kb.status.failed": "Failed",
    "kb.replacing": "The previous version answers until the new one is indexed",
    "kb.keptOld": "The previous version still answers",
    "kb.removeDoc": "Delete",
    "kb.chat": "Try questions",
    "kb.chatHint": "Ask as a shopper would, e.g. Can this mug go in the dishwasher?",
    "kb.ask": "Ask",
    "kb.asking": "Answering…",
    "kb.newChat": "New conversation",
    "kb.you": "Shopper",
    "kb.bot": "AI assistant",
    "kb.unknown": "Not in the documents",
    "kb.sources": "Sources",
    "kb.citedNone": "The answer cites no number; these are the passages found:",
    "kb.emptyQuestion": "Type a question first",
  },
});

const convKey = (kbId) => `zhike.kb.conversation.${kbId}`;
const POLL_MS = 1000; // how often the table is refreshed while a document is queued or being indexed
const active = (d) => d.status === "queued" || d.status === "indexing";
const percent = (d) => (d.progress.total ? Math.floor((100 * d.progress.done) / d.progress.total) : 0);
const ACCEPT = ".txt,.md,.markdown,.pdf,.docx,.xlsx,.csv,text/plain,text/markdown,text/csv,application/pdf";

export default function kbView(ctx) {
  useCss("views/kb.css");
  const status = statusLines("kb");
  let kbs = [];
  let current = null; // the open knowledge base
  let docs = [];
  let conversation = null; // its conversation id
  let messages = []; // [{role, content, citations, answered, streaming}]
  let asking = false;
  let abort = null;
  let poll = null; // the timer of the next refresh while documents are indexed

  // -- the list of knowledge bases ------------------------------------------------------------------------------
  const list = h("div", { class: "kb-list", id: "kb-list" });
  const newName = h("input", { id: "kb-new-name", maxlength: 100, autocomplete: "off", dataset: { i18nPlaceholder: "kb.newHint" } });
  const create = h("button", { type: "submit", class: "primary", id: "kb-create", dataset: { i18n: "kb.create" } });
  const createForm = h(
    "form",
    { class: "kb-create", novalidate: true },
    h("label", { for: "kb-new-name", dataset: { i18n: "kb.newName" } }),
    h("div", { class: "kb-inline" }, newName, create),
  );
  const side = h("aside", { class: "card kb-side" }, h("h2", { dataset: { i18n: "kb.mine" } }), list, createForm);

  // -- the open knowledge base --------------------------------------------------------------------------------
  const nameEl = h("h2", { id: "kb-name" });
  const counts = h("p", { class: "muted kb-counts", id: "kb-counts" });
  const renameBtn = h("button", { type: "button", class: "link", id: "kb-rename", dataset: { i18n: "kb.rename" } });
  const deleteBtn = h("button", { type: "button", class: "link danger-text", id: "kb-delete", dataset: { i18n: "kb.delete" } });
  const renameInput = h("input", { id: "kb-rename-input", maxlength: 100, autocomplete: "off" });
  const renameForm = h(
    "form",
    { class: "kb-inline kb-rename-form", hidden: true, novalidate: true },
    renameInput,
    h("button", { type: "submit", class: "primary", id: "kb-rename-save", dataset: { i18n: "kb.save" } }),
    h("button", { type: "button", class: "link", onclick: () => (renameForm.hidden = true), dataset: { i18n: "kb.cancel" } }),
  );
  const confirm = confirmDialog({ id: "confirm-kb", titleKey: "kb.confirmTitle", yesKey: "kb.confirmYes", noKey: "kb.cancel" });

  const fileInput = h("input", { type: "file", id: "kb-file", multiple: true, accept: ACCEPT, hidden: true });
  const drop = h(
    "button",
    { type: "button", class: "kb-drop", id: "kb-drop" },
    h("span", { dataset: { i18n: "kb.drop" } }),
  );
  const uploads = h("ul", { class: "kb-uploads", id: "kb-uploads" });
  const docsBox = h("div", { class: "kb-docs-box" });

  const question = h("textarea", { id: "kb-question", rows: 2, maxlength: 2000, dataset: { i18nPlaceholder: "kb.chatHint" } });
  const ask = h("button", { type: "submit", class: "primary", id: "kb-ask", dataset: { i18n: "kb.ask" } });
  const newChat = h("button", { type: "button", class: "link", id: "kb-new-chat", dataset: { i18n: "kb.newChat" } });
  const chat = h("div", { class: "kb-chat", id: "kb-chat", "aria-live": "polite" });
  const askError = h("p", { class: "error", id: "kb-ask-error", role: "alert", hidden: true });
  const askForm = h("form", { class: "kb-ask", novalidate: true }, question, h("div", { class: "kb-ask-actions" }, newChat, ask), askError);

  const main = h(
    "div",
    { class: "kb-main", id: "kb-main", hidden: true },
    h(
      "section",
      { class: "card" },
      h("div", { class: "kb-head" }, h("div", {}, nameEl, counts), h("div", { class: "kb-head-actions" }, renameBtn, deleteBtn)),
      renameForm,
      h("h3", { dataset: { i18n: "kb.docs" } }),
      drop,
      fileInput,
      h("p", { class: "muted kb-formats", dataset: { i18n: "kb.formats" } }),
      uploads,
      docsBox,
    ),
    h("section", { class: "card kb-chat-card" }, h("h3", { dataset: { i18n: "kb.chat" } }), chat, askForm),
  );
  const pickHint = h("p", { class: "muted kb-pick", id: "kb-pick", dataset: { i18n: "kb.pick" } });
  const el = h(
    "section",
    { class: "kb", id: "kb" },
    h("h1", { dataset: { i18n: "kb.title" } }),
    h("p", { class: "muted kb-intro", dataset: { i18n: "kb.intro" } }),
    noLlmNotice("kb-no-llm"),
    status.error,
    status.notice,
    h("div", { class: "kb-layout" }, side, h("div", { class: "kb-body" }, pickHint, main)),
    confirm.element,
  );
  ctx.onLeave(() => {
    if (abort) abort.abort();
    clearTimeout(poll);
  });

  function renderList() {
    list.replaceChildren(
      ...(kbs.length
        ? kbs.map((kb) =>
            h(
              "button",
              { type: "button", class: "kb-item", "aria-current": String(current?.id === kb.id), dataset: { kbId: kb.id }, onclick: () => open(kb.id) },
              h("span", { class: "kb-item-name" }, kb.name),
              h("span", { class: "muted kb-item-counts" }, t("kb.counts", { docs: kb.documents, chunks: kb.chunks })),
            ),
          )
        : [h("p", { class: "muted", id: "kb-none", dataset: { i18n: "kb.none" } })]),
    );
    translate(list);
  }

  async function loadList() {
    const data = await api("/api/v1/kb");
    kbs = data.kbs || [];
    if (current) current = kbs.find((k) => k.id === current.id) || null;
    renderList();
    list.dataset.loaded = "true";
  }

  function renderHead() {
    if (!current) return;
    nameEl.textContent = current.name;
    counts.textContent = t("kb.counts", { docs: current.documents, chunks: current.chunks });
  }

  function renderDocs() {
    if (!docs.length) {
      docsBox.replaceChildren(h("p", { class: "muted", id: "kb-no-docs", dataset: { i18n: "kb.noDocs" } }));
      translate(docsBox);
      return;
    }
    const col = (key) => h("th", { dataset: { i18n: `kb.col.${key}` } });
    const cell = (key, value, attrs = {}) => h("td", { dataset: { label: t(`kb.col.${key}`) }, ...attrs }, value);
    docsBox.replaceChildren(
      h(
        "div",
        { class: "table-card" },
        h(
          "table",
          { class: "data-table kb-docs", id: "kb-docs" },
          h("thead", {}, h("tr", {}, col("name"), col("status"), col("kind"), col("pages"), col("chunks"), col("size"), col("updated"), h("th"))),
          h(
            "tbody",
            {},
            docs.map((d) =>
              h(
                "tr",
                { dataset: { docId: d.id, status: d.status } },
                cell("name", d.name, { class: "kb-doc-name" }),
                cell("status", statusOf(d)),
                cell("kind", d.kind),
                cell("pages", String(d.pages)),
                cell("chunks", String(d.chunks)),
                cell("size", formatBytes(d.size_bytes)),
                cell("updated", formatDate(d.updated_at)),
                h("td", { class: "kb-doc-actions" }, h("button", { type: "button", class: "link", onclick: () => removeDoc(d), dataset: { i18n: "kb.removeDoc" } })),
              ),
            ),
          ),
        ),
      ),
    );
    translate(docsBox);
  }

  // A document's status: 排队中 / 解析中 x% (a bar) / 可用 / 失败 with why, in the page's language; a new version
  // being indexed, or one that failed, says the previous one still answers.
  function statusOf(d) {
    const label =
      d.status === "indexing" ? t("kb.status.indexing", { pct: percent(d) }) : t(`kb.status.${d.status}`);
    const parts = [h("span", { class: `kb-doc-status kb-status-${d.status}` }, label)];
    if (d.status === "indexing") {
      const fill = h("div", { class: "bar-fill" });
      fill.style.width = `${percent(d)}%`; // a property, not a style attribute (the CSP allows no inline styles)
      parts.push(h("div", { class: "bar" }, fill));
    }
    if (d.status === "failed" && d.error) parts.push(h("p", { class: "kb-doc-error" }, errorMessage(d.error)));
    if ((active(d) && d.replacing) || (d.status === "failed" && d.chunks > 0)) {
      parts.push(h("p", { class: "muted kb-doc-note" }, t(active(d) ? "kb.replacing" : "kb.keptOld")));
    }
    return h("div", { class: "kb-doc-state" }, ...parts);
  }

  // Uploads whose document is being indexed: their row follows the document until it is ready or failed.
  const following = new Map(); // document id -> upload row

  async function loadDocs() {
    if (!current) return;
    const id = current.id;
    clearTimeout(poll);
    const data = await api(`/api/v1/kb/${encodeURIComponent(id)}/documents`);
    if (current?.id !== id) return;
    const wasActive = docs.filter(active).map((d) => d.id);
    docs = data.documents || [];
    renderDocs();
    for (const d of docs) following.get(d.id)?.follow(d);
    for (const [docId, r] of following) if (!docs.some((d) => d.id === docId)) r.follow(null);
    const finished = wasActive.some((docId) => !docs.some((d) => d.id === docId && active(d)));
    if (finished) {
      await loadList().catch(() => {}); // the passage counts changed
      renderHead();
    }
    if (docs.some(active)) poll = setTimeout(() => loadDocs().catch((err) => status.showError(err)), POLL_MS);
  }

  async function open(id) {
    current = kbs.find((k) => k.id === id) || null;
    if (abort) abort.abort();
    status.showError(null);
    main.hidden = !current;
    pickHint.hidden = Boolean(current);
    renderList();
    if (!current) return;
    main.dataset.kbId = current.id;
    const hash = `#/kb/${encodeURIComponent(current.id)}`;
    if (location.hash !== hash) history.replaceState(history.state, "", hash);
    renameForm.hidden = true;
    uploads.replaceChildren();
    following.clear();
    clearTimeout(poll);
    docs = [];
    docsBox.replaceChildren();
    renderHead();
    conversation = sessionStorage.getItem(convKey(current.id));
    messages = [];
    renderChat();
    try {
      await Promise.all([loadDocs(), conversation ? loadConversation(current.id, conversation) : null]);
    } catch (err) {
      status.showError(err);
    }
    main.dataset.loaded = "true";
  }

  // -- create, rename, delete ---------------------------------------------------------------------------------
  createForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    status.showError(null);
    const name = newName.value.trim();
    if (!name) return newName.focus();
    create.disabled = true;
    try {
      const kb = await api("/api/v1/kb", { method: "POST", body: { name } });
      newName.value = "";
      await loadList();
      await open(kb.id);
    } catch (err) {
      status.showError(err);
    } finally {
      create.disabled = false;
    }
  });

  renameBtn.addEventListener("click", () => {
    renameInput.value = current?.name || "";
    renameForm.hidden = false;
    renameInput.focus();
  });
  renameForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    status.showError(null);
    try {
      current = await api(`/api/v1/kb/${encodeURIComponent(current.id)}`, { method: "PATCH", body: { name: renameInput.value.trim() } });
      renameForm.hidden = true;
      await loadList();
      renderHead();
    } catch (err) {
      status.showError(err);
    }
  });
  deleteBtn.addEventListener("click", () => {
    const kb = current;
    confirm.ask(t("kb.confirmText", { name: kb.name }), async () => {
      try {
        await api(`/api/v1/kb/${encodeURIComponent(kb.id)}`, { method: "DELETE" });
        sessionStorage.removeItem(convKey(kb.id));
        current = null;
        main.hidden = true;
        pickHint.hidden = false;
        history.replaceState(history.state, "", "#/kb");
        await loadList();
      } catch (err) {
        status.showError(err);
      }
    });
  });

  // -- documents ----------------------------------------------------------------------------------------------
  function uploadRow(file) {
    const bar = h("div", { class: "bar-fill" });
    const state = h("span", { class: "kb-upload-state muted" });
    const row = h(
      "li",
      { dataset: { file: file.name, state: "uploading" } },
      h("span", { class: "kb-upload-name" }, file.name),
      h("div", { class: "bar" }, bar),
      state,
    );
    let last = ["kb.uploading", { pct: 0 }];
    let uploadedAs = null; // the upload's answer ({document, replaced, unchanged})
    const say = (key, vars, cls = "") => {
      last = [key, vars, cls];
      state.textContent = typeof key === "string" ? t(key, vars) : key.text;
      state.className = `kb-upload-state ${cls || "muted"}`;
    };
    say("kb.uploading", { pct: 0 });
    return {
      row,
      progress(share) {
        bar.style.width = `${Math.round(share * 100)}%`;
        if (share >= 1) {
          row.dataset.state = "reading";
          say("kb.reading", {});
        } else say("kb.uploading", { pct: Math.round(share * 100) });
      },
      uploaded(res) {
        // Stored: indexed in the background; the row follows the document (loadDocs) until it is ready.
        uploadedAs = res;
        bar.style.width = "0%";
        following.set(res.document.id, this);
        this.follow(res.document);
      },
      follow(d) {
        if (!d) {
          following.forEach((r, id) => r === this && following.delete(id));
          return;
        }
        if (active(d)) {
          row.dataset.state = "indexing";
          bar.style.width = `${percent(d)}%`;
          if (d.status === "queued") say("kb.queued", {});
          else say("kb.indexing", { pct: percent(d) });
          return;
        }
        following.delete(d.id);
        if (d.status === "failed") return this.failDoc(d.error || { code: "internal_error", message: "" });
        row.dataset.state = "done";
        bar.style.width = "100%";
        const res = uploadedAs || { unchanged: true, replaced: false };
        say(res.unchanged ? "kb.unchanged" : res.replaced ? "kb.replaced" : "kb.uploaded", { pages: d.pages, chunks: d.chunks }, "kb-upload-ok");
      },
      failDoc(error) {
        // The indexing failed: the stored error, in the page's language (errors.js: document_timeout...).
        row.dataset.state = "error";
        row.dataset.code = error.code || "";
        say({ text: errorMessage(error) }, {}, "kb-upload-error");
        last = [{ docError: error }, {}, "kb-upload-error"];
      },
      fail(err) {
        row.dataset.state = "error";
        row.dataset.code = err.code || "";
        // The error in the page's language, named by its code (errors.js: document_encrypted, document_bomb...).
        say({ text: errorText(err) }, {}, "kb-upload-error");
        last = [{ err }, {}, "kb-upload-error"];
      },
      relabel() {
        if (last[0] && last[0].err) say({ text: errorText(last[0].err) }, {}, "kb-upload-error");
        else if (last[0] && last[0].docError) say({ text: errorMessage(last[0].docError) }, {}, "kb-upload-error");
        else say(...last);
      },
    };
  }

  const rows = [];
  async function addFiles(files) {
    if (!current || !files.length) return;
    const kbId = current.id;
    const jobs = [...files].map((file) => {
      const r = uploadRow(file);
      rows.push(r);
      uploads.append(r.row);
      return { file, r };
    });
    // One at a time: the server checks each file before it answers (and limits a user's parallel uploads); the
    // indexing then goes on in the background, its progress shown by the table's refreshes.
    for (const { file, r } of jobs) {
      try {
        r.uploaded(await uploadWithProgress(`/api/v1/kb/${encodeURIComponent(kbId)}/documents`, file, (s) => r.progress(s)));
      } catch (err) {
        r.fail(err);
      }
      if (current?.id === kbId) await loadDocs().catch((err) => status.showError(err));
    }
    if (current?.id === kbId) {
      await loadList().catch(() => {});
      renderHead();
    }
  }

  drop.addEventListener("click", () => fileInput.click());
  dropFiles(drop, fileInput, addFiles);

  async function removeDoc(d) {
    status.showError(null);
    try {
      await api(`/api/v1/kb/${encodeURIComponent(current.id)}/documents/${encodeURIComponent(d.id)}`, { method: "DELETE" });
      await loadList();
      renderHead();
      await loadDocs();
    } catch (err) {
      status.showError(err);
    }
  }

  // -- try questions ------------------------------------------------------------------------------------------
  function citationsOf(m) {
    const cites = m.citations || [];
    if (!cites.length) return null;
    const cited = cites.filter((c) => c.cited);
    const shown = cited.length ? cited : cites;
    return h(
      "div",
      { class: "kb-citations" },
      h("p", { class: "kb-citations-head" }, cited.length ? t("kb.sources") : t("kb.citedNone")),
      h(
        "ol",
        {},
        shown.map((c) =>
          h(
            "li",
            { class: "kb-citation", dataset: { n: String(c.n), documentId: c.document_id } },
            h("details", {}, h("summary", {}, h("span", { class: "kb-cite-n" }, `[${c.n}]`), " ", h("strong", {}, c.document), c.where ? h("span", { class: "muted" }, ` · ${c.where}`) : null), h("p", { class: "kb-passage" }, c.text)),
          ),
        ),
      ),
    );
  }

  function messageEl(m) {
    if (m.role === "user") {
      return h("div", { class: "kb-msg kb-user", dataset: { role: "user" } }, h("span", { class: "kb-who" }, t("kb.you")), h("p", {}, m.content));
    }
    const answered = m.answered !== false;
    return h(
      "div",
      { class: `kb-msg kb-answer${answered ? "" : " unknown"}`, dataset: { role: "assistant", answered: m.streaming ? "" : String(answered) } },
      h("span", { class: "kb-who" }, t("kb.bot"), !answered && !m.streaming ? h("span", { class: "kb-unknown-badge" }, t("kb.unknown")) : null),
      h("p", { class: "kb-answer-text" }, m.content || (m.streaming ? "…" : "")),
      m.streaming ? null : citationsOf(m),
    );
  }

  function renderChat() {
    chat.replaceChildren(...messages.map(messageEl));
    chat.hidden = !messages.length;
    chat.scrollTop = chat.scrollHeight;
  }

  async function loadConversation(kbId, id) {
    try {
      const data = await api(`/api/v1/kb/${encodeURIComponent(kbId)}/conversations/${encodeURIComponent(id)}`);
      if (current?.id !== kbId) return;
      // A stored answer's "不知道" is the one without citations (the API says `answered` only on a fresh answer).
      messages = (data.messages || []).map((m) => ({ ...m, answered: m.role !== "assistant" || (m.citations || []).length > 0 }));
      renderChat();
    } catch (err) {
      if (err.status !== 404) throw err;
      sessionStorage.removeItem(convKey(kbId)); // gone (the knowledge base's documents changed hands): start afresh
      conversation = null;
    }
  }

  newChat.addEventListener("click", () => {
    if (abort) abort.abort();
    if (current) sessionStorage.removeItem(convKey(current.id));
    conversation = null;
    messages = [];
    askError.hidden = true;
    renderChat();
    question.focus();
  });

  const labelAsk = () => (ask.textContent = t(asking ? "kb.asking" : "kb.ask"));

  askForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!current || asking) return;
    const text = question.value.trim();
    askError.hidden = true;
    if (!text) {
      askError.textContent = t("kb.emptyQuestion");
      askError.hidden = false;
      return question.focus();
    }
    const kbId = current.id;
    asking = true;
    ask.disabled = true;
    labelAsk();
    const mine = { role: "user", content: text };
    const answer = { role: "assistant", content: "", citations: [], streaming: true };
    messages.push(mine, answer);
    renderChat();
    question.value = "";
    const aborter = new AbortController();
    abort = aborter;
    try {
      const body = { question: text, conversation_id: conversation, stream: true };
      const res = await apiStream(`/api/v1/kb/${encodeURIComponent(kbId)}/ask`, body, { signal: aborter.signal });
      for await (const { event, data } of sseEvents(res)) {
        if (current?.id !== kbId) break;
        if (event === "token") {
          answer.content += data.text || "";
          const last = chat.lastElementChild?.querySelector(".kb-answer-text");
          if (last) last.textContent = answer.content;
          chat.scrollTop = chat.scrollHeight;
        } else if (event === "done") {
          Object.assign(answer, { content: data.answer, citations: data.citations, answered: data.answered, streaming: false });
          conversation = data.conversation_id;
          sessionStorage.setItem(convKey(kbId), conversation);
        } else if (event === "error") {
          const e = data.error || data;
          throw new ApiError(200, e.message, e.code, e);
        }
      }
    } catch (err) {
      const at = messages.indexOf(mine);
      if (at >= 0) messages.splice(at, 2);
      if (!aborter.signal.aborted) {
        question.value = text; // asked again with one click
        askError.textContent = errorText(err);
        askError.hidden = false;
      }
    } finally {
      answer.streaming = false;
      asking = false;
      ask.disabled = false;
      labelAsk();
      if (abort === aborter) abort = null;
      renderChat();
    }
  });
  question.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      askForm.requestSubmit();
    }
  });

  ctx.onRelabel(() => {
    translate(el);
    renderList();
    renderHead();
    if (docs.length) renderDocs();
    for (const r of rows) r.relabel();
    renderChat();
    labelAsk();
    status.relabel();
  });

  loadList()
    .then(() => {
      const want = ctx.path[0] || (kbs.length === 1 ? kbs[0].id : null);
      if (want) return open(want);
    })
    .catch((err) => status.showError(err))
    .finally(() => (el.dataset.loaded = "true"));
  labelAsk();
  translate(el);
  return el;
}
