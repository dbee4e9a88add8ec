"""The first sheet of an .xlsx workbook as rows of cell values, read with every size bounded before it is spent.

Data files come from anyone, and a workbook is a ZIP of XML: a 1.5 KB file can declare a sheet of 16,384 x 1,048,576
cells (openpyxl pads every row to the declared dimension: minutes of CPU), a 300 KB one can hold a shared string
that inflates to 600 MB (openpyxl keeps it: 1.2 GB), and XML can declare entities that expand exponentially. So:

- the ZIP's central directory is checked before anything is inflated: members, declared sizes, compression ratio
  (a member never yields more than its declared size: zipfile stops there, and checks the CRC);
- each part is streamed through expat with any DTD refused (no entity can be declared, so none expands); no tree;
- the sheet's `<dimension>` is ignored (rows are what the sheet holds, gaps cost nothing); a value past the column
  limit, more than MAX_CELLS cells, MAX_STRINGS shared strings or MAX_STYLES cell styles, or more than MAX_SECONDS
  of reading stops the read (the time is looked at after each 64 KB of XML);
- a text keeps at most `max_text` characters (the caller's cell limit + 1: enough to say "too long").

Values are what openpyxl gives with data_only=True (formulas' cached results): str, int, float, bool, and datetime,
time or timedelta for numbers in a date or duration format (in the workbook's 1900 or 1904 calendar).
"""

from __future__ import annotations

import io
import posixpath
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any
from xml.parsers import expat

from zhike.core.errors import InvalidInput, TooLarge

MAX_MEMBERS = 10_000
MAX_PART_BYTES = 32_000_000  # one XML part, inflated (5000 rows x 20 columns of Chinese text: ~10 MB)
MAX_TOTAL_BYTES = 100_000_000  # all members, inflated (embedded photos are stored about 1:1)
MAX_RATIO = 100  # inflated / compressed, for members over RATIO_FROM bytes (Excel's XML: 5-30)
RATIO_FROM = 1_000_000
MAX_CELLS = 1_000_000  # <c> elements of the sheet, empty or not; a CSV's delimiters (5000 rows x 100 columns: half)
MAX_STRINGS = 1_000_000  # shared strings (of every sheet)
MAX_STYLES = 65_536  # cell formats (Excel's own limit is 64,000)
MAX_SECONDS = 10.0
_CHUNK = 1 << 16

Start = Callable[[str, dict[str, str]], None]
End = Callable[[str], None]


def data_limit(message: str, what: str, limit: float, field: str) -> TooLarge:
    """A data file (of any format: design/data.py raises it too) past one of its limits: 413 `data_too_large`,
    `ctx.what` names the limit, `limit` is its value."""
    shown = f"{limit:,}" if isinstance(limit, int) else f"{limit:g}"
    return TooLarge(
        f"{message}: the limit is {shown}",
        code="data_too_large",
        field=field,
        limit=limit,
        ctx={"what": what},
    )


@cache
def _columns() -> dict[str, int]:
    """'A' -> 1 ... 'XFD' -> 16384: a cell reference's column is one lookup (the sheet's hot path)."""
    out: dict[str, int] = {}
    for i in range(1, 16385):
        n, name = i, ""
        while n:
            n, r = divmod(n - 1, 26)
            name = chr(65 + r) + name
        out[name] = i
    return out


def column_index(ref: str) -> int:
    """'A1' -> 1, 'AB7' -> 28; 0 for what is not a cell reference."""
    return _columns().get(ref.rstrip("0123456789").upper(), 0)


class _Text:
    """The text of the elements being read (`on`), at most `limit` characters."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0
        self.on = False

    def begin(self, *, on: bool = True) -> None:
        self.parts, self.size, self.on = [], 0, on

    def add(self, data: str) -> None:
        if self.on and self.size < self.limit:
            self.parts.append(data[: self.limit - self.size])
            self.size += len(self.parts[-1])

    def take(self) -> str:
        self.on = False
        return "".join(self.parts)


class Workbook:
    """An opened workbook: `rows()` streams the first sheet. Errors name `field` (InvalidInput, TooLarge).

    Element names are matched without their prefix (`x:c` is `c`: some writers prefix SpreadsheetML)."""

    def __init__(self, data: bytes, *, field: str, max_columns: int, max_text: int) -> None:
        self.field, self.max_columns, self.max_text = field, max_columns, max_text
        self.deadline = time.monotonic() + MAX_SECONDS
        self.calendar_1904 = False
        # Each member costs zipfile a ZipInfo (~0.5 KB) when it reads the directory: count the directory's entry
        # signatures first (an upper bound) so 200,000 empty members in 10 MB are refused before that.
        if data.count(b"PK\x01\x02") > MAX_MEMBERS:
            raise self._limit("the workbook has more parts", "zip_members", MAX_MEMBERS)
        try:
            self.zf = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as e:
            raise self._unreadable(type(e).__name__) from None
        try:
            self._check_sizes()
            book = self._office_document()
            rels = self._rels_of(book)
            self.sheet = self._first_sheet(book, rels)
            self.strings = self._shared_strings(self._member(_target(rels, "sharedStrings")))
            self.date_styles, self.duration_styles = self._styles(self._member(_target(rels, "styles")))
        except BaseException:
            self.zf.close()
            raise

    def close(self) -> None:
        self.zf.close()

    def _limit(self, message: str, what: str, limit: float) -> TooLarge:
        return data_limit(message, what, limit, self.field)

    def _unreadable(self, why: str) -> InvalidInput:
        return InvalidInput(f"not a readable .xlsx workbook ({why})", code="xlsx_invalid", field=self.field)

    # -- the container ---------------------------------------------------------------------------------------------
    def _check_sizes(self) -> None:
        infos = self.zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise self._limit(f"the workbook has {len(infos)} parts", "zip_members", MAX_MEMBERS)
        for info in infos:
            if info.file_size > RATIO_FROM and info.file_size > MAX_RATIO * max(1, info.compress_size):
                ratio = info.file_size // max(1, info.compress_size)
                raise self._limit(f"{info.filename} inflates {ratio} times", "zip_ratio", MAX_RATIO)
        total = sum(info.file_size for info in infos)
        if total > MAX_TOTAL_BYTES:
            raise self._limit(f"the workbook inflates to {total} bytes", "uncompressed_bytes", MAX_TOTAL_BYTES)

    def _member(self, name: str | None) -> str | None:
        """`name` when the workbook has that part (within MAX_PART_BYTES), else None."""
        try:
            info = self.zf.getinfo(name) if name else None
        except KeyError:
            return None
        if info is not None and info.file_size > MAX_PART_BYTES:
            raise self._limit(f"{name} inflates to {info.file_size} bytes", "part_bytes", MAX_PART_BYTES)
        return name if info is not None else None

    def _stream(self, name: str, start: Start, end: End | None = None, text: _Text | None = None) -> Iterator[None]:
        """Parse one part with expat, yielding after each 64 KB of XML (when the clock is looked at)."""
        parser = expat.ParserCreate()
        parser.buffer_text = True  # one call per text, not per line
        parser.StartDoctypeDeclHandler = lambda *_: self._refuse_dtd(name)
        parser.StartElementHandler = start
        if end is not None:
            parser.EndElementHandler = end
        if text is not None:
            parser.CharacterDataHandler = text.add
        try:
            with self.zf.open(name) as f:
                while chunk := f.read(_CHUNK):
                    parser.Parse(chunk, False)
                    if time.monotonic() > self.deadline:
                        raise self._limit(f"the workbook takes over {MAX_SECONDS:g} s to read", "seconds", MAX_SECONDS)
                    yield
                parser.Parse(b"", True)
        except expat.ExpatError as e:
            raise self._unreadable(f"{name}: {e}") from None
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as e:
            raise self._unreadable(f"{name}: {e}") from None  # a bad CRC, an encrypted or unknown compression

    def _read(self, name: str, start: Start, end: End | None = None, text: _Text | None = None) -> None:
        for _ in self._stream(name, start, end, text):
            pass

    def _refuse_dtd(self, name: str) -> None:
        raise InvalidInput(
            f"{name} declares a DTD: workbooks never do, and its entities could expand without end",
            code="unsafe_xml",
            field=self.field,
        )

    def _rels_of(self, part: str) -> dict[str, tuple[str, str]]:
        """Relationship id -> (the type's last word, the target part) of `part` ("" for the package)."""
        folder, base = posixpath.split(part)
        out: dict[str, tuple[str, str]] = {}

        def start(tag: str, a: dict[str, str]) -> None:
            if _local(tag) == "Relationship" and a.get("TargetMode") != "External" and a.get("Target"):
                target = a["Target"]
                path = target.lstrip("/") if target.startswith("/") else posixpath.join(folder, target)
                out[a.get("Id", "")] = (a.get("Type", "").rpartition("/")[2], posixpath.normpath(path))

        name = self._member(posixpath.join(folder, "_rels", base + ".rels"))
        if name:
            self._read(name, start)
        return out

    def _office_document(self) -> str:
        found = self._member(_target(self._rels_of(""), "officeDocument") or "xl/workbook.xml")
        if found is None:
            raise self._unreadable("no workbook part")
        return found

    def _first_sheet(self, book: str, rels: dict[str, tuple[str, str]]) -> str:
        """The first worksheet in the workbook's tab order (chart sheets hold no data); notes the 1904 calendar."""
        ids: list[str] = []

        def start(tag: str, a: dict[str, str]) -> None:
            tag = _local(tag)
            if tag == "sheet":
                ids.append(next((v for k, v in a.items() if _local(k) == "id"), ""))  # r:id, whatever the prefix
            elif tag == "workbookPr":
                self.calendar_1904 = a.get("date1904", "").lower() in ("1", "true")

        self._read(book, start)
        sheets = [rels[i][1] for i in ids if i in rels and rels[i][0] == "worksheet"]
        if not sheets:
            raise InvalidInput("the workbook has no sheet", code="xlsx_no_sheet", field=self.field)
        if self._member(sheets[0]) is None:
            raise self._unreadable(f"no {sheets[0]}")
        return sheets[0]

    # -- shared strings and styles ---------------------------------------------------------------------------------
    def _shared_strings(self, name: str | None) -> list[str]:
        """Each <si>'s text: its <t>, or its runs' <t> joined; phonetic guides (<rPh>) left out."""
        strings: list[str] = []
        text = _Text(self.max_text)
        phonetic = 0

        def start(tag: str, a: dict[str, str]) -> None:
            nonlocal phonetic
            tag = _local(tag)
            if tag == "t":
                text.on = not phonetic
            elif tag == "si":
                if len(strings) == MAX_STRINGS:
                    raise self._limit("the workbook has more shared strings", "shared_strings", MAX_STRINGS)
                text.begin(on=False)
            elif tag == "rPh":
                phonetic += 1

        def end(tag: str) -> None:
            nonlocal phonetic
            tag = _local(tag)
            if tag == "t":
                text.on = False
            elif tag == "si":
                strings.append(text.take())
            elif tag == "rPh":
                phonetic -= 1

        if name:
            self._read(name, start, end, text)
        return strings

    def _styles(self, name: str | None) -> tuple[set[str], set[str]]:
        """The cell styles (indexes into cellXfs, as a cell's `s` writes them) whose number format shows a date, and
        those showing a duration: the numbers openpyxl turns into datetime and timedelta."""
        from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format, is_timedelta_format

        custom: dict[int, str] = {}
        formats: list[int] = []
        inside = False

        def start(tag: str, a: dict[str, str]) -> None:
            nonlocal inside
            tag = _local(tag)
            if tag == "xf" and inside:
                if len(formats) == MAX_STYLES:
                    raise self._limit("the workbook has more cell styles", "styles", MAX_STYLES)
                formats.append(_int(a.get("numFmtId")))
            elif tag == "numFmt" and len(custom) < MAX_STYLES:
                custom[_int(a.get("numFmtId"))] = a.get("formatCode", "")
            elif tag == "cellXfs":
                inside = True

        def end(tag: str) -> None:
            nonlocal inside
            if _local(tag) == "cellXfs":
                inside = False

        if name:
            self._read(name, start, end)
        dates, durations = set(), set()
        for fmt_id in set(formats):  # each format judged once (a regex each), then its styles
            code = custom.get(fmt_id) or BUILTIN_FORMATS.get(fmt_id) or "General"
            styles = {str(i) for i, f in enumerate(formats) if f == fmt_id}
            if is_date_format(code):
                dates |= styles
            if is_timedelta_format(code):
                durations |= styles
        return dates, durations

    # -- the sheet -------------------------------------------------------------------------------------------------
    def rows(self) -> Iterator[list[Any]]:
        """The sheet's rows that hold a value, in order, each a list of values (index 0 is column A) up to its last
        value. Rows without a value and the gaps between rows are left out. (The hot path: one call per element,
        state in local variables.)"""
        ready: list[list[Any]] = []
        row: dict[int, Any] = {}
        text = _Text(self.max_text)
        col = cells = phonetic = 0
        kind = ref = raw = style = None

        def start(tag: str, a: dict[str, str]) -> None:
            nonlocal col, cells, phonetic, kind, ref, raw, style
            tag = tag[tag.find(":") + 1 :]
            if tag == "c":
                cells += 1
                if cells > MAX_CELLS:
                    raise self._limit("the sheet has more cells", "cells", MAX_CELLS)
                ref = a.get("r")
                col = column_index(ref) if ref else col + 1
                kind, style, raw = a.get("t", "n"), a.get("s"), None
            elif tag == "v":
                text.begin()
            elif tag == "row":
                row.clear()
                col = 0
            elif tag == "is":
                text.begin(on=False)
            elif tag == "t":
                text.on = not phonetic
            elif tag == "rPh":
                phonetic += 1

        def end(tag: str) -> None:
            nonlocal phonetic, raw
            tag = tag[tag.find(":") + 1 :]
            if tag == "c":
                if raw:
                    value = self._value(kind or "n", raw, style, ref)
                    if value is not None and value != "":
                        if col > self.max_columns:
                            where = ref or f"column {col}"
                            raise self._limit(f"{where} holds a value", "columns", self.max_columns)
                        row[col] = value
            elif tag == "v" or tag == "is":
                raw = text.take()
            elif tag == "t":
                text.on = False
            elif tag == "row":
                if row:
                    values: list[Any] = [None] * max(row)
                    for i, v in row.items():
                        values[i - 1] = v
                    ready.append(values)
            elif tag == "rPh":
                phonetic -= 1

        for _ in self._stream(self.sheet, start, end, text):
            yield from ready
            ready.clear()
        yield from ready

    def _value(self, kind: str, raw: str, style: str | None, ref: str | None) -> Any:
        """A cell's value from its type (`t`), text and style."""
        try:
            if kind in ("inlineStr", "str", "e"):
                return raw
            if kind == "s":
                return self.strings[int(raw)]
            if kind == "b":
                return raw.strip() in ("1", "true")
            if kind == "d":
                from openpyxl.utils.datetime import from_ISO8601

                return from_ISO8601(raw)
            number = float(raw) if any(c in raw for c in ".eE") else int(raw)
        except (ValueError, IndexError, OverflowError):
            raise self._unreadable(f"{ref or 'a cell'} holds {raw[:40]!r} as type {kind!r}") from None
        return self._date(number, style) if style in self.date_styles else number

    def _date(self, number: float, style: str | None) -> Any:
        from openpyxl.utils.datetime import CALENDAR_MAC_1904, CALENDAR_WINDOWS_1900, from_excel

        epoch = CALENDAR_MAC_1904 if self.calendar_1904 else CALENDAR_WINDOWS_1900
        try:
            return from_excel(number, epoch, timedelta=style in self.duration_styles)
        except (ValueError, OverflowError):
            return number  # a date format on a number no calendar reaches: the number as typed


def _local(name: str) -> str:
    return name[name.find(":") + 1 :]  # without its prefix (x:c -> c; c -> c)


def _target(rels: dict[str, tuple[str, str]], kind: str) -> str | None:
    return next((target for k, target in rels.values() if k == kind), None)


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0
