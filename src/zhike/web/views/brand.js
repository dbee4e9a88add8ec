// 品牌 (#/brand): the user's brand kit: name, logo (upload or pick from the stock library), five colours (swatches
// and a picker), heading and body fonts; a sample design previews the kit live, drawn by the server exactly as
// templates with `brand.*` references will be.
import { api, apiBlob, assetThumbUrl, uploadAsset, UPLOAD_ACCEPT } from "../api.js";
import { clearFormErrors, h, showFormError, statusLines, useCss } from "../dom.js";
import { addStrings, t, translate } from "../i18n.js";

addStrings({
  zh: {
    "brand.title": "品牌",
    "brand.intro": "设置一次品牌名称、标志、颜色和字体，模板里引用品牌的地方（如 brand.primary、{{brand.logo}}）就会自动使用它们。",
    "brand.name": "品牌名称",
    "brand.namePh": "例如：山茶小铺",
    "brand.logo": "标志",
    "brand.logoUpload": "上传标志",
    "brand.logoPick": "从素材库选择",
    "brand.logoNone": "未设置标志",
    "brand.logoClear": "移除",
    "brand.colors": "颜色",
    "brand.c.primary": "主色",
    "brand.c.secondary": "辅助色",
    "brand.c.accent": "点缀色",
    "brand.c.text": "文字色",
    "brand.c.background": "背景色",
    "brand.fonts": "字体",
    "brand.f.heading": "标题字体",
    "brand.f.body": "正文字体",
    "brand.f.sans": "默认（思源黑体等）",
    "brand.save": "保存品牌",
    "brand.saved": "已保存品牌。",
    "brand.reset": "恢复默认",
    "brand.resetDone": "已移除品牌设置，模板将使用默认颜色。",
    "brand.preview": "预览",
    "brand.previewAlt": "使用当前品牌设置的示例设计",
    "brand.sampleTitle": "新品上市",
    "brand.sampleLine": "品质好物 · 限时优惠",
    "brand.pickTitle": "选择标志",
    "brand.pickEmpty": "素材库里还没有图片，请先上传。",
    "brand.pickCancel": "取消",
    "brand.noKit": "你还没有保存品牌，下面是默认设置。",
  },
  en: {
    "brand.title": "Brand",
    "brand.intro": "Set your brand's name, logo, colours and fonts once: wherever a template refers to the brand (brand.primary, {{brand.logo}}) it uses them.",
    "brand.name": "Brand name",
    "brand.namePh": "e.g. Camellia Shop",
    "brand.logo": "Logo",
    "brand.logoUpload": "Upload logo",
    "brand.logoPick": "Pick from stock",
    "brand.logoNone": "No logo yet",
    "brand.logoClear": "Remove",
    "brand.colors": "Colours",
    "brand.c.primary": "Primary",
    "brand.c.secondary": "Secondary",
    "brand.c.accent": "Accent",
    "brand.c.text": "Text",
    "brand.c.background": "Background",
    "brand.fonts": "Fonts",
    "brand.f.heading": "Heading font",
    "brand.f.body": "Body font",
    "brand.f.sans": "Default (Source Han Sans and others)",
    "brand.save": "Save brand",
    "brand.saved": "Brand saved.",
    "brand.reset": "Reset to defaults",
    "brand.resetDone": "Brand removed: templates use the default colours again.",
    "brand.preview": "Preview",
    "brand.previewAlt": "A sample design in the current brand settings",
    "brand.sampleTitle": "New arrivals",
    "brand.sampleLine": "Quality goods · limited-time offer",
    "brand.pickTitle": "Pick a logo",
    "brand.pickEmpty": "Your stock library has no images yet: upload one first.",
    "brand.pickCancel": "Cancel",
    "brand.noKit": "You have not saved a brand yet; these are the defaults.",
  },
});

const COLOURS = ["primary", "secondary", "accent", "text", "background"];
// Quick picks beside each picker: colours Chinese shops use often (red, orange, gold, greens, blues, ink, paper).
const PALETTE = ["#e4393c", "#ff6a00", "#f5a623", "#c8961e", "#1a7f5a", "#00897b", "#1565c0", "#6a1b9a", "#1f1f1f", "#ffffff", "#fff8ee", "#f4f6f8"];
const HEX = /^#[0-9a-fA-F]{6}$/;

// The sample design: every kind of brand reference, so the preview shows the whole kit. The text is filled in the
// page's language through the row.
function sampleTemplate() {
  return {
    id: "brand_sample",
    name: { zh: "品牌示例", en: "Brand sample" },
    width: 800,
    height: 500,
    background: "brand.background",
    layers: [
      { type: "shape", id: "band", box: [0, 0, 800, 120], fill: "brand.primary" },
      { type: "image", id: "logo", src: "{{brand.logo}}", box: [30, 20, 80, 80], fit: "contain" },
      { type: "text", id: "brand", text: "{{brand.name}}", box: [130, 30, 620, 60], font: "brand.heading", weight: "bold", font_size: 44, color: "brand.background", valign: "middle", max_lines: 1 },
      { type: "text", id: "title", text: "{{title}}", box: [60, 170, 680, 100], font: "brand.heading", weight: "bold", font_size: 72, color: "brand.text", max_lines: 1 },
      { type: "text", id: "line", text: "{{line}}", box: [60, 290, 680, 60], font: "brand.body", font_size: 34, color: "brand.secondary", max_lines: 1 },
      { type: "shape", id: "button", box: [60, 380, 260, 80], radius: 40, fill: "brand.accent" },
      { type: "text", id: "price", text: "¥99", box: [60, 380, 260, 80], font: "brand.heading", weight: "bold", font_size: 44, color: "brand.text", align: "center", valign: "middle" },
      { type: "image", id: "badge", src: "stock:badge-xinpin", box: [600, 330, 150, 150], fit: "contain" },
    ],
  };
}

export default function brandView(ctx) {
  useCss("views/brand.css");
  const status = statusLines("brand");
  let fontChoices = ["sans"];
  let logo = null;
  let previewUrl = null;
  let timer = null;
  let serial = 0;

  const name = h("input", { id: "brand-name", maxlength: 100, autocomplete: "off", dataset: { i18nPlaceholder: "brand.namePh" } });
  const logoThumb = h("div", { class: "brand-logo-thumb", id: "brand-logo-thumb" });
  const fileInput = h("input", { type: "file", accept: UPLOAD_ACCEPT, hidden: true, id: "brand-logo-file" });
  const clearLogo = h("button", { type: "button", class: "link", id: "brand-logo-clear", dataset: { i18n: "brand.logoClear" } });
  const pickDialog = h("dialog", { class: "brand-pick", id: "brand-pick" });
  const colourInputs = {};
  const fontSelects = {};
  const preview = h("img", { id: "brand-preview", class: "brand-preview" });
  const noKit = h("p", { class: "muted", id: "brand-nokit", hidden: true, dataset: { i18n: "brand.noKit" } });

  function colourRow(key) {
    const text = h("input", { id: `brand-${key}`, class: "brand-hex", maxlength: 7, autocomplete: "off", spellcheck: "false" });
    const picker = h("input", { type: "color", class: "brand-picker", dataset: { colour: key, i18nTitle: `brand.c.${key}` } });
    const chip = h("span", { class: "brand-chip" });
    const sync = () => {
      if (HEX.test(text.value)) {
        picker.value = text.value.toLowerCase();
        chip.style.background = text.value;
      }
    };
    picker.addEventListener("input", () => {
      text.value = picker.value;
      sync();
      changed();
    });
    text.addEventListener("input", () => {
      sync();
      changed();
    });
    const swatches = PALETTE.map((c) =>
      h("button", {
        type: "button",
        class: "brand-swatch",
        title: c,
        "aria-label": c,
        style: `background:${c}`,
        onclick: () => {
          text.value = c;
          sync();
          changed();
        },
      }),
    );
    colourInputs[key] = { get: () => text.value.trim(), set: (v) => ((text.value = v), sync()) };
    return h(
      "div",
      { class: "brand-colour", dataset: { field: `colors.${key}` } },
      h("label", { for: `brand-${key}` }, chip, h("span", { dataset: { i18n: `brand.c.${key}` } })),
      h("div", { class: "brand-colour-inputs" }, text, picker),
      h("div", { class: "brand-swatches" }, swatches),
    );
  }

  function fontRow(key) {
    const select = h("select", { id: `brand-font-${key}` });
    select.addEventListener("change", changed);
    fontSelects[key] = select;
    return h("label", { class: "brand-font", dataset: { field: `fonts.${key}` } }, h("span", { dataset: { i18n: `brand.f.${key}` } }), select);
  }

  function fillFonts() {
    for (const [key, select] of Object.entries(fontSelects)) {
      const want = select.value || select.dataset.want || "sans";
      select.replaceChildren(...fontChoices.map((f) => h("option", { value: f }, f === "sans" ? t("brand.f.sans") : f)));
      select.value = fontChoices.includes(want) ? want : "sans";
      select.dataset.want = select.value;
    }
  }

  function kit() {
    const colors = {};
    for (const k of COLOURS) colors[k] = colourInputs[k].get();
    return {
      name: name.value.trim(),
      logo,
      colors,
      fonts: { heading: fontSelects.heading.value || "sans", body: fontSelects.body.value || "sans" },
    };
  }

  function showLogo() {
    logoThumb.replaceChildren(logo ? h("img", { src: assetThumbUrl(logo), alt: "" }) : h("span", { class: "muted", dataset: { i18n: "brand.logoNone" } }));
    clearLogo.hidden = !logo;
    translate(logoThumb);
  }

  function load(view) {
    fontChoices = view.fonts;
    const k = view.kit || { name: "", logo: null, colors: view.defaults.colors, fonts: { heading: view.defaults.font, body: view.defaults.font } };
    noKit.hidden = Boolean(view.kit);
    name.value = k.name || "";
    logo = k.logo || null;
    for (const c of COLOURS) colourInputs[c].set(k.colors[c]);
    for (const f of ["heading", "body"]) fontSelects[f].dataset.want = k.fonts[f];
    for (const s of Object.values(fontSelects)) s.value = "";
    fillFonts();
    showLogo();
    renderPreview();
  }

  function changed() {
    clearFormErrors(form);
    clearTimeout(timer);
    timer = setTimeout(renderPreview, 250);
  }

  async function renderPreview() {
    const body = kit();
    if (!COLOURS.every((c) => HEX.test(body.colors[c]))) return; // a half-typed colour: keep the last preview
    const mine = ++serial;
    try {
      const blob = await apiBlob("/api/v1/templates/preview", {
        template_json: sampleTemplate(),
        row: { title: t("brand.sampleTitle"), line: t("brand.sampleLine") },
        brand: body,
      });
      if (mine !== serial) return;
      if (previewUrl) URL.revokeObjectURL(previewUrl);
      previewUrl = URL.createObjectURL(blob);
      preview.src = previewUrl;
      preview.alt = t("brand.previewAlt");
      preview.dataset.kit = JSON.stringify(body.colors);
      status.showError(null);
    } catch (err) {
      if (mine === serial) showFormError(form, err, status.error);
    }
  }

  async function save(ev) {
    ev.preventDefault();
    status.showNotice(null);
    try {
      load(await api("/api/v1/brand", { method: "PUT", body: kit() }));
      status.showNotice("brand.saved");
    } catch (err) {
      showFormError(form, err, status.error);
    }
  }

  async function reset() {
    status.showNotice(null);
    try {
      load(await api("/api/v1/brand", { method: "DELETE" }));
      status.showNotice("brand.resetDone");
    } catch (err) {
      status.showError(err);
    }
  }

  fileInput.addEventListener("change", async () => {
    const file = fileInput.files[0];
    fileInput.value = "";
    if (!file) return;
    try {
      logo = (await uploadAsset(file, { tags: ["logo"] })).id;
      showLogo();
      changed();
    } catch (err) {
      status.showError(err);
    }
  });
  clearLogo.addEventListener("click", () => {
    logo = null;
    showLogo();
    changed();
  });

  async function pickLogo() {
    const grid = h("div", { class: "brand-pick-grid" });
    pickDialog.replaceChildren(
      h("h2", { dataset: { i18n: "brand.pickTitle" } }),
      grid,
      h("div", { class: "row-end" }, h("button", { type: "button", class: "secondary", onclick: () => pickDialog.close(), dataset: { i18n: "brand.pickCancel" } })),
    );
    translate(pickDialog);
    pickDialog.showModal();
    try {
      const page = await api("/api/v1/stock/assets?limit=200");
      if (!page.assets.length) grid.append(h("p", { class: "muted", dataset: { i18n: "brand.pickEmpty" } }));
      for (const a of page.assets) {
        grid.append(
          h(
            "button",
            {
              type: "button",
              class: "brand-pick-item",
              title: a.name || a.id,
              onclick: () => {
                logo = a.id;
                pickDialog.close();
                showLogo();
                changed();
              },
            },
            h("img", { src: assetThumbUrl(a.id), alt: a.name || "" }),
            h("span", {}, a.name || a.id),
          ),
        );
      }
      translate(grid);
    } catch (err) {
      grid.append(h("p", { class: "error" }, String(err.message || err)));
    }
  }

  const form = h(
    "form",
    { class: "brand-form card", id: "brand-form", onsubmit: save, novalidate: true },
    h("label", { class: "brand-name", dataset: { field: "name" } }, h("span", { dataset: { i18n: "brand.name" } }), name),
    h(
      "div",
      { class: "brand-logo", dataset: { field: "logo" } },
      h("span", { class: "brand-label", dataset: { i18n: "brand.logo" } }),
      h(
        "div",
        { class: "brand-logo-row" },
        logoThumb,
        h(
          "div",
          { class: "brand-logo-actions" },
          h("button", { type: "button", class: "secondary", id: "brand-logo-upload", onclick: () => fileInput.click(), dataset: { i18n: "brand.logoUpload" } }),
          h("button", { type: "button", class: "secondary", id: "brand-logo-pick", onclick: pickLogo, dataset: { i18n: "brand.logoPick" } }),
          clearLogo,
          fileInput,
        ),
      ),
    ),
    h("fieldset", { class: "brand-colours" }, h("legend", { dataset: { i18n: "brand.colors" } }), COLOURS.map(colourRow)),
    h("fieldset", { class: "brand-fonts" }, h("legend", { dataset: { i18n: "brand.fonts" } }), fontRow("heading"), fontRow("body")),
    status.error,
    status.notice,
    h(
      "div",
      { class: "brand-actions" },
      h("button", { type: "submit", class: "primary", id: "brand-save", dataset: { i18n: "brand.save" } }),
      h("button", { type: "button", class: "secondary", id: "brand-reset", onclick: reset, dataset: { i18n: "brand.reset" } }),
    ),
  );

  name.addEventListener("input", changed);
  ctx.onRelabel(() => {
    fillFonts();
    status.relabel();
    renderPreview();
  });
  ctx.onLeave(() => {
    clearTimeout(timer);
    if (previewUrl) URL.revokeObjectURL(previewUrl);
  });

  api("/api/v1/brand").then(load, (err) => status.showError(err));

  const root = h(
    "section",
    { class: "brand-page" },
    h("h1", { dataset: { i18n: "brand.title" } }),
    h("p", { class: "muted brand-intro", dataset: { i18n: "brand.intro" } }),
    noKit,
    h("div", { class: "brand-layout" }, form, h("div", { class: "brand-preview-card card" }, h("h2", { dataset: { i18n: "brand.preview" } }), preview)),
    pickDialog,
  );
  translate(root);
  return root;
}
