// 素材库 (#/stock): your images in folders with tags (a folder sidebar, tag filter, search, multi-upload, move by
// drag or menu, rename, tag/untag), and the bundled stock (badges, price tags, ribbons, frames, shapes,
// backgrounds; CC0) in its own section, each with the `stock:ID` a template uses as an image source.
import { api, assetThumbUrl, uploadAsset, UPLOAD_ACCEPT } from "../api.js";
import { confirmDialog, formatDate, h, statusLines, useCss } from "../dom.js";
import { addStrings, pick, t, translate } from "../i18n.js";
import { loadOps } from "../ops.js";

addStrings({
  zh: {
    "stock.title": "素材库",
    "stock.intro": "上传的图片按文件夹和标签整理；自带的角标、价格签、横幅、边框、形状和背景可直接用于模板。",
    "stock.mine": "我的素材",
    "stock.all": "全部",
    "stock.unfiled": "未归类",
    "stock.newFolder": "新建文件夹",
    "stock.folderName": "文件夹名称",
    "stock.create": "创建",
    "stock.rename": "重命名",
    "stock.delete": "删除",
    "stock.search": "搜索名称或标签",
    "stock.tagAll": "全部标签",
    "stock.upload": "上传图片",
    "stock.uploading": "正在上传 {done}/{total}…",
    "stock.uploaded": "已上传 {n} 张图片。",
    "stock.empty": "这里还没有图片。可以上传，或把图片拖到左侧文件夹。",
    "stock.moveTo": "移动到…",
    "stock.moved": "已移动到“{name}”。",
    "stock.movedTop": "已移到未归类。",
    "stock.addTag": "添加标签",
    "stock.removeTag": "移除标签 {tag}",
    "stock.renamePrompt": "新名称",
    "stock.save": "保存",
    "stock.cancel": "取消",
    "stock.uploadedOp": "上传",
    "stock.deleteTitle": "删除这个文件夹？",
    "stock.deleteText": "文件夹“{name}”里的图片会移到“未归类”，不会被删除。",
    "stock.deleteYes": "删除文件夹",
    "stock.deleteNo": "取消",
    "stock.deleted": "已删除文件夹，{n} 张图片移到了未归类。",
    "stock.bundled": "内置素材",
    "stock.bundledIntro": "由智客绘制，以 CC0 协议发布（公共领域，可商用，无需署名）。在模板的图片图层里写 stock:编号 即可使用。",
    "stock.catAll": "全部",
    "stock.licence": "协议 {licence}",
    "stock.copyRef": "复制引用",
    "stock.copied": "已复制 {ref}",
    "stock.dropHere": "拖到这里",
  },
  en: {
    "stock.title": "Stock",
    "stock.intro": "Your uploads, in folders and with tags; plus bundled badges, price tags, ribbons, frames, shapes and backgrounds ready for templates.",
    "stock.mine": "My images",
    "stock.all": "All",
    "stock.unfiled": "Unfiled",
    "stock.newFolder": "New folder",
    "stock.folderName": "Folder name",
    "stock.create": "Create",
    "stock.rename": "Rename",
    "stock.delete": "Delete",
    "stock.search": "Search names or tags",
    "stock.tagAll": "All tags",
    "stock.upload": "Upload images",
    "stock.uploading": "Uploading {done}/{total}…",
    "stock.uploaded": "Uploaded {n} images.",
    "stock.empty": "No images here yet. Upload some, or drag images onto a folder on the left.",
    "stock.moveTo": "Move to…",
    "stock.moved": "Moved to “{name}”.",
    "stock.movedTop": "Moved to Unfiled.",
    "stock.addTag": "Add tag",
    "stock.removeTag": "Remove tag {tag}",
    "stock.renamePrompt": "New name",
    "stock.save": "Save",
    "stock.cancel": "Cancel",
    "stock.uploadedOp": "Upload",
    "stock.deleteTitle": "Delete this folder?",
    "stock.deleteText": "The images in “{name}” move to Unfiled; none is deleted.",
    "stock.deleteYes": "Delete folder",
    "stock.deleteNo": "Cancel",
    "stock.deleted": "Folder deleted; {n} images moved to Unfiled.",
    "stock.bundled": "Bundled stock",
    "stock.bundledIntro": "Drawn for Zhike and released under CC0 (public domain: use them commercially, no credit needed). In a template's image layer, write stock:ID.",
    "stock.catAll": "All",
    "stock.licence": "Licence {licence}",
    "stock.copyRef": "Copy reference",
    "stock.copied": "Copied {ref}",
    "stock.dropHere": "Drop here",
  },
});

const TOP = "none";

export default function stockView(ctx) {
  useCss("views/stock.css");
  const status = statusLines("stock");
  const state = { folder: "", tag: "", q: "", folders: [], unfiled: 0, assets: [], bundled: null, category: "" };
  let ops = new Map();
  let searchTimer = null;

  const folderList = h("ul", { class: "stock-folders", id: "stock-folders" });
  const newName = h("input", { id: "stock-new-folder", maxlength: 100, autocomplete: "off", dataset: { i18nPlaceholder: "stock.folderName" } });
  const search = h("input", { type: "search", id: "stock-search", maxlength: 200, dataset: { i18nPlaceholder: "stock.search" } });
  const tagSelect = h("select", { id: "stock-tag" });
  const files = h("input", { type: "file", id: "stock-files", accept: UPLOAD_ACCEPT, multiple: true, hidden: true });
  const grid = h("div", { class: "stock-grid", id: "stock-grid" });
  const bundledCats = h("div", { class: "stock-cats", id: "stock-cats", role: "group" });
  const bundledGrid = h("div", { class: "stock-bundled-grid", id: "stock-bundled" });
  const confirm = confirmDialog({ id: "stock-delete-confirm", titleKey: "stock.deleteTitle", yesKey: "stock.deleteYes", noKey: "stock.deleteNo" });

  const folderName = (id) => (id === null || id === TOP ? t("stock.unfiled") : state.folders.find((f) => f.id === id)?.name || "");

  // -- folders ------------------------------------------------------------------------------------------------
  function dropTarget(el, folderId) {
    el.addEventListener("dragover", (ev) => {
      if (!ev.dataTransfer.types.includes("application/x-zhike-asset")) return;
      ev.preventDefault();
      el.classList.add("drop");
    });
    el.addEventListener("dragleave", () => el.classList.remove("drop"));
    el.addEventListener("drop", (ev) => {
      ev.preventDefault();
      el.classList.remove("drop");
      const id = ev.dataTransfer.getData("application/x-zhike-asset");
      if (id) move([id], folderId);
    });
  }

  function folderItem(id, label, count, editable) {
    const button = h(
      "button",
      { type: "button", class: "stock-folder", "aria-pressed": String(state.folder === id), dataset: { folder: id }, onclick: () => openFolder(id) },
      h("span", { class: "stock-folder-name" }, label),
      h("span", { class: "stock-count" }, count === null ? "" : String(count)),
    );
    const li = h("li", {}, button);
    if (id !== "") dropTarget(button, id === TOP ? null : id);
    if (editable) {
      li.append(
        h(
          "span",
          { class: "stock-folder-tools" },
          h("button", { type: "button", class: "link", dataset: { i18n: "stock.rename" }, onclick: () => renameFolder(id) }),
          h("button", { type: "button", class: "link danger", dataset: { i18n: "stock.delete" }, onclick: () => deleteFolder(id) }),
        ),
      );
    }
    return li;
  }

  function renderFolders() {
    const total = state.unfiled + state.folders.reduce((n, f) => n + f.count, 0);
    folderList.replaceChildren(
      folderItem("", t("stock.all"), total, false),
      folderItem(TOP, t("stock.unfiled"), state.unfiled, false),
      ...state.folders.map((f) => folderItem(f.id, f.name, f.count, true)),
    );
    translate(folderList);
  }

  async function loadFolders() {
    const data = await api("/api/v1/stock/folders");
    state.folders = data.folders;
    state.unfiled = data.unfiled;
    renderFolders();
  }

  async function loadTags() {
    const { tags } = await api("/api/v1/stock/tags");
    const want = state.tag;
    tagSelect.replaceChildren(h("option", { value: "" }, t("stock.tagAll")), ...tags.map((x) => h("option", { value: x.tag }, `${x.tag} (${x.count})`)));
    tagSelect.value = tags.some((x) => x.tag === want) ? want : "";
    state.tag = tagSelect.value;
  }

  function openFolder(id) {
    state.folder = id;
    renderFolders();
    loadAssets();
  }

  async function createFolder(ev) {
    ev.preventDefault();
    status.showNotice(null);
    try {
      const folder = await api("/api/v1/stock/folders", { method: "POST", body: { name: newName.value } });
      newName.value = "";
      await loadFolders();
      openFolder(folder.id);
      status.showError(null);
    } catch (err) {
      status.showError(err);
    }
  }

  function renameFolder(id) {
    const li = folderList.querySelector(`[data-folder="${CSS.escape(id)}"]`)?.parentElement;
    if (!li) return;
    const input = h("input", { value: folderName(id), maxlength: 100, class: "stock-rename-input", "aria-label": t("stock.renamePrompt") });
    const form = h(
      "form",
      {
        class: "stock-inline",
        onsubmit: async (ev) => {
          ev.preventDefault();
          try {
            await api(`/api/v1/stock/folders/${encodeURIComponent(id)}`, { method: "PATCH", body: { name: input.value } });
            status.showError(null);
            await loadFolders();
          } catch (err) {
            status.showError(err);
          }
        },
      },
      input,
      h("button", { type: "submit", class: "secondary", dataset: { i18n: "stock.save" } }),
      h("button", { type: "button", class: "link", dataset: { i18n: "stock.cancel" }, onclick: renderFolders }),
    );
    li.replaceChildren(form);
    translate(form);
    input.focus();
    input.select();
  }

  function deleteFolder(id) {
    confirm.ask(t("stock.deleteText", { name: folderName(id) }), async () => {
      try {
        const out = await api(`/api/v1/stock/folders/${encodeURIComponent(id)}`, { method: "DELETE" });
        if (state.folder === id) state.folder = "";
        status.showNotice("stock.deleted", { n: out.moved });
        await loadFolders();
        await loadAssets();
      } catch (err) {
        status.showError(err);
      }
    });
  }

  // -- images -------------------------------------------------------------------------------------------------
  async function loadAssets() {
    const params = new URLSearchParams({ limit: "200" });
    if (state.folder) params.set("folder", state.folder);
    if (state.tag) params.set("tag", state.tag);
    if (state.q) params.set("q", state.q);
    grid.setAttribute("aria-busy", "true");
    try {
      state.assets = (await api(`/api/v1/stock/assets?${params}`)).assets;
      renderAssets();
    } catch (err) {
      status.showError(err);
    } finally {
      grid.removeAttribute("aria-busy");
    }
  }

  function moveMenu(a) {
    const select = h(
      "select",
      { class: "stock-move", "aria-label": t("stock.moveTo"), dataset: { assetId: a.id } },
      h("option", { value: "" }, t("stock.moveTo")),
      h("option", { value: TOP, disabled: a.folder_id === null }, t("stock.unfiled")),
      ...state.folders.map((f) => h("option", { value: f.id, disabled: a.folder_id === f.id }, f.name)),
    );
    select.addEventListener("change", () => {
      if (select.value) move([a.id], select.value === TOP ? null : select.value);
    });
    return select;
  }

  function tagChips(a) {
    const chips = (a.tags || []).map((tag) =>
      h(
        "span",
        { class: "stock-tag" },
        tag,
        h("button", { type: "button", class: "stock-untag", title: t("stock.removeTag", { tag }), "aria-label": t("stock.removeTag", { tag }), onclick: () => retag(a.id, [], [tag]) }, "×"),
      ),
    );
    const input = h("input", { class: "stock-tag-input", maxlength: 50, placeholder: t("stock.addTag"), "aria-label": t("stock.addTag") });
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && input.value.trim()) {
        ev.preventDefault();
        retag(a.id, [input.value.trim()], []);
      }
    });
    return h("div", { class: "stock-tags" }, chips, input);
  }

  function nameLine(a) {
    const title = h("button", { type: "button", class: "stock-name", title: t("stock.rename"), onclick: () => rename() }, a.name || a.id);
    const line = h("div", { class: "stock-name-line" }, title);
    function rename() {
      const input = h("input", { value: a.name || "", maxlength: 100, "aria-label": t("stock.renamePrompt") });
      const form = h(
        "form",
        {
          class: "stock-inline",
          onsubmit: async (ev) => {
            ev.preventDefault();
            try {
              const out = await api(`/api/v1/stock/assets/${encodeURIComponent(a.id)}`, { method: "PATCH", body: { name: input.value } });
              a.name = out.name;
              status.showError(null);
              line.replaceChildren(nameLine(a));
            } catch (err) {
              status.showError(err);
            }
          },
        },
        input,
        h("button", { type: "submit", class: "secondary" }, t("stock.save")),
      );
      line.replaceChildren(form);
      input.focus();
      input.select();
    }
    return line;
  }

  function card(a) {
    const op = a.origin === "upload" ? t("stock.uploadedOp") : pick(ops.get(a.op)?.title) || a.op || "";
    const el = h(
      "figure",
      { class: "stock-card card", draggable: "true", dataset: { assetId: a.id, name: a.name || "" } },
      h("img", { src: assetThumbUrl(a.id), alt: a.name || "", loading: "lazy", draggable: "false" }),
      h(
        "figcaption",
        {},
        nameLine(a),
        h("div", { class: "stock-meta muted" }, h("span", {}, op), h("span", {}, formatDate(a.created_at))),
        tagChips(a),
        moveMenu(a),
      ),
    );
    el.addEventListener("dragstart", (ev) => {
      ev.dataTransfer.setData("application/x-zhike-asset", a.id);
      ev.dataTransfer.effectAllowed = "move";
      el.classList.add("dragging");
    });
    el.addEventListener("dragend", () => el.classList.remove("dragging"));
    return el;
  }

  function renderAssets() {
    grid.replaceChildren(...(state.assets.length ? state.assets.map(card) : [h("p", { class: "muted stock-empty", id: "stock-empty" }, t("stock.empty"))]));
  }

  async function move(ids, folderId) {
    try {
      await api("/api/v1/stock/assets/move", { method: "POST", body: { assets: ids, folder_id: folderId } });
      if (folderId === null) status.showNotice("stock.movedTop");
      else status.showNotice("stock.moved", { name: folderName(folderId) });
      status.showError(null);
      await loadFolders();
      await loadAssets();
    } catch (err) {
      status.showError(err);
    }
  }

  async function retag(id, add, remove) {
    try {
      await api("/api/v1/stock/assets/tags", { method: "POST", body: { assets: [id], add, remove } });
      status.showError(null);
      await loadTags();
      await loadAssets();
    } catch (err) {
      status.showError(err);
    }
  }

  files.addEventListener("change", async () => {
    const chosen = [...files.files];
    files.value = "";
    if (!chosen.length) return;
    let done = 0;
    const uploaded = [];
    status.showError(null);
    for (const file of chosen) {
      status.showNotice("stock.uploading", { done, total: chosen.length });
      try {
        uploaded.push((await uploadAsset(file)).id);
      } catch (err) {
        status.showError(err); // the others still go up
      }
      done += 1;
    }
    // Uploaded while a folder is open: it goes into that folder.
    if (uploaded.length && state.folder && state.folder !== TOP) {
      await api("/api/v1/stock/assets/move", { method: "POST", body: { assets: uploaded, folder_id: state.folder } }).catch((err) => status.showError(err));
    }
    status.showNotice("stock.uploaded", { n: uploaded.length });
    await loadFolders();
    await loadTags();
    await loadAssets();
  });

  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      state.q = search.value.trim();
      loadAssets();
    }, 250);
  });
  tagSelect.addEventListener("change", () => {
    state.tag = tagSelect.value;
    loadAssets();
  });

  // -- bundled ------------------------------------------------------------------------------------------------
  function renderBundled() {
    const b = state.bundled;
    if (!b) return;
    const chip = (key, label) =>
      h("button", { type: "button", class: "stock-cat", "aria-pressed": String(state.category === key), dataset: { category: key }, onclick: () => ((state.category = key), renderBundled()) }, label);
    bundledCats.replaceChildren(chip("", t("stock.catAll")), ...Object.entries(b.categories).map(([k, v]) => chip(k, pick(v))));
    const items = b.items.filter((it) => !state.category || it.category === state.category);
    bundledGrid.replaceChildren(
      ...items.map((it) =>
        h(
          "figure",
          { class: "stock-item", dataset: { stockId: it.id, category: it.category } },
          h("div", { class: "stock-item-img" }, h("img", { src: it.thumb_url, alt: pick(it.name), loading: "lazy" })),
          h(
            "figcaption",
            {},
            h("span", { class: "stock-item-name" }, pick(it.name)),
            h("code", { class: "stock-ref" }, it.ref),
            h("span", { class: "muted stock-licence" }, t("stock.licence", { licence: it.licence })),
            h("button", { type: "button", class: "link", onclick: () => copyRef(it.ref) }, t("stock.copyRef")),
          ),
        ),
      ),
    );
  }

  async function copyRef(ref) {
    try {
      await navigator.clipboard.writeText(ref);
    } catch {
      // no clipboard permission (plain http): the reference is on the card to select by hand
    }
    status.showNotice("stock.copied", { ref });
  }

  ctx.onRelabel(() => {
    renderFolders();
    renderAssets();
    renderBundled();
    loadTags().catch(() => {});
    status.relabel();
  });
  ctx.onLeave(() => clearTimeout(searchTimer));

  const root = h(
    "section",
    { class: "stock-page" },
    h("h1", { dataset: { i18n: "stock.title" } }),
    h("p", { class: "muted stock-intro", dataset: { i18n: "stock.intro" } }),
    status.error,
    status.notice,
    h(
      "div",
      { class: "stock-layout" },
      h(
        "aside",
        { class: "stock-side card" },
        h("h2", { dataset: { i18n: "stock.mine" } }),
        folderList,
        h("form", { class: "stock-new", id: "stock-new-form", onsubmit: createFolder }, newName, h("button", { type: "submit", class: "secondary", id: "stock-create-folder", dataset: { i18n: "stock.create" } })),
      ),
      h(
        "div",
        { class: "stock-main" },
        h(
          "div",
          { class: "stock-toolbar card" },
          search,
          tagSelect,
          h("button", { type: "button", class: "primary", id: "stock-upload", onclick: () => files.click(), dataset: { i18n: "stock.upload" } }),
          files,
        ),
        grid,
      ),
    ),
    h(
      "section",
      { class: "stock-bundled", id: "stock-bundled-section" },
      h("h2", { dataset: { i18n: "stock.bundled" } }),
      h("p", { class: "muted", dataset: { i18n: "stock.bundledIntro" } }),
      bundledCats,
      bundledGrid,
    ),
    confirm.element,
  );
  translate(root);

  loadOps()
    .then((found) => {
      ops = new Map(found.map((o) => [o.name, o]));
      renderAssets();
    })
    .catch(() => {});
  // Your images first: the server draws each bundled item the first time it is asked for (a few seconds of CPU
  // after a start), which must not hold them up.
  Promise.all([loadFolders(), loadTags()])
    .then(loadAssets)
    .catch((err) => status.showError(err))
    .then(() => api("/api/v1/stock/bundled"))
    .then(
      (b) => {
        state.bundled = b;
        renderBundled();
      },
      (err) => status.showError(err),
    );
  return root;
}
