// Canvas helpers for image editing: a mask painter (brush / eraser with pointer events: mouse, pen and touch;
// undo; export as a black/white PNG at the image's own pixel size) and drag handles that extend an image's edges.
// Reusable by any page: neither knows about the API or the page around it.
import { h } from "./dom.js";

const PAINT = "rgb(255, 40, 40)"; // drawn opaque; the layer's CSS opacity makes it see-through without darkening overlaps
const UNDO_BYTES = 160 * 1024 * 1024; // snapshots kept for undo, in RGBA bytes

// maskPainter(canvas, {width, height, size, onChange}) paints on `canvas` (sized to width x height image pixels;
// CSS scales it over the image). onChange() is called after each stroke, clear and undo.
export function maskPainter(canvas, { width, height, size = 20, onChange = () => {} } = {}) {
  canvas.width = width;
  canvas.height = height;
  canvas.style.touchAction = "none"; // a finger paints instead of scrolling the page
  const g = canvas.getContext("2d", { willReadFrequently: true });
  let tool = "brush";
  let brush = size;
  let enabled = true;
  let stroke = null; // {id, x, y} of the pointer painting now
  const undo = [];

  // A ring that shows the brush's size where the pointer is (in the canvas's parent, which is positioned).
  const cursor = h("div", { class: "brush-cursor", hidden: true, "aria-hidden": "true" });
  canvas.after(cursor);

  const toImage = (ev) => {
    const r = canvas.getBoundingClientRect();
    return { x: ((ev.clientX - r.left) * width) / r.width, y: ((ev.clientY - r.top) * height) / r.height, r };
  };

  function showCursor(ev) {
    if (!enabled || ev.pointerType === "touch") {
      cursor.hidden = true;
      return;
    }
    const r = canvas.getBoundingClientRect();
    const d = (brush * r.width) / width;
    cursor.style.width = cursor.style.height = `${d}px`;
    cursor.style.left = `${ev.clientX - r.left + canvas.offsetLeft - d / 2}px`;
    cursor.style.top = `${ev.clientY - r.top + canvas.offsetTop - d / 2}px`;
    cursor.classList.toggle("eraser", tool === "eraser");
    cursor.hidden = false;
  }

  function segment(x0, y0, x1, y1) {
    g.globalCompositeOperation = tool === "eraser" ? "destination-out" : "source-over";
    g.strokeStyle = g.fillStyle = PAINT;
    g.lineWidth = brush;
    g.lineCap = g.lineJoin = "round";
    if (x0 === x1 && y0 === y1) {
      g.beginPath();
      g.arc(x0, y0, brush / 2, 0, Math.PI * 2);
      g.fill();
      return;
    }
    g.beginPath();
    g.moveTo(x0, y0);
    g.lineTo(x1, y1);
    g.stroke();
  }

  function snapshot() {
    undo.push(g.getImageData(0, 0, width, height));
    const per = width * height * 4;
    while (undo.length > 1 && undo.length * per > UNDO_BYTES) undo.shift();
  }

  canvas.addEventListener("pointerdown", (ev) => {
    if (!enabled || stroke || (ev.pointerType === "mouse" && ev.button !== 0)) return;
    ev.preventDefault();
    try {
      canvas.setPointerCapture(ev.pointerId);
    } catch {
      // a synthetic pointer cannot be captured; painting still follows its moves over the canvas
    }
    snapshot();
    const p = toImage(ev);
    stroke = { id: ev.pointerId, x: p.x, y: p.y };
    segment(p.x, p.y, p.x, p.y);
    showCursor(ev);
  });
  canvas.addEventListener("pointermove", (ev) => {
    showCursor(ev);
    if (!stroke || ev.pointerId !== stroke.id) return;
    // Coalesced events keep fast strokes smooth where the browser batches moves.
    const events = ev.getCoalescedEvents ? ev.getCoalescedEvents() : [];
    for (const e of events.length ? events : [ev]) {
      const p = toImage(e);
      segment(stroke.x, stroke.y, p.x, p.y);
      stroke.x = p.x;
      stroke.y = p.y;
    }
  });
  const end = (ev) => {
    if (!stroke || ev.pointerId !== stroke.id) return;
    stroke = null;
    onChange();
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  canvas.addEventListener("pointerleave", (ev) => {
    if (!stroke) cursor.hidden = true;
    else if (ev.pointerType === "touch") cursor.hidden = true;
  });

  return {
    get tool() {
      return tool;
    },
    get size() {
      return brush;
    },
    setTool(next) {
      tool = next === "eraser" ? "eraser" : "brush";
      cursor.classList.toggle("eraser", tool === "eraser");
    },
    setSize(n) {
      brush = Math.max(1, Math.round(Number(n) || 1));
    },
    setEnabled(on) {
      enabled = Boolean(on);
      canvas.style.pointerEvents = enabled ? "auto" : "none";
      if (!enabled) cursor.hidden = true;
    },
    clear() {
      if (this.isEmpty()) return;
      snapshot();
      g.clearRect(0, 0, width, height);
      onChange();
    },
    canUndo: () => undo.length > 0,
    undo() {
      const last = undo.pop();
      if (!last) return;
      g.putImageData(last, 0, 0);
      onChange();
    },
    // Painted pixels (alpha above half), e.g. to refuse an empty mask before uploading it.
    paintedCount() {
      const a = g.getImageData(0, 0, width, height).data;
      let n = 0;
      for (let i = 3; i < a.length; i += 4) if (a[i] >= 128) n += 1;
      return n;
    },
    isEmpty() {
      return this.paintedCount() === 0;
    },
    // The mask as a PNG Blob at the image's pixel size: white where painted, black elsewhere (no grey edge:
    // the operations soften the seam themselves).
    toBlob() {
      const src = g.getImageData(0, 0, width, height);
      const out = new ImageData(width, height);
      for (let i = 0; i < src.data.length; i += 4) {
        const v = src.data[i + 3] >= 128 ? 255 : 0;
        out.data[i] = out.data[i + 1] = out.data[i + 2] = v;
        out.data[i + 3] = 255;
      }
      const c = document.createElement("canvas");
      c.width = width;
      c.height = height;
      c.getContext("2d").putImageData(out, 0, 0);
      return new Promise((resolve, reject) => c.toBlob((b) => (b ? resolve(b) : reject(new Error("PNG export failed"))), "image/png"));
    },
  };
}

// extendHandles(box, {scale, value, onChange, onEnd}) adds four `.extend-handle[data-side]` handles to `box`
// (the outline of the extended canvas). Dragging a handle outwards grows that side: onChange(side, px) gets the
// side's new size in image pixels (screen px / scale(), scale frozen for the drag); onEnd() when released.
export function extendHandles(box, { scale, value, onChange, onEnd = () => {} }) {
  const handles = {};
  for (const side of ["left", "right", "top", "bottom"]) {
    const el = h("div", { class: "extend-handle", dataset: { side }, role: "slider", "aria-label": side, tabindex: "-1" }, h("span"));
    el.style.touchAction = "none";
    let drag = null;
    el.addEventListener("pointerdown", (ev) => {
      if (ev.pointerType === "mouse" && ev.button !== 0) return;
      ev.preventDefault();
      try {
        el.setPointerCapture(ev.pointerId);
      } catch {
        // synthetic pointer: no capture
      }
      drag = { id: ev.pointerId, x: ev.clientX, y: ev.clientY, start: value(side), scale: scale() };
      el.classList.add("dragging");
    });
    el.addEventListener("pointermove", (ev) => {
      if (!drag || ev.pointerId !== drag.id) return;
      const dx = ev.clientX - drag.x;
      const dy = ev.clientY - drag.y;
      const outwards = { left: -dx, right: dx, top: -dy, bottom: dy }[side];
      onChange(side, Math.max(0, Math.round(drag.start + outwards / drag.scale)));
    });
    const end = (ev) => {
      if (!drag || ev.pointerId !== drag.id) return;
      drag = null;
      el.classList.remove("dragging");
      onEnd(side);
    };
    el.addEventListener("pointerup", end);
    el.addEventListener("pointercancel", end);
    handles[side] = el;
    box.append(el);
  }
  return handles;
}
