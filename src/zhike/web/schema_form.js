// A form generated from an operation's params JSON schema (GET /api/v1/ops), so new operations and parameters
// appear in the studio without new UI code. Field kinds follow the schema: enums -> select, booleans -> checkbox,
// numbers with their limits, `format: asset-id` -> image picker, arrays of objects (LoRAs, ControlNet units) ->
// repeatable groups, `readOnly` (set by Zhike, e.g. applied_preset) -> kept as given but not shown.
// Every field is wrapped in [data-field="<dotted path>"], so showFormError() puts API errors next to it.
import { api } from "./api.js";
import { assetPicker } from "./asset_picker.js";
import { h } from "./dom.js";
import "./fields.js"; // the translated field labels
import { fieldLabel, has, pick, t, translate } from "./i18n.js";

// Shown inside "More settings" (collapsed): what most users leave alone.
const ADVANCED = new Set(["scheduler", "clip_skip", "batch_size", "loras", "detect_resolution", "mask_blur", "mask_grow", "method", "refine"]);
const TEXTAREA = new Set(["prompt", "negative_prompt"]);

let lookupPromise = null;
// Models and presets for the suggestion lists; fetched once per page load.
export function lookups() {
  lookupPromise ||= Promise.all([api("/api/v1/models"), api("/api/v1/presets")])
    .then(([m, p]) => ({ models: m.models || [], presets: p.presets || [] }))
    .catch(() => {
      lookupPromise = null;
      return { models: [], presets: [] };
    });
  return lookupPromise;
}

function deref(schema, root) {
  if (schema && schema.$ref) return root.$defs?.[schema.$ref.split("/").pop()] || {};
  return schema || {};
}

// anyOf [X, null] -> X (nullable); keeps the outer title/description/default.
function unwrap(schema, root) {
  const outer = deref(schema, root);
  if (!outer.anyOf) return { s: outer, nullable: false };
  const options = outer.anyOf.map((x) => deref(x, root)).filter((x) => x.type !== "null");
  const inner = options.length === 1 ? options[0] : { type: "string" };
  const { anyOf, ...rest } = outer;
  return { s: { ...inner, ...rest }, nullable: true };
}

// Which kind of registered model a text field names, for its suggestion list.
function modelKind(path) {
  const last = path[path.length - 1];
  if (path[0] === "controls" && last === "model") return "controlnet";
  if (path[0] === "loras" && last === "name") return "lora";
  if (last === "upscaler") return "upscaler";
  if (last === "matting_model") return "matting";
  if (path.length === 1 && last === "model") return "checkpoint";
  return null;
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

function labelFor(name, s, required) {
  // A translated label relabels itself on a language switch (data-i18n); unknown names show the schema title.
  const text = has(`field.${name}`) ? h("span", { dataset: { i18n: `field.${name}` } }, fieldLabel(name)) : fieldLabel(name, s.title);
  return h("span", { class: "sf-label", title: s.description || "" }, text, required ? h("span", { class: "req" }, " *") : null);
}

// One field -> {element, get() (undefined = not set), set(value), default}
function buildField(name, schema, path, root, ctx) {
  const { s, nullable } = unwrap(schema, root);
  const id = `${ctx.idPrefix}${path.join("-")}`;
  const fieldPath = path.join(".");
  const def = s.default;
  const required = ctx.required.has(name);

  if (s.readOnly) {
    let stored;
    return { element: null, get: () => stored, set: (v) => (stored = v), default: undefined, readOnly: true };
  }

  const wrap = (input, extra = null) =>
    h("div", { class: `sf-field sf-${s.type || "any"}`, dataset: { field: fieldPath } }, h("label", { for: id }, labelFor(name, s, required)), input, extra);

  if (s.format === "asset-id") {
    const picker = assetPicker({ id, required });
    const el = h("div", { class: "sf-field sf-asset", dataset: { field: fieldPath } }, h("span", { class: "sf-label-row" }, labelFor(name, s, required)), picker.element);
    return { element: el, get: () => picker.value() || undefined, set: (v) => picker.setValue(v || ""), default: undefined };
  }

  if (Array.isArray(s.enum)) {
    const select = h("select", { id }, nullable || def === undefined ? h("option", { value: "" }, "—") : null, ...s.enum.map((v) => h("option", { value: String(v) }, enumLabel(name, v))));
    if (def !== undefined && def !== null) select.value = String(def);
    const get = () => {
      if (select.value === "") return undefined;
      const v = s.enum.find((x) => String(x) === select.value);
      return v === undefined ? select.value : v;
    };
    return { element: wrap(select), get, set: (v) => (select.value = v === null || v === undefined ? "" : String(v)), default: def, relabel: () => relabelOptions(select, name, s.enum) };
  }

  if (s.type === "boolean") {
    const box = h("input", { type: "checkbox", id, checked: Boolean(def) });
    const el = h("div", { class: "sf-field sf-boolean", dataset: { field: fieldPath } }, h("label", { class: "check" }, box, labelFor(name, s, false)));
    return { element: el, get: () => box.checked, set: (v) => (box.checked = Boolean(v)), default: def ?? false };
  }

  if (s.type === "integer" || s.type === "number") {
    const input = h("input", { type: "number", id, min: s.minimum ?? s.exclusiveMinimum, max: s.maximum ?? s.exclusiveMaximum, step: s.type === "integer" ? (s.multipleOf || 1) : "any", inputmode: s.type === "integer" ? "numeric" : "decimal" });
    if (def !== undefined && def !== null) input.value = String(def);
    if (nullable) input.placeholder = t("form.auto");
    const get = () => (input.value.trim() === "" ? undefined : Number(input.value));
    let extra = null;
    if (name === "seed") {
      extra = h("button", { type: "button", class: "link sf-random", dataset: { i18n: "form.randomSeed" }, onclick: () => (input.value = "") });
    }
    const el = wrap(extra ? h("div", { class: "sf-inline" }, input, extra) : input);
    return { element: el, get, set: (v) => (input.value = v === null || v === undefined || v === -1 ? "" : String(v)), default: def };
  }

  // Free-form JSON (objects without a fixed shape, lists of them): a JSON text area; text that is not JSON is
  // sent as is, so the API's error names the field.
  const freeObject = (x) => x && x.type === "object" && !x.properties;
  if (freeObject(s) || (s.type === "array" && freeObject(deref(s.items, root)))) {
    const area = h("textarea", { id, rows: 4, class: "sf-json", spellcheck: "false", placeholder: s.type === "array" ? '[{"name": "…"}]' : "{ }" });
    const get = () => {
      const text = area.value.trim();
      if (!text) return undefined;
      try {
        return JSON.parse(text);
      } catch {
        return text;
      }
    };
    const set = (v) => (area.value = v === null || v === undefined ? "" : JSON.stringify(v, null, 1));
    return { element: wrap(area), get, set, default: undefined };
  }

  if (s.type === "array") {
    const items = deref(s.items, root);
    if (items.type === "object") return buildList(name, s, items, path, root, ctx, wrap);
    const input = h("input", { id, placeholder: t("form.commaSeparated") });
    const get = () => {
      const parts = input.value.split(/[,，]/).map((x) => x.trim()).filter(Boolean);
      if (!parts.length) return undefined;
      return items.type === "integer" || items.type === "number" ? parts.map(Number) : parts;
    };
    if (Array.isArray(def)) input.value = def.join(", ");
    return { element: wrap(input), get, set: (v) => (input.value = Array.isArray(v) ? v.join(", ") : ""), default: def };
  }

  if (s.type === "object" && s.properties) {
    const sub = buildObject(s, path, root, ctx);
    const el = h("fieldset", { class: "sf-object", dataset: { field: fieldPath } }, h("legend", {}, labelFor(name, s, required)), sub.element);
    return { element: el, get: sub.get, set: sub.set, default: def };
  }

  // Strings: prompts are text areas; model and preset names get suggestions from this deployment.
  const kind = modelKind(path);
  let input;
  let relabel;
  if (name === "preset" && path.length === 1) {
    input = h("select", { id }, h("option", { value: "" }, t("create.noPreset")));
    let presets = [];
    relabel = () => {
      const chosen = input.dataset.want ?? input.value;
      input.replaceChildren(h("option", { value: "" }, t("create.noPreset")), ...presets.map((p) => h("option", { value: p.id }, pick(p.name))));
      input.value = chosen;
    };
    ctx.lookups.then((found) => {
      presets = found.presets;
      relabel();
    });
  } else if (TEXTAREA.has(name) || (s.maxLength || 0) > 1000) {
    input = h("textarea", { id, rows: name === "prompt" ? 4 : 2, maxlength: s.maxLength });
  } else {
    input = h("input", { id, maxlength: s.maxLength, autocomplete: "off" });
    if (kind) {
      const listId = `${id}-list`;
      input.setAttribute("list", listId);
      const list = h("datalist", { id: listId });
      ctx.lookups.then(({ models }) => list.replaceChildren(...models.filter((m) => m.kind === kind).map((m) => h("option", { value: m.name }, `${m.family || ""} ${m.kind}`))));
      if (kind === "checkpoint" || nullable) input.placeholder = t("form.default");
      return { element: wrap(h("div", {}, input, list)), get: () => input.value.trim() || undefined, set: (v) => (input.value = v ?? ""), default: def };
    }
  }
  if (typeof def === "string" && input.tagName !== "SELECT") input.value = def;
  const set = (v) => {
    input.value = v ?? "";
    if (input.tagName === "SELECT") input.dataset.want = v ?? "";
  };
  const get = () => {
    const v = input.value;
    if (v === "" && (nullable || input.tagName === "SELECT")) return undefined;
    return v;
  };
  return { element: wrap(input), get, set, default: def ?? (nullable ? undefined : ""), relabel };
}

function enumLabel(name, value) {
  const key = `enum.${name}.${value}`;
  const text = t(key);
  return text === key ? String(value) : text;
}

function relabelOptions(select, name, values) {
  for (const opt of select.options) if (values.some((v) => String(v) === opt.value)) opt.textContent = enumLabel(name, opt.value);
}

// Arrays of objects: a group per item with Remove, and Add (up to maxItems).
function buildList(name, s, items, path, root, ctx, wrap) {
  const rows = h("div", { class: "sf-list" });
  const entries = [];
  const add = h("button", { type: "button", class: "link sf-add", dataset: { i18n: "form.add" } });
  const refresh = () => {
    add.disabled = s.maxItems !== undefined && entries.length >= s.maxItems;
    entries.forEach((e, i) => (e.element.dataset.field = [...path, i].join(".")));
  };
  function addRow(value) {
    const sub = buildObject(items, [...path, entries.length], root, ctx);
    const entry = { sub, element: null };
    const remove = h("button", { type: "button", class: "link sf-remove", dataset: { i18n: "form.remove" } });
    entry.element = h("div", { class: "sf-item" }, sub.element, remove);
    remove.addEventListener("click", () => {
      entries.splice(entries.indexOf(entry), 1);
      entry.element.remove();
      refresh();
    });
    entries.push(entry);
    rows.append(entry.element);
    if (value) sub.set(value);
    translate(entry.element);
    refresh();
  }
  add.addEventListener("click", () => addRow(null));
  const get = () => {
    const out = entries.map((e) => e.sub.get()).filter((v) => v && Object.keys(v).length);
    return out.length ? out : undefined;
  };
  const set = (list) => {
    entries.splice(0).forEach((e) => e.element.remove());
    for (const v of list || []) addRow(v);
    refresh();
  };
  refresh();
  const el = h("div", { class: "sf-field sf-array", dataset: { field: path.join(".") } }, h("span", { class: "sf-label-row" }, labelFor(name, s, false)), rows, add);
  return { element: el, get, set, default: undefined };
}

function buildObject(schema, path, root, ctx) {
  const props = schema.properties || {};
  const sub = { ...ctx, required: new Set(schema.required || []) };
  const fields = Object.entries(props).map(([name, p]) => [name, buildField(name, p, [...path, name], root, sub)]);
  const element = h("div", { class: "sf-group" }, ...fields.map(([, f]) => f.element).filter(Boolean));
  return {
    element,
    fields,
    get() {
      const out = {};
      for (const [name, f] of fields) {
        const v = f.get();
        if (v === undefined) continue;
        // Nested items keep every value the user can see (their defaults are not the server's to fill).
        if (path.length === 0 && !f.readOnly && same(v, f.default)) continue;
        out[name] = v;
      }
      return out;
    },
    set(values) {
      for (const [name, f] of fields) if (values && name in values) f.set(values[name]);
    },
  };
}

// schemaForm(op, {values, omit, idPrefix}) -> {element, values(), setValues(obj), op}
//   op: one entry of GET /api/v1/ops; omit: fields the page sets itself (e.g. ["image", "mask"]).
export function schemaForm(op, { values = null, omit = [], idPrefix = "sf-" } = {}) {
  const root = op.params_schema || {};
  const ctx = { idPrefix, lookups: lookups(), required: new Set(root.required || []) };
  const visible = { ...root, properties: Object.fromEntries(Object.entries(root.properties || {}).filter(([k]) => !omit.includes(k))) };
  const form = buildObject(visible, [], root, ctx);

  // Order: images first, then the prompt, then the rest; rarely-touched fields fold into "More settings".
  const rank = ([name, f]) => (f.element?.classList.contains("sf-asset") ? 0 : TEXTAREA.has(name) ? 1 : 2);
  const main = [];
  const advanced = [];
  for (const entry of [...form.fields].sort((a, b) => rank(a) - rank(b))) {
    if (!entry[1].element) continue;
    (ADVANCED.has(entry[0]) ? advanced : main).push(entry[1].element);
  }
  const more = advanced.length
    ? h("details", { class: "sf-more" }, h("summary", { dataset: { i18n: "form.more" } }), ...advanced)
    : null;
  const element = h("div", { class: "schema-form", dataset: { op: op.name } }, ...main, more);
  if (values) form.set(values);
  translate(element);
  return {
    op,
    element,
    values: () => form.get(),
    setValues: (v) => form.set(v),
    relabel() {
      for (const [, f] of form.fields) if (f.relabel) f.relabel();
    },
  };
}
