"""Hostile and broken input, against a real server (uploads limited to 1 MB), `decode_image` and the CLI.

Every refusal must be a 4xx JSON error `{"error": {"code", "message", "field"}}` naming the offending field,
and none of them may hurt the server: afterwards it still answers and earlier assets are intact.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.helpers.server import Server, run_zhike, server_fixture, wait_job
from zhike.core.errors import InvalidInput, TooLarge, UnsupportedMedia, ZhikeError
from zhike.services.images import decode_image

MAX_UPLOAD = 1_000_000  # ZHIKE_MAX_UPLOAD_MB=1
MAX_PIXELS = 40_000_000  # under the default ZHIKE_MAX_IMAGE_PIXELS (50 MP)


# -- payloads --------------------------------------------------------------------------------------------
def noise_png(size: int = 64, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def encoded(fmt: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), "red").save(buf, fmt, **kw)
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A valid-looking PNG whose header claims width x height RGB pixels: a few hundred bytes on disk.

    The IDAT holds only a few rows (never allocated at full size): the header alone must get it refused.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress((b"\x00" + bytes(width * 3)) * 4, 9)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", rows) + _chunk(b"IEND", b"")


def mpo_photo() -> bytes:
    """A multi-picture JPEG, as many phone cameras write them (Pillow calls the format MPO)."""
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), "blue").save(
        buf, "MPO", save_all=True, append_images=[Image.new("RGB", (64, 48), "green")]
    )
    return buf.getvalue()


REAL_PNG = noise_png(64)
# (id, file name, bytes, expected status, expected error class for decode_image)
BAD_UPLOADS: list[tuple[str, str, bytes, int, type[ZhikeError]]] = [
    ("zero-bytes", "empty.png", b"", 422, InvalidInput),
    ("truncated-png", "half.png", REAL_PNG[: len(REAL_PNG) // 2], 422, InvalidInput),
    ("png-header-only", "head.png", REAL_PNG[:40], 422, InvalidInput),
    ("text-named-png", "notes.png", b"these are my notes, not an image\n" * 20, 415, UnsupportedMedia),
    ("bomb-30000x30000", "bomb.png", png_bomb(30000, 30000), 413, TooLarge),
    ("bomb-8000x8000", "bomb2.png", png_bomb(8000, 8000), 413, TooLarge),  # under Pillow's own limit
    ("zero-width", "zero.png", png_bomb(0, 16), 422, InvalidInput),
    ("svg", "logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"/>', 415, UnsupportedMedia),
    ("eps", "art.eps", encoded("EPS"), 415, UnsupportedMedia),
    ("ico", "icon.ico", encoded("ICO"), 415, UnsupportedMedia),
    ("pdf", "doc.pdf", encoded("PDF"), 415, UnsupportedMedia),
    ("over-limit", "big.png", REAL_PNG + bytes(MAX_UPLOAD), 413, TooLarge),
]


# -- in process: decode_image ----------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "data", "error"), [(c[0], c[2], c[4]) for c in BAD_UPLOADS], ids=lambda x: x)
def test_decode_image_refuses(name: str, data: bytes, error: type[ZhikeError]) -> None:
    with pytest.raises(ZhikeError) as info:
        decode_image(data, field="file", max_bytes=MAX_UPLOAD, max_pixels=MAX_PIXELS)
    assert type(info.value) is error, (name, info.value)
    assert info.value.field == "file" and info.value.message


@pytest.mark.parametrize("size", [(30000, 30000), (100000, 100000), (8000, 8000)])
def test_decode_image_bomb_is_refused_from_the_header(size: tuple[int, int]) -> None:
    data = png_bomb(*size)
    assert len(data) < 10_000
    with pytest.raises(TooLarge) as info:
        decode_image(data, field="params.init_image", max_bytes=MAX_UPLOAD, max_pixels=MAX_PIXELS)
    assert info.value.field == "params.init_image" and info.value.limit == MAX_PIXELS


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (REAL_PNG, "image/png"),
        (encoded("JPEG"), "image/jpeg"),
        (encoded("WEBP"), "image/webp"),
        (encoded("BMP"), "image/bmp"),
        (mpo_photo(), "image/jpeg"),
    ],
    ids=["png", "jpeg", "webp", "bmp", "mpo-phone-jpeg"],
)
def test_decode_image_accepts(data: bytes, mime: str) -> None:
    img, got = decode_image(data, field="file", max_bytes=MAX_UPLOAD, max_pixels=MAX_PIXELS)
    assert got == mime and img.width > 0


# -- the server ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tiny_sd15: Path
) -> Iterator[Server]:
    yield from server_fixture(request, tmp_path_factory.mktemp("bad"), tiny_sd15, max_upload_mb=1)


@pytest.fixture(scope="module")
def a(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {server.key_a}"}, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def b(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {server.key_b}"}, timeout=60) as c:
        yield c


def assert_error(r: httpx.Response, status: int, field: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json"), r.headers
    err = r.json()["error"]
    assert isinstance(err["code"], str) and err["code"], err
    assert isinstance(err["message"], str) and err["message"], err
    assert err["field"] == field, err
    assert "Traceback" not in err["message"]
    return err


@pytest.fixture(scope="module")
def earlier(a: httpx.Client) -> dict[str, bytes]:
    """Assets made before any bad input: an upload and a generated image, with their bytes."""
    up = a.post("/api/v1/assets", files={"file": ("ok.png", REAL_PNG, "image/png")})
    assert up.status_code == 201, up.text
    r = a.post(
        "/api/v1/jobs",
        json={"op": "txt2img", "params": {"prompt": "before", "width": 64, "height": 64, "steps": 2, "seed": 5}},
    )
    assert r.status_code == 201, r.text
    job = wait_job(a, r.json()["id"])
    assert job["state"] == "succeeded", job
    gen = job["outputs"][0]["asset_id"]
    return {up.json()["id"]: REAL_PNG, gen: a.get(f"/api/v1/assets/{gen}/file").content}


@pytest.mark.parametrize(
    ("name", "filename", "data", "status"), [c[:4] for c in BAD_UPLOADS], ids=[c[0] for c in BAD_UPLOADS]
)
def test_bad_upload(
    a: httpx.Client, earlier: dict[str, bytes], name: str, filename: str, data: bytes, status: int
) -> None:
    before = {x["id"] for x in a.get("/api/v1/assets").json()["assets"]}
    r = a.post("/api/v1/assets", files={"file": (filename, data, "image/png")})
    assert_error(r, status, "file")
    assert {x["id"] for x in a.get("/api/v1/assets").json()["assets"]} == before  # nothing half-stored


def test_upload_over_the_body_limit_is_refused_before_reading(a: httpx.Client) -> None:
    r = a.post("/api/v1/assets", files={"file": ("huge.png", bytes(5_000_000), "image/png")})
    err = assert_error(r, 413, "file")
    assert (err["code"], err["type"]) == ("request_too_large", "too_large") and err["limit"]


def test_upload_without_a_file(a: httpx.Client) -> None:
    assert_error(a.post("/api/v1/assets", data={"file": "not a file"}), 422, "file")
    assert_error(a.post("/api/v1/assets", data={"tags": "x"}), 422, "file")
    assert_error(a.post("/api/v1/assets", json={"file": "abc"}), 422, "file")
    assert_error(a.post("/api/v1/assets", files={"file": ("a.png", REAL_PNG)}, data={"tags": "x" * 1001}), 422, "tags")


def test_phone_jpeg_upload_is_accepted(a: httpx.Client) -> None:
    r = a.post("/api/v1/assets", files={"file": ("IMG_0001.JPG", mpo_photo(), "image/jpeg")})
    assert r.status_code == 201, r.text
    assert (r.json()["mime"], r.json()["width"], r.json()["height"]) == ("image/jpeg", 64, 48)


GOOD = {"prompt": "a cat", "width": 64, "height": 64, "steps": 2}
BAD_JOBS: list[tuple[str, Any, int, str]] = [
    ("unknown-model", {"op": "txt2img", "params": {**GOOD, "model": "nope"}}, 422, "params.model"),
    ("unknown-op", {"op": "nope", "params": GOOD}, 422, "op"),
    ("missing-op", {"params": GOOD}, 422, "op"),
    ("width-abc", {"op": "txt2img", "params": {**GOOD, "width": "abc"}}, 422, "params.width"),
    ("width-513", {"op": "txt2img", "params": {**GOOD, "width": 513}}, 422, "params.width"),
    ("width-huge", {"op": "txt2img", "params": {**GOOD, "width": 100_000}}, 422, "params.width"),
    ("height-float", {"op": "txt2img", "params": {**GOOD, "height": 64.5}}, 422, "params.height"),
    ("steps-negative", {"op": "txt2img", "params": {**GOOD, "steps": -1}}, 422, "params.steps"),
    ("steps-too-many", {"op": "txt2img", "params": {**GOOD, "steps": 10_000}}, 422, "params.steps"),
    ("batch-too-big", {"op": "txt2img", "params": {**GOOD, "batch_size": 100}}, 422, "params.batch_size"),
    ("seed-too-big", {"op": "txt2img", "params": {**GOOD, "seed": 2**40}}, 422, "params.seed"),
    ("guidance-text", {"op": "txt2img", "params": {**GOOD, "guidance": "high"}}, 422, "params.guidance"),
    ("scheduler-unknown", {"op": "txt2img", "params": {**GOOD, "scheduler": "nope"}}, 422, "params.scheduler"),
    ("prompt-too-long", {"op": "txt2img", "params": {**GOOD, "prompt": "x" * 4001}}, 422, "params.prompt"),
    ("prompt-blank", {"op": "txt2img", "params": {**GOOD, "prompt": "   "}}, 422, "params.prompt"),
    ("prompt-missing", {"op": "txt2img", "params": {"width": 64}}, 422, "params.prompt"),
    ("prompt-not-text", {"op": "txt2img", "params": {**GOOD, "prompt": ["a"]}}, 422, "params.prompt"),
    ("unknown-param", {"op": "txt2img", "params": {**GOOD, "widht": 64}}, 422, "params.widht"),
    ("params-list", {"op": "txt2img", "params": [1, 2]}, 422, "params"),
    ("params-string", {"op": "txt2img", "params": "prompt=a cat"}, 422, "params"),
    ("params-null", {"op": "txt2img", "params": None}, 422, "params"),
    ("unknown-top-level", {"op": "txt2img", "params": GOOD, "priority": 1}, 422, "priority"),
    ("body-list", [1, 2], 422, "body"),
    (
        "init-image-missing",
        {"op": "img2img", "params": {**GOOD, "init_image": "doesnotexist"}},
        404,
        "params.init_image",
    ),
    (
        "init-image-path",
        {"op": "img2img", "params": {**GOOD, "init_image": "../../etc/passwd"}},
        422,
        "params.init_image",
    ),
    ("init-image-absent", {"op": "img2img", "params": GOOD}, 422, "params.init_image"),
    (
        "strength-2",
        {"op": "img2img", "params": {**GOOD, "init_image": "abcdefgh", "strength": 2}},
        422,
        "params.strength",
    ),
]


@pytest.mark.parametrize(("name", "body", "status", "field"), BAD_JOBS, ids=[c[0] for c in BAD_JOBS])
def test_bad_job(a: httpx.Client, name: str, body: Any, status: int, field: str) -> None:
    before = len(a.get("/api/v1/jobs").json()["jobs"])
    assert_error(a.post("/api/v1/jobs", json=body), status, field)
    assert len(a.get("/api/v1/jobs").json()["jobs"]) == before  # nothing queued


def test_init_image_of_the_other_key(a: httpx.Client, b: httpx.Client) -> None:
    mine = b.post("/api/v1/assets", files={"file": ("b.png", noise_png(64, seed=9), "image/png")})
    assert mine.status_code == 201
    r = a.post("/api/v1/jobs", json={"op": "img2img", "params": {**GOOD, "init_image": mine.json()["id"]}})
    err = assert_error(r, 404, "params.init_image")
    missing = a.post("/api/v1/jobs", json={"op": "img2img", "params": {**GOOD, "init_image": "doesnotexist"}})
    # Someone else's asset is indistinguishable from a missing one.
    assert err["message"].replace(mine.json()["id"], "ID") == missing.json()["error"]["message"].replace(
        "doesnotexist", "ID"
    )


@pytest.mark.parametrize(
    "body", [b'{"op": "txt2img", "params": {', b"{op: txt2img}", b'{"op": "txt2img"} trailing', b"\xff\xfe"]
)
def test_malformed_json(a: httpx.Client, body: bytes) -> None:
    r = a.post("/api/v1/jobs", content=body, headers={"content-type": "application/json"})
    err = assert_error(r, 400, "body")
    assert "JSON" in err["message"]


def test_not_json_at_all(a: httpx.Client) -> None:
    r = a.post("/api/v1/jobs", content=b"op=txt2img", headers={"content-type": "application/x-www-form-urlencoded"})
    assert_error(r, 422, "body")


def test_huge_json_body(a: httpx.Client) -> None:
    body = json.dumps({"op": "txt2img", "params": {**GOOD, "prompt": "x" * 20_000_000}}).encode()
    r = a.post("/api/v1/jobs", content=body, headers={"content-type": "application/json"})
    err = assert_error(r, 413, "body")
    assert (err["code"], err["type"]) == ("request_too_large", "too_large")


def test_huge_chunked_json_body(a: httpx.Client) -> None:
    """Without Content-Length the limit must hold while the body streams in."""

    def chunks() -> Iterator[bytes]:
        yield b'{"op": "txt2img", "params": {"prompt": "'
        for _ in range(20):
            yield b"x" * 1_000_000
        yield b'"}}'

    r = a.post("/api/v1/jobs", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in r.request.headers
    assert_error(r, 413, "body")


def test_huge_chunked_upload(a: httpx.Client) -> None:
    boundary = b"zhikeboundary"

    def chunks() -> Iterator[bytes]:
        yield b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n'
        yield b"Content-Type: image/png\r\n\r\n"
        for _ in range(5):
            yield bytes(1_000_000)
        yield b"\r\n--" + boundary + b"--\r\n"

    r = a.post(
        "/api/v1/assets",
        content=chunks(),
        headers={"content-type": f"multipart/form-data; boundary={boundary.decode()}"},
    )
    assert_error(r, 413, "file")


@pytest.mark.parametrize(
    ("request_", "status", "field"),
    [
        (lambda c: c.get("/api/v1/jobs/nosuchjob"), 404, "job_id"),
        (lambda c: c.get("/api/v1/assets/nosuchasset"), 404, "asset_id"),
        (lambda c: c.get("/api/v1/assets/nosuchasset/file"), 404, "asset_id"),
        (lambda c: c.get("/api/v1/assets", params={"limit": 0}), 422, "limit"),
        (lambda c: c.get("/api/v1/assets", params={"limit": "many"}), 422, "limit"),
        (lambda c: c.get("/api/v1/jobs", params={"limit": 501}), 422, "limit"),
        (lambda c: c.get("/api/v1/assets/x/file", params={"expires": "soon", "sig": "x"}), 422, "expires"),
        (lambda c: c.get("/api/v1/assets/x/file", params={"expires": 9999999999, "sig": "x"}), 404, "sig"),
        (
            lambda c: c.post(
                "/api/v1/jobs", json={"op": "txt2img", "params": GOOD}, headers={"Idempotency-Key": "k" * 201}
            ),
            422,
            "Idempotency-Key",
        ),
        (lambda c: c.post("/v1/images/generations", json={"prompt": "x", "size": "64x64", "n": 0}), 422, "n"),
        (lambda c: c.post("/v1/images/generations", json={"prompt": "", "size": "64x64"}), 422, "prompt"),
        (
            lambda c: c.post("/v1/images/generations", json={"prompt": "x", "size": "64x64", "model": "nope"}),
            422,
            "model",
        ),
        (
            lambda c: c.post("/v1/images/generations", json={"prompt": "x", "response_format": "gif"}),
            422,
            "response_format",
        ),
    ],
    ids=[
        "job-missing",
        "asset-missing",
        "file-missing",
        "limit-0",
        "limit-text",
        "limit-501",
        "expires-text",
        "bad-sig",
        "idempotency-key-long",
        "openai-n-0",
        "openai-empty-prompt",
        "openai-unknown-model",
        "openai-format",
    ],
)
def test_other_bad_requests(
    a: httpx.Client, request_: Callable[[httpx.Client], httpx.Response], status: int, field: str
) -> None:
    assert_error(request_(a), status, field)


# -- the CLI ---------------------------------------------------------------------------------------------
def _cli_fails(server: Server, *args: str) -> str:
    proc = run_zhike(server.home, *args, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "Traceback" not in out, out
    assert not list(server.home.parent.glob("zhike*.png")), "no output may be written"
    return " ".join(out.split())


def test_cli_generate_unknown_model(server: Server) -> None:
    out = _cli_fails(server, "generate", "x", "--model", "nope", "--steps", "2")
    assert "unknown model 'nope'" in out and "tiny" in out  # names what is available


def test_cli_generate_init_not_an_image(server: Server, tmp_path: Path) -> None:
    init = Path("/etc/hostname")
    if not init.is_file():
        init = tmp_path / "hostname"
        init.write_text("myhost\n")
    out = _cli_fails(server, "img2img", "x", "--init", str(init), "--steps", "2")
    assert "--init" in out and "not an image" in out


def test_cli_generate_init_missing_file(server: Server, tmp_path: Path) -> None:
    out = _cli_fails(server, "img2img", "x", "--init", str(tmp_path / "nope.png"))
    assert "--init" in out and "no file" in out


def test_cli_generate_bad_width(server: Server) -> None:
    out = _cli_fails(server, "generate", "x", "--width", "513")
    assert "--width" in out and "multiple of 8" in out and "params." not in out


def test_cli_error_message_is_not_markup(server: Server, tmp_path: Path) -> None:
    out = _cli_fails(server, "img2img", "x", "--init", str(tmp_path / "[/x].png"))
    assert "[/x].png" in out
    out = _cli_fails(server, "generate", "x", "--model", "[bold]nope")
    assert "'[bold]nope'" in out


# -- nothing was hurt (keep last) ------------------------------------------------------------------------
def test_server_survived_and_nothing_was_lost(server: Server, a: httpx.Client, earlier: dict[str, bytes]) -> None:
    assert httpx.get(f"{server.base_url}/api/v1/health").json()["status"] == "ok"
    for asset_id, data in earlier.items():
        r = a.get(f"/api/v1/assets/{asset_id}/file")
        assert r.status_code == 200 and r.content == data
    r = a.post("/api/v1/jobs", json={"op": "txt2img", "params": {**GOOD, "seed": 5, "prompt": "after"}})
    assert r.status_code == 201, r.text
    assert wait_job(a, r.json()["id"])["state"] == "succeeded"  # the worker is still alive
