// A form generated from an operation's params JSON schema (GET /api/v1/ops), so new operations and parameters
// appear in the studio without new UI code. Field kinds follow the schema: enums -> select, booleans -> checkbox,
// numbers with their limits, `format: asset-id` -> image picker, `format: llm-name` -> chat model select, arrays of objects (LoRAs, ControlNet units) ->
// repeatable groups, lists of free text -> one item per line, lists of tokens (numbers, colours) -> comma-separated,
// `readOnly` (set by Zhike, e.g. applied_preset) -> kept as given but not shown. What the
// schema cannot say comes from each field's `x-zhike` metadata (core/ui.py): labels and help in both languages,
// group ("more" folds away) and order, widget (prompt, textarea, slider, colour, model + model_kind, preset,
// seed, sizes), enum value labels. Every field is wrapped in [data-field="<dotted path>"], so showFormError()
// puts API errors next to it.
import { api } from "./api.js";
import { assetPicker } from "./asset_picker.js";
import { h } from "./dom.js";
import "./fields.js"; // the form's own words
import { fieldLabel, has, pick, t, translate } from "./i18n.js";
import { deref, meta, opKey, unwrap } from "./ops.js";

const GROUPS = ["main", "size", "style", "more"]; // core/ui.py GROUPS: the order forms show them in

let lookupPromise = null;
// Models and presets for the suggestion lists; fetched once per page load.
export function lookups() {
  lookupPromise ||= Promise.all([api("/api/v1/models"), api("/api/v1/presets")])
    .then(([m, p]) => ({ models: m.models || [], defaults: m.defaults || {}, presets: p.presets || [] }))
    .catch(() => {
      lookupPromise = null;
      return { models: [], defaults: {}, presets: [] };
    });
  return lookupPromise;
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

// The op's label for this field (data-i18n, so it relabels on a language switch); else a shared label by name;
// else the schema title. The help (x-zhike help, else the description) is the tooltip.
function labelFor(name, s, required, path, ctx) {
  const key = opKey(ctx.op, "f", path);
  const generic = `field.${name}`;
  const text = has(key) ? h("span", { dataset: { i18n: key } }, t(key)) : has(generic) ? h("span", { dataset: { i18n: generic } }, t(generic)) : fieldLabel(name, s.title);
  const helpKey = opKey(ctx.op, "h", path);
  const attrs = { class: "sf-label", title: has(helpKey) ? t(helpKey) : s.description || "" };
  if (has(helpKey)) attrs.dataset = { i18nTitle: helpKey };
  return h("span", attrs, text, required ? h("span", { class: "req", dataset: { i18n: "form.required" } }, t("form.required")) : null);
}

// Marketplace sizes (GET /api/v1/sizes) as checkboxes; WxH values set from outside are kept.
function sizesField(s, path, ctx, required) {
  const box = h("fieldset", { class: "sizes-pick", dataset: { field: path.join(".") } });
  let list = [];
  let wanted = Array.isArray(s.default) ? s.default : null;
  const render = () => {
    box.replaceChildren(
      h("legend", {}, labelFor(path[path.length - 1], s, required, path, ctx)),
      ...list.map((p, i) =>
        h(
          "label",
          { class: "check" },
          h("input", { type: "checkbox", value: p.id, checked: wanted ? wanted.includes(p.id) : required && i === 0, dataset: { sizeId: p.id } }),
          h("span", { class: "size-name", dataset: { sizeId: p.id } }, pick(p.name)),
          h("span", { class: "muted" }, `${p.width}×${p.height}`),
        ),
      ),
    );
  };
  sizeList().then((found) => {
    list = found;
    render();
  });
  render();
  const get = () => {
    const chosen = [...box.querySelectorAll("input:checked")].map((i) => i.value);
    const extra = (wanted || []).filter((v) => !list.some((p) => p.id === v)); // WxH from a remix
    const all = [...chosen, ...extra];
    return all.length ? all : undefined;
  };
  const set = (v) => {
    wanted = Array.isArray(v) ? v : null;
    render();
  };
  // A language switch re-renders the names: what is ticked now is what stays ticked
  const relabel = () => set(get() || []);
  return { element: box, get, set, default: s.default, relabel };
}

let sizesPromise = null;
function sizeList() {
  sizesPromise ||= api("/api/v1/sizes")
    .then((d) => d.sizes || [])
    .catch(() => {
      sizesPromise = null;
      return [];
    });
  return sizesPromise;
}

// One field -> {element, get() (undefined = not set), set(value), default}. A required field is also listed in
// ctx.checks, so submitting with it empty says so at the field (checkRequired) instead of sending the request.
function buildField(name, schema, path, root, ctx) {
  const f = buildInput(name, schema, path, root, ctx);
  if (f.element && ctx.required.has(name)) ctx.checks.push({ f, name, path, schema: unwrap(schema, root).s });
  return f;
}

function buildInput(name, schema, path, root, ctx) {
  const { s, nullable } = unwrap(schema, root);
  const m = meta(s);
  const id = `${ctx.idPrefix}${path.join("-")}`;
  const fieldPath = path.join(".");
  const def = s.default;
  const required = ctx.required.has(name);
  const labelOf = (x = s, req = required) => labelFor(name, x, req, path, ctx);

  if (s.readOnly || m.widget === "hidden") {
    let stored;
    return { element: null, get: () => stored, set: (v) => (stored = v), default: undefined, readOnly: true };
  }

  const wrap = (input, extra = null) =>
    h("div", { class: `sf-field sf-${s.type || "any"}`, dataset: { field: fieldPath } }, h("label", { for: id }, labelOf()), input, extra);

  if (s.format === "asset-id") {
    const picker = assetPicker({ id, required });
    const el = h("div", { class: "sf-field sf-asset", dataset: { field: fieldPath } }, h("span", { class: "sf-label-row" }, labelOf()), picker.element);
    return { element: el, get: () => picker.value() || undefined, set: (v) => picker.setValue(v || ""), default: undefined };
  }

  if (m.widget === "sizes") return sizesField(s, path, ctx, required);
  if (s.format === LLM_FORMAT) return llmField({ id, def, wrap });

  const choice = (v) => choiceLabel(ctx.op, path, name, v);
  if (Array.isArray(s.enum)) {
    const select = h("select", { id }, nullable || def === undefined ? h("option", { value: "" }, "—") : null, ...s.enum.map((v) => h("option", { value: String(v) }, choice(v))));
    if (def !== undefined && def !== null) select.value = String(def);
    const get = () => {
      if (select.value === "") return undefined;
      const v = s.enum.find((x) => String(x) === select.value);
      return v === undefined ? select.value : v;
    };
    const relabel = () => {
      for (const opt of select.options) if (s.enum.some((v) => String(v) === opt.value)) opt.textContent = choice(opt.value);
    };
    return { element: wrap(select), get, set: (v) => (select.value = v === null || v === undefined ? "" : String(v)), default: def, relabel };
  }

  if (s.type === "boolean") {
    const box = h("input", { type: "checkbox", id, checked: Boolean(def) });
    const el = h("div", { class: "sf-field sf-boolean", dataset: { field: fieldPath } }, h("label", { class: "check" }, box, labelOf(s, false)));
    return { element: el, get: () => box.checked, set: (v) => (box.checked = Boolean(v)), default: def ?? false };
  }

  if (s.type === "integer" || s.type === "number") {
    const min = s.minimum ?? s.exclusiveMinimum;
    const max = s.maximum ?? s.exclusiveMaximum;
    const step = m.step ?? (s.type === "integer" ? s.multipleOf || 1 : "any");
    const input = h("input", { type: "number", id, min, max, step, inputmode: s.type === "integer" ? "numeric" : "decimal" });
    if (def !== undefined && def !== null) input.value = String(def);
    if (nullable) input.dataset.i18nPlaceholder = "form.auto";
    const get = () => (input.value.trim() === "" ? undefined : Number(input.value));
    let extra = null;
    if (m.widget === "seed") {
      extra = h("button", { type: "button", class: "link sf-random", dataset: { i18n: "form.randomSeed" }, onclick: () => (input.value = "") });
    } else if (m.widget === "slider" && min !== undefined && max !== undefined) {
      // A range beside the number box: drag for a feel, type for an exact value; both stay in step.
      extra = h("input", { type: "range", class: "sf-range", min, max, step: step === "any" ? (max - min) / 100 : step, value: input.value || min, "aria-hidden": "true", tabindex: -1 });
      extra.addEventListener("input", () => (input.value = extra.value));
      input.addEventListener("input", () => input.value !== "" && (extra.value = input.value));
    }
    const el = wrap(extra ? h("div", { class: "sf-inline" }, input, extra) : input);
    const empty = (v) => v === null || v === undefined || (m.widget === "seed" && v === -1); // -1: a random seed
    return { element: el, get, set: (v) => (input.value = empty(v) ? "" : String(v)), default: def };
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
    // Free text (selling points, SKUs, questions) is one item per line: a comma belongs to the words ("轻薄，透气" is
    // one point). Tokens that cannot hold a comma (numbers, colours, ids: a pattern, a format or choices) are
    // comma-separated on one line.
    const perLine = items.type === "string" && !items.pattern && !items.format && !items.enum;
    const input = perLine
      ? h("textarea", { id, rows: 3, class: "sf-lines", dataset: { i18nPlaceholder: "form.onePerLine" } })
      : h("input", { id, dataset: { i18nPlaceholder: "form.commaSeparated" } });
    const joiner = perLine ? "\n" : ", ";
    const get = () => {
      const parts = input.value.split(perLine ? /\r?\n/ : /[,，]/).map((x) => x.trim()).filter(Boolean);
      if (!parts.length) return undefined;
      return items.type === "integer" || items.type === "number" ? parts.map(Number) : parts;
    };
    if (Array.isArray(def)) input.value = def.join(joiner);
    return { element: wrap(input), get, set: (v) => (input.value = Array.isArray(v) ? v.join(joiner) : ""), default: def };
  }

  if (s.type === "object" && s.properties) {
    const sub = buildObject(s, path, root, ctx);
    const el = h("fieldset", { class: "sf-object", dataset: { field: fieldPath } }, h("legend", {}, labelOf()), sub.element);
    return { element: el, get: sub.get, set: sub.set, default: def };
  }

  // Strings: prompts are text areas; model and preset names get suggestions from this deployment.
  const kind = m.widget === "model" ? m.model_kind || null : null;
  let input;
  let relabel;
  if (m.widget === "preset") {
    input = h("select", { id }, h("option", { value: "" }, t("create.noPreset")));
    input.dataset.want = def ?? ""; // shown once the presets are loaded (restyle's default is a style)
    input.addEventListener("change", () => delete input.dataset.want); // the user's choice wins over a remix's
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
  } else if (m.widget === "prompt" || m.widget === "textarea" || (s.maxLength || 0) > 1000) {
    input = h("textarea", { id, rows: m.widget === "prompt" ? 4 : 2, maxlength: s.maxLength });
  } else if (m.widget === "colour") {
    return colourField({ id, s, m, def, nullable, choice, wrap });
  } else if (kind) {
    return modelField({ id, kind, def, nullable, required, ctx, wrap });
  } else {
    input = h("input", { id, maxlength: s.maxLength, autocomplete: "off" });
  }
  if (typeof def === "string" && input.tagName !== "SELECT") input.value = def;
  const set = (v) => {
    input.value = v ?? "";
    if (input.tagName === "SELECT") input.dataset.want = v ?? "";
  };
  const get = () => {
    const v = input.tagName === "SELECT" ? (input.dataset.want ?? input.value) : input.value;
    // "No preset" where the op's default is one: an explicit null, else the server would apply its default.
    if (v === "" && input.tagName === "SELECT") return typeof def === "string" && def ? null : undefined;
    if (v === "" && nullable) return undefined;
    return v;
  };
  return { element: wrap(input), get, set, default: def ?? (nullable ? undefined : ""), relabel };
}

// Colour fields (widget "colour"): swatches of the field's named choices (ID photo: white/blue/red) or of common
// colours, a native colour picker for any other, and "transparent" where the field may be empty. The value is the
// named choice or "#rrggbb"; "" (transparent) sends nothing, so the op's own default (a transparent cut-out) holds.
const NAMED_HEX = { white: "#ffffff", blue: "#438edb", red: "#ff0000", black: "#000000" }; // id_photo's names
const COMMON = [
  ["#ffffff", "form.colour.white"],
  ["#f5f5f5", "form.colour.grey"],
  ["#000000", "form.colour.black"],
  ["#e4393c", "form.colour.red"],
  ["#438edb", "form.colour.blue"],
  ["#ffd400", "form.colour.yellow"],
];

function colourField({ id, s, m, def, nullable, choice, wrap }) {
  const named = m.choices ? Object.keys(m.choices) : [];
  let value = typeof def === "string" ? def : "";
  // "Transparent" only where empty is the field's own default (a cut-out): an ID photo always has a colour.
  const clear = nullable && (def === null || def === undefined);
  const swatch = (v, hex, title, key) =>
    h("button", {
      type: "button",
      class: `sf-colour${hex ? "" : " sf-transparent"}`,
      style: hex ? `background:${hex}` : null,
      title,
      "aria-label": title,
      dataset: { value: v, ...(key ? { i18nTitle: key } : {}) },
      onclick: () => set(v),
    });
  const picker = h("input", { type: "color", id, class: "sf-picker", dataset: { i18nTitle: "form.colour.custom" } });
  const shown = h("span", { class: "sf-colour-value muted" });
  const swatches = h("div", { class: "sf-colours", role: "group" });
  const render = () => {
    swatches.replaceChildren(
      ...(clear ? [swatch("", null, t("form.colour.transparent"), "form.colour.transparent")] : []),
      ...named.map((v) => swatch(v, NAMED_HEX[v] || v, choice(v))),
      ...(named.length ? [] : COMMON.map(([hex, key]) => swatch(hex, hex, t(key), key))),
    );
    mark();
  };
  const mark = () => {
    for (const b of swatches.children) b.setAttribute("aria-pressed", String(b.dataset.value === value));
    const hex = NAMED_HEX[value] || value;
    if (/^#[0-9a-fA-F]{6}$/.test(hex)) picker.value = hex.toLowerCase();
    shown.textContent = !value ? t("form.colour.transparent") : named.includes(value) ? choice(value) : value;
  };
  const set = (v) => {
    value = v ?? "";
    mark();
  };
  picker.addEventListener("input", () => set(picker.value));
  render();
  const get = () => value || (nullable ? undefined : "");
  const el = wrap(h("div", { class: "sf-inline sf-colour-row" }, swatches, picker, shown));
  return { element: el, get, set, default: def, relabel: render, focus: () => picker.focus() };
}

// Model fields (widget "model"): a select of the installed models of the field's kind. Where the field may be
// left empty its first entry is the default and names it ("默认（isnet-medium）"), from GET /api/v1/models'
// `defaults` (the same rule the op applies); a required one starts at "Choose…".
function modelField({ id, kind, def, nullable, required, ctx, wrap }) {
  const select = h("select", { id, dataset: { modelKind: kind } });
  let models = [];
  let defaults = {};
  let want = typeof def === "string" ? def : "";
  const emptyText = () => {
    if (!nullable && required) return t("form.chooseModel");
    if (!(kind in defaults)) return t("form.default");
    return defaults[kind] ? t("form.defaultNamed", { name: defaults[kind] }) : t("form.defaultNone");
  };
  const render = () => {
    const names = models.filter((x) => x.kind === kind).map((x) => x.name);
    const opts = [];
    if (nullable || required || typeof def !== "string") opts.push(h("option", { value: "" }, emptyText()));
    opts.push(...models.filter((x) => x.kind === kind).map((x) => h("option", { value: x.name }, x.family ? `${x.name} · ${x.family}` : x.name)));
    if (want && !names.includes(want)) opts.push(h("option", { value: want }, t("form.notInstalled", { name: want })));
    select.replaceChildren(...opts);
    select.value = want;
  };
  select.addEventListener("change", () => (want = select.value));
  ctx.lookups.then((found) => {
    models = found.models;
    defaults = found.defaults || {};
    render();
    select.dataset.loaded = "true";
  });
  render();
  const set = (v) => {
    want = v ?? "";
    render();
  };
  return { element: wrap(select), get: () => want || undefined, set, default: def, relabel: render };
}

// LLM fields (`format: llm-name`, ops/text_common.py): the chat models this server can use (GET /v1/models: the
// installed ones and "remote" for a configured server; the server's default first). Fetched once per page.
export const LLM_FORMAT = "llm-name";
let llmPromise = null;
export function llmChoices() {
  llmPromise ||= api("/v1/models")
    .then((d) => (d.data || []).map((m) => m.id))
    .catch(() => {
      llmPromise = null;
      return [];
    });
  return llmPromise;
}

function llmField({ id, def, wrap }) {
  const select = h("select", { id, dataset: { modelKind: "llm" } });
  let names = [];
  let want = typeof def === "string" ? def : "";
  const render = () => {
    const opts = [h("option", { value: "" }, names.length ? t("form.defaultNamed", { name: names[0] }) : t("form.default"))];
    opts.push(...names.map((n) => h("option", { value: n }, n)));
    if (want && !names.includes(want)) opts.push(h("option", { value: want }, t("form.notInstalled", { name: want })));
    select.replaceChildren(...opts);
    select.value = want;
  };
  select.addEventListener("change", () => (want = select.value));
  llmChoices().then((found) => {
    names = found;
    render();
    select.dataset.loaded = "true";
  });
  render();
  const set = (v) => {
    want = v ?? "";
    render();
  };
  return { element: wrap(select), get: () => want || undefined, set, default: def, relabel: render };
}

// The first required field left empty: its message at the field (like the API's field errors) and the focus.
// Returns true when every required field has a value.
export function checkRequired(checks) {
  for (const { f, name, path, schema } of checks) {
    const el = f.element;
    if (!el || !el.isConnected || el.closest("[hidden]")) continue;
    const v = f.get();
    if (!(v === undefined || v === null || v === "" || (Array.isArray(v) && !v.length))) continue;
    const details = el.closest("details");
    if (details) details.open = true;
    const prompt = meta(schema).widget === "prompt";
    const label = el.querySelector(".sf-label")?.firstChild?.textContent || name;
    const key = prompt ? "form.emptyPrompt" : "form.requiredMsg";
    const msg = h("p", { class: "field-error", role: "alert", dataset: { errorFor: path.join(".") } }, t(key, { field: label }));
    for (const old of el.parentElement.querySelectorAll(`.field-error[data-error-for="${CSS.escape(path.join("."))}"]`)) old.remove();
    el.after(msg);
    el.classList.add("invalid");
    const input = el.querySelector("input:not([type=hidden]), select, textarea, button");
    if (input) {
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
    return false;
  }
  return true;
}

// Every schema form on the page guards its own <form>: a submit with a required field empty stops here, before
// the view's handler sends anything (capture phase on the document runs first).
const guards = new WeakMap(); // .schema-form element -> its checks
document.addEventListener(
  "submit",
  (ev) => {
    for (const el of ev.target.querySelectorAll(".schema-form")) {
      const checks = guards.get(el);
      if (checks && !el.closest("[hidden]") && !checkRequired(checks)) {
        ev.preventDefault();
        ev.stopImmediatePropagation();
        return;
      }
    }
  },
  true,
);

// An enum value's label: the op's own (x-zhike choices), else the shared one, else the value itself.
function choiceLabel(op, path, name, value) {
  const own = `${opKey(op, "c", path)}.${value}`;
  if (has(own)) return t(own);
  const shared = `enum.${name}.${value}`;
  return has(shared) ? t(shared) : String(value);
}

// Arrays of objects: a group per item with Remove, and Add (up to maxItems).
function buildList(name, s, items, path, root, ctx, wrap) {
  const rows = h("div", { class: "sf-list" });
  const entries = [];
  let serial = 0; // element ids stay unique however rows come and go
  const add = h("button", { type: "button", class: "link sf-add", dataset: { i18n: "form.add" } });
  const base = path.join(".");
  // Each row's [data-field]s name its position (loras.1.weight), so API errors land on the row they are about.
  const refresh = () => {
    add.disabled = s.maxItems !== undefined && entries.length >= s.maxItems;
    entries.forEach((e, i) => {
      if (e.at === i) return;
      for (const el of [e.element, ...e.element.querySelectorAll("[data-field]")]) {
        const f = el.dataset.field;
        if (f === `${base}.${e.at}` || f.startsWith(`${base}.${e.at}.`)) el.dataset.field = `${base}.${i}${f.slice(`${base}.${e.at}`.length)}`;
      }
      e.at = i;
    });
  };
  function addRow(value) {
    const sub = buildObject(items, [...path, serial++], root, ctx);
    const entry = { sub, element: null, at: serial - 1 };
    const remove = h("button", { type: "button", class: "link sf-remove", dataset: { i18n: "form.remove" } });
    entry.element = h("div", { class: "sf-item", dataset: { field: `${base}.${entry.at}` } }, sub.element, remove);
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
  const el = h("div", { class: "sf-field sf-array", dataset: { field: path.join(".") } }, h("span", { class: "sf-label-row" }, labelFor(name, s, false, path, ctx)), rows, add);
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
  const ctx = { idPrefix, op: op.name, lookups: lookups(), required: new Set(root.required || []), checks: [] };
  const visible = { ...root, properties: Object.fromEntries(Object.entries(root.properties || {}).filter(([k]) => !omit.includes(k))) };
  const form = buildObject(visible, [], root, ctx);

  // Order: by group (x-zhike group), then the field's own order, then images first and prompts next, then as
  // declared; the "more" group folds into "More settings".
  const props = root.properties || {};
  const ranked = form.fields.map(([name, f]) => {
    const m = meta(unwrap(props[name], root).s); // each field's metadata read once, not per comparison
    const kind = f.element?.classList.contains("sf-asset") ? 0 : m.widget === "prompt" ? 1 : 2;
    return { f, more: m.group === "more", key: [Math.max(0, GROUPS.indexOf(m.group || "main")), m.order ?? 0, kind] };
  });
  ranked.sort((a, b) => a.key[0] - b.key[0] || a.key[1] - b.key[1] || a.key[2] - b.key[2]); // stable: ties as declared
  const main = [];
  const advanced = [];
  for (const { f, more } of ranked) if (f.element) (more ? advanced : main).push(f.element);
  const more = advanced.length
    ? h("details", { class: "sf-more" }, h("summary", { dataset: { i18n: "form.more" } }), ...advanced)
    : null;
  const element = h("div", { class: "schema-form", dataset: { op: op.name } }, ...main, more);
  if (values) form.set(values);
  translate(element);
  guards.set(element, ctx.checks);
  return {
    op,
    element,
    check: () => checkRequired(ctx.checks),
    values: () => form.get(),
    setValues: (v) => form.set(v),
    relabel() {
      for (const [, f] of form.fields) if (f.relabel) f.relabel();
    },
  };
}
