"""Provenance labels on exported images, checked by independent readers.

exiftool reads the TC260 XMP, c2pa-python's own Reader validates the manifest, and the watermark is decoded
from pixels after JPEG quality 80 and after metadata stripping; `verify` then finds the asset by watermark alone.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import c2pa
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from zhike.core.errors import InvalidInput, TooLarge, UnsupportedMedia
from zhike.core.rows import AssetRow
from zhike.provenance import LabelConfig, LabelService, visible, watermark, xmp
from zhike.provenance.c2pa_manifest import TRAINED
from zhike.provenance.verify import IdIndex
from zhike.services.images import encode_png
from zhike.services.verify import verify_file

ASSET_ID = "Qm3xLk9aPzR2bT7w"  # the shape of services/assets new_id(): 16 URL-safe chars
PARAMS = {"prompt": "一只猫, a cat", "steps": 20, "cfg_scale": 7.0}


def photo(size: int = 512) -> Image.Image:
    # A real photo: the watermark's robustness claims are about natural images, not flat test patterns.
    return Image.fromarray(skdata.astronaut()).resize((size, size), Image.LANCZOS)


def stored_png(img: Image.Image) -> bytes:
    """What the asset store holds for a generated image (PNG + A1111 parameters + zhike JSON)."""
    return encode_png(img, {"parameters": "a cat\nSteps: 20", "zhike": json.dumps({"op": "txt2img"})})


def asset_row(asset_id: str = ASSET_ID, **extra: Any) -> AssetRow:
    row = {"id": asset_id, "origin": "generated", "op": "txt2img", "model": "sd15-test", "params": PARAMS}
    row.update({"seed": 42, "mime": "image/png", "parent_id": None, "owner_id": "local", "sha256": "0" * 64})
    row.update({"width": 64, "height": 64, "size_bytes": 1, "zhike_version": "test", "job_id": None, "tags": []})
    row["name"] = None
    return AssetRow.from_row(row | {"created_at": datetime(2025, 5, 1)} | extra)


def service(tmp_path: Path, blobs: dict[str, bytes] | None = None, **cfg: Any) -> LabelService:
    return LabelService(
        LabelConfig(producer_name="Zhike Test", producer_code="91110000TEST", **cfg),
        labels_dir=tmp_path / "labels",
        secret=b"k" * 32,
        read_bytes=(lambda row: blobs[row.id]) if blobs is not None else None,
    )


def exiftool_aigc(path: Path) -> dict[str, Any]:
    out = subprocess.run(["exiftool", "-j", "-XMP-TC260:AIGC", str(path)], capture_output=True, text=True, check=True)
    value = json.loads(out.stdout)[0].get("Aigc")  # exiftool names the tag [XMP-TC260] Aigc
    assert value, f"exiftool found no XMP-TC260:AIGC in {path}: {out.stdout}"
    return json.loads(value)


def c2pa_manifest(data: bytes, mime: str) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """c2pa-python's Reader directly (not our wrapper): validation state, active manifest, failures."""
    with c2pa.Reader(mime, io.BytesIO(data)) as reader:
        results = reader.get_validation_results() or {}
        return (
            reader.get_validation_state(),
            reader.get_active_manifest(),
            (results.get("activeManifest") or {}).get("failure", []),
        )


def actions_of(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    for a in manifest["assertions"]:
        if a["label"] in ("c2pa.actions", "c2pa.actions.v2"):
            return a["data"]["actions"]
    raise AssertionError("no c2pa.actions assertion")


needs_exiftool = pytest.mark.skipif(shutil.which("exiftool") is None, reason="apt-get install libimage-exiftool-perl")


@needs_exiftool
@pytest.mark.parametrize("mime,fmt", [("image/png", "PNG"), ("image/jpeg", "JPEG"), ("image/webp", "WEBP")])
def test_export_carries_all_labels_read_by_independent_readers(tmp_path: Path, mime: str, fmt: str) -> None:
    if mime == "image/png":
        data = stored_png(photo())
    else:
        buf = io.BytesIO()
        photo().save(buf, fmt, quality=92)
        data = buf.getvalue()
    svc = service(tmp_path)
    out = svc.label(data, mime, asset_row(mime=mime))
    assert out.applied == ["watermark", "implicit", "c2pa"] and out.skipped == {}
    path = tmp_path / f"export.{fmt.lower()}"
    path.write_bytes(out.data)

    # 1. exiftool reads the seven TC260 fields; producer = the deployment's code, ProduceID = the asset id.
    fields = exiftool_aigc(path)
    assert list(fields) == list(xmp.FIELDS)
    assert fields["Label"] == "1" and fields["ProduceID"] == ASSET_ID and fields["PropagateID"] == ASSET_ID
    assert fields["ContentProducer"] == fields["ContentPropagator"] == "91110000TEST"
    assert len(fields["ReservedCode1"]) == 32 and fields["ReservedCode1"] != fields["ReservedCode2"]

    # 2. c2pa-python validates the signature and hashes (untrusted only because the dev CA is not a public one).
    state, manifest, failures = c2pa_manifest(out.data, mime)
    assert state == "Valid", failures
    assert {f["code"] for f in failures} <= {"signingCredential.untrusted"}
    (created,) = actions_of(manifest)
    assert created["action"] == "c2pa.created" and created["digitalSourceType"] == TRAINED
    gen = next(a["data"] for a in manifest["assertions"] if a["label"] == "org.zhike.generation")
    assert gen["asset_id"] == ASSET_ID and gen["model"] == "sd15-test" and gen["params"] == PARAMS

    # 3. Still the same picture to every decoder, metadata intact (PNG text chunks survive).
    shown = Image.open(io.BytesIO(out.data))
    shown.load()
    assert shown.size == (512, 512)
    if mime == "image/png":
        assert shown.info["parameters"].startswith("a cat")
    diff = np.abs(np.asarray(shown.convert("RGB"), np.float32) - np.asarray(photo(), np.float32))
    assert diff.mean() < 3, "the watermark must stay invisible"

    # 4. Our verify agrees, and the deployment's own CA makes the signer trusted.
    report = svc.verify(out.data, mime, IdIndex([ASSET_ID, "other"]))
    assert report["implicit"]["status"] == "valid" and report["implicit"]["integrity"] == "ok"
    assert report["c2pa"]["status"] == "trusted"
    assert report["watermark"] == {"status": "valid", "key": watermark.watermark_key(ASSET_ID), "bit_errors": 0}
    assert report["asset"]["id"] == ASSET_ID and report["asset"]["in_deployment"] and report["asset"]["consistent"]


@needs_exiftool
def test_watermark_finds_the_asset_after_jpeg80_jpeg70_and_metadata_stripping(tmp_path: Path) -> None:
    svc = service(tmp_path)
    exported = svc.label_image(stored_png(photo()), "image/png", asset_row())
    lookup = IdIndex(["a" * 16, ASSET_ID, "zzzzzzzzzzzzzzzz"])

    # Metadata stripped by exiftool (what upload platforms do): XMP and text go, pixels stay; exiftool keeps the
    # C2PA chunk, which then fails its hash check (the manifest detects the change).
    stripped = tmp_path / "stripped.png"
    stripped.write_bytes(exported)
    subprocess.run(["exiftool", "-q", "-overwrite_original", "-all=", str(stripped)], check=True)
    # Re-encoded as JPEG quality 80 and 70 by Pillow with no metadata at all.
    jpegs = []
    for quality in (80, 70):
        buf = io.BytesIO()
        Image.open(io.BytesIO(exported)).convert("RGB").save(buf, "JPEG", quality=quality)
        jpegs.append((buf.getvalue(), "image/jpeg", "absent"))
    cases = ((stripped.read_bytes(), "image/png", "invalid"), *jpegs)
    for data, mime, c2pa_status in cases:
        assert xmp.read_label(data) is None
        report = verify_file(data, svc, lookup, field="file", max_bytes=10**8, max_pixels=10**8)
        assert report["mime"] == mime
        assert report["implicit"]["status"] == "absent" and report["c2pa"]["status"] == c2pa_status
        assert report["watermark"]["status"] == "valid"
        assert report["watermark"]["bit_errors"] <= watermark.MAX_BIT_ERRORS
        assert report["asset"]["id"] == ASSET_ID and report["asset"]["found_by"] == ["watermark"]
        assert report["asset"]["in_deployment"] is True

    # An unlabelled photo has no watermark (the 16-bit check rejects noise) and names no asset.
    plain = io.BytesIO()
    photo().save(plain, "PNG")
    report = svc.verify(plain.getvalue(), "image/png", lookup)
    assert report["watermark"]["status"] == "absent" and report["asset"]["id"] is None
    assert report["summary"]["en"].startswith("no valid")


@needs_exiftool
@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea"])
@pytest.mark.parametrize("scale", [0.75, 0.5])
def test_watermark_survives_stripping_resizing_and_jpeg70(tmp_path: Path, name: str, scale: float) -> None:
    """What a platform does to a picture, all at once: metadata stripped (exiftool), scaled down, JPEG quality 70.
    The watermark sits on a grid relative to the picture's size, so the asset is still found by it alone."""
    svc = service(tmp_path)
    src = Image.fromarray(getattr(skdata, name)()).convert("RGB")
    exported = svc.label_image(stored_png(src), "image/png", asset_row())
    stripped = tmp_path / "stripped.png"
    stripped.write_bytes(exported)
    subprocess.run(["exiftool", "-q", "-overwrite_original", "-all=", str(stripped)], check=True)
    img = Image.open(stripped)
    small = img.convert("RGB").resize((round(img.width * scale), round(img.height * scale)), Image.BICUBIC)
    buf = io.BytesIO()
    small.save(buf, "JPEG", quality=70)
    report = verify_file(
        buf.getvalue(), svc, IdIndex(["a" * 16, ASSET_ID]), field="f", max_bytes=10**8, max_pixels=10**8
    )
    assert report["implicit"]["status"] == "absent" and report["c2pa"]["status"] == "absent"
    assert report["watermark"]["status"] == "valid", report["watermark"]
    assert report["watermark"]["bit_errors"] <= watermark.MAX_BIT_ERRORS
    assert report["asset"]["id"] == ASSET_ID and report["asset"]["found_by"] == ["watermark"]


def test_watermark_is_invisible_on_a_flat_backdrop_and_keeps_the_mode(tmp_path: Path) -> None:
    """A studio backdrop (flat grey) is where a mark would show: at most 3 grey levels, no contour steps (ordered
    dither), the colour unchanged (R, G and B move alike); L and RGBA images keep their mode and alpha."""
    flat = Image.new("RGB", (768, 512), (200, 200, 200))
    marked = np.asarray(watermark.embed(flat, ASSET_ID), np.int16)
    diff = marked - 200
    assert np.abs(diff).max() <= 3 and (diff[..., 0] == diff[..., 1]).all() and (diff[..., 1] == diff[..., 2]).all()
    assert watermark.best_match(watermark.decode(Image.fromarray(marked.astype(np.uint8))), [ASSET_ID]) == (ASSET_ID, 0)
    for mode in ("L", "LA", "RGBA"):
        img = photo().convert(mode)
        if mode == "RGBA":
            img.putalpha(Image.linear_gradient("L").resize(img.size))
        out = watermark.embed(img, ASSET_ID)
        assert out.mode == mode and watermark.bit_errors(watermark.decode(out), ASSET_ID) == 0
        if "A" in mode:
            assert out.getchannel("A").tobytes() == img.getchannel("A").tobytes()


def test_exports_made_before_the_grid_watermark_still_verify(tmp_path: Path) -> None:
    """A JPEG re-encode of an export made with the version-1 (DWT-DCT-SVD) watermark, by the code before it: verify
    reads the old mark when the current one is absent."""
    data = (Path(__file__).parent / "fixtures" / "export_v1_watermark.jpg").read_bytes()
    report = verify_file(
        data, service(tmp_path), IdIndex(["b" * 16, ASSET_ID]), field="f", max_bytes=10**8, max_pixels=10**8
    )
    assert report["watermark"]["status"] == "valid" and report["asset"]["id"] == ASSET_ID


def test_watermark_payload_matching_tolerates_a_few_bit_errors() -> None:
    """JPEG can flip a few of the 64 bits; matching against known ids allows MAX_BIT_ERRORS, noise never matches."""
    ids = [f"asset{i:011d}" for i in range(500)] + [ASSET_ID]
    exact = f"{int(''.join(map(str, watermark.payload_bits(ASSET_ID))), 2):016x}"
    assert watermark.exact_key(exact) == watermark.watermark_key(ASSET_ID)
    assert watermark.best_match(exact, ids) == (ASSET_ID, 0)
    flipped = f"{int(exact, 16) ^ 0b1001 << 40 ^ 1:016x}"  # three bits wrong: the check fails, the match holds
    assert watermark.exact_key(flipped) is None and watermark.best_match(flipped, ids) == (ASSET_ID, 3)
    rng = np.random.default_rng(0)
    for _ in range(200):
        noise = f"{int(rng.integers(0, 2**63)) * 2 + int(rng.integers(0, 2)):016x}"
        assert watermark.best_match(noise, ids) is None


def test_small_image_skips_watermark_with_a_recorded_reason(tmp_path: Path) -> None:
    svc = service(tmp_path)
    out = svc.label(stored_png(photo(120)), "image/png", asset_row())
    assert "watermark" in out.skipped and "too small" in out.skipped["watermark"]
    assert out.applied == ["implicit", "c2pa"]
    report = svc.verify(out.data, "image/png", IdIndex([ASSET_ID]))
    assert report["watermark"]["status"] == "not_checkable"
    # The reason travels in the signed manifest: verify can tell "skipped" from "removed".
    assert "too small" in report["watermark"]["recorded_skip"]
    assert report["asset"]["id"] == ASSET_ID and report["asset"]["found_by"] == ["c2pa", "implicit"]


def test_edits_keep_the_chain(tmp_path: Path) -> None:
    parent_img = photo()
    upload = io.BytesIO()
    parent_img.save(upload, "JPEG", quality=90)
    blobs = {"up1": upload.getvalue(), "gen1": stored_png(parent_img)}
    svc = service(tmp_path, blobs)
    child = stored_png(parent_img.rotate(5))

    # Edit of a generated (labelled-on-export) asset: the parent enters with its own manifest.
    gen_parent = asset_row("gen1")
    out = svc.label_image(child, "image/png", asset_row("edit1", op="img2img", parent_id="gen1"), gen_parent)
    state, manifest, failures = c2pa_manifest(out, "image/png")
    assert state == "Valid", failures
    assert [a["action"] for a in actions_of(manifest)] == ["c2pa.opened", "c2pa.edited"]
    (ing,) = manifest["ingredients"]
    assert ing["relationship"] == "parentOf" and ing["instance_id"] == "zhike:asset:gen1"
    assert ing.get("active_manifest"), "the parent's own manifest is kept in the chain"
    report = svc.verify(out, "image/png", None)
    assert report["c2pa"]["ingredients"][0]["has_manifest"] is True

    # Edit of an upload: the upload is the ingredient (no manifest of its own, none invented).
    up_parent = asset_row("up1", origin="upload", mime="image/jpeg", op=None, model=None, params=None, seed=None)
    out2 = svc.label_image(child, "image/png", asset_row("edit2", op="inpaint", parent_id="up1"), up_parent)
    state, manifest, _ = c2pa_manifest(out2, "image/png")
    assert state == "Valid"
    (ing,) = manifest["ingredients"]
    assert ing["relationship"] == "parentOf" and not ing.get("active_manifest")

    # A re-uploaded export whose manifest was damaged still yields a valid, signed edit (with or without it).
    damaged = bytearray(out)
    at = damaged.index(b"caBX") + 200
    damaged[at : at + 16] = b"\x00" * 16
    blobs["up2"] = bytes(damaged)
    up2 = asset_row("up2", origin="upload", op=None, model=None, params=None, seed=None)
    out3 = svc.label_image(child, "image/png", asset_row("edit3", op="inpaint", parent_id="up2"), up2)
    assert c2pa_manifest(out3, "image/png")[0] == "Valid"


def test_labels_off_and_uploads_return_the_stored_bytes(tmp_path: Path) -> None:
    data = stored_png(photo())
    off = service(tmp_path, implicit=False, c2pa=False, watermark=False, visible=False)
    start = time.perf_counter()
    assert off.label_image(data, "image/png", asset_row()) is data
    assert time.perf_counter() - start < 0.01
    assert not (tmp_path / "labels").exists(), "no certificate is made while signing is off"
    on = service(tmp_path)
    assert on.label_image(data, "image/png", asset_row("u", origin="upload")) is data
    # Only some labels: implicit alone does not touch the pixels or re-encode.
    only = service(tmp_path, c2pa=False, watermark=False).label_image(data, "image/png", asset_row())
    assert xmp.read_label(only)["fields"]["ProduceID"] == ASSET_ID
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(only))), np.asarray(Image.open(io.BytesIO(data))))


@pytest.mark.parametrize("position", ["bottom-right", "top-left"])
def test_visible_label_size_and_position(tmp_path: Path, position: str) -> None:
    base = Image.new("RGB", (800, 400), (200, 220, 240))
    data = stored_png(base)
    svc = service(tmp_path, visible=True, watermark=False, c2pa=False, visible_position=position)
    out = svc.label(data, "image/png", asset_row())
    assert "visible" in out.applied
    arr = np.asarray(Image.open(io.BytesIO(out.data)).convert("RGB"), np.int16)
    changed = np.argwhere(np.abs(arr - np.asarray(base, np.int16)).sum(axis=2) > 30)
    (y0, x0), (y1, x1) = changed.min(axis=0), changed.max(axis=0)
    if position == "bottom-right":
        assert x0 > 400 and y0 > 200 and x1 < 800 and y1 < 400
    else:
        assert x1 < 400 and y1 < 200
    assert y1 - y0 >= 0.05 * 400, "the plate is at least 5% of the shorter side"
    assert visible.text_height((800, 400)) >= 0.05 * 400, "the text itself is at least 5% of the shorter side"
    assert visible.cjk_font_path() is not None, "a CJK font draws 中文 (fonts-wqy-zenhei)"
    assert svc.verify(out.data, "image/png", None)["visible"] == {}  # not recorded: c2pa off


def test_tampered_or_foreign_labels_are_reported(tmp_path: Path) -> None:
    svc = service(tmp_path)
    out = svc.label_image(stored_png(photo()), "image/png", asset_row())
    # Change ProduceID in the XMP (keeps the container valid, breaks the C2PA hash and our reserved code).
    fields = xmp.read_label(out)["fields"] | {"ProduceID": "someoneElse0001"}
    forged = xmp.insert_png(out, xmp.build_packet(fields))
    report = svc.verify(forged, "image/png", IdIndex([ASSET_ID]))
    assert report["implicit"]["status"] == "invalid" and report["implicit"]["integrity"] == "mismatch"
    assert report["c2pa"]["status"] == "invalid"
    assert report["watermark"]["status"] == "valid" and report["asset"]["id"] == ASSET_ID
    assert report["asset"]["consistent"] is False
    # Another deployment's watermark: recognised as Zhike's, but no asset here.
    report = svc.verify(out, "image/png", IdIndex(["somethingElse123"]))
    assert report["asset"]["in_deployment"] is False
    # A bad label value is named.
    bad = xmp.insert_png(out, xmp.build_packet(fields | {"Label": "9"}))
    assert any("Label" in p for p in svc.verify(bad, "image/png", None)["implicit"]["problems"])


def test_bad_files_are_clear_errors(tmp_path: Path) -> None:
    svc = service(tmp_path)
    good = stored_png(photo(300))
    kw = {"field": "file", "max_bytes": 10**7, "max_pixels": 4_000_000}
    with pytest.raises(InvalidInput) as e:
        verify_file(good[: len(good) // 2], svc, None, **kw)
    assert e.value.field == "file" and "truncated" in e.value.message
    with pytest.raises(InvalidInput) as e:  # read as a PDF text export, which it is not either
        verify_file(b"%PDF-1.4 not an image", svc, None, **kw)
    assert (e.value.code, e.value.field) == ("verify_file_damaged", "file")
    gif = io.BytesIO()
    Image.new("RGB", (64, 64)).save(gif, "GIF")
    with pytest.raises(UnsupportedMedia):  # an image, but labels are read from PNG, JPEG and WebP
        verify_file(gif.getvalue(), svc, None, **kw)
    bomb = io.BytesIO()
    Image.new("L", (4000, 4000)).save(bomb, "PNG")  # 16 MP: over this deployment's 4 MP limit
    with pytest.raises(TooLarge) as e:
        verify_file(bomb.getvalue(), svc, None, **kw)
    assert e.value.field == "file"
    with pytest.raises(TooLarge):
        verify_file(good, svc, None, field="file", max_bytes=100, max_pixels=10**7)


def test_user_certificate_is_used_instead_of_the_dev_one(tmp_path: Path) -> None:
    from zhike.provenance.certs import generate_dev_chain

    chain, key, _ = generate_dev_chain("Acme 传媒")
    (tmp_path / "mine.pem").write_bytes(chain)
    (tmp_path / "mine.key").write_bytes(key)
    svc = service(tmp_path, cert_path=tmp_path / "mine.pem", key_path=tmp_path / "mine.key", watermark=False)
    out = svc.label_image(stored_png(photo(300)), "image/png", asset_row())
    state, manifest, _ = c2pa_manifest(out, "image/png")
    assert state == "Valid" and manifest["signature_info"]["issuer"] == "Acme 传媒"
    assert not (tmp_path / "labels" / "c2pa-key.pem").exists()


def test_labelling_and_verifying_never_import_torch(tmp_path: Path) -> None:
    """The API process labels downloads and answers /verify: it must not pull in torch (ARCHITECTURE.md), which
    a watermark library's package could (invisible-watermark's __init__ loads RivaGAN; ours is numpy)."""
    code = f"""
import io, sys
from pathlib import Path
from PIL import Image
from zhike.provenance import LabelConfig, LabelService
from zhike.provenance.verify import IdIndex
from zhike.core.rows import AssetRow
img = Image.effect_noise((320, 320), 60).convert("RGB")
buf = io.BytesIO(); img.save(buf, "PNG")
svc = LabelService(LabelConfig(visible=True), labels_dir=Path({str(tmp_path)!r}))
row = {{f: None for f in AssetRow.__dataclass_fields__}} | {{"id": "x1", "origin": "generated", "mime": "image/png"}}
out = svc.label_image(buf.getvalue(), "image/png", AssetRow.from_row(row))
assert svc.verify(out, "image/png", IdIndex(["x1"]))["asset"]["id"] == "x1"
assert "torch" not in sys.modules, "torch was imported"
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
