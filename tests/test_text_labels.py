"""Labels on exported AI text (人工智能生成合成内容标识办法, GB 45438-2025): each format, downloaded through the file
route and opened by its own reader (a YAML parser, python-docx, pypdf), shows the notice where it was placed and
carries the seven TC260 fields with the same ids as the images' XMP; Chinese survives in the PDF."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import docx
import pytest
import yaml
from fastapi.testclient import TestClient
from pypdf import PdfReader

from tests.conftest import make_settings
from zhike.provenance.text_verify import read_custom_properties
from zhike.provenance.xmp import FIELDS, TC260_NS
from zhike.services.assets.service import AssetService
from zhike.services.container import Zhike

OWNER = "owner-t"
ZH_NOTICE, EN_NOTICE = "本内容由人工智能生成", "AI-generated content"
COPY_ZH = (
    "# 保温杯 **新品上市**\n\n"
    "- 316 不锈钢内胆，保温 12 小时\n"
    "- 一键开盖，单手就能喝水\n\n"
    "这款保温杯适合办公室、通勤和户外，容量 500 毫升，价格 99 元。\n\n"
    "| 项目 | 内容 |\n|---|---|\n| 容量 | 500ml |\n| 材质 | **316** 不锈钢 |\n"
)
COPY_EN = "# Travel mug\n\nKeeps coffee hot for 12 hours. Leak-proof lid, 500 ml, only $15.\n"


def _app(home: Path, **settings: Any) -> Any:
    from zhike.api.app import create_app

    return create_app(make_settings(home, label_producer_code="91110000TEST", **settings), start_worker=False)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Zhike, dict[str, str]]]:
    application = _app(tmp_path_factory.mktemp("labels") / "home")
    with TestClient(application) as client:
        z = application.state.zhike
        _, key = z.keys.create("t", owner_id=OWNER)
        yield client, z, {"Authorization": f"Bearer {key}"}


def text_asset(z: Zhike, text: str, name: str | None = "保温杯") -> str:
    """A generated text asset as a finished words job stores it."""
    staged = z.assets.stage_text(
        text, owner_id=OWNER, job_id="job-t", op="product_copy", params={"seed": 7}, model="tiny-qwen", name=name
    )
    with z.engine.begin() as conn:
        AssetService.commit_staged(conn, [staged])
    return staged.row.id


def expected_fields(z: Zhike, asset_id: str) -> dict[str, str]:
    """What the images' XMP carries for this content id (the same LabelService, the same secret)."""
    labels = z.exports.labels
    code = "91110000TEST"
    return {
        "Label": "1",
        "ContentProducer": code,
        "ProduceID": asset_id,
        "ReservedCode1": labels.reserved_code("producer", code, asset_id),
        "ContentPropagator": code,
        "PropagateID": asset_id,
        "ReservedCode2": labels.reserved_code("propagator", code, asset_id),
    }


def get(client: TestClient, auth: dict[str, str], asset_id: str, fmt: str, notice: str | None = None) -> Any:
    url = f"/api/v1/assets/{asset_id}/file?format={fmt}&download=1&lang=zh" + (f"&notice={notice}" if notice else "")
    r = client.get(url, headers=auth)
    assert r.status_code == 200, r.text
    return r


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def pdf_xmp_fields(data: bytes) -> dict[str, str] | None:
    xmp = PdfReader(io.BytesIO(data)).xmp_metadata
    if xmp is None:
        return None
    for node in xmp.rdf_root.getElementsByTagNameNS("http://www.w3.org/1999/02/22-rdf-syntax-ns#", "Description"):
        value = node.getAttributeNS(TC260_NS, "AIGC")
        if value:
            return json.loads(value)
    return None


@pytest.mark.parametrize("notice", ["start", "end", "none"])
def test_markdown_has_front_matter_fields_and_the_notice_where_placed(api, notice: str) -> None:  # type: ignore[no-untyped-def]
    client, z, auth = api
    aid = text_asset(z, COPY_ZH)
    r = get(client, auth, aid, "md", notice)
    assert r.headers["content-type"].startswith("text/markdown")
    text = r.content.decode("utf-8")
    assert text.startswith("---\n")
    front, body = text[4:].split("\n---\n", 1)
    meta = yaml.safe_load(front)
    assert meta["AIGC"] == expected_fields(z, aid) and list(meta["AIGC"]) == list(FIELDS)
    assert meta["model"] == "tiny-qwen" and meta["ai_generated"] == ZH_NOTICE
    lines = [line for line in body.splitlines() if line.strip()]
    assert COPY_ZH.strip() in body  # the words themselves, untouched
    assert (lines[0] == ZH_NOTICE, lines[-1] == ZH_NOTICE) == (notice == "start", notice == "end")
    assert body.count(ZH_NOTICE) == (notice != "none")


@pytest.mark.parametrize("notice", ["start", "end", "none"])
def test_txt_carries_the_notice_and_a_last_label_line(api, notice: str) -> None:  # type: ignore[no-untyped-def]
    client, z, auth = api
    aid = text_asset(z, COPY_ZH)
    r = get(client, auth, aid, "txt", notice)
    assert r.headers["content-type"].startswith("text/plain")
    lines = [line for line in r.content.decode("utf-8").splitlines() if line.strip()]
    assert lines[-1].startswith("AIGC: ") and json.loads(lines[-1][6:]) == expected_fields(z, aid)
    assert "#" not in r.content.decode() and "**" not in r.content.decode()  # plain text: Markdown's marks gone
    assert "• 316 不锈钢内胆，保温 12 小时" in lines
    assert "容量\t500ml" in lines and "材质\t316 不锈钢" in lines  # a table's rows, tab-separated
    assert (lines[0] == ZH_NOTICE, lines[-2] == ZH_NOTICE) == (notice == "start", notice == "end")


@pytest.mark.parametrize("notice", ["start", "end", "none"])
def test_docx_shows_the_notice_and_keeps_the_label_in_its_properties(api, notice: str) -> None:  # type: ignore[no-untyped-def]
    client, z, auth = api
    aid = text_asset(z, COPY_ZH)
    r = get(client, auth, aid, "docx", notice)
    assert r.headers["content-type"] == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    document = docx.Document(io.BytesIO(r.content))
    paras = [p for p in document.paragraphs if p.text.strip()]
    texts = [p.text for p in paras]
    assert (texts[0] == ZH_NOTICE, texts[-1] == ZH_NOTICE) == (notice == "start", notice == "end")
    assert texts.count(ZH_NOTICE) == (notice != "none")
    heading = next(p for p in paras if p.text == "保温杯 新品上市")
    assert heading.style.name == "Heading 1" and [r.bold for r in heading.runs if r.text.strip()][-1] is True
    assert "316 不锈钢内胆，保温 12 小时" in texts
    assert [[c.text for c in row.cells] for row in document.tables[0].rows] == [
        ["项目", "内容"],
        ["容量", "500ml"],
        ["材质", "316 不锈钢"],
    ]
    core = document.core_properties
    assert core.title == "保温杯" and core.keywords == "AIGC" and core.identifier == aid
    assert json.loads(read_custom_properties(r.content)["AIGC"]) == expected_fields(z, aid)


@pytest.mark.parametrize("notice", ["start", "end"])
def test_pdf_keeps_the_chinese_words_the_notice_and_the_label(api, notice: str) -> None:  # type: ignore[no-untyped-def]
    client, z, auth = api
    aid = text_asset(z, COPY_ZH)
    r = get(client, auth, aid, "pdf", notice)
    assert r.headers["content-type"] == "application/pdf"
    text = pdf_text(r.content)
    assert "\x00" not in text
    words = squeeze(text)
    for line in (
        "保温杯新品上市",
        "316不锈钢内胆，保温12小时",
        "材质316不锈钢",
        "这款保温杯适合办公室、通勤和户外，容量500毫升，价格99元。",
    ):
        assert line in words, (line, text)
    assert words.startswith(ZH_NOTICE) == (notice == "start") and words.endswith(ZH_NOTICE) == (notice == "end")
    reader = PdfReader(io.BytesIO(r.content))
    info = reader.metadata
    assert json.loads(info["/AIGC"]) == expected_fields(z, aid)
    assert info["/Title"] == "保温杯" and info["/Subject"] == ZH_NOTICE and info["/Keywords"] == "AIGC"
    assert pdf_xmp_fields(r.content) == expected_fields(z, aid)  # the packet images carry, TC260 namespace


def test_english_copy_gets_the_english_notice_and_filenames_survive_chinese(api) -> None:  # type: ignore[no-untyped-def]
    client, z, auth = api
    aid = text_asset(z, COPY_EN, name="旅行杯")
    r = get(client, auth, aid, "pdf", "end")
    assert squeeze(pdf_text(r.content)).endswith(squeeze(EN_NOTICE))
    assert "Keepscoffeehotfor12hours" in squeeze(pdf_text(r.content))
    disposition = r.headers["content-disposition"]
    assert disposition.startswith("attachment; filename=")
    assert unquote(disposition.split("filename*=UTF-8''")[1]).endswith("-旅行杯.pdf")
    ascii_part = disposition.split('filename="')[1].split('"')[0]
    assert ascii_part.isascii() and ascii_part.endswith(".pdf")
    md = get(client, auth, aid, "md", "start").content.decode()
    assert md.split("\n---\n", 1)[1].startswith(EN_NOTICE)


def test_exports_are_made_once_and_the_default_notice_follows_the_settings(tmp_path: Path) -> None:
    application = _app(tmp_path / "home", label_text_notice="start", label_implicit=False)
    with TestClient(application) as client:
        z = application.state.zhike
        _, key = z.keys.create("t", owner_id=OWNER)
        auth = {"Authorization": f"Bearer {key}"}
        aid = text_asset(z, COPY_ZH)
        first = get(client, auth, aid, "docx")
        again = client.get(
            f"/api/v1/assets/{aid}/file?format=docx", headers={**auth, "If-None-Match": first.headers["etag"]}
        )
        assert again.status_code == 304
        document = docx.Document(io.BytesIO(first.content))
        assert next(p.text for p in document.paragraphs if p.text.strip()) == ZH_NOTICE  # the deployment's default
        # The implicit label is off in this deployment: no fields anywhere, the words and the notice stay
        assert read_custom_properties(first.content) == {} and document.core_properties.keywords != "AIGC"
        md = get(client, auth, aid, "md").content.decode()
        assert not md.startswith("---") and md.startswith(ZH_NOTICE)
        txt = get(client, auth, aid, "txt").content.decode()
        assert "AIGC" not in txt
        pdf = get(client, auth, aid, "pdf", "none").content
        assert "/AIGC" not in PdfReader(io.BytesIO(pdf)).metadata and pdf_xmp_fields(pdf) is None
        assert ZH_NOTICE not in squeeze(pdf_text(pdf))


def test_a_json_output_exports_as_readable_text(api) -> None:  # type: ignore[no-untyped-def]
    client, z, auth = api
    staged = z.assets.stage_text(
        json.dumps({"title": "保温杯", "points": ["保温 12 小时"]}, ensure_ascii=False),
        owner_id=OWNER,
        job_id="job-j",
        op="product_copy",
        params={},
        model=None,
        mime="application/json",
    )
    with z.engine.begin() as conn:
        AssetService.commit_staged(conn, [staged])
    md = get(client, auth, staged.row.id, "md", "none").content.decode()
    assert '```json\n{\n  "title": "保温杯",' in md
    words = squeeze(pdf_text(get(client, auth, staged.row.id, "pdf", "none").content))
    assert '"points":["保温12小时"]' in words
