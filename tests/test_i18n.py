"""Every word the studio shows exists in Chinese and English, one language per message (static checks):

- each key the studio's JS asks for (t("key"), data-i18n, i18nPlaceholder/Title) has a zh and an en string;
- each error code raised anywhere in src, and every ErrorCode, has a zh and an en sentence in web/errors.js, and no
  zh sentence embeds the API's English {msg};
- each operation warning code (core.types.Note) is translated in web/errors.js WARNINGS;
- each field of each operation's Params has a zh and an en label.

Translations live in one place: web/i18n.js (shared words), web/errors.js (errors and warnings by code) and each
view's addStrings({zh, en}) block (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import re
from pathlib import Path

from zhike.core.errors import ErrorCode
from zhike.core.registry import list_ops
from zhike.core.ui import field_ui

SRC = Path(__file__).resolve().parent.parent / "src" / "zhike"
WEB = SRC / "web"
CJK = re.compile(r"[\u3400-\u9fff\uff00-\uffef\u3000-\u303f]")


def _block(text: str, start: int) -> str:
    """The text of the {...} object whose "{" is at `start` (strings and template literals skipped)."""
    depth, i, quote = 0, start, None
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = None
        elif c in "\"'`":
            quote = c
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i]
        i += 1
    raise AssertionError(f"unbalanced braces from {start}")


def _top_keys(body: str) -> set[str]:
    """The quoted keys at depth 0 of an object body ("key": ...)."""
    keys, depth, i, quote = set(), 0, 0, None
    while i < len(body):
        c = body[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = None
        elif c == '"' and depth == 0:
            m = re.compile(r'"((?:[^"\\]|\\.)*)"\s*:').match(body, i)
            if m:
                keys.add(m[1])
                i = m.end()
                continue
            quote = c
        elif c in "'`":
            quote = c
        elif c in "{[(":
            depth += 1
        elif c in "}])":
            depth -= 1
        i += 1
    return keys


def studio_strings() -> dict[str, set[str]]:
    """Every key of i18n.js's table and of every addStrings({zh: {...}, en: {...}}) block, per language."""
    out: dict[str, set[str]] = {"zh": set(), "en": set()}
    for path in WEB.rglob("*.js"):
        text = path.read_text(encoding="utf-8")
        starts = [m.end() - 1 for m in re.finditer(r"addStrings\(\{", text)]
        if path.name == "i18n.js":
            starts.append(text.index("const STRINGS = {") + len("const STRINGS = "))
        for start in starts:
            body = _block(text, start)
            for lang in ("zh", "en"):
                for m in re.finditer(rf"(?m)^\s*{lang}: \{{", body):
                    out[lang] |= _top_keys(_block(body, m.end() - 1))
    return out


KEY_USES = [
    re.compile(r"""\bt\(\s*"([\w.\-]+)"\s*[,)]"""),
    re.compile(r"""\bi18n(?:Placeholder|Title)?:\s*"([\w.\-]+)\""""),
    re.compile(r"""\b(?:titleKey|yesKey|noKey|labelKey|key):\s*"([a-z][\w-]*\.[\w.\-]+)\""""),
    re.compile(r"""data-i18n(?:-placeholder|-title)?="([\w.\-]+)\""""),
]


def used_keys() -> dict[str, str]:
    used: dict[str, str] = {}
    for path in [*WEB.rglob("*.js"), WEB / "index.html"]:
        text = re.sub(r"(?m)^\s*//.*$", "", path.read_text(encoding="utf-8"))  # not the examples in comments
        for rx in KEY_USES:
            for m in rx.finditer(text):
                used.setdefault(m[1], path.name)
    return used


def test_every_key_the_studio_uses_is_in_both_languages() -> None:
    strings = studio_strings()
    assert len(strings["zh"]) > 300 and len(strings["en"]) > 300  # the parser found the tables
    used = used_keys()
    assert len(used) > 150
    for lang in ("zh", "en"):
        missing = {k: where for k, where in used.items() if k not in strings[lang]}
        assert missing == {}, f"keys used without a {lang} string"


def test_zh_strings_are_chinese_and_en_strings_have_no_chinese() -> None:
    """An en string with CJK (or a zh string glued with its English) shows two languages at once."""
    for path in WEB.rglob("*.js"):
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r"(?m)^\s*en: \{", text):
            body = _block(text, m.end() - 1)
            bad = [line.strip() for line in body.splitlines() if CJK.search(line.split(":", 1)[-1])]
            # The language switch names the other language on purpose; brand names carry both.
            bad = [b for b in bad if not b.startswith(('"lang.switch"', '"brand"'))]
            assert bad == [], (path.name, bad)


def _table(name: str) -> dict[str, dict[str, str]]:
    text = (WEB / "errors.js").read_text(encoding="utf-8")
    body = text.split(f"export const {name} = {{", 1)[1].split("\n};", 1)[0]
    table = {
        m[1]: {"zh": m[2], "en": m[3]}
        for m in re.finditer(r'^\s+(\w+): \{ zh: "((?:[^"\\]|\\.)*)", en: "((?:[^"\\]|\\.)*)" \},?$', body, re.M)
    }
    assert len(table) == len([ln for ln in body.splitlines() if re.match(r"^\s+\w+: \{", ln)]), "one line each"
    return table


def raised_codes() -> dict[str, str]:
    """Every `code="..."` at a raise site or Note in src, and the error classes' own codes."""
    used: dict[str, str] = {}
    for path in SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r"""\bcode\s*=\s*["']([a-z_]+)["']|^\s+code(?:: str)? = ["']([a-z_]+)["']""", text, re.M):
            used.setdefault(m[1] or m[2], str(path.relative_to(SRC)))
    return used


def warning_codes() -> dict[str, str]:
    """Codes of operation warnings: note("code", ...) (core.types), and id_photo's add("code", ...) / checks."""
    used: dict[str, str] = {}
    rx = re.compile(r"""\b(?:note|add)\(\s*["']([a-z_]+)["']|\(\s*["'](id_photo_[a-z_]+)["']""")
    for path in SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if not re.search(r"from zhike\.core\.types import .*\bnote\b", text):
            continue  # only modules that make notes
        for m in rx.finditer(text):
            used.setdefault(m[1] or m[2], str(path.relative_to(SRC)))
    return used


def test_every_error_code_has_a_sentence_in_each_language_and_zh_never_shows_english() -> None:
    errors = _table("ERRORS")
    warnings = warning_codes()
    codes = {c.value for c in ErrorCode} | {c for c in raised_codes() if c not in warnings}
    missing = sorted(c for c in codes if c not in errors or not errors[c]["zh"].strip() or not errors[c]["en"])
    assert missing == [], "codes without a zh and an en sentence in web/errors.js"
    assert [c for c, e in errors.items() if "{msg}" in e["zh"]] == [], "zh sentences must not embed the English {msg}"
    assert [c for c, e in errors.items() if not CJK.search(e["zh"])] == [], "zh sentences are Chinese"
    assert [c for c, e in errors.items() if CJK.search(e["en"].replace("“", "").replace("”", ""))] == []


def test_every_op_warning_is_translated() -> None:
    table = _table("WARNINGS")
    used = warning_codes()
    assert {"id_photo_small", "id_photo_head_cut", "cutout_empty"} <= set(used)  # the scan finds them
    assert sorted(set(used) - set(table)) == [], "warning codes without zh/en in web/errors.js WARNINGS"
    for code, texts in table.items():
        assert CJK.search(texts["zh"]) and not CJK.search(texts["en"]), code


def test_every_op_field_has_a_zh_and_an_en_label() -> None:
    missing = []
    for op in list_ops():
        schema = op.params_model.model_json_schema()
        models = [("", schema), *((f"{k}.", d) for k, d in schema.get("$defs", {}).items())]
        for prefix, model in models:
            for name, prop in model.get("properties", {}).items():
                label = field_ui(prop).get("label") or {}
                if not prop.get("readOnly") and not (label.get("zh") and label.get("en")):
                    missing.append(f"{op.name}.{prefix}{name}")
    assert missing == [], "Params fields without ui(zh=..., en=...) labels"
