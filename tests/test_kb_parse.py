"""Knowledge-base documents: every format read into sections that know their place, chunked for citations, and every
hostile file refused with a clear 4xx naming the field "file" (PDF bomb, password PDF, binary renamed .txt, empty,
huge, ZIP-bomb DOCX, billion-laughs XML in a DOCX, a workbook with a DTD). Real files: the fixtures of
tests/fixtures/kb/ and files built here byte by byte."""

from __future__ import annotations

import io
import random
import time
import zipfile
import zlib
from pathlib import Path

import pytest
from PIL import Image

from zhike.core.errors import InvalidInput, TooLarge, ZhikeError
from zhike.kb import DocumentLimits, chunk_document, parse_document
from zhike.kb.chunk import MAX, sentences
from zhike.kb.document import ParsedDocument, Section
from zhike.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures" / "kb"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def refused(name: str, data: bytes, limits: DocumentLimits | None = None) -> ZhikeError:
    with pytest.raises(ZhikeError) as info:
        parse_document(name, data, limits)
    err = info.value
    assert err.field == "file" and err.ctx and err.ctx["name"] == Path(name).name, err.to_dict()
    assert 400 <= err.status < 500
    return err


def raw_pdf(content: bytes) -> bytes:
    """A one-page PDF whose content stream is `content` deflated (offsets in the xref table are exact)."""
    stream = zlib.compress(content, 9)
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R /Resources << >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for i, obj in enumerate(objs, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    return out + b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)


W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def docx(document_xml: bytes, *, extra: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        z.writestr("word/document.xml", document_xml)
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return buf.getvalue()


def body(xml: str) -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?><w:document {W}><w:body>{xml}</w:body></w:document>'.encode()


# -- every format ------------------------------------------------------------------------------------------------


def test_a_pdf_is_read_page_by_page_under_its_headings() -> None:
    doc = parse_document("thermos_spec.pdf", fixture("thermos_spec.pdf"))
    assert (doc.kind, doc.pages, doc.title) == ("pdf", 3, "暖途 NT-500 真空保温杯 产品规格书")
    where = {s.where: s.text for s in doc.sections}
    heat = where["第2页 · 三、保温与保冷性能"]
    assert "12 小时后不低于 60℃" in heat  # no layout spaces between Chinese characters, no NULs
    assert "盖紧杯盖：6 小时后" in heat  # a line the page wrapped is one line again
    assert "本品不可放入洗碗机清洗" in where["第3页 · 五、清洁与保养"]


def test_a_pdf_encrypted_without_a_user_password_reads_and_one_with_a_password_is_refused() -> None:
    from pypdf import PdfWriter

    def encrypted(user: str) -> bytes:
        writer = PdfWriter(clone_from=io.BytesIO(fixture("thermos_spec.pdf")))
        writer.encrypt(user_password=user, owner_password="owner-secret", algorithm="AES-128")
        buf = io.BytesIO()
        writer.write(buf)
        return buf.getvalue()

    doc = parse_document("restricted.pdf", encrypted(""))  # print/copy restrictions only: any reader opens it
    assert any("316 医用级不锈钢" in s.text for s in doc.sections)
    err = refused("locked.pdf", encrypted("secret"))
    assert (err.code, err.status) == ("document_encrypted", 422)


def test_a_docx_keeps_headings_paragraphs_and_table_rows() -> None:
    doc = parse_document("earbuds_manual.docx", fixture("earbuds_manual.docx"))
    assert (doc.kind, doc.title) == ("docx", "声臻 S3 真无线蓝牙耳机 使用说明书")
    params = "\n".join(s.text for s in doc.sections if s.where == "产品参数")
    assert "充电接口：Type-C" in params and "防水等级：IPX4" in params  # a key-value table: one line per row
    assert "不支持主动降噪（ANC）" in params  # the paragraph under the table, same heading
    touch = next(s.text for s in doc.sections if s.where == "触控操作")
    assert "三击任意一只耳机：开启或关闭游戏低延迟模式" in touch


def test_docx_headings_are_found_by_style_name_and_outline_level() -> None:
    """Chinese Word names the heading styles "1", "2": the names in styles.xml, not the ids, say they are headings."""
    styles = f"""<?xml version="1.0"?><w:styles {W}>
      <w:style w:type="paragraph" w:styleId="1"><w:name w:val="heading 1"/></w:style>
      <w:style w:type="paragraph" w:styleId="a5"><w:name w:val="标题 2"/></w:style></w:styles>""".encode()
    xml = body(
        '<w:p><w:pPr><w:pStyle w:val="1"/></w:pPr><w:r><w:t>售后政策</w:t></w:r></w:p>'
        '<w:p><w:pPr><w:pStyle w:val="a5"/></w:pPr><w:r><w:t>退货</w:t></w:r></w:p>'
        "<w:p><w:r><w:t>七天无理由退货。</w:t></w:r></w:p>"
        '<w:p><w:pPr><w:outlineLvl w:val="0"/></w:pPr><w:r><w:t>物流</w:t></w:r></w:p>'
        "<w:p><w:r><w:t>默认中通快递。</w:t></w:r></w:p>"
    )
    doc = parse_document("policy.docx", docx(xml, extra={"word/styles.xml": styles}))
    got = [(s.where, s.text) for s in doc.sections]
    assert got == [("售后政策 › 退货", "七天无理由退货。"), ("物流", "默认中通快递。")]


def test_markdown_sections_carry_their_heading_path() -> None:
    doc = parse_document("dress_guide.md", fixture("dress_guide.md"))
    assert (doc.kind, doc.title, doc.encoding) == ("markdown", "云裳 法式碎花连衣裙 尺码与洗护指南", "utf-8")
    where = {s.where: s.text for s in doc.sections}
    assert "洗衣袋" in where["## 洗涤说明 › ### 机洗"]
    sizes = where["## 尺码表"]
    assert "M | 88cm | 70cm" in sizes and "---" not in sizes  # table cells kept, the rule line dropped


def test_text_in_gbk_utf8_bom_and_utf16_is_decoded() -> None:
    doc = parse_document("after_sales_policy.txt", fixture("after_sales_policy.txt"))
    assert (doc.encoding, doc.title) == ("gb18030", "云朵小店 售后服务与物流说明")
    assert any(s.where == "二、快递与运费" and "满 99 元包邮" in s.text for s in doc.sections)
    bom = parse_document("guide.md", "\ufeff# 保温杯说明\n\n## 清洗\n不可放入洗碗机。\n".encode())
    assert (bom.encoding, bom.title, [s.where for s in bom.sections]) == ("utf-8-sig", "保温杯说明", ["## 清洗"])
    utf16 = parse_document("notes.txt", "【售后】\n七天无理由退货。\n".encode("utf-16"))
    assert (utf16.encoding, utf16.sections[0].where) == ("utf-16", "【售后】")


def test_an_faq_sheet_is_one_section_per_question_in_chinese_or_english_headers() -> None:
    doc = parse_document("faq.xlsx", fixture("faq.xlsx"))
    assert doc.kind == "xlsx" and all(s.kind == "faq" for s in doc.sections) and len(doc.sections) == 14
    leak = next(s for s in doc.sections if "漏水" in s.text)
    assert leak.where == "FAQ 第4行（保温杯）"  # the product column names what the question does not
    assert leak.text.startswith("问：杯盖漏水怎么办？\n答：请检查硅胶密封圈")
    english = parse_document("faq.csv", b"Q,A\nDo you ship abroad?,Not yet.\n")
    assert [(s.text, s.where) for s in english.sections] == [("问：Do you ship abroad?\n答：Not yet.", "FAQ 第2行")]


def test_product_rows_each_name_their_product() -> None:
    csv = "商品名称,价格,颜色\n保温杯 NT-500,129,雾霾蓝\n蓝牙耳机 S3,199,白色\n".encode("gbk")
    doc = parse_document("products.csv", csv)
    assert [(s.where, s.text, s.kind) for s in doc.sections] == [
        ("第2行（保温杯 NT-500）", "保温杯 NT-500：价格：129；颜色：雾霾蓝", "row"),
        ("第3行（蓝牙耳机 S3）", "蓝牙耳机 S3：价格：199；颜色：白色", "row"),
    ]


# -- hostile and bad files ---------------------------------------------------------------------------------------


def test_a_pdf_bomb_is_refused_quickly() -> None:
    bomb = raw_pdf(b"0 0 m " * 4_000_000)  # 24 MB of drawing operators in 25 KB
    assert len(bomb) < 100_000
    limits = DocumentLimits.from_settings(Settings(kb_max_inflated_mb=5))
    start = time.monotonic()
    err = refused("catalogue.pdf", bomb, limits)
    assert (err.code, err.ctx["what"]) == ("document_bomb", "inflated_bytes")
    assert time.monotonic() - start < 5


def test_a_pdf_past_the_page_limit_or_the_time_limit_is_refused() -> None:
    err = refused("thermos_spec.pdf", fixture("thermos_spec.pdf"), DocumentLimits(max_pages=2))
    assert (err.code, err.status, err.ctx["what"], err.limit) == ("document_too_large", 413, "pages", 2)
    err = refused("thermos_spec.pdf", fixture("thermos_spec.pdf"), DocumentLimits(max_seconds=0.0))
    assert (err.code, err.ctx["what"]) == ("document_bomb", "seconds")


def test_a_pdf_without_text_or_not_a_pdf_at_all() -> None:
    err = refused("scan.pdf", raw_pdf(b""))
    assert err.code == "document_empty" and "OCR" in err.message
    assert refused("broken.pdf", b"%PDF-1.7\nnothing else here").code == "document_damaged"


def test_binary_data_renamed_txt_is_not_text() -> None:
    png = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(png, "PNG")
    assert refused("photo.txt", png.getvalue()).code == "document_not_text"
    noise = random.Random(15).randbytes(4096).replace(b"\x00", b"\x01")  # no NUL byte to give it away
    assert refused("noise.md", noise).code == "document_not_text"
    assert refused("spec.txt", fixture("thermos_spec.pdf")).code == "document_not_text"  # a PDF named .txt
    assert refused("table.csv", png.getvalue()).code == "document_not_text"


def test_empty_huge_and_unknown_files() -> None:
    for data in (b"", b"  \r\n\t", b"\xef\xbb\xbf\n"):
        err = refused("empty.txt", data)
        assert (err.code, type(err)) == ("document_empty", InvalidInput)
    err = refused("big.txt", "退货".encode() * 600, DocumentLimits(max_bytes=3000))
    assert (err.code, type(err), err.status, err.ctx["what"], err.limit) == (
        "document_too_large",
        TooLarge,
        413,
        "bytes",
        3000,
    )
    err = refused("long.md", ("售后说明。" * 300).encode(), DocumentLimits(max_chars=1000))
    assert (err.code, err.ctx["what"]) == ("document_too_large", "chars")
    err = refused("setup.exe", b"MZ\x90\x00")
    assert (err.code, err.ctx["suffix"]) == ("document_unsupported", ".exe")
    assert DocumentLimits.from_settings(Settings()).max_bytes == 20_000_000


def test_a_zip_bomb_docx_is_refused_before_it_is_inflated() -> None:
    bomb = docx(body("<w:p><w:r><w:t>" + " " * 20_000_000 + "</w:t></w:r></w:p>"))
    assert len(bomb) < 100_000
    err = refused("manual.docx", bomb)
    assert (err.code, err.ctx["what"]) == ("document_bomb", "zip_ratio")
    small = docx(body("<w:p><w:r><w:t>说明</w:t></w:r></w:p>"))
    err = refused("manual.docx", small, DocumentLimits(max_inflated=100))
    assert (err.code, err.ctx["what"]) == ("document_bomb", "inflated_bytes")


def test_billion_laughs_in_a_docx_is_refused_without_expanding() -> None:
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">' for i in range(1, 10)
    )
    xml = f'<?xml version="1.0"?><!DOCTYPE w:document [{entities}]>'
    xml += f"<w:document {W}><w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>"
    start = time.monotonic()
    err = refused("manual.docx", docx(xml.encode()))
    assert (err.code, err.ctx["what"]) == ("document_bomb", "xml_entities")
    assert time.monotonic() - start < 2


def test_encrypted_or_damaged_office_files() -> None:
    assert refused("manual.docx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512).code == "document_encrypted"
    assert refused("manual.docx", b"PK\x03\x04 not really a zip").code == "document_damaged"
    assert refused("manual.docx", docx(b"<w:document")).code == "document_damaged"


def test_a_workbook_with_a_dtd_is_refused_by_the_spreadsheet_reader() -> None:
    """Spreadsheets go through design/xlsx.py (one hostile-spreadsheet reader): its codes reach the KB upload."""
    src = zipfile.ZipFile(io.BytesIO(fixture("faq.xlsx")))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = b'<!DOCTYPE x [<!ENTITY a "aaaa">]>' + data.split(b"?>", 1)[-1]
            out.writestr(info.filename, data)
    err = refused("faq.xlsx", buf.getvalue())
    assert err.code == "unsafe_xml"


# -- chunking ----------------------------------------------------------------------------------------------------


def test_sentences_keep_every_character() -> None:
    text = "保温 12 小时。不可装可乐！能放洗碗机吗？不能；请手洗。\nIt keeps drinks hot. Really? Yes"
    parts = sentences(text)
    assert "".join(parts) == text
    assert parts[:4] == ["保温 12 小时。", "不可装可乐！", "能放洗碗机吗？", "不能；"]


def test_long_text_is_chunked_at_sentence_ends_with_overlap() -> None:
    sentences_ = [f"第{i}条：本店承诺商品{i}在签收后七天内可以无理由退换，运费按照售后政策处理。" for i in range(40)]
    doc = ParsedDocument("售后政策", "txt", 1, [Section("".join(sentences_), "三、退换货")])
    chunks = chunk_document(doc)
    assert len(chunks) > 3 and [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert all(len(c.text) <= MAX and c.text.endswith("。") and c.where == "三、退换货" for c in chunks)
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert b.text.split("。")[0] + "。" in a.text  # the next chunk starts with the last sentence of this one
    assert chunks[0].search_text.startswith("售后政策 · 三、退换货\n")


def test_faq_rows_are_one_chunk_each_and_a_title_line_is_no_chunk() -> None:
    faq = parse_document("faq.xlsx", fixture("faq.xlsx"))
    assert len(chunk_document(faq)) == len(faq.sections)
    pdf = chunk_document(parse_document("thermos_spec.pdf", fixture("thermos_spec.pdf")))
    assert all(c.text.replace(" ", "") != "暖途NT-500真空保温杯产品规格书" for c in pdf)
    assert pdf[0].where == "第1页 · 一、产品概述"
