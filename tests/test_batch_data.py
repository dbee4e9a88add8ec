"""Batch data files: CSV in UTF-8 / UTF-8+BOM / GBK with Chinese headers parse alike; XLSX; JSON; clear errors for
bad files and limits (naming row and column); per-row problems listed while good rows are kept."""

from __future__ import annotations

import io
import zlib
from datetime import datetime, time

import pytest
from openpyxl import Workbook

from zhike.core.errors import InvalidInput, TooLarge
from zhike.design import data as d

CSV_TEXT = "商品名,价格,图片\n青花瓷杯,19.9,\n紫砂壶,128,/api/v1/assets/abcDEF123456/file\n\n"
EXPECTED = [
    {"商品名": "青花瓷杯", "价格": "19.9", "图片": ""},
    {"商品名": "紫砂壶", "价格": "128", "图片": "/api/v1/assets/abcDEF123456/file"},
]


@pytest.mark.parametrize(
    ("raw", "encoding"),
    [
        (CSV_TEXT.encode("utf-8"), "utf-8"),
        (b"\xef\xbb\xbf" + CSV_TEXT.encode("utf-8"), "utf-8-sig"),
        (CSV_TEXT.encode("gbk"), "gb18030"),
    ],
)
def test_csv_encodings_parse_identically(raw: bytes, encoding: str) -> None:
    t = d.parse_data(raw, "products.csv")
    assert (t.format, t.encoding) == ("csv", encoding)
    assert t.columns == ["商品名", "价格", "图片"] and t.rows == EXPECTED  # the blank line is skipped
    assert t.preview(1) == EXPECTED[:1]


def test_csv_semicolons_and_quotes() -> None:
    t = d.parse_data(b'name;price\n"Cup; blue";5\n', "x.csv")
    assert t.rows == [{"name": "Cup; blue", "price": "5"}]


def test_xlsx_first_sheet_numbers_as_typed() -> None:
    wb = Workbook()
    ws = wb.active
    ws.append(["商品名", "价格", "库存"])
    ws.append(["青花瓷杯", 19.9, 20.0])
    ws.append([None, None, None])  # empty rows are skipped
    ws.append(["紫砂壶", 128, None])
    wb.create_sheet("other").append(["ignored"])
    buf = io.BytesIO()
    wb.save(buf)
    t = d.parse_data(buf.getvalue(), "p.xlsx")
    assert t.format == "xlsx" and t.columns == ["商品名", "价格", "库存"]
    assert t.rows == [
        {"商品名": "青花瓷杯", "价格": "19.9", "库存": "20"},
        {"商品名": "紫砂壶", "价格": "128", "库存": ""},
    ]
    assert d.parse_data(buf.getvalue()).format == "xlsx"  # sniffed without a name


def test_json_list_and_rows_object() -> None:
    rows = '[{"name": "杯", "price": 5}, {"name": "壶", "extra": null}]'
    t = d.parse_data(rows.encode(), "a.json")
    assert t.columns == ["name", "price", "extra"]
    assert t.rows == [{"name": "杯", "price": "5"}, {"name": "壶", "extra": ""}]
    assert d.parse_data(('{"rows": ' + rows + "}").encode()).rows == t.rows


@pytest.mark.parametrize(
    ("raw", "name", "needle"),
    [
        (b"", "a.csv", "empty"),
        (b"\xff\xfe\x00\x81\x30bad", "a.csv", "neither UTF-8 nor GBK"),
        (b"name,name\na,b\n", "a.csv", "appears twice"),
        (b"name,\na,b\n", "a.csv", "2 cells but only 1 columns"),
        (b"[1, 2]", "a.json", "row 1"),
        (b'{"x": 1}', "a.json", "list of objects"),
        (b"{oops", "a.json", "not valid JSON"),
        (b"PK\x03\x04garbage", "a.xlsx", "not a readable .xlsx"),
    ],
)
def test_bad_files_have_clear_errors(raw: bytes, name: str, needle: str) -> None:
    with pytest.raises(InvalidInput) as e:
        d.parse_data(raw, name)
    assert needle in e.value.message and e.value.field == "file"


def limit_of(raw: bytes, name: str) -> TooLarge:
    with pytest.raises(TooLarge) as e:
        d.parse_data(raw, name)
    assert e.value.code == "data_too_large" and e.value.field == "file"
    return e.value


def test_limits_name_row_column_and_the_limit() -> None:
    long = "x" * (d.MAX_CELL + 1)
    e = limit_of(f"name,desc\na,b\nc,{long}\n".encode(), "a.csv")
    assert "row 2" in e.message and "'desc'" in e.message
    assert (e.ctx, e.limit) == ({"what": "cell_chars"}, d.MAX_CELL)
    too_many = "name\n" + "a\n" * (d.MAX_ROWS + 1)
    e = limit_of(too_many.encode(), "a.csv")
    assert (e.ctx, e.limit) == ({"what": "rows"}, d.MAX_ROWS) and str(d.MAX_ROWS) in e.message
    assert limit_of(b"x" * (d.MAX_DATA_BYTES + 1), "a.csv").ctx == {"what": "file_bytes"}
    wide = ",".join(f"c{i}" for i in range(d.MAX_COLUMNS + 1))
    assert limit_of(f"{wide}\n".encode(), "a.csv").ctx == {"what": "columns"}
    assert limit_of(b"name\n" + b"\n" * d.MAX_LINES + b"a\n", "a.csv").ctx == {"what": "lines"}
    # blank cells past the column limit are what Excel keeps for formatted columns: dropped, not refused
    assert d.parse_data(b"name" + b"," * 500 + b"\na\n", "a.csv").rows == [{"name": "a"}]


def test_row_problems_are_listed_and_good_rows_kept() -> None:
    rows = [
        {"name": "ok", "price": "1", "img": "/api/v1/assets/abcDEF123456/file?download=1"},
        {"name": "", "price": "2", "img": ""},
        {"price": "3"},
        {"name": "x", "price": "4", "img": "not an asset!"},
        {"name": "y", "price": "5", "img": "missingAsset1"},
    ]
    checked = d.check_rows(rows, {"name", "price"}, {"img"}, asset_exists=lambda aid: aid == "abcDEF123456")
    assert checked.rows[0]["img"] == "abcDEF123456"  # the URL became the asset id
    assert sorted(checked.problems) == [2, 3, 4, 5]
    msgs = {r: [p.message for p in ps] for r, ps in checked.problems.items()}
    assert "required value is empty" in msgs[2][0] and "'name'" in msgs[2][0]
    assert "required column is missing" in msgs[3][0]
    assert "not an image asset" in msgs[4][0]
    assert "unknown image asset 'missingAsset1'" in msgs[5][0]
    assert [p.row for p in checked.errors] == [2, 3, 4, 5]


def test_asset_refs() -> None:
    assert d.asset_ref("http://host:7860/api/v1/assets/abcDEF123456/file") == "abcDEF123456"
    assert d.asset_ref("abcDEF123456") == "abcDEF123456"
    assert d.asset_ref("photos/cup.png") is None


def openpyxl_table(raw: bytes) -> d.DataTable:
    """What the data file gave when openpyxl read it (the reference for design/xlsx.py's own reader)."""
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    return d._from_grid(wb.worksheets[0].iter_rows(values_only=True), "xlsx", field="file")


@pytest.mark.parametrize("calendar_1904", [False, True])
def test_xlsx_reads_as_openpyxl_did(calendar_1904: bool) -> None:
    """Dates, times, durations, booleans, formulas, rich text, gaps and a second sheet: the bounded reader gives
    the rows openpyxl gave (in both of Excel's calendars)."""
    from datetime import timedelta

    from openpyxl.cell.rich_text import CellRichText, TextBlock
    from openpyxl.cell.text import InlineFont
    from openpyxl.utils.datetime import CALENDAR_MAC_1904

    wb = Workbook()
    if calendar_1904:
        wb.epoch = CALENDAR_MAC_1904
    ws = wb.active
    ws.append(["商品", "上架日期", "时间", "时长", "在售", "价格", "公式", "说明"])
    ws.append(["青花瓷杯", datetime(2025, 3, 8), time(9, 30), timedelta(hours=30), True, 19.9, "=1+1", "  留白  "])
    ws.append(
        [
            "紫砂壶",
            datetime(2025, 3, 8, 14, 5),
            None,
            None,
            False,
            128,
            None,
            CellRichText("红", TextBlock(InlineFont(b=True), "色")),
        ]
    )
    ws.append([])
    ws.cell(row=9, column=1, value="隔行")
    ws.cell(row=9, column=6, value=-0.5)
    ws["D2"].number_format = "[h]:mm:ss"
    wb.create_sheet("第二页").append(["ignored"])
    buf = io.BytesIO()
    wb.save(buf)
    ours, theirs = d.parse_data(buf.getvalue(), "p.xlsx"), openpyxl_table(buf.getvalue())
    assert ours.columns == theirs.columns and ours.rows == theirs.rows
    assert ours.rows[0]["上架日期"] == "2025-03-08" and ours.rows[0]["时间"] == "09:30:00"
    assert ours.rows[1]["说明"] == "红色" and (ours.rows[2]["商品"], ours.rows[2]["价格"]) == ("隔行", "-0.5")


def test_xlsx_hand_written_parts() -> None:
    """What other writers produce: inline strings with runs and a phonetic guide (left out, as Excel shows it),
    prefixed SpreadsheetML, cells without references, str/b/e types, and an absolute relationship target."""
    from tests.test_redteam_files import MAIN, deflated, workbook_parts, zip_of

    rows = (
        '<x:row r="1"><x:c r="A1" t="inlineStr"><x:is><x:t>名称</x:t></x:is></x:c>'
        '<x:c t="inlineStr"><x:is><x:t>价格</x:t></x:is></x:c><x:c r="C1" t="inlineStr"><x:is><x:t>有货</x:t></x:is>'
        '</x:c><x:c r="D1" t="inlineStr"><x:is><x:t>备注</x:t></x:is></x:c></x:row>'
        '<x:row r="3"><x:c r="A3" t="inlineStr"><x:is><x:r><x:t>东</x:t></x:r><x:r><x:t>京</x:t></x:r>'
        '<x:rPh sb="0" eb="1"><x:t>とうきょう</x:t></x:rPh></x:is></x:c>'
        '<x:c r="B3" t="str"><x:f>A1</x:f><x:v>12.50</x:v></x:c><x:c r="C3" t="b"><x:v>1</x:v></x:c>'
        '<x:c r="D3" t="e"><x:v>#N/A</x:v></x:c></x:row>'
    )
    sheet_xml = f'<?xml version="1.0"?><x:worksheet xmlns:x="{MAIN}"><x:sheetData>{rows}</x:sheetData></x:worksheet>'
    parts = workbook_parts(sheet_xml)
    rels = parts["xl/_rels/workbook.xml.rels"]
    absolute = zlib.decompress(rels.data, -15).replace(b'Target="worksheets/', b'Target="/xl/worksheets/')
    raw = zip_of(parts | {"xl/_rels/workbook.xml.rels": deflated(absolute)})
    t = d.parse_data(raw, "p.xlsx")
    assert t.columns == ["名称", "价格", "有货", "备注"]
    assert t.rows == [{"名称": "东京", "价格": "12.50", "有货": "TRUE", "备注": "#N/A"}]
    assert openpyxl_table(raw).rows == t.rows
