// Every visible string of the studio, in Chinese and English. t("key", {name: value}) fills {name}.
import { CTX_WORDS, ERRORS, WARNINGS } from "./errors.js";

const STRINGS = {
  zh: {
    "brand": "智客 Zhike",
    "nav.create": "创作",
    "nav.library": "作品库",
    "nav.signout": "退出登录",
    "lang.switch": "English",
    "login.title": "登录",
    "login.subtitle": "自托管 AIGC 工作室",
    "login.username": "用户名",
    "login.password": "密码",
    "login.submit": "登录",
    "login.busy": "正在登录…",
    "create.title": "文生图",
    "create.prompt": "画面描述",
    "create.promptHint": "例如：一只青花瓷茶壶，放在木桌上，柔和的自然光",
    "create.preset": "风格",
    "create.noPreset": "无（原样）",
    "create.size": "尺寸",
    "size.square": "方图",
    "size.landscape": "横图",
    "size.portrait": "竖图",
    "size.test": "测试",
    "create.submit": "生成",
    "create.busy": "生成中…",
    "create.result": "结果",
    "create.openLibrary": "在作品库中查看",
    "state.queued": "排队中",
    "state.running": "生成中",
    "state.succeeded": "完成",
    "state.failed": "失败",
    "state.cancelled": "已取消",
    "progress.step": "第 {step} / {total} 步",
    "progress.position": "你前面还有 {n} 个自己的任务（各用户轮流执行）",
    "progress.nextUp": "下一个就轮到它",
    "progress.etaStart": "预计约 {t}后开始",
    "progress.etaDone": "预计约 {t}后完成",
    "duration.seconds": "{n} 秒",
    "duration.minutes": "{n} 分钟",
    "duration.hours": "{n} 小时",
    "library.title": "作品库",
    "library.empty": "还没有作品。去“创作”生成第一张图吧。",
    "library.refresh": "刷新",
    "loading": "加载中…",
    "error.network": "无法连接服务器",
    "error.generic": "出错了：{msg}",
    "job.cancel": "取消",
    "nav.queue": "任务",
    "nav.batch": "批量设计",
    "nav.edit": "画布",
    "nav.models": "模型",
    "nav.keys": "API 密钥",
    "nav.users": "用户",
    "err.missing": "{field}：必填",
    "err.ge": "{field}：不能小于 {limit}",
    "err.gt": "{field}：必须大于 {limit}",
    "err.le": "{field}：不能大于 {limit}",
    "err.lt": "{field}：必须小于 {limit}",
    "err.too_long": "{field}：最多 {limit} 个字符",
    "err.too_short": "{field}：至少 {limit} 个字符",
    "err.too_many": "{field}：最多 {limit} 项",
    "err.int": "{field}：需要整数",
    "err.number": "{field}：需要数字",
    "err.bool": "{field}：需要是或否",
    "err.choice": "{field}：可选值为 {limit}",
    "err.pattern": "{field}：格式不对",
    "err.extra": "{field}：不认识这个参数",
    "err.multiple": "{field}：必须是 {limit} 的倍数",
  },
  en: {
    "brand": "Zhike 智客",
    "nav.create": "Create",
    "nav.library": "Library",
    "nav.signout": "Sign out",
    "lang.switch": "中文",
    "login.title": "Sign in",
    "login.subtitle": "Self-hosted AIGC studio",
    "login.username": "Username",
    "login.password": "Password",
    "login.submit": "Sign in",
    "login.busy": "Signing in…",
    "create.title": "Text to image",
    "create.prompt": "Prompt",
    "create.promptHint": "e.g. a blue-and-white porcelain teapot on a wooden table, soft daylight",
    "create.preset": "Style",
    "create.noPreset": "None (as written)",
    "create.size": "Size",
    "size.square": "Square",
    "size.landscape": "Landscape",
    "size.portrait": "Portrait",
    "size.test": "Test",
    "create.submit": "Generate",
    "create.busy": "Generating…",
    "create.result": "Result",
    "create.openLibrary": "See it in the library",
    "state.queued": "Queued",
    "state.running": "Generating",
    "state.succeeded": "Done",
    "state.failed": "Failed",
    "state.cancelled": "Cancelled",
    "progress.step": "Step {step} of {total}",
    "progress.position": "{n} of your own job(s) ahead (users take turns)",
    "progress.nextUp": "Next up",
    "progress.etaStart": "starts in about {t}",
    "progress.etaDone": "done in about {t}",
    "duration.seconds": "{n} s",
    "duration.minutes": "{n} min",
    "duration.hours": "{n} h",
    "library.title": "Library",
    "library.empty": "No images yet. Generate your first one under “Create”.",
    "library.refresh": "Refresh",
    "loading": "Loading…",
    "error.network": "Cannot reach the server",
    "error.generic": "Something went wrong: {msg}",
    "job.cancel": "Cancel",
    "nav.queue": "Queue",
    "nav.batch": "Batch design",
    "nav.edit": "Canvas",
    "nav.models": "Models",
    "nav.keys": "API keys",
    "nav.users": "Users",
  },
};

const KEY = "zhike.lang";

function initialLang() {
  const saved = localStorage.getItem(KEY);
  if (saved === "zh" || saved === "en") return saved;
  return (navigator.language || "").toLowerCase().startsWith("zh") ? "zh" : "en";
}

let lang = initialLang();

export function getLang() {
  return lang;
}

export function setLang(value) {
  lang = value === "en" ? "en" : "zh";
  localStorage.setItem(KEY, lang);
}

// Each view adds its own strings: addStrings({zh: {...}, en: {...}}).
export function addStrings(more) {
  for (const [code, table] of Object.entries(more)) Object.assign((STRINGS[code] ||= {}), table);
}

export function has(key) {
  return key in STRINGS[lang] || key in STRINGS.en;
}

export function t(key, vars = {}) {
  const s = STRINGS[lang][key] ?? STRINGS.en[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}

// Like t(), but a var may be a DOM node (or a list of them): returns the pieces to append, in order.
export function tNodes(key, vars = {}) {
  const s = STRINGS[lang][key] ?? STRINGS.en[key] ?? key;
  return s.split(/\{(\w+)\}/).flatMap((piece, i) => (i % 2 ? [vars[piece] ?? ""].flat() : piece ? [piece] : []));
}

// A label that comes from the API as {zh, en}.
export function pick(value) {
  if (value && typeof value === "object") return value[lang] ?? value.en ?? value.zh ?? "";
  return value ?? "";
}

// Fill every [data-i18n] element under root.
export function translate(root = document) {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
}

// A parameter's label: the translated `field.NAME` when there is one, else the given fallback (schema title).
export function fieldLabel(name, fallback) {
  const key = `field.${name}`;
  if (has(key)) return t(key);
  return fallback || name;
}

// pydantic's error kinds -> our message keys (the API passes `kind` and `ctx` along with its English message).
const KINDS = {
  missing: "err.missing",
  greater_than_equal: "err.ge",
  greater_than: "err.gt",
  less_than_equal: "err.le",
  less_than: "err.lt",
  string_too_long: "err.too_long",
  string_too_short: "err.too_short",
  too_long: "err.too_many",
  int_parsing: "err.int",
  int_type: "err.int",
  int_from_float: "err.int",
  float_parsing: "err.number",
  float_type: "err.number",
  bool_parsing: "err.bool",
  bool_type: "err.bool",
  enum: "err.choice",
  literal_error: "err.choice",
  string_pattern_mismatch: "err.pattern",
  extra_forbidden: "err.extra",
  multiple_of: "err.multiple",
};

function ctxLimit(ctx) {
  if (!ctx) return "";
  for (const k of ["ge", "gt", "le", "lt", "max_length", "min_length", "expected", "multiple_of"]) {
    if (ctx[k] !== undefined) return String(ctx[k]);
  }
  return "";
}

// An ApiError in the page's language, by its `code` (web/errors.js; the class in `type` when the code is newer
// than this page). Validation errors say the field and the limit from pydantic's `kind`/`ctx` in Chinese; English
// pages keep the API's own sentence for them.
export function errorMessage(err) {
  const message = err.message || "";
  const field = err.field ? err.field.replace(/^params\./, "") : "";
  const last = field.split(".").filter((p) => !/^\d+$/.test(p)).pop() || "";
  const label = last ? fieldLabel(last, field) : "";
  const limit = ctxLimit(err.ctx) || err.limit || "";
  if (lang === "zh" && err.kind && KINDS[err.kind] && field) return t(KINDS[err.kind], { field: label, limit });
  const entry = ERRORS[err.code] || ERRORS[err.type];
  if (!entry) return message;
  const vars = { limit, ...(err.ctx || {}), msg: message, field: label };
  return fill(entry[lang] ?? entry.en, vars);
}

// A template's {placeholders} from vars; a value that is a known word (CTX_WORDS) in the page's language.
function fill(template, vars) {
  return template.replace(/\{(\w+)\}/g, (_, name) => {
    const v = vars[name] ?? "";
    return CTX_WORDS[v] ? CTX_WORDS[v][lang] : String(v);
  });
}

// An operation warning (result.notes: {code, ctx, message}) in the page's language; a string or an unknown code
// shows its (English) message.
export function noteText(note) {
  if (typeof note === "string") return note;
  const entry = WARNINGS[note.code];
  return entry ? fill(entry[lang] ?? entry.en, note.ctx || {}) : note.message || "";
}

// A finished job's warnings in the page's language: its coded notes, else the plain (English) warnings.
export function resultWarnings(result) {
  if (!result) return [];
  if (result.notes && result.notes.length) return result.notes.map(noteText);
  return result.warnings || [];
}
