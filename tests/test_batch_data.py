"""Batch data files: CSV in UTF-8 / UTF-8+BOM / GBK with Chinese headers parse alike; XLSX; JSON; clear errors for
bad files and limits (naming row and column); per-row problems listed while good rows are kept."""

from __future__ import annotations

import io

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


def test_limits_name_row_and_column() -> None:
    long = "x" * (d.MAX_CELL + 1)
    with pytest.raises(InvalidInput) as e:
        d.parse_data(f"name,desc\na,b\nc,{long}\n".encode(), "a.csv")
    assert "row 2" in e.value.message and "'desc'" in e.value.message
    too_many = "name\n" + "a\n" * (d.MAX_ROWS + 1)
    with pytest.raises(TooLarge, match=str(d.MAX_ROWS)):
        d.parse_data(too_many.encode(), "a.csv")
    with pytest.raises(TooLarge):
        d.parse_data(b"x" * (d.MAX_DATA_BYTES + 1), "a.csv")


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
