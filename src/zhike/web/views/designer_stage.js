// The design editor's stage: the template's layers drawn as DOM at screen scale (the same boxes, fits, gradients
// and fonts as the server's renderer, src/zhike/design/render.py), with select / move / resize / rotate handles,
// snap-and-align guides and in-place text editing. Changes go through `edit` (one undo step each).
// Ids for tests: #design-stage (data-scale), .dz-layer[data-index] (data-x/y/w/h/rotate: the template box),
// .dz-handle[data-handle=n|s|e|w|ne|nw|se|sw|rotate].
import { assetFileUrl } from "../api.js";
import { h } from "../dom.js";

export const PLACEHOLDER = /\{\{\s*([\p{L}\p{N}_.-]+(?: [\p{L}\p{N}_.-]+)*)\s*\}\}/gu;
const SNAP_PX = 6; // screen pixels within which an edge or centre snaps
const HANDLES = ["nw", "n", "ne", "e", "se", "s", "sw", "w"];

export const BRAND_PLACEHOLDERS = ["brand.name", "brand.logo"]; // the brand kit's, never data columns

// {{column}} -> the row's value, {{brand.name}} / {{brand.logo}} -> the brand kit's; unknown ones stay visible.
export function fillText(text, row, brand = {}) {
  return text.replace(PLACEHOLDER, (m, col) => {
    const v = BRAND_PLACEHOLDERS.includes(col) ? brand.kit?.[col.slice(6)] : row[col];
    return v !== undefined && v !== null && String(v).trim() !== "" ? String(v) : m;
  });
}

// A colour as CSS: `brand.primary` / `brand.primary|#e4393c` resolve as the renderer does (the kit's colour, else
// the fallback after |, else Zhike's default palette).
export function cssColour(v, brand = {}) {
  const m = typeof v === "string" ? /^brand\.(\w+)(?:\|(.+))?$/.exec(v.trim()) : null;
  if (!m) return v;
  return (brand.kit ? brand.kit.colors?.[m[1]] : m[2] || brand.defaults?.colors?.[m[1]]) || m[2] || "#888888";
}

// An image source or cell -> a URL the browser can show (asset ids, their /file URLs, stock:ID), or null.
export function imageUrl(value) {
  const v = (value || "").trim();
  if (v.startsWith("stock:")) return `/api/v1/stock/bundled/${encodeURIComponent(v.slice(6))}/file`; // bundled stock
  if (/^\/api\/v1\/assets\/[\w-]+\/file$/.test(v)) return v;
  if (/^[\w-]{4,64}$/.test(v)) return assetFileUrl(v);
  return null;
}

export function paintCss(fill, brand = {}) {
  if (!fill) return "transparent";
  if (typeof fill === "string") return cssColour(fill, brand);
  // The renderer's 0 degrees runs left to right, 90 top to bottom; CSS's 90deg runs left to right.
  return `linear-gradient(${(fill.angle ?? 90) + 90}deg, ${fill.colors.map((c) => cssColour(c, brand)).join(", ")})`;
}

export function fontStack(layer, brand = {}) {
  let font = layer.font || "";
  if (font.startsWith("brand.")) font = brand.kit?.fonts?.[font.slice(6)] || "sans";
  const fam = font && !["sans", "sans-serif", "default", "黑体"].includes(font) ? `"zk-${font}", ` : "";
  return `${fam}"zk-Source Han Sans SC", "Source Han Sans SC", "Noto Sans CJK SC", sans-serif`;
}

export function createStage({ state, edit, select, onLive }) {
  const canvas = h("div", { class: "dz-canvas" });
  const guides = h("div", { class: "dz-guides" });
  const sel = h(
    "div",
    { class: "dz-sel", hidden: true },
    ...HANDLES.map((k) => h("span", { class: `dz-handle dz-${k}`, dataset: { handle: k } })),
    h("span", { class: "dz-handle dz-rot", dataset: { handle: "rotate" } }),
  );
  const overlay = h("img", { class: "dz-overlay", alt: "", hidden: true });
  const frame = h("div", { class: "dz-frame" }, canvas, overlay, guides, sel);
  const element = h("div", { id: "design-stage", class: "dz-stage", tabindex: 0 }, frame);
  let drag = null;
  let editing = null;

  function setScale(scale) {
    state.scale = scale;
    frame.style.width = `${state.tpl.width * scale}px`;
    frame.style.height = `${state.tpl.height * scale}px`;
    canvas.style.transform = guides.style.transform = `scale(${scale})`;
    element.dataset.scale = String(scale);
    placeSelection();
  }

  function boxStyle(el, box, rotate) {
    el.style.left = `${box.x}px`;
    el.style.top = `${box.y}px`;
    el.style.width = `${box.w}px`;
    el.style.height = `${box.h}px`;
    el.style.transform = rotate ? `rotate(${rotate}deg)` : "";
  }

  function textEl(layer) {
    const inner = h("span", { class: "dz-text-inner" }, fillText(layer.text, state.row, state.brandInfo));
    const el = h("div", { class: `dz-text${layer.vertical ? " vertical" : ""}` }, inner);
    const stroke = layer.stroke && layer.stroke.width ? layer.stroke : null;
    const pad = (stroke ? stroke.width : 0) + 1; // as the renderer: stroke ink stays inside the box
    Object.assign(el.style, {
      padding: `${pad}px`,
      fontFamily: fontStack(layer, state.brandInfo),
      fontWeight: layer.weight === "bold" ? "700" : "400",
      fontSize: `${layer.font_size}px`,
      color: cssColour(layer.color || "#000000", state.brandInfo),
      lineHeight: String(layer.line_spacing ?? 1.25),
      textAlign: layer.align || "left",
    });
    const main = { top: "flex-start", middle: "center", bottom: "flex-end" }[layer.valign || "top"];
    const cross = { left: "flex-start", center: "center", right: "flex-end" }[layer.align || "left"];
    el.style.justifyContent = layer.vertical ? cross : main;
    el.style.alignItems = layer.vertical ? main : "stretch";
    if (stroke) {
      inner.style.webkitTextStroke = `${stroke.width * 2}px ${cssColour(stroke.color, state.brandInfo)}`;
      inner.style.paintOrder = "stroke fill";
    }
    if (layer.shadow) {
      const s = layer.shadow;
      inner.style.textShadow = `${s.dx}px ${s.dy}px ${s.blur * 2}px ${cssColour(s.color, state.brandInfo)}`;
    }
    return el;
  }

  // Shrink a text's size until it fits its box, down to min_size, as the renderer does (binary search).
  function fitText(el, layer) {
    const inner = el.firstChild;
    const fits = () => inner.offsetHeight <= el.clientHeight - 2 * parseFloat(el.style.padding) + 1 && inner.scrollWidth <= el.clientWidth + 1;
    if (fits()) return;
    let lo = layer.min_size || Math.max(4, Math.floor(layer.font_size / 2));
    let hi = layer.font_size - 1;
    let best = lo;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      el.style.fontSize = `${mid}px`;
      if (fits()) {
        best = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    el.style.fontSize = `${best}px`;
  }

  function imageEl(layer, src) {
    const url = imageUrl(src);
    const radius = `${layer.radius || 0}px`;
    if (!url) return h("div", { class: "dz-image-empty", style: `border-radius:${radius}` }, h("span", {}, src));
    return h("img", { class: "dz-image", src: url, alt: "", draggable: "false", style: `object-fit:${layer.fit || "cover"};border-radius:${radius}` });
  }

  function shapeEl(layer) {
    const el = h("div", { class: "dz-shape" });
    el.style.background = paintCss(layer.fill, state.brandInfo);
    el.style.borderRadius = layer.shape === "ellipse" ? "50%" : `${layer.radius || 0}px`;
    if (layer.stroke && layer.stroke.width) el.style.border = `${layer.stroke.width}px solid ${cssColour(layer.stroke.color, state.brandInfo)}`;
    return el;
  }

  function layerEl(layer, i) {
    let body;
    if (layer.type === "text") body = textEl(layer);
    else if (layer.type === "image") body = imageEl(layer, fillText(layer.src, state.row, state.brandInfo));
    else if (layer.type === "shape") body = shapeEl(layer);
    else body = h("div", { class: "dz-image-empty dz-generated" }, h("span", {}, fillText(layer.prompt || "", state.row)));
    const b = layer.box;
    const el = h("div", { class: "dz-layer", dataset: { index: i, type: layer.type, x: b.x, y: b.y, w: b.w, h: b.h, rotate: layer.rotate || 0 } }, body);
    el.classList.toggle("locked", Boolean(layer.locked));
    el.classList.toggle("is-hidden", Boolean(layer.hidden));
    boxStyle(el, b, layer.rotate);
    return el;
  }

  function render() {
    const tpl = state.tpl;
    canvas.style.width = `${tpl.width}px`;
    canvas.style.height = `${tpl.height}px`;
    guides.style.width = `${tpl.width}px`;
    guides.style.height = `${tpl.height}px`;
    canvas.style.background = paintCss(tpl.background, state.brandInfo);
    const els = tpl.layers.map(layerEl);
    canvas.replaceChildren(...els);
    tpl.layers.forEach((layer, i) => layer.type === "text" && fitText(els[i].firstChild, layer));
    placeSelection();
  }

  function placeSelection() {
    const layer = state.sel !== null ? state.tpl?.layers[state.sel] : null;
    sel.hidden = !layer || Boolean(layer.hidden);
    if (!layer) return;
    const b = drag && drag.box ? drag.box : layer.box;
    const rot = drag && drag.rotate !== undefined ? drag.rotate : layer.rotate || 0;
    sel.style.left = `${b.x * state.scale}px`;
    sel.style.top = `${b.y * state.scale}px`;
    sel.style.width = `${b.w * state.scale}px`;
    sel.style.height = `${b.h * state.scale}px`;
    sel.style.transform = rot ? `rotate(${rot}deg)` : "";
    sel.classList.toggle("locked", Boolean(layer.locked));
  }

  // -- pointer: move, resize, rotate ------------------------------------------------------------------------
  const toTemplate = (e) => {
    const r = frame.getBoundingClientRect();
    return { x: (e.clientX - r.left) / state.scale, y: (e.clientY - r.top) / state.scale };
  };

  // The axis-aligned bounds of a (maybe rotated) box: what other layers snap to.
  function bounds(layer) {
    const { x, y, w, h: hh } = layer.box;
    const a = ((layer.rotate || 0) * Math.PI) / 180;
    const bw = Math.abs(w * Math.cos(a)) + Math.abs(hh * Math.sin(a));
    const bh = Math.abs(w * Math.sin(a)) + Math.abs(hh * Math.cos(a));
    const cx = x + w / 2;
    const cy = y + hh / 2;
    return { x0: cx - bw / 2, x1: cx + bw / 2, y0: cy - bh / 2, y1: cy + bh / 2 };
  }

  // Snap a moving box's edges and centre to the canvas and other layers; returns the shift and the guides.
  function snap(box, rotate, skip) {
    const tpl = state.tpl;
    const xs = [0, tpl.width / 2, tpl.width];
    const ys = [0, tpl.height / 2, tpl.height];
    tpl.layers.forEach((l, i) => {
      if (i === skip || l.hidden) return;
      const b = bounds(l);
      xs.push(b.x0, (b.x0 + b.x1) / 2, b.x1);
      ys.push(b.y0, (b.y0 + b.y1) / 2, b.y1);
    });
    const me = bounds({ box, rotate });
    const best = (mine, lines) => {
      let out = null;
      for (const m of mine) for (const l of lines) if (Math.abs(l - m) * state.scale <= SNAP_PX && (!out || Math.abs(l - m) < Math.abs(out.d))) out = { d: l - m, at: l };
      return out;
    };
    const sx = best([me.x0, (me.x0 + me.x1) / 2, me.x1], xs);
    const sy = best([me.y0, (me.y0 + me.y1) / 2, me.y1], ys);
    return { dx: sx ? sx.d : 0, dy: sy ? sy.d : 0, gx: sx ? sx.at : null, gy: sy ? sy.at : null };
  }

  function showGuides(gx, gy) {
    const lines = [];
    if (gx !== null && gx !== undefined) lines.push(h("div", { class: "dz-guide v", style: `left:${gx}px` }));
    if (gy !== null && gy !== undefined) lines.push(h("div", { class: "dz-guide h", style: `top:${gy}px` }));
    guides.replaceChildren(...lines);
  }

  function resized(start, handle, dxw, dyw, rotate, keepRatio) {
    const a = (rotate * Math.PI) / 180;
    const cos = Math.cos(a);
    const sin = Math.sin(a);
    let lx = dxw * cos + dyw * sin; // the pointer's move in the layer's own (unrotated) axes
    let ly = -dxw * sin + dyw * cos;
    const sxn = handle.includes("e") ? 1 : handle.includes("w") ? -1 : 0;
    const syn = handle.includes("s") ? 1 : handle.includes("n") ? -1 : 0;
    let w = Math.max(4, start.w + sxn * lx);
    let hh = Math.max(4, start.h + syn * ly);
    if (keepRatio && sxn && syn) {
      const k = Math.max(w / start.w, hh / start.h);
      w = Math.max(4, start.w * k);
      hh = Math.max(4, start.h * k);
    }
    lx = sxn * (w - start.w);
    ly = syn * (hh - start.h);
    const cx = start.x + start.w / 2 + (lx / 2) * cos - (ly / 2) * sin;
    const cy = start.y + start.h / 2 + (lx / 2) * sin + (ly / 2) * cos;
    return { x: Math.round(cx - w / 2), y: Math.round(cy - hh / 2), w: Math.round(w), h: Math.round(hh) };
  }

  element.addEventListener("pointerdown", (e) => {
    if (e.button !== 0 || (e.target.isContentEditable && editing)) return;
    if (editing) finishEditing();
    element.focus({ preventScroll: true });
    const handle = e.target.closest(".dz-handle")?.dataset.handle;
    const layerNode = e.target.closest(".dz-layer");
    let index = state.sel;
    if (!handle) {
      index = layerNode ? Number(layerNode.dataset.index) : null;
      select(index);
    }
    if (index === null) return;
    const layer = state.tpl.layers[index];
    if (layer.locked) return;
    e.preventDefault();
    element.setPointerCapture(e.pointerId);
    drag = { index, handle: handle || "move", start: toTemplate(e), box: { ...layer.box }, from: { ...layer.box }, rotate: layer.rotate || 0, moved: false };
  });

  element.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const p = toTemplate(e);
    const dx = p.x - drag.start.x;
    const dy = p.y - drag.start.y;
    if (!drag.moved && Math.hypot(dx, dy) * state.scale < 2) return;
    drag.moved = true;
    const layer = state.tpl.layers[drag.index];
    let gx = null;
    let gy = null;
    if (drag.handle === "move") {
      const box = { ...drag.from, x: Math.round(drag.from.x + dx), y: Math.round(drag.from.y + dy) };
      if (!e.altKey) {
        const s = snap(box, drag.rotate, drag.index);
        box.x = Math.round(box.x + s.dx);
        box.y = Math.round(box.y + s.dy);
        gx = s.gx;
        gy = s.gy;
      }
      drag.box = box;
    } else if (drag.handle === "rotate") {
      const cx = drag.from.x + drag.from.w / 2;
      const cy = drag.from.y + drag.from.h / 2;
      let deg = (Math.atan2(p.y - cy, p.x - cx) * 180) / Math.PI + 90;
      if (e.shiftKey) deg = Math.round(deg / 15) * 15;
      else {
        const right = Math.round(deg / 90) * 90;
        if (Math.abs(deg - right) < 4) deg = right;
      }
      deg = ((((Math.round(deg * 10) / 10 + 180) % 360) + 360) % 360) - 180;
      drag.rotate = deg;
    } else {
      drag.box = resized(drag.from, drag.handle, dx, dy, drag.rotate, e.shiftKey || layer.type === "image");
    }
    showGuides(gx, gy);
    const el = canvas.children[drag.index];
    boxStyle(el, drag.box, drag.rotate);
    if (layer.type === "text" && drag.handle !== "move" && drag.handle !== "rotate") fitText(el.firstChild, layer);
    placeSelection();
    onLive?.(drag.box, drag.rotate);
  });

  const endDrag = () => {
    if (!drag) return;
    const d = drag;
    drag = null;
    showGuides(null, null);
    if (!d.moved) return;
    edit((tpl) => {
      const layer = tpl.layers[d.index];
      layer.box = d.box;
      if (d.rotate) layer.rotate = d.rotate;
      else delete layer.rotate;
    });
  };
  element.addEventListener("pointerup", endDrag);
  element.addEventListener("pointercancel", endDrag);

  // -- text in place ----------------------------------------------------------------------------------------
  function finishEditing() {
    if (!editing) return;
    const { index, inner, before } = editing;
    editing = null;
    const text = inner.innerText.replace(/\n$/, "");
    inner.contentEditable = "false";
    if (text !== before && text.trim()) edit((tpl) => (tpl.layers[index].text = text));
    else render();
  }

  element.addEventListener("dblclick", (e) => {
    // Pointer capture makes the stage the click's target: find the layer under the pointer.
    const node = document.elementFromPoint(e.clientX, e.clientY)?.closest(".dz-layer");
    if (!node || node.dataset.type !== "text") return;
    const index = Number(node.dataset.index);
    const layer = state.tpl.layers[index];
    if (layer.locked) return;
    const inner = node.querySelector(".dz-text-inner");
    inner.textContent = layer.text; // the template's own text, placeholders and all
    inner.contentEditable = "plaintext-only";
    editing = { index, inner, before: layer.text };
    inner.focus();
    const range = document.createRange();
    range.selectNodeContents(inner);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    inner.addEventListener("blur", finishEditing, { once: true });
    inner.addEventListener("keydown", (k) => {
      if (k.key === "Escape" || (k.key === "Enter" && (k.ctrlKey || k.metaKey))) {
        k.preventDefault();
        inner.blur();
      }
    });
  });

  function showOverlay(url) {
    overlay.hidden = !url;
    if (url) overlay.src = url;
  }

  return { element, render, setScale, placeSelection, showOverlay, isEditing: () => Boolean(editing) };
}
