// Models: what is installed (family, type, size, embedded, loaded); admins add by path or repo id and remove.
import { api } from "../api.js";
import { clearFormErrors, confirmDialog, formatBytes, h, showFormError, statusLines, useCss } from "../dom.js";
import { addStrings, t, translate } from "../i18n.js";

addStrings({
  zh: {
    "models.title": "模型",
    "models.intro": "这台服务器上可用的模型。内置模型随智客一起提供，不能移除。",
    "models.name": "名称",
    "models.family": "系列",
    "models.kind": "类型",
    "models.variant": "变体",
    "models.size": "大小",
    "models.embedded": "内置",
    "models.loaded": "已加载",
    "models.source": "来源",
    "models.actions": "操作",
    "models.yes": "是",
    "models.no": "—",
    "models.empty": "还没有模型。管理员可以在下方添加。",
    "models.emptyUser": "还没有模型，请联系管理员添加。",
    "models.remove": "移除",
    "models.add": "添加模型",
    "models.addIntro": "填写服务器上的文件夹或 .safetensors 文件路径，或 Hugging Face 仓库名（如 org/name，需要服务器能联网）。",
    "models.sourceLabel": "路径或仓库名",
    "models.sourceHint": "/data/models/my-model 或 org/name",
    "models.nameLabel": "名称（可选）",
    "models.nameHint": "默认使用文件夹或文件名",
    "models.addSubmit": "添加",
    "models.adding": "正在检查和登记，大模型需要一些时间…",
    "models.added": "已添加模型“{name}”。",
    "models.removed": "已移除模型“{name}”（文件仍保留在磁盘上）。",
    "models.confirmTitle": "移除模型？",
    "models.confirmText": "移除“{name}”后就不能再用它生成图片。模型文件会保留在服务器磁盘上，之后可以重新添加。",
    "models.confirmYes": "移除",
    "models.confirmNo": "取消",
    "kind.checkpoint": "底模",
    "kind.lora": "LoRA",
    "kind.controlnet": "ControlNet",
    "kind.vae": "VAE",
    "kind.upscaler": "放大",
    "kind.matting": "抠图",
    "kind.relight": "重新打光",
    "kind.llm": "语言模型",
    "kind.video": "视频模型",
    "variant.instruct": "对话",
    "variant.base": "标准",
    "variant.inpaint": "局部重绘",
    "models.guideTitle": "怎样添加生成模型",
    "models.guideNoModel": "不装模型也能用：抠图、证件照、超分、尺寸变换、批量设计、智能消除（快速擦除）和扩图（传统补边）。文生图、图生图、局部重绘、风格修改和线稿/姿势控制需要一个 SD 1.5 或 SDXL 底模。",
    "models.guideWhere": "从哪里下载",
    "models.guideWhere1": "Civitai（civitai.com）或 Hugging Face（huggingface.co）上的 SD 1.5 或 SDXL 底模：下载单个 .safetensors 文件，就是 A1111、ComfyUI 用的那种。",
    "models.guideWhere2": "也可以用 diffusers 格式的整个文件夹（里面有 model_index.json），例如 Hugging Face 上的 stable-diffusion-v1-5 或 stable-diffusion-xl-base-1.0。",
    "models.guideWhere3": "不要用 .ckpt / .pt 文件：它们能执行代码，会被拒绝；请下载 .safetensors 版本。",
    "models.guideCopy": "放到哪里",
    "models.guideCopy1": "把文件或文件夹复制到这台服务器的模型文件夹：$ZHIKE_HOME/models（默认是 ~/.zhike/models）。",
    "models.guideCopy2": "然后在服务器上登记：",
    "models.guideCopy3": "管理员也可以在本页下方填写服务器上的路径来添加。登记后刷新页面，生成功能就能用了。",
    "models.guideCmd": "zhike models add ~/.zhike/models/模型文件.safetensors",
  },
  en: {
    "models.title": "Models",
    "models.intro": "The models this server can use. Embedded models ship with Zhike and cannot be removed.",
    "models.name": "Name",
    "models.family": "Family",
    "models.kind": "Type",
    "models.variant": "Variant",
    "models.size": "Size",
    "models.embedded": "Embedded",
    "models.loaded": "Loaded",
    "models.source": "Source",
    "models.actions": "Actions",
    "models.yes": "Yes",
    "models.no": "—",
    "models.empty": "No models yet. Add one below.",
    "models.emptyUser": "No models yet. Ask an admin to add one.",
    "models.remove": "Remove",
    "models.add": "Add a model",
    "models.addIntro": "A folder or .safetensors file on the server, or a Hugging Face repo id (org/name; the server needs internet for that).",
    "models.sourceLabel": "Path or repo id",
    "models.sourceHint": "/data/models/my-model or org/name",
    "models.nameLabel": "Name (optional)",
    "models.nameHint": "Default: the folder or file name",
    "models.addSubmit": "Add",
    "models.adding": "Checking and registering; large models take a while…",
    "models.added": "Added model “{name}”.",
    "models.removed": "Removed model “{name}” (its files stay on disk).",
    "models.confirmTitle": "Remove this model?",
    "models.confirmText": "After removing “{name}” it can no longer be used. Its files stay on the server's disk; you can add it again later.",
    "models.confirmYes": "Remove",
    "models.confirmNo": "Cancel",
    "kind.checkpoint": "Checkpoint",
    "kind.lora": "LoRA",
    "kind.controlnet": "ControlNet",
    "kind.vae": "VAE",
    "kind.upscaler": "Upscaler",
    "kind.matting": "Cutout",
    "kind.relight": "Relight",
    "kind.llm": "Language model",
    "kind.video": "Video model",
    "variant.instruct": "Chat",
    "variant.base": "Base",
    "variant.inpaint": "Inpainting",
    "models.guideTitle": "How to add a generation model",
    "models.guideNoModel": "Works with no model at all: cutout, ID photo, upscale, resize, batch design, smart erase (quick erase) and extend (classical fill). Text to image, image to image, inpainting, style change and line-art/pose control need an SD 1.5 or SDXL checkpoint.",
    "models.guideWhere": "Where to get one",
    "models.guideWhere1": "An SD 1.5 or SDXL checkpoint from Civitai (civitai.com) or Hugging Face (huggingface.co): download the single .safetensors file, the kind A1111 and ComfyUI use.",
    "models.guideWhere2": "A diffusers folder (with model_index.json inside) works too, e.g. stable-diffusion-v1-5 or stable-diffusion-xl-base-1.0 from Hugging Face.",
    "models.guideWhere3": "Not .ckpt / .pt files: they can run code and are refused; download the .safetensors version.",
    "models.guideCopy": "Where to put it",
    "models.guideCopy1": "Copy the file or folder into this server's models folder: $ZHIKE_HOME/models (by default ~/.zhike/models).",
    "models.guideCopy2": "Then register it on the server:",
    "models.guideCopy3": "Admins can also add it below by its path on the server. Reload the page afterwards and generation works.",
    "models.guideCmd": "zhike models add ~/.zhike/models/your-model.safetensors",
  },
});


const label = (prefix, value) => (value && t(`${prefix}.${value}`) !== `${prefix}.${value}` ? t(`${prefix}.${value}`) : value || "");

export default function modelsView(ctx) {
  useCss("views/models.css");
  const admin = ctx.user && ctx.user.role === "admin";
  let models = null;
  const list = h("div", { id: "models-list", class: "models-list", "aria-busy": "true" }, h("p", { class: "muted", dataset: { i18n: "loading" } }));
  const status = statusLines("models");
  const { showError, showNotice } = status;


  // Where SD 1.5 / SDXL files come from and how they get here; open while no checkpoint is installed.
  const li = (key) => h("li", { dataset: { i18n: key } });
  const guide = h(
    "details",
    { class: "card models-guide", id: "models-guide" },
    h("summary", { dataset: { i18n: "models.guideTitle" } }),
    h("p", { dataset: { i18n: "models.guideNoModel" } }),
    h("h3", { dataset: { i18n: "models.guideWhere" } }),
    h("ul", {}, li("models.guideWhere1"), li("models.guideWhere2"), li("models.guideWhere3")),
    h("h3", { dataset: { i18n: "models.guideCopy" } }),
    h("ol", {}, li("models.guideCopy1"), h("li", {}, h("span", { dataset: { i18n: "models.guideCopy2" } }), h("pre", {}, h("code", { dataset: { i18n: "models.guideCmd" } }))), li("models.guideCopy3")),
  );


  // -- the list --------------------------------------------------------------------------------------------
  const COLS = ["name", "family", "kind", "variant", "size", "embedded", "loaded", "source"];
  function render() {
    if (!models) return;
    if (!models.length) {
      list.replaceChildren(h("p", { class: "muted", id: "models-empty" }, t(admin ? "models.empty" : "models.emptyUser")));
      return;
    }
    const cell = (col, content, cls) => h("td", { class: cls || null, dataset: { label: t(`models.${col}`) } }, content);
    const rows = models.map((m) =>
      h(
        "tr",
        { dataset: { model: m.name, embedded: String(Boolean(m.embedded)) } },
        cell("name", h("strong", {}, m.name), "model-name"),
        cell("family", m.family || "", "model-family"),
        cell("kind", label("kind", m.kind), "model-kind"),
        cell("variant", label("variant", m.variant)),
        cell("size", formatBytes(m.size_bytes), "model-size num"),
        cell("embedded", m.embedded ? h("span", { class: "tag tag-embedded" }, t("models.embedded")) : t("models.no"), "model-embedded"),
        cell("loaded", m.loaded ? h("span", { class: "tag tag-loaded" }, t("models.loaded")) : t("models.no"), "model-loaded"),
        cell("source", m.source || t("models.no"), "model-source"),
        admin
          ? cell(
              "actions",
              m.embedded ? null : h("button", { type: "button", class: "link model-remove", onclick: () => askRemove(m.name) }, t("models.remove")),
              "model-actions",
            )
          : null,
      ),
    );
    const head = h("tr", {}, ...COLS.map((c) => h("th", { scope: "col" }, t(`models.${c}`))), admin ? h("th", { scope: "col" }, h("span", { class: "sr-only" }, t("models.actions"))) : null);
    list.replaceChildren(h("table", { class: "models-table data-table" }, h("thead", {}, head), h("tbody", {}, rows)));
  }

  async function load() {
    try {
      const data = await api("/api/v1/models");
      const first = models === null;
      models = data.models || [];
      if (first) guide.open = !models.some((m) => m.kind === "checkpoint");
      showError(null);
      render();
    } catch (err) {
      showError(err);
    } finally {
      list.setAttribute("aria-busy", "false");
    }
  }

  // -- remove (admins) ---------------------------------------------------------------------------------------
  let removing = null;
  const confirm = confirmDialog({ id: "confirm-remove", titleKey: "models.confirmTitle", yesKey: "models.confirmYes", noKey: "models.confirmNo" });
  function askRemove(name) {
    removing = name;
    confirm.ask(t("models.confirmText", { name }), async () => {
      try {
        await api(`/api/v1/models/${encodeURIComponent(name)}`, { method: "DELETE" });
        showNotice("models.removed", { name });
        showError(null);
      } catch (err) {
        showNotice(null);
        showError(err);
      }
      load();
    });
  }

  // -- add (admins) ------------------------------------------------------------------------------------------
  let form = null;
  if (admin) {
    const source = h("input", { id: "model-source", name: "source", required: true, autocomplete: "off", spellcheck: "false", dataset: { i18nPlaceholder: "models.sourceHint" } });
    const name = h("input", { id: "model-name", name: "name", autocomplete: "off", maxlength: 100, dataset: { i18nPlaceholder: "models.nameHint" } });
    const submit = h("button", { type: "submit", class: "primary", id: "model-add", dataset: { i18n: "models.addSubmit" } });
    const formError = h("p", { class: "error", id: "model-add-error", role: "alert", hidden: true });
    const busy = h("p", { class: "muted", id: "model-adding", hidden: true, dataset: { i18n: "models.adding" } });
    form = h(
      "form",
      { class: "card model-add", id: "model-add-form", novalidate: true },
      h("h2", { dataset: { i18n: "models.add" } }),
      h("p", { class: "muted", dataset: { i18n: "models.addIntro" } }),
      h(
        "div",
        { class: "model-add-fields" },
        h("label", { class: "grow", dataset: { field: "source" } }, h("span", { dataset: { i18n: "models.sourceLabel" } }), source),
        h("label", { dataset: { field: "name" } }, h("span", { dataset: { i18n: "models.nameLabel" } }), name),
        h("div", { class: "model-add-submit" }, submit),
      ),
      busy,
      formError,
    );
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearFormErrors(form);
      formError.hidden = true;
      showNotice(null);
      const body = { source: source.value.trim() };
      if (name.value.trim()) body.name = name.value.trim();
      submit.disabled = true;
      busy.hidden = false;
      try {
        const added = await api("/api/v1/models", { method: "POST", body });
        form.reset();
        showNotice("models.added", { name: added.name });
        await load();
      } catch (err) {
        // An empty source fails the body check as `source` too, so it lands next to the field.
        showFormError(form, err, formError);
      } finally {
        submit.disabled = false;
        busy.hidden = true;
      }
    });
  }

  load();
  ctx.onRelabel(() => {
    render();
    status.relabel();
    if (removing && confirm.isOpen()) confirm.setText(t("models.confirmText", { name: removing }));
  });

  const el = h(
    "section",
    { class: "models", dataset: { admin: String(Boolean(admin)) } },
    h("h1", { tabindex: "-1", autofocus: true, dataset: { i18n: "models.title" } }), // focused first: the page opens at its top
    h("p", { class: "muted models-intro", dataset: { i18n: "models.intro" } }),
    status.notice,
    status.error,
    guide,
    h("div", { class: "card models-card table-card" }, list),
    form,
    admin ? confirm.element : null,
  );
  translate(el);
  return el;
}
