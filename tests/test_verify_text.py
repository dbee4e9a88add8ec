"""`zhike verify` and POST /api/v1/verify on text exports: a text asset exported through the real export code
(LabelService.label_text) as Markdown, TXT, DOCX and PDF is reported with its TC260 fields valid (this deployment's
HMAC codes intact), the notice where it was placed, and the asset it came from; a label edited in any of its places
is invalid, a removed one absent, a damaged file a clear error naming FILE."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader, PdfWriter

from tests.conftest import make_settings
from tests.helpers.cli import cli_for
from zhike.core.errors import InvalidInput, UnsupportedMedia
from zhike.services.assets.service import AssetService
from zhike.services.container import Zhike
from zhike.services.verify import DbLookup, verify_file

COPY = "# 保温杯 **新品上市**\n\n- 316 不锈钢内胆，保温 12 小时\n\n容量 500 毫升，价格 99 元。\n"
ZH_NOTICE = "本内容由人工智能生成"
NOTICE = {"md": "start", "txt": "end", "docx": "start", "pdf": "end"}  # each place, in some format


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("verify-text") / "home"


@pytest.fixture(scope="module")
def exported(home: Path) -> Iterator[tuple[Zhike, str, dict[str, bytes]]]:
    """A generated text asset as a words job stores it, and its four exports as downloads make them."""
    z = Zhike(make_settings(home))
    staged = z.assets.stage_text(
        COPY, owner_id="local", job_id="job-t", op="product_copy", params={"name": "保温杯"}, model="tiny-qwen"
    )
    with z.engine.begin() as conn:
        AssetService.commit_staged(conn, [staged])
    row = staged.row
    files = {fmt: z.labels.label_text(COPY, row, fmt, notice=where).data for fmt, where in NOTICE.items()}
    yield z, row.id, files
    z.engine.dispose()


@pytest.fixture
def cli(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    yield from cli_for(home, monkeypatch)


def check(z: Zhike, data: bytes) -> dict[str, Any]:
    return verify_file(data, z.labels, DbLookup(z.engine), field="file", max_bytes=10**8, max_pixels=10**8)


def test_cli_reads_each_text_export(exported, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, aid, files = exported
    for fmt, data in files.items():
        path = tmp_path / f"copy.{fmt}"
        path.write_bytes(data)
        res = cli("verify", str(path), "--json")
        assert res.exit_code == 0, (fmt, res.output)
        report = json.loads(res.output)
        assert report["implicit"]["status"] == "valid" and report["implicit"]["integrity"] == "ok", fmt
        assert report["implicit"]["fields"]["ProduceID"] == aid and report["implicit"]["fields"]["Label"] == "1"
        assert report["notice"] == {"status": "valid", "where": NOTICE[fmt], "text": ZH_NOTICE, "lang": "zh"}
        assert report["asset"]["id"] == aid and report["asset"]["in_deployment"] is True, fmt
        assert report["c2pa"]["status"] == report["watermark"]["status"] == "not_checkable"
    res = cli("verify", str(tmp_path / "copy.docx"))  # the table, in both languages
    assert res.exit_code == 0 and "显式提示" in res.output and "start 开头" in res.output and aid in res.output

    damaged = tmp_path / "damaged.pdf"
    damaged.write_bytes(files["pdf"][:300])
    res = cli("verify", str(damaged))
    assert res.exit_code == 2 and "FILE" in res.output and "not a readable PDF" in res.output


def _forge(fields: dict[str, str]) -> str:
    return json.dumps(fields | {"ProduceID": "someoneElse0001"}, ensure_ascii=False, separators=(",", ":"))


def _rezip(data: bytes, name: str, edit: Any) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info)
            dst.writestr(info, edit(body.decode("utf-8")).encode("utf-8") if info.filename == name else body)
    return out.getvalue()


def test_edited_labels_are_invalid_and_removed_ones_absent(exported) -> None:  # type: ignore[no-untyped-def]
    z, aid, files = exported
    fields = check(z, files["md"])["implicit"]["fields"]
    original = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    forged = {
        "md": files["md"].replace(original.encode(), _forge(fields).encode()),
        "txt": files["txt"].replace(original.encode(), _forge(fields).encode()),
        "docx": _rezip(files["docx"], "docProps/custom.xml", lambda x: x.replace(aid, "someoneElse0001", 1)),
    }
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(files["pdf"])))
    writer.add_metadata({"/AIGC": _forge(fields)})  # the info dictionary edited, the XMP packet left
    buf = io.BytesIO()
    writer.write(buf)
    forged["pdf"] = buf.getvalue()
    for fmt, data in forged.items():
        implicit = check(z, data)["implicit"]
        assert implicit["status"] == "invalid", (fmt, implicit)
        problems = " ".join(implicit["problems"])
        assert implicit.get("integrity") == "mismatch" or "differ" in problems, (fmt, implicit)
    assert "differ" in " ".join(check(z, forged["pdf"])["implicit"]["problems"])
    assert "identifier" in " ".join(check(z, forged["docx"])["implicit"]["problems"])

    # The TXT label's line removed, the Markdown front matter removed: absent, and said so.
    txt = files["txt"].decode().rstrip().rsplit("\n", 1)[0].encode()
    md = files["md"].decode().split("\n---\n", 1)[1].encode()
    for data in (txt, md):
        report = check(z, data)
        assert report["implicit"] == {"status": "absent"} and report["asset"]["id"] is None
        assert report["notice"]["status"] == "valid"  # the words still say it
    bare = check(z, "容量 500 毫升，价格 99 元。".encode())
    assert bare["implicit"] == {"status": "absent"} and bare["notice"] == {"status": "absent"}
    assert bare["summary"]["zh"] == "未发现有效的AI生成内容标识"

    with pytest.raises(InvalidInput) as e:
        check(z, b"PK\x03\x04word/document.xml and nothing else")
    assert (e.value.code, e.value.field) == ("verify_file_damaged", "file")
    with pytest.raises(UnsupportedMedia) as e:  # text, but a drawing: the image checks say what it is
        check(z, b'<svg xmlns="http://www.w3.org/2000/svg"/>')
    assert e.value.code == "image_not_raster"

    # A password-protected PDF: nothing can be read, and the report says why instead of "absent".
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(files["pdf"])))
    writer.encrypt("secret")
    buf = io.BytesIO()
    writer.write(buf)
    locked = check(z, buf.getvalue())
    assert locked["implicit"]["status"] == locked["notice"]["status"] == "not_checkable"
    assert "password" in locked["implicit"]["reason"]


def test_api_reports_a_text_export(exported, home: Path) -> None:  # type: ignore[no-untyped-def]
    from zhike.api.app import create_app

    _, aid, files = exported
    application = create_app(make_settings(home), start_worker=False)
    with TestClient(application) as client:
        _, key = application.state.zhike.keys.create("a", owner_id="local")
        docx = ("copy.docx", files["docx"], "application/octet-stream")
        r = client.post("/api/v1/verify", files={"file": docx}, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["implicit"]["status"] == "valid" and body["notice"]["where"] == "start"
    assert body["asset"]["id"] == aid and "width" not in body
