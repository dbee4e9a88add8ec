// A text asset shown for reading and reuse: the words ops' result (views/words.js) and a text asset's detail in the
// library. The model's Markdown is drawn as DOM nodes with textContent only (never innerHTML: model output is
// untrusted), its structured parts (title with its length against the platform limit, selling points, sections,
// live-script segments with their seconds and pauses) each with Copy, and Export as md / txt / docx / pdf with the
// AI notice at the start or the end (GET /api/v1/assets/{id}/file?download=1&format=&notice=&lang=).
//
// textResult({asset_id, text, data, llm, op, params}, {idPrefix, remix}) -> HTMLElement
// Ids for tests (prefix default "text-"): #text-result, #text-body (the rendered Markdown), #text-parts,
// #text-title-length (data-n, data-limit),
// .text-part[data-part=KEY], #text-export-format, #text-export-notice, #text-export (the download link),
// #text-copy-all, #text-remix.
import { assetFileUrl } from "./api.js";
import { h, useCss } from "./dom.js";
import { addStrings, getLang, has, t, translate } from "./i18n.js";

addStrings({
  zh: {
    "text.parts": "分项",
    "text.full": "全文",
    "text.copy": "复制",
    "text.copyAll": "复制全文",
    "text.copied": "已复制",
    "text.copyFailed": "无法写入剪贴板，请手动选择复制",
    "text.export": "导出",
    "text.format": "格式",
    "text.notice": "AI 生成提示",
    "text.notice.start": "放在开头",
    "text.notice.end": "放在结尾",
    "text.remix": "改改再写",
    "text.aiBadge": "AI 生成",
    "text.model": "模型：{name}",
    "text.length": "长度 {n} / {limit}",
    "text.lengthOnly": "长度 {n}",
    "text.rule.double_width": "（按平台规则，汉字算 2、字母数字算 1）",
    "text.over": "超出平台上限",
    "text.seconds": "约 {n} 秒",
    "text.pause": "停顿 {n} 秒",
    "text.part.title": "标题",
    "text.part.titles": "备选标题",
    "text.part.points": "卖点",
    "text.part.selling_points": "卖点",
    "text.part.sections": "详情页段落",
    "text.part.skus": "SKU 描述",
    "text.part.tags": "标签",
    "text.part.hashtags": "话题标签",
    "text.part.hook": "开头钩子",
    "text.part.shots": "分镜",
    "text.part.slogans": "标语",
    "text.part.body": "正文",
    "text.part.opening": "开场",
    "text.part.closing": "结尾",
    "text.part.segments": "直播段落",
    "text.part.fillers": "暖场 / 循环话术",
    "text.part.filler": "暖场 / 循环话术",
    "text.part.faq": "常见问题",
    "text.part.answers": "常见问题回答",
    "text.part.prompt": "提示词",
    "text.part.negative_prompt": "反向提示词",
    "text.part.preset": "推荐风格",
    "text.part.translation": "译文",
    "text.part.text": "正文",
    "text.part.summary": "摘要",
    "text.part.cta": "行动号召",
    "text.part.headline": "主标题",
    "text.part.subline": "副标题",
    "text.part.facts": "规格参数",
    "text.script": "共 {chars} 字 · 约 {minutes} 分钟",
    "text.kind.opening": "开场",
    "text.kind.hook": "钩子",
    "text.kind.demo": "演示讲解",
    "text.kind.price": "价格揭晓",
    "text.kind.urgency": "紧迫感",
    "text.kind.cta": "下单号召",
    "text.kind.filler": "暖场 / 循环",
    "text.kind.faq": "答疑",
    "text.kind.closing": "结尾",
  },
  en: {
    "text.parts": "Parts",
    "text.full": "Full text",
    "text.copy": "Copy",
    "text.copyAll": "Copy all",
    "text.copied": "Copied",
    "text.copyFailed": "The clipboard is not available: select the text and copy it",
    "text.export": "Export",
    "text.format": "Format",
    "text.notice": "AI notice",
    "text.notice.start": "At the start",
    "text.notice.end": "At the end",
    "text.remix": "Edit and rewrite",
    "text.aiBadge": "AI generated",
    "text.model": "Model: {name}",
    "text.length": "Length {n} / {limit}",
    "text.lengthOnly": "Length {n}",
    "text.rule.double_width": "(as the platform counts: a Chinese character 2, a letter or digit 1)",
    "text.over": "Over the platform's limit",
    "text.seconds": "about {n} s",
    "text.pause": "pause {n} s",
    "text.part.title": "Title",
    "text.part.titles": "Other titles",
    "text.part.points": "Selling points",
    "text.part.selling_points": "Selling points",
    "text.part.sections": "Detail-page sections",
    "text.part.skus": "SKU descriptions",
    "text.part.tags": "Tags",
    "text.part.hashtags": "Hashtags",
    "text.part.hook": "Hook",
    "text.part.shots": "Shots",
    "text.part.slogans": "Slogans",
    "text.part.body": "Body",
    "text.part.opening": "Opening",
    "text.part.closing": "Closing",
    "text.part.segments": "Live segments",
    "text.part.fillers": "Filler and loop lines",
    "text.part.filler": "Filler and loop lines",
    "text.part.faq": "Common questions",
    "text.part.answers": "Answers to common questions",
    "text.part.prompt": "Prompt",
    "text.part.negative_prompt": "Negative prompt",
    "text.part.preset": "Suggested style",
    "text.part.translation": "Translation",
    "text.part.text": "Text",
    "text.part.summary": "Summary",
    "text.part.cta": "Call to action",
    "text.part.headline": "Headline",
    "text.part.subline": "Subline",
    "text.part.facts": "Specifications",
    "text.script": "{chars} characters · about {minutes} min",
    "text.kind.opening": "Opening",
    "text.kind.hook": "Hook",
    "text.kind.demo": "Demo",
    "text.kind.price": "Price reveal",
    "text.kind.urgency": "Urgency",
    "text.kind.cta": "Call to action",
    "text.kind.filler": "Filler / loop",
    "text.kind.faq": "Q&A",
    "text.kind.closing": "Closing",
  },
});

export const TEXT_FORMATS = [
  ["md", "Markdown"],
  ["txt", "TXT"],
  ["docx", "Word (DOCX)"],
  ["pdf", "PDF"],
];

export const isTextMime = (mime) => typeof mime === "string" && (mime.startsWith("text/") || mime === "application/json");

// The export URL of a text asset: format md|txt|docx|pdf, the AI notice at the start or end, named in the page's
// language.
export function textExportUrl(id, { format = "md", notice = "end" } = {}) {
  const q = new URLSearchParams({ download: "1", format, notice, lang: getLang() });
  return `${assetFileUrl(id)}?${q}`;
}

// -- Markdown -> DOM (a safe subset: headings, paragraphs, lists, quotes, code, rules, tables; **bold**, *em*,
// `code`). Every piece of the model's text goes in through textContent / text nodes.

const INLINE = /(\*\*[^*\n]+\*\*|__[^_\n]+__|`[^`\n]+`|\*[^*\s][^*\n]*\*)/g;

function inline(text) {
  const out = [];
  let last = 0;
  for (const m of text.matchAll(INLINE)) {
    if (m.index > last) out.push(document.createTextNode(text.slice(last, m.index)));
    const tok = m[0];
    if (tok.startsWith("**") || tok.startsWith("__")) out.push(h("strong", {}, tok.slice(2, -2)));
    else if (tok.startsWith("`")) out.push(h("code", {}, tok.slice(1, -1)));
    else out.push(h("em", {}, tok.slice(1, -1)));
    last = m.index + tok.length;
  }
  if (last < text.length) out.push(document.createTextNode(text.slice(last)));
  return out;
}

const cells = (line) => line.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").map((c) => c.trim());

export function markdown(source) {
  const root = h("div", { class: "md" });
  const lines = String(source || "").replace(/\r\n?/g, "\n").split("\n");
  let i = 0;
  // Front matter (exports carry the implicit label there): metadata, not the copy.
  if (lines[0] === "---") {
    const end = lines.indexOf("---", 1);
    if (end > 0) i = end + 1;
  }
  let para = [];
  const flush = () => {
    if (para.length) root.append(h("p", {}, ...para.flatMap((l, k) => (k ? [h("br"), ...inline(l)] : inline(l)))));
    para = [];
  };
  while (i < lines.length) {
    const line = lines[i];
    const trimmed = line.trim();
    let m;
    if (!trimmed) {
      flush();
      i += 1;
    } else if (trimmed.startsWith("```")) {
      flush();
      const body = [];
      i += 1;
      while (i < lines.length && !lines[i].trim().startsWith("```")) body.push(lines[i++]);
      i += 1;
      root.append(h("pre", {}, h("code", {}, body.join("\n"))));
    } else if ((m = trimmed.match(/^(#{1,6})\s+(.*)$/))) {
      flush();
      root.append(h(`h${Math.min(6, m[1].length + 2)}`, {}, ...inline(m[2].replace(/\s+#+$/, ""))));
      i += 1;
    } else if (/^([-*_])(\s*\1){2,}$/.test(trimmed)) {
      flush();
      root.append(h("hr"));
      i += 1;
    } else if (trimmed.startsWith(">")) {
      flush();
      const body = [];
      while (i < lines.length && lines[i].trim().startsWith(">")) body.push(lines[i++].trim().replace(/^>\s?/, ""));
      root.append(h("blockquote", {}, ...body.flatMap((l, k) => (k ? [h("br"), ...inline(l)] : inline(l)))));
    } else if (/^([-*+]|\d+[.)、])\s+/.test(trimmed)) {
      flush();
      const ordered = /^\d/.test(trimmed);
      const list = h(ordered ? "ol" : "ul");
      while (i < lines.length && /^\s*([-*+]|\d+[.)、])\s+/.test(lines[i])) {
        list.append(h("li", {}, ...inline(lines[i].trim().replace(/^([-*+]|\d+[.)、])\s+/, ""))));
        i += 1;
      }
      root.append(list);
    } else if (trimmed.startsWith("|") && i + 1 < lines.length && /^\s*\|?\s*:?-{2,}/.test(lines[i + 1])) {
      flush();
      const head = cells(lines[i]);
      i += 2;
      const rows = [];
      while (i < lines.length && lines[i].trim().startsWith("|")) rows.push(cells(lines[i++]));
      root.append(
        h(
          "table",
          { class: "md-table" },
          h("thead", {}, h("tr", {}, head.map((c) => h("th", {}, ...inline(c))))),
          h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, ...inline(c)))))),
        ),
      );
    } else {
      para.push(trimmed);
      i += 1;
    }
  }
  flush();
  return root;
}

// -- structured parts --------------------------------------------------------------------------------------------

const HEAD_KEYS = ["title", "heading", "name", "product", "visual", "label", "question", "q"];
const BODY_KEYS = ["text", "body", "content", "line", "lines", "value", "answer", "a", "description", "script"];
// What the ops put in `data` besides the parts: limits and measures, the script's schema and totals, the
// translation's languages, the photo's colours. Not parts of their own.
const META_KEYS = new Set(
  ("platform language lang title_limit title_rule title_length limits style tone version chars length schema " +
    "speech_rate_cps products total_chars est_seconds parts source target kind calls idea colours image_size")
    .split(" "),
);

const partLabel = (key) => (has(`text.part.${key}`) ? t(`text.part.${key}`) : key.replace(/_/g, " "));

// Plain text of any value, for Copy.
export function plain(v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return v.map((x, i) => (typeof x === "object" && x ? plain(x) : `${i + 1}. ${plain(x)}`)).join("\n");
  const head = HEAD_KEYS.map((k) => v[k]).find((x) => typeof x === "string");
  const body = BODY_KEYS.map((k) => v[k]).find((x) => x !== undefined);
  return [head, plain(body)].filter(Boolean).join("\n");
}

// The title's platform limit: data.title_limit (product_copy) or data.limits.title (marketing_copy).
function titleLimit(data) {
  const n = data.title_limit ?? data.limits?.title;
  return typeof n === "number" ? n : null;
}

// The title's length as its platform counts it (data.title_length, zhike/words), else characters.
const titleLength = (title, data) => (typeof data.title_length === "number" ? data.title_length : [...String(title)].length);

async function copy(text, status) {
  try {
    await navigator.clipboard.writeText(text);
    status.textContent = t("text.copied");
  } catch {
    status.textContent = t("text.copyFailed");
  }
  setTimeout(() => (status.textContent = ""), 2500);
}

function copyButton(getText, status) {
  return h("button", { type: "button", class: "link text-copy", onclick: () => copy(getText(), status), dataset: { i18n: "text.copy" } });
}

// A live-script segment's heading: its kind and its product ("钩子 · 保温杯").
function segmentHead(item, data) {
  const kind = has(`text.kind.${item.kind}`) ? t(`text.kind.${item.kind}`) : item.kind;
  const product = typeof item.product_index === "number" ? data.products?.[item.product_index]?.name : null;
  return [kind, product].filter(Boolean).join(" · ");
}

function itemBlock(item, data) {
  if (item === null || typeof item !== "object") return h("li", {}, String(item));
  const segment = typeof item.kind === "string" && "pause_after_ms" in item;
  const head = segment ? segmentHead(item, data) : HEAD_KEYS.map((k) => item[k]).find((x) => typeof x === "string" && x);
  const body = BODY_KEYS.map((k) => item[k]).find((x) => x !== undefined && x !== "" && x !== null);
  // Timing marks: speaking time and the pause after it (live-script segments), a shot's length.
  const chips = [];
  const chip = (key, n, meta) => chips.push(h("span", { class: "text-chip", dataset: { meta } }, t(key, { n })));
  if (typeof item.est_seconds === "number") chip("text.seconds", item.est_seconds, "seconds");
  if (typeof item.seconds === "number") chip("text.seconds", item.seconds, "seconds");
  if (typeof item.pause_after_ms === "number" && item.pause_after_ms > 0) chip("text.pause", item.pause_after_ms / 1000, "pause");
  const question = segment && item.question ? h("p", { class: "text-item-question" }, item.question) : null;
  const bodyEl = Array.isArray(body)
    ? h("ul", {}, body.map((b) => h("li", {}, plain(b))))
    : body !== undefined
      ? h("p", { class: "text-item-body" }, plain(body))
      : null;
  const attrs = { class: "text-item", dataset: segment ? { kind: item.kind } : {} };
  return h("li", attrs, head ? h("strong", {}, head) : null, chips.length ? h("span", { class: "text-chips" }, chips) : null, question, bodyEl);
}

function partValue(key, v, data, p) {
  if (typeof v === "string" || typeof v === "number") {
    const out = [h("p", { class: "text-part-value" }, String(v))];
    if (key === "title") {
      const limit = titleLimit(data);
      const n = titleLength(v, data);
      const over = limit !== null && n > limit;
      out.push(
        h(
          "p",
          { class: `text-length${over ? " over" : ""}`, id: `${p}title-length`, dataset: { n: String(n), limit: limit ?? "" } },
          limit !== null ? t("text.length", { n, limit }) : t("text.lengthOnly", { n }),
          data.title_rule === "double_width" ? ` ${t("text.rule.double_width")}` : "",
          over ? ` · ${t("text.over")}` : "",
        ),
      );
    }
    return out;
  }
  if (Array.isArray(v)) {
    const objects = v.some((x) => x && typeof x === "object");
    return [h(objects ? "ul" : "ol", { class: objects ? "text-items" : "text-list" }, v.map((x) => itemBlock(x, data)))];
  }
  if (v && typeof v === "object") return [h("ul", { class: "text-items" }, itemBlock(v, data))];
  return [];
}

function partsOf(data, status, p) {
  const entries = Object.entries(data || {}).filter(([k, v]) => !META_KEYS.has(k) && v !== null && v !== "" && !(Array.isArray(v) && !v.length));
  return entries.map(([key, v]) =>
    h(
      "section",
      { class: "text-part", dataset: { part: key } },
      h("div", { class: "text-part-head" }, h("h4", {}, partLabel(key)), copyButton(() => plain(v), status)),
      ...partValue(key, v, data, p),
    ),
  );
}

// result: {asset_id|id, text, data, llm|model, op, params}. opts.remix: the hash that re-opens the form filled.
export function textResult(result, opts = {}) {
  useCss("text_result.css");
  const p = opts.idPrefix ?? "text-";
  const id = result.asset_id || result.id;
  const status = h("span", { class: "muted text-copy-status", role: "status", id: `${p}copy-status` });
  const format = h("select", { id: `${p}export-format` }, TEXT_FORMATS.map(([v, label]) => h("option", { value: v }, label)));
  const notice = h(
    "select",
    { id: `${p}export-notice` },
    h("option", { value: "start", dataset: { i18n: "text.notice.start" } }),
    h("option", { value: "end", dataset: { i18n: "text.notice.end" } }),
  );
  notice.value = "end";
  const exportLink = h("a", { class: "button primary", id: `${p}export`, download: "", href: textExportUrl(id), dataset: { i18n: "text.export" } });
  const refresh = () => (exportLink.href = textExportUrl(id, { format: format.value, notice: notice.value }));
  for (const el of [format, notice]) el.addEventListener("change", refresh);
  exportLink.addEventListener("click", refresh); // the language may have changed since
  refresh();

  const parts = partsOf(result.data, status, p);
  const model = result.llm || result.model;
  const element = h(
    "div",
    { class: "text-result", id: `${p}result`, dataset: { assetId: id || "" } },
    h(
      "div",
      { class: "text-actions" },
      h("label", { class: "result-field" }, h("span", { dataset: { i18n: "text.format" } }), format),
      h("label", { class: "result-field" }, h("span", { dataset: { i18n: "text.notice" } }), notice),
      exportLink,
      h("button", { type: "button", class: "link", id: `${p}copy-all`, onclick: () => copy(result.text || "", status), dataset: { i18n: "text.copyAll" } }),
      opts.remix ? h("a", { class: "button", id: `${p}remix`, href: opts.remix, dataset: { i18n: "text.remix" } }) : null,
      status,
    ),
    h(
      "p",
      { class: "text-meta" },
      h("span", { class: "text-badge", dataset: { i18n: "text.aiBadge" } }),
      model ? h("span", { class: "muted" }, t("text.model", { name: model })) : null,
      typeof result.data?.total_chars === "number" && typeof result.data?.est_seconds === "number"
        ? h("span", { class: "muted", id: `${p}script-total` }, t("text.script", { chars: result.data.total_chars, minutes: Math.round(result.data.est_seconds / 6) / 10 }))
        : null,
    ),
    parts.length ? h("div", { class: "text-parts", id: `${p}parts` }, h("h3", { dataset: { i18n: "text.parts" } }), ...parts) : null,
    h("div", { class: "text-full" }, h("h3", { dataset: { i18n: "text.full" } }), h("div", { class: "text-body", id: `${p}body` }, markdown(result.text))),
  );
  translate(element);
  return element;
}
