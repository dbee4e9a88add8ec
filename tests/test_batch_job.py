"""batch_design jobs: bad rows reported while good rows render, sizes multiply outputs at the right pixels, lineage,
cancel, the ZIP (every design + manifest.csv, labelled), generated layers without a model, and a worker process
killed mid-batch: the next attempt renders only the missing rows and each row becomes exactly one asset."""

from __future__ import annotations

import csv
import io
import signal
import threading
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import make_settings
from tests.helpers.images import upload
from tests.helpers.server import start_worker
from tests.test_jobs import wait_for
from zhike.core.errors import ContentRefused, InvalidInput, NotFound
from zhike.core.rows import JobRow
from zhike.services.container import Zhike
from zhike.services.jobs.worker import Worker
from zhike.services.templates import write_archive

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TC260 = b"http://www.tc260.org.cn/ns/AIGC/1.0/"
# A small inline template: fast to render, one image column.
CARD = {
    "id": "test_card",
    "name": {"zh": "测试卡", "en": "Test card"},
    "width": 320,
    "height": 240,
    "background": "#fff4ec",
    "layers": [
        {"type": "image", "src": "{{photo}}", "optional": True, "box": [10, 10, 140, 140]},
        {"type": "text", "text": "{{name}}", "box": [160, 20, 150, 80], "font_size": 28},
        {"type": "text", "text": "¥{{price}}", "box": [160, 120, 150, 60], "font_size": 32, "color": "#e4393c"},
    ],
}


@pytest.fixture
def z(tmp_path: Path) -> Iterator[Zhike]:
    app = Zhike(make_settings(tmp_path / "home"))
    yield app
    app.engine.dispose()


def run(z: Zhike, params: dict, owner: str = "u1") -> JobRow:
    job, _ = z.submit("batch_design", params, owner)
    assert Worker(z).run_one(job.id)
    row = z.jobs.get(job.id)
    assert row.state == "succeeded", row.error
    return row


def test_bad_rows_are_reported_and_good_rows_render_at_every_size(z: Zhike) -> None:
    photo = upload(z, Image.new("RGB", (64, 64), "navy"), owner="u1")
    rows = [
        {"name": "青花瓷杯", "price": 19.9, "photo": photo},
        {"name": "", "price": 5},  # empty required value
        {"name": "紫砂壶", "price": 128, "photo": f"/api/v1/assets/{photo}/file"},
        {"name": "x", "price": 1, "photo": "nosuchasset9"},  # unknown image
        {"price": 2},  # missing column
    ]
    row = run(z, {"template_json": CARD, "rows": rows, "sizes": ["template", "taobao", "300x600"]})
    r = row.result
    assert (r["rows"], r["rows_ok"], r["rows_failed"], r["designs_ok"]) == (5, 2, 3, 6)
    assert r["template"] == "test_card" and r["sizes"] == ["template", "taobao", "300x600"]
    assert {e["row"] for e in r["errors"]} == {2, 4, 5}
    assert any("unknown image asset 'nosuchasset9'" in e["message"] for e in r["errors"])
    assets = {a.id: a for a in z.assets.by_job(row.id)}
    assert len(assets) == 6
    want = {"template": (320, 240), "taobao": (800, 800), "300x600": (300, 600)}
    for d in r["designs"]:
        a = assets[d["asset_id"]]
        assert (a.width, a.height) == want[d["size"]]
        assert Image.open(io.BytesIO(z.assets.read_bytes(a))).size == want[d["size"]]
        # lineage: the row's photo is the parent; params keep template, row and values
        assert a.parent_id == photo and a.tags == ["batch", "test_card", d["size"]]
        assert a.params["template"] == "test_card" and a.params["row"] == d["row"]
        assert a.params["values"]["name"] == rows[d["row"] - 1]["name"]
    # the 2nd good row was given a URL: it rendered from the same asset
    assert {d["row"] for d in r["designs"]} == {1, 3}
    assert not (z.settings.work_dir / row.id).exists()  # its checkpoints went with the success


def test_zip_has_every_design_and_a_manifest_with_failed_rows(z: Zhike) -> None:
    rows = [{"name": "杯", "price": 1}, {"name": "", "price": 2}, {"name": "壶", "price": 3}]
    row = run(z, {"template_json": CARD, "rows": rows, "sizes": ["template", "taobao"]})
    buf = io.BytesIO()
    assert write_archive(row, z.assets, z.exports, buf) == 4
    zf = zipfile.ZipFile(buf)
    pngs = sorted(n for n in zf.namelist() if n.endswith(".png"))
    # named by the rows' name column (file_names.row_name)
    assert pngs == [
        "designs/壶-taobao.png",
        "designs/壶-template.png",
        "designs/杯-taobao.png",
        "designs/杯-template.png",
    ]
    manifest = list(csv.DictReader(io.StringIO(zf.read("manifest.csv").decode("utf-8-sig"))))
    assert [(m["row"], m["size"], m["status"]) for m in manifest] == [
        ("1", "template", "ok"),
        ("1", "taobao", "ok"),
        ("2", "template", "failed"),
        ("2", "taobao", "failed"),
        ("3", "template", "ok"),
        ("3", "taobao", "ok"),
    ]
    assert "required value is empty" in manifest[2]["error"] and manifest[4]["name"] == "壶"
    assert manifest[0]["file"] in pngs and manifest[0]["asset_id"] == row.result["designs"][0]["asset_id"]
    big = zf.read("designs/杯-taobao.png")
    assert TC260 in big  # exported with the provenance labels
    assert Image.open(io.BytesIO(big)).size == (800, 800)


def test_bad_params_are_named(z: Zhike) -> None:
    with pytest.raises(InvalidInput) as e:
        z.submit("batch_design", {"template_json": {**CARD, "width": 5}, "rows": [{"name": "a"}]}, "u1")
    assert e.value.field == "params.template_json.width"
    with pytest.raises(NotFound) as nf:  # like an unknown input asset
        z.submit("batch_design", {"template": "nope", "rows": [{"a": "b"}]}, "u1")
    assert nf.value.field == "params.template"
    with pytest.raises(InvalidInput) as e:
        z.submit("batch_design", {"rows": [{"a": "b"}]}, "u1")
    assert e.value.field == "params" and "template" in e.value.message
    with pytest.raises(InvalidInput) as e:
        z.submit("batch_design", {"template": "price_card", "rows": [{"a": 1}], "sizes": ["huge"]}, "u1")
    assert e.value.field == "params.sizes.0"


def test_generated_layer_without_a_model_fails_those_rows_clearly(z: Zhike) -> None:
    tpl = {**CARD, "layers": [*CARD["layers"], {"type": "generated", "prompt": "{{scene}}", "box": [0, 0, 50, 50]}]}
    row = run(z, {"template_json": tpl, "rows": [{"name": "a", "price": 1, "scene": "雪山"}]})
    r = row.result
    assert r["designs_ok"] == 0 and r["rows_failed"] == 1 and r["warnings"]
    assert "no image model is installed" in r["errors"][0]["message"]


def test_cancel_stops_the_batch_and_keeps_nothing(z: Zhike) -> None:
    rows = [{"name": f"商品{i}", "price": i} for i in range(400)]
    job, _ = z.submit("batch_design", {"template_json": CARD, "rows": rows, "sizes": ["template", "taobao"]}, "u1")
    t = threading.Thread(target=Worker(z).run_one, args=(job.id,))
    t.start()
    wait_for(lambda: z.jobs.get(job.id).step >= 4, timeout=60)
    z.jobs.cancel(job.id, "u1")
    t.join(timeout=60)
    row = z.jobs.get(job.id)
    assert row.state == "cancelled" and row.step < 800
    assert z.assets.by_job(job.id) == []
    assert not (z.settings.work_dir / job.id).exists()


def test_killed_worker_resumes_without_redoing_finished_rows(z: Zhike, tmp_path: Path) -> None:
    z.settings.lease_seconds = 2.0
    z.settings.heartbeat_seconds = 0.3
    n_rows = 150
    rows = [{"name": f"第{i}号商品", "price": i} for i in range(n_rows)]
    tpl = {**CARD, "width": 960, "height": 720}  # ~50 ms a design: the batch takes seconds
    z.settings.keep_work = True  # renders.log is read after the job succeeded
    job, _ = z.submit("batch_design", {"template_json": tpl, "rows": rows}, "u1")
    work = z.settings.work_dir / job.id
    proc = start_worker(z.settings.home, tmp_path / "worker.log", lease_seconds=2, heartbeat_seconds=0.3)
    try:
        wait_for(lambda: work.is_dir() and len(list(work.glob("*-template.json"))) >= 20, timeout=120)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    dead = z.jobs.get(job.id)
    finished_before = len(list(work.glob("*-template.json")))
    assert dead.state == "running" and dead.attempts == 1 and finished_before < n_rows, tmp_path / "worker.log"
    survivor = Worker(z, worker_id="survivor")
    wait_for(lambda: survivor.run_one(), timeout=30, every=0.2)
    row = z.jobs.get(job.id)
    assert row.state == "succeeded" and row.attempts == 2, row.error
    r = row.result
    assert r["designs_ok"] == n_rows and r["designs_resumed"] >= finished_before
    # every row rendered exactly once over both attempts, by two different processes
    lines = [ln.split() for ln in (work / "renders.log").read_text().splitlines()]
    counts = Counter((ln[0], ln[1]) for ln in lines)
    assert len(counts) == n_rows and max(counts.values()) == 1
    assert len({ln[2] for ln in lines}) == 2
    # exactly one asset per row x size, and they are the result's
    outputs = z.assets.by_job(job.id)
    assert len(outputs) == n_rows
    assert sorted(a.params["row"] for a in outputs) == list(range(1, n_rows + 1))
    assert {a.id for a in outputs} == {d["asset_id"] for d in r["designs"]}


def test_generated_prompts_filled_from_rows_are_screened(z: Zhike) -> None:
    """A data row cannot slip a listed term into a generated layer's prompt; the refusal names the row."""
    tpl = {**CARD, "layers": [*CARD["layers"], {"type": "generated", "prompt": "{{scene}}", "box": [0, 0, 50, 50]}]}
    rows = [{"name": "a", "price": 1, "scene": "雪山"}, {"name": "b", "price": 2, "scene": "假身份证 样张"}]
    with pytest.raises(ContentRefused) as e:
        z.submit("batch_design", {"template_json": tpl, "rows": rows}, "u1")
    assert (e.value.field, e.value.limit) == ("params.rows.1", "fraud")
    assert z.jobs.list("u1") == []
    # Text layers are the merchant's own words on the design, not generation instructions: not screened.
    job, _ = z.submit("batch_design", {"template_json": CARD, "rows": [{"name": "假身份证", "price": 1}]}, "u1")
    assert job.state == "queued"


def test_generated_layers_run_txt2img_per_row_and_remake_identically(z: Zhike, tiny_sd15: Path) -> None:
    z.catalog.add(str(tiny_sd15), name="tiny")
    box = [0, 0, 64, 64]
    tpl = {
        **CARD,
        "layers": [*CARD["layers"], {"type": "generated", "prompt": "{{scene}}, product backdrop", "box": box}],
    }
    rows = [{"name": "茶壶", "price": 1, "scene": "雪山"}, {"name": "茶杯", "price": 2, "scene": "海边"}]
    params = {"template_json": tpl, "rows": rows, "seed": 5, "steps": 2}
    first, again = run(z, params), run(z, params)
    assert first.result["designs_ok"] == 2 and first.params["model"] == "tiny"
    crops = []
    for job in (first, again):
        for d in job.result["designs"]:
            row = z.assets.get(d["asset_id"], owner_id="u1")
            img = np.asarray(Image.open(io.BytesIO(z.assets.read_bytes(row))).convert("RGB"))
            crops.append(img[:64, :64].astype(int))
    # Each row got its own generated image (other prompt and seed), and the same job params re-make it exactly.
    assert np.abs(crops[0] - crops[1]).mean() > 1.0
    assert np.array_equal(crops[0], crops[2]) and np.array_equal(crops[1], crops[3])
    assert crops[0].std() > 5  # a generated image, not a flat placeholder


def test_cutout_layers_remove_the_backdrop_with_the_embedded_matting_model(z: Zhike, embedded_dir: Path) -> None:
    from skimage import data as skdata

    photo = Image.fromarray(skdata.chelsea()).convert("RGB")  # 451x300, a cat on a carpet
    truth = np.asarray(Image.open(FIXTURES / "chelsea_cat_mask.png").convert("L")) > 127  # drawn by hand
    buf = io.BytesIO()
    photo.save(buf, "PNG")
    asset = z.assets.upload(buf.getvalue(), owner_id="u1", field="photo")
    green = "#00ff00"
    tpl = {
        **CARD,
        "width": 451,
        "height": 300,
        "background": green,
        "layers": [{"type": "image", "src": "{{photo}}", "box": [0, 0, 451, 300], "fit": "fill", "cutout": True}],
    }
    job = run(z, {"template_json": tpl, "rows": [{"photo": asset.id}]})
    row = z.assets.get(job.result["designs"][0]["asset_id"], owner_id="u1")
    design = np.asarray(Image.open(io.BytesIO(z.assets.read_bytes(row))).convert("RGB")).astype(int)
    # Green shows where the backdrop was cut away (soft edges count once green dominates).
    greenish = (design[..., 1] - np.maximum(design[..., 0], design[..., 2])) > 100
    assert greenish[~truth].mean() > 0.75  # the carpet is gone: the template's background shows through (0.81 here)
    assert greenish[truth].mean() < 0.02  # the cat stays (0.004 here; the hand-drawn outline is not pixel-exact)
