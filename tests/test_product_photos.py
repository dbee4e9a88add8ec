"""product_photos (批量主图) on real photos (skimage's coffee cup and astronaut saved as JPEGs with Chinese names):
exact marketplace pixels, a white backdrop, the product centred by its alpha box inside the margin, a contact shadow
below it and not above, ZIP members named by the photos, per-photo problems beside good photos, a worker killed
mid-batch (the next attempt redoes no finished photo) and the CLI end to end.

Photos that must go through the matting net are few and small (the embedded ISNet); the others are PNGs with their
own transparency, which the op uses as the cutout (no net: fast)."""

from __future__ import annotations

import csv
import io
import signal
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.conftest import make_settings
from tests.helpers.server import run_zhike, start_worker
from tests.test_jobs import wait_for
from zhike.core.rows import JobRow
from zhike.services.container import Zhike
from zhike.services.jobs.worker import Worker
from zhike.services.templates import photo_file_name, write_archive


@pytest.fixture
def z(tmp_path: Path, embedded_dir: Path) -> Iterator[Zhike]:
    app = Zhike(make_settings(tmp_path / "home"))
    yield app
    app.engine.dispose()


def jpeg(arr: np.ndarray, side: int = 320) -> bytes:
    img = Image.fromarray(arr).convert("RGB")
    img.thumbnail((side, side))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def coffee() -> bytes:
    from skimage import data as skdata

    return jpeg(skdata.coffee())


def cut_png(w: int = 240, h: int = 200, colour: str = "#2a6fdb") -> bytes:
    """A product with its own transparency (a bottle-like box and a cap): the op uses the alpha as it is."""
    img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rectangle((w * 0.3, h * 0.25, w * 0.7, h * 0.9), fill=colour)
    d.rectangle((w * 0.42, h * 0.12, w * 0.58, h * 0.25), fill="#333333")
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def blank_png() -> bytes:
    """Fully transparent: nothing to cut out."""
    buf = io.BytesIO()
    Image.new("RGBA", (200, 200), (255, 255, 255, 0)).save(buf, "PNG")
    return buf.getvalue()


def upload(z: Zhike, data: bytes, name: str, owner: str = "u1") -> str:
    return z.assets.upload(data, owner_id=owner, name=name).id


def run(z: Zhike, params: dict, owner: str = "u1") -> JobRow:
    job, _ = z.submit("product_photos", params, owner)
    assert Worker(z).run_one(job.id)
    row = z.jobs.get(job.id)
    assert row.state == "succeeded", row.error
    return row


def output(z: Zhike, asset_id: str) -> Image.Image:
    return Image.open(io.BytesIO(z.assets.read_bytes(z.assets.get(asset_id, owner_id="u1"))))


def solid_box(alpha: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(alpha >= 128)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def test_a_jpeg_photo_becomes_a_centred_white_main_image_with_a_contact_shadow(z: Zhike) -> None:
    cup = upload(z, coffee(), "咖啡杯.jpg")
    margin = 0.1
    # Transparent and without shadow first: the output's alpha is the placed product alone.
    clear = run(z, {"photos": [cup], "sizes": ["taobao"], "background": "transparent", "margin": margin, "shadow": 0})
    assert clear.result["problems"] == [] and clear.result["photos_ok"] == 1
    cut = output(z, clear.result["outputs"][0]["asset_id"])
    assert cut.mode == "RGBA" and cut.size == (800, 800)
    x0, y0, x1, y1 = solid_box(np.asarray(cut.getchannel("A")))
    m = margin * 800
    assert abs((x0 + x1) / 2 - 400) <= 2 and abs((y0 + y1) / 2 - 400) <= 2  # centred by its alpha box
    assert min(x0, y0) >= m - 2 and max(x1, y1) <= 800 - m + 2  # inside the margin
    assert min(x0, y0) <= m + 2  # and as large as the margin allows (touches it on one axis)

    white = run(z, {"photos": [cup], "sizes": ["taobao", "jd"], "shadow": 0.8, "margin": margin})
    outs = white.result["outputs"]
    assert [(o["size"], o["name"]) for o in outs] == [("taobao", "咖啡杯"), ("jd", "咖啡杯")]
    img = np.asarray(output(z, outs[0]["asset_id"]).convert("RGB")).astype(int)
    assert img.shape == (800, 800, 3)
    border = np.concatenate([img[:30].reshape(-1, 3), img[-30:].reshape(-1, 3), img[:, :30].reshape(-1, 3)])
    assert (border == 255).all()  # far from the product: pure white
    # The same product on plain white without a shadow: the difference is the shadow alone.
    plain = np.asarray(Image.alpha_composite(Image.new("RGBA", cut.size, "white"), cut).convert("RGB")).astype(int)
    darker = (plain - img).mean(axis=2)
    cx = (x0 + x1) // 2
    assert darker[y1 + 1 : y1 + 8, cx - 40 : cx + 40].mean() > 20  # the ground just under the product is darker
    assert np.abs(darker[: (y0 + y1) // 2]).max() <= 1  # nothing changes above the product's middle
    assert z.assets.get(outs[0]["asset_id"], owner_id="u1").parent_id == cup  # lineage: named after the photo

    buf = io.BytesIO()
    assert write_archive(white, z.assets, z.exports, buf) == 2
    names = sorted(zipfile.ZipFile(buf).namelist())
    assert names == ["manifest.csv", "咖啡杯-jd-800x800.png", "咖啡杯-taobao-800x800.png"]


def test_bad_photos_are_listed_while_the_others_succeed(z: Zhike) -> None:
    good = upload(z, cut_png(), "保温杯.png")
    twin = upload(z, cut_png(colour="#d23"), "保温杯.png")  # the same file name: a second ZIP member
    tiny = upload(z, cut_png(40, 40), "小图.png")
    empty = upload(z, blank_png(), "空白.png")
    broken = upload(z, cut_png(colour="#123456"), "坏图.png")
    blob = z.assets.blobs.path_for(z.assets.get(broken, owner_id="u1").sha256, "image/png")
    blob.write_bytes(blob.read_bytes()[:60])  # damaged on disk after the upload
    row = run(z, {"photos": [good, tiny, broken, twin, empty], "sizes": ["300x300"]})
    r = row.result
    assert (r["photos"], r["photos_ok"], r["photos_failed"]) == (5, 2, 3)
    assert [(p["name"], p["code"]) for p in r["problems"]] == [
        ("小图", "photo_too_small"),
        ("坏图", "photo_damaged"),
        ("空白", "photo_no_product"),
    ]
    assert all(p["message"]["zh"] and p["message"]["en"] for p in r["problems"])
    assert [o["photo"] for o in r["outputs"]] == [good, twin]
    buf = io.BytesIO()
    write_archive(row, z.assets, z.exports, buf)
    zf = zipfile.ZipFile(buf)
    assert sorted(zf.namelist()) == ["manifest.csv", "保温杯-300x300-2.png", "保温杯-300x300.png"]
    assert Image.open(io.BytesIO(zf.read("保温杯-300x300.png"))).size == (300, 300)
    manifest = list(csv.DictReader(io.StringIO(zf.read("manifest.csv").decode("utf-8-sig"))))
    assert [(m["name"], m["status"], m["problem"]) for m in manifest] == [
        ("保温杯", "ok", ""),
        ("小图", "failed", "photo_too_small"),
        ("坏图", "failed", "photo_damaged"),
        ("保温杯", "ok", ""),
        ("空白", "failed", "photo_no_product"),
    ]


def test_file_names_are_sanitised_and_unique() -> None:
    taken: set[str] = set()
    assert photo_file_name('a/b:c*?"<>|', "taobao", 800, 800, "png", taken) == "a_b_c-taobao-800x800.png"
    assert photo_file_name("A_B_C", "taobao", 800, 800, "png", taken) == "A_B_C-taobao-800x800-2.png"
    assert photo_file_name("..", "300x300", 300, 300, "png", taken) == "photo-300x300.png"


def test_backgrounds_colour_gradient_and_scene(z: Zhike) -> None:
    photo = upload(z, cut_png(), "瓶子.png")
    scene = upload(z, jpeg(np.full((200, 300, 3), (30, 120, 40), np.uint8)), "草地.jpg")
    base = {"photos": [photo], "sizes": ["200x100"], "shadow": 0.0}
    colour = run(z, {**base, "background": "color", "color": "#FFEE00"})
    grad = run(z, {**base, "background": "gradient", "gradient": ["#000000", "#ffffff"], "gradient_angle": 0})
    on_scene = run(z, {**base, "background": "image", "scene_image": scene})
    c = np.asarray(output(z, colour.result["outputs"][0]["asset_id"]))
    assert tuple(c[2, 2]) == (255, 238, 0)
    g = np.asarray(output(z, grad.result["outputs"][0]["asset_id"])).astype(int)
    assert g[50, 1].sum() < 30 and g[50, 198].sum() > 735  # black on the left to white on the right
    s = np.asarray(output(z, on_scene.result["outputs"][0]["asset_id"])).astype(int)
    assert abs(s[3, 3] - (30, 120, 40)).max() <= 12  # the scene behind the product (JPEG-close)


def test_a_generated_scene_without_a_model_is_a_clear_error(z: Zhike) -> None:
    from zhike.core.errors import InvalidInput

    photo = upload(z, cut_png(), "瓶子.png")
    with pytest.raises(InvalidInput) as e:
        z.submit("product_photos", {"photos": [photo], "background": "generate", "scene_prompt": "木桌"}, "u1")
    assert e.value.code == "no_image_model" and e.value.field == "params.model"
    with pytest.raises(InvalidInput) as e:
        z.submit("product_photos", {"photos": [photo], "background": "generate", "scene_prompt": " "}, "u1")
    assert (e.value.field, e.value.kind) == ("params.scene_prompt", "missing")
    with pytest.raises(InvalidInput) as e:
        z.submit("product_photos", {"photos": [photo], "background": "image"}, "u1")
    assert (e.value.field, e.value.kind) == ("params.scene_image", "missing")


def test_killed_worker_resumes_without_redoing_finished_photos(z: Zhike, tmp_path: Path) -> None:
    z.settings.lease_seconds = 2.0
    z.settings.heartbeat_seconds = 0.3
    z.settings.keep_work = True  # made.log is read after the job succeeded
    n = 60
    photos = [upload(z, cut_png(300, 260, f"#{(i * 37) % 256:02x}5080"), f"商品{i}.png") for i in range(n)]
    job, _ = z.submit("product_photos", {"photos": photos, "sizes": ["240x240"]}, "u1")
    work = z.settings.work_dir / job.id
    proc = start_worker(z.settings.home, tmp_path / "worker.log", lease_seconds=2, heartbeat_seconds=0.3)
    try:
        wait_for(lambda: work.is_dir() and len(list(work.glob("p*-240x240.json"))) >= 8, timeout=180)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finished_before = len(list(work.glob("p*-240x240.json")))
    assert z.jobs.get(job.id).state == "running" and finished_before < n, tmp_path / "worker.log"
    survivor = Worker(z, worker_id="survivor")
    wait_for(lambda: survivor.run_one(), timeout=30, every=0.2)
    row = z.jobs.get(job.id)
    assert row.state == "succeeded" and row.attempts == 2, row.error
    assert row.result["photos_ok"] == n and row.result["photos_resumed"] >= finished_before
    lines = [ln.split() for ln in (work / "made.log").read_text().splitlines()]
    counts = Counter(ln[0] for ln in lines)
    assert len(counts) == n and max(counts.values()) == 1  # every photo made once over both attempts
    assert len({ln[1] for ln in lines}) == 2  # by two processes
    outputs = z.assets.by_job(job.id)
    assert len(outputs) == n and {a.id for a in outputs} == {o["asset_id"] for o in row.result["outputs"]}
    assert sorted(a.name for a in outputs) == sorted(f"商品{i}" for i in range(n))


def test_cli_makes_a_zip_from_a_folder_and_lists_bad_files(tmp_path: Path, embedded_dir: Path) -> None:
    home = tmp_path / "home"
    photos = tmp_path / "商品图"
    photos.mkdir()
    (photos / "咖啡杯.jpg").write_bytes(coffee())
    (photos / "水杯.png").write_bytes(cut_png())
    (photos / "坏图.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (photos / "说明.txt").write_text("not a photo")  # not an image name: skipped
    out = tmp_path / "out.zip"
    proc = run_zhike(
        home,
        "product-photos",
        str(photos),
        "--size",
        "taobao",
        "--size",
        "jd",
        "-o",
        str(out),
        timeout=600,
        embedded_dir=embedded_dir,
    )
    assert "坏图.jpg" in proc.stderr and "说明" not in proc.stderr
    assert "2 photos ok, 1 failed" in proc.stdout
    names = sorted(n for n in zipfile.ZipFile(out).namelist() if n.endswith(".png"))
    assert names == [
        "咖啡杯-jd-800x800.png",
        "咖啡杯-taobao-800x800.png",
        "水杯-jd-800x800.png",
        "水杯-taobao-800x800.png",
    ]
    # nothing usable: a non-zero exit
    bad = run_zhike(
        home,
        "product-photos",
        str(photos / "坏图.jpg"),
        "-o",
        str(tmp_path / "x.zip"),
        check=False,
        embedded_dir=embedded_dir,
    )
    assert bad.returncode != 0 and "坏图.jpg" in bad.stderr
