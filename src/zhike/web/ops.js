// The operations of this server (GET /api/v1/ops) and what their Params models say about the studio: labels,
// help, choices and canvas roles of every field (x-zhike), and where each op appears (studio). Loading them
// registers every label as an i18n key, so pages relabel on a language switch like any other text:
//   field.NAME                  the first top-level label seen for a parameter name (errors, library details)
//   op.OP.f.PATH / .h.PATH      label / help of a field (PATH: dotted, list indices left out; English help is
//                               the field's description)
//   op.OP.c.PATH.VALUE          label of an enum value
//   op.OP.s.label|help|run|hint the studio placement's texts
// Pages ask these helpers; none of them keeps a list of operations.
import { api } from "./api.js";
import { addStrings, has } from "./i18n.js";

let loading = null;

export function loadOps() {
  loading ||= api("/api/v1/ops")
    .then((data) => {
      const ops = data.ops || [];
      registerStrings(ops);
      return ops;
    })
    .catch((err) => {
      loading = null;
      throw err;
    });
  return loading;
}

export const opKey = (op, kind, path) => `op.${op}.${kind}.${Array.isArray(path) ? path.filter((p) => typeof p !== "number" && !/^\d+$/.test(p)).join(".") : path}`;

// A schema with its $ref (into the root's $defs) resolved; its own keys kept.
export function deref(schema, root) {
  if (schema && schema.$ref) return { ...(root.$defs?.[schema.$ref.split("/").pop()] || {}), ...schema, $ref: undefined };
  return schema || {};
}

// anyOf [X, null] -> X; keeps the outer keys (title, default, x-zhike).
export function unwrap(schema, root) {
  const outer = deref(schema, root);
  if (!outer.anyOf) return { s: outer, nullable: false };
  const options = outer.anyOf.map((x) => deref(x, root)).filter((x) => x.type !== "null");
  const inner = options.length === 1 ? options[0] : { type: "string" };
  const { anyOf, ...rest } = outer;
  return { s: { ...inner, ...rest }, nullable: true };
}

export const meta = (schema) => (schema && schema["x-zhike"]) || {};

function walk(props, root, path, visit) {
  for (const [name, raw] of Object.entries(props || {})) {
    const { s } = unwrap(raw, root);
    const m = { ...meta(s), ...meta(raw) };
    visit([...path, name], m, s);
    if (s.type === "object" && s.properties) walk(s.properties, root, [...path, name], visit);
    if (s.type === "array") {
      const items = deref(s.items, root);
      if (items.properties) walk(items.properties, root, [...path, name], visit);
    }
  }
}

function registerStrings(ops) {
  const zh = {};
  const en = {};
  const put = (key, text) => {
    if (!text) return;
    if (text.zh) zh[key] = text.zh;
    if (text.en) en[key] = text.en;
  };
  for (const op of ops) {
    const root = op.params_schema || {};
    walk(root.properties, root, [], (path, m, s) => {
      put(opKey(op.name, "f", path), m.label);
      // Help: the Chinese one from x-zhike, the English one is the field's description (core/ui.py)
      put(opKey(op.name, "h", path), { zh: m.help?.zh, en: s.description });
      put(opKey(op.name, "p", path), m.placeholder);
      for (const [value, text] of Object.entries(m.choices || {})) put(`${opKey(op.name, "c", path)}.${value}`, text);
      // A shared label by name for error messages and details: top-level fields only (a unit's `image` is not
      // what `image` means elsewhere)
      const generic = `field.${path[0]}`;
      if (path.length === 1 && m.label && !has(generic) && !(generic in zh)) put(generic, m.label);
    });
    const s = op.studio || {};
    for (const k of ["label", "help", "run", "hint"]) put(`op.${op.name}.s.${k}`, s[k]);
  }
  addStrings({ zh, en });
}

// The fields of an op that play a Canvas role: {role: [field names]} (see core/ui.py CanvasRole).
export function canvasRoles(op) {
  const out = {};
  for (const [name, raw] of Object.entries(op.params_schema?.properties || {})) {
    const role = meta(raw).canvas;
    if (role) (out[role] ||= []).push(name);
  }
  return out;
}

// Canvas modes (ops with studio.canvas) and tools (studio.tool), each in its order.
const byStudioOrder = (a, b) => a.studio.order - b.studio.order || a.name.localeCompare(b.name);

export function canvasModes(ops) {
  return ops.filter((o) => o.studio?.canvas).sort(byStudioOrder);
}

export function toolOps(ops) {
  return ops.filter((o) => o.studio?.tool).sort(byStudioOrder);
}
