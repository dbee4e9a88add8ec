"""Spreadsheets (XLSX, CSV): an FAQ sheet (question and answer columns) becomes one section per question; any other
table one section per row, naming the row's product. Read by design/data.py (its hostile-spreadsheet limits: ZIP
sizes, XML without DTD, cells, rows, time), whose errors (data_too_large, unsafe_xml, xlsx_invalid, ...) pass on."""

from __future__ import annotations

import re

from zhike.core.errors import ZhikeError
from zhike.design.data import DataTable, parse_csv, parse_xlsx
from zhike.kb.document import Section
from zhike.kb.limits import FIELD, Budget

_QUESTION = {"问题", "问", "提问", "常见问题", "顾客问题", "客户问题", "q", "question", "questions", "faq"}
_ANSWER = {"答案", "答", "回答", "解答", "回复", "标准回复", "a", "answer", "answers", "reply"}
_NAME = ("商品名称", "商品名", "产品名称", "产品名", "品名", "商品", "产品", "名称", "标题", "name", "product", "title")
_KEY = re.compile(r"[\s:：_\-()（）]+")


def sheet_sections(data: bytes, kind: str, budget: Budget) -> list[Section]:
    try:
        table = parse_xlsx(data, field=FIELD) if kind == "xlsx" else parse_csv(data, field=FIELD)
    except ZhikeError as e:
        e.ctx = {**(e.ctx or {}), "name": budget.name}  # which upload, as the document_* errors say
        raise
    budget.tick()
    return faq_sections(table, budget) or row_sections(table, budget)


def faq_sections(table: DataTable, budget: Budget) -> list[Section]:
    """ "问：…\\n答：…" per row with a question, when the header names a question and an answer column."""
    q = _column(table, _QUESTION)
    a = _column(table, _ANSWER)
    if q is None or a is None or q == a:
        return []
    out = []
    for n, row in enumerate(table.rows, start=2):  # row 1 is the header, as the spreadsheet numbers it
        question, answer = row[q].strip(), row[a].strip()
        if question:
            # Other columns (商品, 分类...) name what the row is about: in `where`, so they are indexed and cited
            # but the passage stays the question and its answer.
            said = question + answer
            about = "，".join(v.strip() for c, v in row.items() if v.strip() and c not in (q, a) and v not in said)
            where = f"FAQ 第{n}行" + (f"（{about}）" if about else "")
            out.append(Section(budget.add_text(f"问：{question}\n答：{answer}"), where, "faq"))
    return out


def row_sections(table: DataTable, budget: Budget) -> list[Section]:
    """ "<product>：column：value；…" per row (the name column is the first one named like 商品名称, else column 1)."""
    name_col = next((c for alias in _NAME for c in table.columns if _key(c) == alias), table.columns[0])
    out = []
    for n, row in enumerate(table.rows, start=2):
        name = row.get(name_col, "").strip()
        facts = "；".join(f"{c}：{v}" for c, v in row.items() if v and c != name_col)
        text = f"{name}：{facts}" if name else facts
        if text:
            out.append(Section(budget.add_text(text), f"第{n}行" + (f"（{name}）" if name else ""), "row"))
    return out


def _key(column: str) -> str:
    return _KEY.sub("", column).lower()


def _column(table: DataTable, names: set[str]) -> str | None:
    return next((c for c in table.columns if _key(c) in names), None)
