// The design editor's side panels: the layer list (reorder, hide, lock, delete) and the selected layer's
// properties (or the canvas's when nothing is selected). Every change is one `edit` (coalesced while typing).
// Ids for tests: #design-layers li[data-index], #design-props, [data-prop=NAME] inputs, .dz-swatch[data-colour].
import { assetPicker } from "../asset_picker.js";
import { h } from "../dom.js";
import { t } from "../i18n.js";
import { PLACEHOLDER } from "./designer_stage.js";

export const SWATCHES = ["#000000", "#333333", "#888888", "#ffffff", "#e4393c", "#ff6a00", "#ffb400", "#2fa84f", "#1677ff", "#6f42c1", "#fff4ec", "#ffd9c7"];

// Line icons (stroke paths, 24x24): eye open/closed, lock closed/open.
const ICONS = {
  shown: "M2 12s3.6-7 10-7 10 7 10 7-3.6 7-10 7S2 12 2 12z M12 9a3 3 0 1 0 0 6 3 3 0 0 0 0-6z",
  hidden: "M3 3l18 18 M10.6 5.1A9.7 9.7 0 0 1 12 5c6.4 0 10 7 10 7a17 17 0 0 1-3.2 4.1 M6.6 6.6C3.9 8.4 2 12 2 12s3.6 7 10 7a9.6 9.6 0 0 0 5.4-1.6",
  locked: "M6 11h12v10H6z M8 11V7a4 4 0 0 1 8 0v4",
  unlocked: "M6 11h12v10H6z M8 11V7a4 4 0 0 1 7.7-1.5",
};

function icon(name) {
  // Parsed by the HTML parser, which puts <svg> in the SVG namespace itself (no namespace URL in the studio's files).
  const box = document.createElement("span");
  box.innerHTML = `<svg viewBox="0 0 24 24" aria-hidden="true"><path d="${ICONS[name]}"/></svg>`;
  return box.firstElementChild;
}

const label = (key, control) => h("label", { class: "dz-field" }, h("span", {}, t(key)), control);

export function layerTitle(layer) {
  if (layer.id) return layer.id;
  if (layer.type === "text") return layer.text.replace(/\s+/g, " ").slice(0, 24) || t("design.layer.text");
  if (layer.type === "shape") return t(layer.shape === "ellipse" ? "design.shape.ellipse" : layer.radius ? "design.shape.rounded" : "design.shape.rect");
  return t(`design.layer.${layer.type}`);
}

// A colour as swatches + a picker + its text (a CSS colour, #rrggbbaa or a brand reference stays as typed).
// `extra`: the brand kit's colours as {value: "brand.primary", css: "#e4393c"}, shown first.
export function colourControl(value, onChange, { prop, extra = [], css = (v) => v } = {}) {
  const shown = css(value || "");
  const hex = /^#[0-9a-f]{6}$/i.test(shown) ? shown.toLowerCase() : "#000000";
  const picker = h("input", { type: "color", value: hex, dataset: { prop }, "aria-label": t("design.f.color") });
  const text = h("input", { type: "text", value: value || "", class: "dz-hex", maxlength: 40, spellcheck: "false" });
  const set = (v, from) => {
    const c = css(v);
    if (from !== picker && /^#[0-9a-f]{6}$/i.test(c)) picker.value = c.toLowerCase();
    if (from !== text) text.value = v;
    onChange(v);
  };
  picker.addEventListener("input", () => set(picker.value, picker));
  text.addEventListener("change", () => text.value.trim() && set(text.value.trim(), text));
  const swatch = (v, bg, brand) =>
    h("button", { type: "button", class: `dz-swatch${brand ? " brand" : ""}`, style: `background:${bg}`, title: v, "aria-label": v, dataset: { colour: v }, onclick: () => set(v) });
  const brand = extra.length ? h("div", { class: "dz-swatches" }, ...extra.map((c) => swatch(c.value, c.css, true))) : null;
  const plain = h("div", { class: "dz-swatches" }, ...SWATCHES.map((c) => swatch(c, c, false)));
  return h("div", { class: "dz-colour", dataset: { colourOf: prop } }, brand, plain, h("div", { class: "dz-colour-row" }, picker, text));
}

function number(value, onChange, { prop, min, max, step = 1 } = {}) {
  const input = h("input", { type: "number", value: value ?? "", min, max, step, dataset: { prop } });
  input.addEventListener("input", () => {
    if (input.value === "" || !input.checkValidity()) return;
    onChange(Number(input.value));
  });
  return input;
}

function select(value, options, onChange, prop) {
  const el = h("select", { dataset: { prop } }, ...options.map(([v, key]) => h("option", { value: v, selected: v === value }, key.startsWith("!") ? key.slice(1) : t(key))));
  el.addEventListener("change", () => onChange(el.value));
  return el;
}

function check(value, onChange, prop) {
  const el = h("input", { type: "checkbox", checked: Boolean(value), dataset: { prop } });
  el.addEventListener("change", () => onChange(el.checked));
  return h("label", { class: "dz-check" }, el, h("span", { dataset: { i18nKey: prop } }));
}

export function createPanels({ state, edit, select: choose, fonts, brandColours, css }) {
  const layersList = h("ol", { id: "design-layers", class: "dz-layers" });
  const props = h("div", { id: "design-props", class: "dz-props" });

  // An edit from a panel control: the panel keeps its inputs (and focus); typing coalesces into one undo step.
  const set = (prop, fn) => (v) => edit((tpl) => fn(tpl.layers[state.sel], v, tpl), { key: `${state.sel}.${prop}`, keepPanel: true });

  function renderLayers() {
    const tpl = state.tpl;
    if (!tpl.layers.length) {
      layersList.replaceChildren(h("li", { class: "muted dz-empty" }, t("design.noLayers")));
      return;
    }
    const items = [];
    for (let i = tpl.layers.length - 1; i >= 0; i -= 1) {
      const layer = tpl.layers[i];
      const btn = (key, sym, fn, extra = {}) =>
        h("button", { type: "button", class: "dz-icon", title: t(key), "aria-label": t(key), onclick: (e) => (e.stopPropagation(), fn()), ...extra }, sym);
      items.push(
        h(
          "li",
          { dataset: { index: i }, class: [state.sel === i ? "selected" : "", layer.hidden ? "is-hidden" : ""].join(" "), onclick: () => choose(i) },
          h("span", { class: "dz-kind" }, t(`design.layer.${layer.type}`)),
          h("span", { class: "dz-name" }, layerTitle(layer)),
          h(
            "span",
            { class: "dz-actions" },
            btn("design.up", "↑", () => move(i, 1), { disabled: i === tpl.layers.length - 1, dataset: { act: "up" } }),
            btn("design.down", "↓", () => move(i, -1), { disabled: i === 0, dataset: { act: "down" } }),
            btn("design.hide", icon(layer.hidden ? "hidden" : "shown"), () => edit((x) => (x.layers[i].hidden = !x.layers[i].hidden)), { "aria-pressed": String(Boolean(layer.hidden)), dataset: { act: "hide" } }),
            btn("design.lock", icon(layer.locked ? "locked" : "unlocked"), () => edit((x) => (x.layers[i].locked = !x.layers[i].locked)), { "aria-pressed": String(Boolean(layer.locked)), dataset: { act: "lock" } }),
            btn("design.delete", "✕", () => remove(i), { dataset: { act: "delete" } }),
          ),
        ),
      );
    }
    layersList.replaceChildren(...items);
  }

  function move(i, by) {
    const j = i + by;
    edit((tpl) => {
      const [layer] = tpl.layers.splice(i, 1);
      tpl.layers.splice(j, 0, layer);
    });
    choose(j);
  }

  function remove(i) {
    edit((tpl) => tpl.layers.splice(i, 1));
    choose(null);
  }

  function boxFields(layer) {
    const b = layer.box;
    const f = (k, key) => label(key, number(b[k], set(`box.${k}`, (l, v) => (l.box[k] = Math.round(v))), { prop: `box.${k}`, min: k === "w" || k === "h" ? 1 : -4096, max: 4096 }));
    return h(
      "div",
      { class: "dz-grid4" },
      f("x", "design.f.x"),
      f("y", "design.f.y"),
      f("w", "design.f.w"),
      f("h", "design.f.h"),
    );
  }

  function columnsDatalist() {
    return h("datalist", { id: "dz-columns" }, ...Object.keys(state.row).map((c) => h("option", { value: c })));
  }

  function textFields(layer) {
    const area = h("textarea", { rows: 3, dataset: { prop: "text" }, maxlength: 2000 }, layer.text);
    area.value = layer.text;
    area.addEventListener("input", () => area.value.trim() && set("text", (l, v) => (l.text = v))(area.value));
    const col = h("input", { type: "text", list: "dz-columns", placeholder: t("design.f.bindHint"), dataset: { prop: "bind" }, maxlength: 64 });
    const insert = () => {
      const name = col.value.trim();
      if (!name) return;
      const at = area.selectionStart ?? area.value.length;
      area.value = `${area.value.slice(0, at)}{{${name}}}${area.value.slice(area.selectionEnd ?? at)}`;
      edit((tpl) => (tpl.layers[state.sel].text = area.value), { keepPanel: true });
      col.value = "";
    };
    const fam = select(layer.font === "sans" ? "sans" : layer.font, [["sans", "design.f.fontDefault"], ...fonts().filter((f) => !f.bundled).map((f) => [f.family, `!${f.family}`])], set("font", (l, v) => (l.font = v)), "font");
    const stroke = layer.stroke;
    const shadow = layer.shadow;
    return [
      label("design.f.text", area),
      label("design.f.bind", h("div", { class: "dz-inline" }, col, h("button", { type: "button", class: "link", onclick: insert, dataset: { act: "bind" } }, t("design.f.insert")), columnsDatalist())),
      h("div", { class: "dz-grid2" }, label("design.f.font", fam), label("design.f.weight", select(layer.weight, [["regular", "design.f.regular"], ["bold", "design.f.bold"]], set("weight", (l, v) => (l.weight = v)), "weight"))),
      h(
        "div",
        { class: "dz-grid2" },
        label("design.f.size", number(layer.font_size, set("font_size", (l, v) => {
          l.font_size = Math.max(4, Math.round(v));
          if (l.min_size && l.min_size > l.font_size) l.min_size = l.font_size;
        }), { prop: "font_size", min: 4, max: 1000 })),
        label("design.f.minSize", number(layer.min_size ?? "", set("min_size", (l, v) => (l.min_size = Math.min(l.font_size, Math.max(4, Math.round(v))))), { prop: "min_size", min: 4, max: 1000 })),
      ),
      label("design.f.color", colourControl(layer.color, set("color", (l, v) => (l.color = v)), { prop: "color", extra: brandColours(), css })),
      h(
        "div",
        { class: "dz-grid2" },
        label("design.f.align", select(layer.align, [["left", "design.f.left"], ["center", "design.f.center"], ["right", "design.f.right"]], set("align", (l, v) => (l.align = v)), "align")),
        label("design.f.valign", select(layer.valign, [["top", "design.f.top"], ["middle", "design.f.middle"], ["bottom", "design.f.bottom"]], set("valign", (l, v) => (l.valign = v)), "valign")),
      ),
      h(
        "div",
        { class: "dz-grid2" },
        label("design.f.lineSpacing", number(layer.line_spacing, set("line_spacing", (l, v) => (l.line_spacing = Math.min(4, Math.max(0.8, v)))), { prop: "line_spacing", min: 0.8, max: 4, step: 0.05 })),
        label("design.f.maxLines", number(layer.max_lines ?? "", set("max_lines", (l, v) => (l.max_lines = v >= 1 ? Math.round(v) : null)), { prop: "max_lines", min: 1, max: 100 })),
      ),
      named(check(layer.vertical, set("vertical", (l, v) => (l.vertical = v)), "vertical"), "design.f.vertical"),
      named(check(Boolean(stroke), (on) => edit((tpl) => (tpl.layers[state.sel].stroke = on ? { width: 2, color: "#ffffff" } : null)), "stroke"), "design.f.stroke"),
      stroke
        ? h(
            "div",
            { class: "dz-sub" },
            label("design.f.strokeWidth", number(stroke.width, set("stroke.width", (l, v) => (l.stroke.width = Math.max(0, Math.min(64, Math.round(v))))), { prop: "stroke.width", min: 0, max: 64 })),
            colourControl(stroke.color, set("stroke.color", (l, v) => (l.stroke.color = v)), { prop: "stroke.color", extra: brandColours(), css }),
          )
        : null,
      named(check(Boolean(shadow), (on) => edit((tpl) => (tpl.layers[state.sel].shadow = on ? { dx: 0, dy: 4, blur: 6, color: "#00000080" } : null)), "shadow"), "design.f.shadow"),
      shadow
        ? h(
            "div",
            { class: "dz-sub" },
            h(
              "div",
              { class: "dz-grid3" },
              label("design.f.x", number(shadow.dx, set("shadow.dx", (l, v) => (l.shadow.dx = Math.round(v))), { prop: "shadow.dx", min: -200, max: 200 })),
              label("design.f.y", number(shadow.dy, set("shadow.dy", (l, v) => (l.shadow.dy = Math.round(v))), { prop: "shadow.dy", min: -200, max: 200 })),
              label("design.f.shadowBlur", number(shadow.blur, set("shadow.blur", (l, v) => (l.shadow.blur = Math.max(0, Math.min(100, v)))), { prop: "shadow.blur", min: 0, max: 100 })),
            ),
            colourControl(shadow.color, set("shadow.color", (l, v) => (l.shadow.color = v)), { prop: "shadow.color", css }),
          )
        : null,
    ];
  }

  function imageFields(layer) {
    const bound = PLACEHOLDER.test(layer.src);
    PLACEHOLDER.lastIndex = 0;
    const mode = select(bound ? "column" : "fixed", [["fixed", "design.f.srcFixed"], ["column", "design.f.srcColumn"]], (v) => {
      edit((tpl) => (tpl.layers[state.sel].src = v === "column" ? "{{image}}" : state.lastAsset || "{{image}}"));
    }, "src-mode");
    let source;
    if (bound) {
      const name = layer.src.replace(/^\{\{\s*|\s*\}\}$/g, "");
      const input = h("input", { type: "text", value: name, list: "dz-columns", dataset: { prop: "src" }, maxlength: 64 });
      input.addEventListener("change", () => input.value.trim() && edit((tpl) => (tpl.layers[state.sel].src = `{{${input.value.trim()}}}`), { keepPanel: true }));
      source = h("div", {}, input, columnsDatalist());
    } else {
      source = assetPicker({ id: "dz-image-src", value: layer.src, required: true, onChange: (id) => id && id !== layer.src && edit((tpl) => (tpl.layers[state.sel].src = id)) }).element;
    }
    return [
      label("design.f.src", mode),
      source,
      label("design.f.fit", select(layer.fit, [["cover", "design.f.fit.cover"], ["contain", "design.f.fit.contain"], ["fill", "design.f.fit.fill"]], set("fit", (l, v) => (l.fit = v)), "fit")),
      label("design.f.radius", number(layer.radius, set("radius", (l, v) => (l.radius = Math.max(0, Math.round(v)))), { prop: "radius", min: 0, max: 4096 })),
      named(check(layer.cutout, set("cutout", (l, v) => (l.cutout = v)), "cutout"), "design.f.cutout"),
    ];
  }

  function shapeFields(layer) {
    const fill = typeof layer.fill === "string" ? layer.fill : layer.fill?.colors?.[0] || "#000000";
    const stroke = layer.stroke;
    return [
      label("design.f.shape", select(layer.shape, [["rect", "design.shape.rect"], ["ellipse", "design.shape.ellipse"]], set("shape", (l, v) => (l.shape = v)), "shape")),
      label("design.f.fill", colourControl(fill, set("fill", (l, v) => (l.fill = v)), { prop: "fill", extra: brandColours(), css })),
      layer.shape === "rect" ? label("design.f.radius", number(layer.radius, set("radius", (l, v) => (l.radius = Math.max(0, Math.round(v)))), { prop: "radius", min: 0, max: 4096 })) : null,
      named(check(Boolean(stroke), (on) => edit((tpl) => (tpl.layers[state.sel].stroke = on ? { width: 4, color: "#000000" } : null)), "stroke"), "design.f.stroke"),
      stroke
        ? h(
            "div",
            { class: "dz-sub" },
            label("design.f.strokeWidth", number(stroke.width, set("stroke.width", (l, v) => (l.stroke.width = Math.max(0, Math.min(64, Math.round(v))))), { prop: "stroke.width", min: 0, max: 64 })),
            colourControl(stroke.color, set("stroke.color", (l, v) => (l.stroke.color = v)), { prop: "stroke.color", extra: brandColours(), css }),
          )
        : null,
    ];
  }

  function canvasFields() {
    const tpl = state.tpl;
    const text = (key, lang) => {
      const input = h("input", { type: "text", value: tpl.name[lang] || "", maxlength: 200, dataset: { prop: `name.${lang}` } });
      input.addEventListener("input", () => input.value.trim() && edit((x) => (x.name[lang] = input.value.trim()), { key: `name.${lang}`, keepPanel: true }));
      return label(key, input);
    };
    const bg = typeof tpl.background === "string" ? tpl.background : tpl.background.colors[0];
    const size = (k, key) =>
      label(key, number(tpl[k], (v) => v >= 16 && v <= 4096 && edit((x) => (x[k] = Math.round(v)), { key: `canvas.${k}`, keepPanel: true, resize: true }), { prop: k, min: 16, max: 4096 }));
    return [
      h("h3", {}, t("design.canvas")),
      text("design.f.name", "zh"),
      text("design.f.nameEn", "en"),
      h("div", { class: "dz-grid2" }, size("width", "design.f.width"), size("height", "design.f.height")),
      label("design.f.background", colourControl(bg, (v) => edit((x) => (x.background = v), { key: "background", keepPanel: true }), { prop: "background", extra: brandColours(), css })),
    ];
  }

  function named(checkLabel, key) {
    checkLabel.lastChild.textContent = t(key);
    return checkLabel;
  }

  function renderProps() {
    const layer = state.sel !== null ? state.tpl.layers[state.sel] : null;
    if (!layer) {
      props.replaceChildren(...canvasFields());
      return;
    }
    const common = [
      h("h3", {}, `${t(`design.layer.${layer.type}`)} · ${layerTitle(layer)}`),
      boxFields(layer),
      label("design.f.rotate", number(layer.rotate || 0, set("rotate", (l, v) => (l.rotate = Math.max(-360, Math.min(360, v)))), { prop: "rotate", min: -360, max: 360 })),
    ];
    const own = { text: textFields, image: imageFields, shape: shapeFields }[layer.type]?.(layer) || [
      label("design.f.prompt", (() => {
        const area = h("textarea", { rows: 3, dataset: { prop: "prompt" } });
        area.value = layer.prompt;
        area.addEventListener("input", () => area.value.trim() && set("prompt", (l, v) => (l.prompt = v))(area.value));
        return area;
      })()),
    ];
    const optional = named(check(layer.optional, set("optional", (l, v) => (l.optional = v)), "optional"), "design.f.optional");
    props.replaceChildren(...common, ...own.filter(Boolean), optional);
  }

  return { layersList, props, renderLayers, renderProps };
}
