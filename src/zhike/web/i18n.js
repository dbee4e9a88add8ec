// Every visible string of the studio, in Chinese and English. t("key", {name: value}) fills {name}.
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
    "progress.position": "前面还有 {n} 个任务",
    "library.title": "作品库",
    "library.empty": "还没有作品。去“创作”生成第一张图吧。",
    "library.refresh": "刷新",
    "loading": "加载中…",
    "error.network": "无法连接服务器",
    "error.generic": "出错了：{msg}",
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
    "progress.position": "{n} job(s) ahead",
    "library.title": "Library",
    "library.empty": "No images yet. Generate your first one under “Create”.",
    "library.refresh": "Refresh",
    "loading": "Loading…",
    "error.network": "Cannot reach the server",
    "error.generic": "Something went wrong: {msg}",
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

export function t(key, vars = {}) {
  const s = STRINGS[lang][key] ?? STRINGS.en[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
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
}
