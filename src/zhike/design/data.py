"""Batch data (批量数据): a CSV, XLSX or JSON file -> rows of strings, then checked against a template row by row.

Every cell becomes a stripped string (numbers as typed: 19.9, 20 not 20.0), so the job row stores plain JSON and the
renderer sees one type. Whole-file problems (encoding, no header) raise InvalidInput naming the row and column; a
file past a limit (bytes, lines, rows, columns, a cell's or all cells' characters, JSON depth, and for XLSX the
inflated sizes, cells and time of design/xlsx.py) raises TooLarge `data_too_large` whose `ctx.what` names the limit.
Per-row problems (a missing or empty required value, an unknown image) are listed and the other rows go on.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Literal

from zhike.core.errors import InvalidInput
from zhike.design.photo_archive import IMAGE_SUFFIXES as PHOTO_SUFFIXES
from zhike.design.xlsx import MAX_CELLS, Workbook, data_limit

MAX_DATA_BYTES = 10_000_000
MAX_ROWS = 5000
MAX_LINES = 100_000  # rows read, blank ones included (a CSV of 10 MB of newlines is not a data file)
MAX_COLUMNS = 100
MAX_CELL = 2000  # characters; a price card's longest text is a few dozen
MAX_TABLE_CHARS = 20_000_000  # all cells together: XLSX shared strings would let one long text repeat in every cell
MAX_JSON_DEPTH = 3  # {"rows": [{column: value}]}
MAX_HEADER = 100
PREVIEW_ROWS = 5
CSV_SNIFF_CHARS = 4096  # csv.Sniffer's regexes are quadratic on hostile text: 4 KB costs at most ~0.1 s

DataFormat = Literal["csv", "xlsx", "json"]
ASSET_ID_RE = re.compile(r"^[A-Za-z0-9_-]{6,32}$")
# An uploaded asset's URL as the API hands it out (absolute or not, signed or not).
ASSET_URL_RE = re.compile(r"^(?:https?://[^/\s]+)?/api/v1/assets/([A-Za-z0-9_-]{6,32})/(?:file|thumb)(?:[?#]\S*)?$")


@dataclass
class DataTable:
    columns: list[str]
    rows: list[dict[str, str]]
    format: DataFormat
    encoding: str | None = None  # CSV only: utf-8 | utf-8-sig | gb18030

    def preview(self, n: int = PREVIEW_ROWS) -> list[dict[str, str]]:
        return self.rows[:n]


@dataclass(frozen=True)
class RowProblem:
    row: int  # 1-based: the first data row (under the header) is row 1
    column: str | None
    message: str  # English, for the API and CLI; the studio words it from `code`
    code: str  # column_missing | value_empty | photo_not_sent | image_ref_invalid | image_unknown
    value: str | None = None  # the offending cell (cut to 80 characters)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CheckedRows:
    rows: list[dict[str, str]]  # image cells normalised to asset ids
    problems: dict[int, list[RowProblem]] = field(default_factory=dict)  # row number -> what is wrong

    @property
    def errors(self) -> list[RowProblem]:
        return [p for r in sorted(self.problems) for p in self.problems[r]]


def where(row: int, column: str | None = None) -> str:
    return f"row {row}" + (f", column {column!r}" if column is not None else "")


# -- parsing -----------------------------------------------------------------------------------------------------


def guess_format(data: bytes, filename: str | None) -> DataFormat:
    suffix = Path(filename or "").suffix.lower()
    if suffix in (".csv", ".txt", ".tsv"):
        return "csv"
    if suffix in (".xlsx", ".xlsm"):
        return "xlsx"
    if suffix == ".json":
        return "json"
    if data.startswith(b"PK\x03\x04"):
        return "xlsx"
    if data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"[", b"{"):
        return "json"
    return "csv"


def parse_data(
    data: bytes, filename: str | None = None, *, fmt: DataFormat | None = None, field: str = "file"
) -> DataTable:
    """Parse a data file (format from `fmt`, the file name's suffix, or its first bytes)."""
    if len(data) > MAX_DATA_BYTES:
        raise data_limit(f"the data file is {len(data)} bytes", "file_bytes", MAX_DATA_BYTES, field)
    if not data.strip():
        raise InvalidInput("the data file is empty", code="data_empty", field=field)
    fmt = fmt or guess_format(data, filename)
    if fmt == "xlsx":
        return parse_xlsx(data, field=field)
    if fmt == "json":
        text, _ = decode_text(data, field=field)
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise InvalidInput(
                f"not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}",
                code="data_json_invalid",
                field=field,
                ctx={"line": e.lineno, "column": e.colno},
            ) from None
        except RecursionError:  # the parser gives up ~1000 levels down; anything past 3 is refused below anyway
            raise data_limit("the JSON is nested too deeply", "json_depth", MAX_JSON_DEPTH, field) from None
        return parse_records(obj, field=field)
    return parse_csv(data, field=field)


def parse_path(path: Path, *, field: str = "DATA") -> DataTable:
    if not path.is_file():
        raise InvalidInput(f"no data file at {path}", code="data_file_missing", field=field, ctx={"path": path.name})
    if path.stat().st_size > MAX_DATA_BYTES:
        raise data_limit(f"{path.name} is {path.stat().st_size} bytes", "file_bytes", MAX_DATA_BYTES, field)
    return parse_data(path.read_bytes(), path.name, field=field)


def decode_text(data: bytes, *, field: str) -> tuple[str, str]:
    """UTF-8 (with or without BOM) else GBK/GB18030 (what Excel in China saves as 'CSV'); strict both times."""
    try:
        return data.decode("utf-8-sig"), "utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "gb18030"
    except UnicodeDecodeError as e:
        raise InvalidInput(
            f"the file is neither UTF-8 nor GBK text (bad byte at offset {e.start}): save it as CSV UTF-8",
            code="data_encoding",
            field=field,
            ctx={"offset": e.start},
        ) from None


def parse_csv(data: bytes, *, field: str = "file") -> DataTable:
    text, encoding = decode_text(data, field=field)
    sample = text[:CSV_SNIFF_CHARS]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    # The csv module holds a whole line's cells: a line of 9 million commas is a list of 9 million (+200 MB). The
    # delimiters in the file bound every line's cells (quoted ones count too: an upper bound), counted at C speed.
    if text.count(dialect.delimiter) > MAX_CELLS:
        raise data_limit("the file has more cells", "cells", MAX_CELLS, field)
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        table = _from_grid(reader, "csv", field=field)
    except csv.Error as e:
        raise InvalidInput(f"not a readable CSV file: {e}", code="data_csv_invalid", field=field) from None
    table.encoding = encoding
    return table


def parse_xlsx(data: bytes, *, field: str = "file") -> DataTable:
    """The first sheet; its first non-empty row is the header. Read by design/xlsx.py within its limits."""
    wb = Workbook(data, field=field, max_columns=MAX_COLUMNS, max_text=MAX_CELL + 1)
    try:
        return _from_grid(wb.rows(), "xlsx", field=field)
    finally:
        wb.close()


def parse_records(obj: Any, *, field: str = "file") -> DataTable:
    """JSON rows: a list of objects, or {"rows": [...]}; columns in order of first appearance."""
    if isinstance(obj, dict) and "rows" in obj:
        obj = obj["rows"]
    if not isinstance(obj, list):
        raise InvalidInput(
            'JSON data must be a list of objects or {"rows": [...]}', code="data_json_shape", field=field
        )
    if len(obj) > MAX_ROWS:
        raise data_limit(f"{len(obj)} rows (at most {MAX_ROWS} per batch)", "rows", MAX_ROWS, field)
    columns: dict[str, None] = {}
    rows: list[dict[str, str]] = []
    chars = _Chars(field)
    for i, rec in enumerate(obj, start=1):
        if not isinstance(rec, dict):
            raise InvalidInput(
                f"{where(i)}: must be an object of column: value", code="data_json_shape", field=field, ctx={"row": i}
            )
        row: dict[str, str] = {}
        for key, value in rec.items():
            name = _header(key, i, field)
            if isinstance(value, dict | list):
                raise InvalidInput(
                    f"{where(i, name)}: must be text or a number, not {type(value).__name__}",
                    code="data_cell_type",
                    field=field,
                    ctx={"row": i, "column": name},
                )
            row[name] = _cell(value, i, name, field)
            columns.setdefault(name, None)
            if len(columns) > MAX_COLUMNS:
                raise data_limit(f"{where(i, name)}: more columns", "columns", MAX_COLUMNS, field)
        rows.append(chars.add(row))
    return DataTable(list(columns), rows, "json")


class _Chars:
    """The characters of every cell kept so far, at most MAX_TABLE_CHARS."""

    def __init__(self, field: str) -> None:
        self.field, self.total = field, 0

    def add(self, row: dict[str, str]) -> dict[str, str]:
        self.total += sum(map(len, row.values()))
        if self.total > MAX_TABLE_CHARS:
            raise data_limit("the cells hold more characters", "table_chars", MAX_TABLE_CHARS, self.field)
        return row


def _from_grid(grid: Iterable[Iterable[Any]], fmt: DataFormat, *, field: str) -> DataTable:
    lines = enumerate(grid, start=1)
    header: list[str] | None = None
    for line, cells in lines:
        values = _values(cells, line, field)
        if any(values):
            header = _header_row(values, field)
            break
    if header is None:
        raise InvalidInput("no header row: the first row must name the columns", code="data_no_header", field=field)
    rows: list[dict[str, str]] = []
    chars = _Chars(field)
    for line, cells in lines:
        values = _values(cells, line, field)
        if not any(values):
            continue  # blank lines between rows, trailing empty rows Excel keeps
        n = len(rows) + 1
        if n > MAX_ROWS:
            raise data_limit(f"more rows: split the file (at most {MAX_ROWS} per batch)", "rows", MAX_ROWS, field)
        extra = [v for v in values[len(header) :] if v]
        if extra:
            raise InvalidInput(
                f"{where(n)}: {len(values)} cells but only {len(header)} columns",
                code="data_row_too_long",
                field=field,
                ctx={"row": n, "cells": len(values), "columns": len(header)},
            )
        padded = values[: len(header)] + [""] * (len(header) - len(values))
        rows.append(chars.add({name: _cell(v, n, name, field) for name, v in zip(header, padded, strict=True)}))
    return DataTable(header, rows, fmt)


def _values(cells: Iterable[Any], line: int, field: str) -> list[str]:
    """A row's cells as text, at most MAX_COLUMNS of them (blank cells further right are dropped: Excel keeps
    formatted empty columns); past MAX_LINES rows read, blank or not, the file is refused."""
    if line > MAX_LINES:
        raise data_limit("more lines", "lines", MAX_LINES, field)
    cells = cells if isinstance(cells, list | tuple) else list(cells)
    # Only CSV rows (lists of str) get this long (the XLSX reader stops at a value past the limit): checked at C
    # speed, a line of 9 million commas is 0.5 s, not 4.
    if len(cells) > MAX_COLUMNS and any(map(str.strip, cells[MAX_COLUMNS:])):
        raise data_limit(f"line {line} has more columns", "columns", MAX_COLUMNS, field)
    return [_text(v) for v in cells[:MAX_COLUMNS]]


def _header_row(values: list[str], field: str) -> list[str]:
    while values and not values[-1]:
        values.pop()  # Excel keeps formatted empty columns at the right
    seen: set[str] = set()
    for i, name in enumerate(values, start=1):
        if not name:
            raise InvalidInput(f"header: column {i} has no name", code="data_header_unnamed", field=field, ctx={"n": i})
        if name in seen:
            raise InvalidInput(
                f"header: column {name!r} appears twice", code="data_header_twice", field=field, ctx={"name": name}
            )
        if len(name) > MAX_HEADER:
            raise InvalidInput(
                f"header: column {i} name is over {MAX_HEADER} characters",
                code="data_header_long",
                field=field,
                ctx={"n": i, "limit": MAX_HEADER},
            )
        seen.add(name)
    return values


def _header(key: Any, row: int, field: str) -> str:
    name = str(key).strip()
    if not name or len(name) > MAX_HEADER:
        raise InvalidInput(
            f"{where(row)}: column names must be 1-{MAX_HEADER} characters",
            code="data_header_long",
            field=field,
            ctx={"n": row, "limit": MAX_HEADER},
        )
    return name


def _text(value: Any) -> str:
    """A cell as the user sees it: 20 not 20.0, dates as ISO, None as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value).strip()


def _cell(value: Any, row: int, column: str, field: str) -> str:
    text = _text(value)
    if len(text) > MAX_CELL:
        raise data_limit(f"{where(row, column)}: the text is too long", "cell_chars", MAX_CELL, field)
    return text


# -- checking rows against a template ------------------------------------------------------------------------------


def asset_ref(value: str) -> str | None:
    """An image cell -> the asset id it names (an id, or an /api/v1/assets/ID/file URL); None if it names none."""
    v = value.strip()
    m = ASSET_URL_RE.match(v)
    if m:
        return m[1]
    return v if ASSET_ID_RE.match(v) else None


def photo_key(name: str) -> str:
    """How a data cell names an uploaded photo: its file name without folders and extension, case-folded
    ("photos/Cup.JPG" and "cup" name the same photo)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    stem = base.rsplit(".", 1)[0] if "." in base.lstrip(".") else base
    return stem.casefold()


def check_rows(
    rows: list[dict[str, str]],
    required: set[str],
    image_columns: set[str],
    *,
    asset_exists: Callable[[str], bool] | None = None,
    photos: Mapping[str, str] | None = None,
) -> CheckedRows:
    """Normalise image cells to asset ids and list each row's problems; a bad row never stops the others.
    `photos`: the photos uploaded with the data, {file name: asset id}; a cell may name one by its file name
    (with or without the extension, any case: `photo_key`)."""
    out = CheckedRows(rows=[])
    named = {photo_key(k): v for k, v in (photos or {}).items()}
    for n, raw in enumerate(rows, start=1):
        row = dict(raw)
        problems: list[RowProblem] = []
        for col in sorted(required):
            if col not in row:
                problems.append(RowProblem(n, col, f"{where(n, col)}: required column is missing", "column_missing"))
            elif not row[col].strip():
                problems.append(RowProblem(n, col, f"{where(n, col)}: required value is empty", "value_empty"))
        for col in sorted(image_columns):
            value = row.get(col, "").strip()
            if not value:
                continue
            aid = named.get(photo_key(value)) or asset_ref(value)
            if aid is None and Path(value).suffix.lower() in PHOTO_SUFFIXES:
                problems.append(
                    RowProblem(
                        n,
                        col,
                        f"{where(n, col)}: no photo {value[:80]!r} came with the data",
                        "photo_not_sent",
                        value[:80],
                    )
                )
            elif aid is None:
                problems.append(
                    RowProblem(
                        n,
                        col,
                        f"{where(n, col)}: {value[:80]!r} is not an image asset id or /api/v1/assets/ID/file URL"
                        " (upload the image first)",
                        "image_ref_invalid",
                        value[:80],
                    )
                )
            elif asset_exists is not None and not asset_exists(aid):
                problems.append(
                    RowProblem(n, col, f"{where(n, col)}: unknown image asset {aid!r}", "image_unknown", aid)
                )
            else:
                row[col] = aid
        out.rows.append(row)
        if problems:
            out.problems[n] = problems
    return out


# -- what a template needs from a row ------------------------------------------------------------------------------


def image_columns(template: Any) -> set[str]:
    """Columns whose cells are images (used in an image layer's `src`): they must name uploaded assets."""
    from zhike.design.template import layer_columns

    return {c for layer in template.layers if layer.type == "image" for c in layer_columns(layer)}


def generates(template: Any) -> bool:
    """The template has a layer drawn by the image model (txt2img) per row."""
    return any(layer.type == "generated" for layer in template.layers)


def cuts_out(template: Any) -> bool:
    return any(layer.type == "image" and layer.cutout for layer in template.layers)
