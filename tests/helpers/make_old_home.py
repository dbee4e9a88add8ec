"""Make tests/fixtures/old_home_60de743.zip: a data home written by the release before migrations (commit 60de743).

Run it with THAT release's code, so the database is what its `metadata.create_all` made:

    git archive 60de743 src | tar -x -C /tmp/old        # (mkdir /tmp/old first)
    PYTHONPATH=/tmp/old/src HF_HUB_OFFLINE=1 python tests/helpers/make_old_home.py tests/fixtures/old_home_60de743.zip

It uses only the old services (no model download, no GPU): an admin and a user with passwords, browser sessions,
API keys (one per user, one without), uploads (tiny Pillow images), finished jobs run by the old worker
(resize_design fit, cutout logo, cutout with a registered tiny ONNX matting model, one cancelled, one failed),
a saved design template, the seeded safety terms plus an added one, audit rows (a refusal and an admin override).
The zip holds the home and `manifest.json` with the plaintext secrets the test logs in with.
"""

from __future__ import annotations

import io
import json
import sys
import tempfile
import zipfile
from pathlib import Path

from PIL import Image, ImageDraw

from zhike.core.errors import ZhikeError
from zhike.services.container import Zhike
from zhike.services.jobs.worker import Worker
from zhike.services.templates import TemplateStore
from zhike.settings import Settings

PASSWORDS = {"admin": "old-admin-pass-1", "mei": "old-user-pass-22"}


def _pb(field: int, value: int | str | bytes) -> bytes:
    """One protobuf field (varint or length-delimited): enough to write a tiny ONNX graph without onnx."""

    def varint(n: int) -> bytes:
        out = b""
        while True:
            byte, n = n & 0x7F, n >> 7
            out += bytes([byte | (0x80 if n else 0)])
            if not n:
                return out

    if isinstance(value, int):
        return varint(field << 3) + varint(value)
    data = value.encode() if isinstance(value, str) else value
    return varint(field << 3 | 2) + varint(len(data)) + data


def tiny_matting_onnx(path: Path) -> Path:
    """A 'matting net' (ReduceMean over the input's channels) that the old catalogue registers as kind matting."""

    def tensor(name: str, dims: list[int | str]) -> bytes:
        shape = b"".join(_pb(1, _pb(1, d) if isinstance(d, int) else _pb(2, d)) for d in dims)
        return _pb(1, name) + _pb(2, _pb(1, _pb(1, 1) + _pb(2, shape)))

    attr = _pb(1, "axes") + _pb(8, 1) + _pb(20, 7)
    node = _pb(1, "img") + _pb(2, "alpha") + _pb(4, "ReduceMean") + _pb(5, attr)
    graph = (
        _pb(1, node)
        + _pb(2, "g")
        + _pb(11, tensor("img", [1, 3, "h", "w"]))
        + _pb(12, tensor("alpha", [1, 1, "h", "w"]))
    )
    path.write_bytes(_pb(1, 7) + _pb(8, _pb(2, 13)) + _pb(7, graph))
    return path


def png(size: tuple[int, int], color: str, mark: str) -> bytes:
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    draw.rectangle((size[0] // 4, size[1] // 4, 3 * size[0] // 4, 3 * size[1] // 4), fill=color)
    draw.text((2, 2), mark, fill="black")
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def run(z: Zhike, op: str, params: dict, owner: str) -> dict:
    job, _ = z.submit(op, params, owner)
    assert Worker(z).run_one(job["id"]), f"the worker did not take job {job['id']}"
    return z.jobs.get(job["id"])


def make(home: Path) -> dict:
    z = Zhike(Settings(home=home, device="cpu"))
    admin = z.users.create_user("admin", PASSWORDS["admin"], role="admin")
    mei = z.users.create_user("mei", PASSWORDS["mei"])
    owners = {"admin": f"user-{admin['id']}", "mei": f"user-{mei['id']}"}
    session_token, _ = z.users.create_session(mei["id"])
    z.users.create_session(admin["id"])
    _, key_mei = z.keys.create("mei laptop", owner_id=owners["mei"])
    _, key_admin = z.keys.create("admin script", owner_id=owners["admin"])
    legacy, key_legacy = z.keys.create("legacy key")  # no user: its own key-<id> space
    revoked, _ = z.keys.create("revoked key", owner_id=owners["mei"])
    z.keys.revoke(revoked["id"])

    models_dir = home / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    z.catalog.add(str(tiny_matting_onnx(models_dir / "tiny-matting.onnx")), name="tiny-matting")

    logo = z.assets.upload(png((64, 48), "#d0302f", "Z"), owner_id=owners["mei"], tags=["logo"])
    photo = z.assets.upload(png((80, 60), "#2f6fd0", "P"), owner_id=owners["mei"])
    other = z.assets.upload(png((40, 40), "#30a050", "L"), owner_id=legacy["owner_id"])
    doomed = z.assets.upload(png((32, 32), "#777777", "D"), owner_id=owners["admin"])

    jobs = {
        "resize": run(
            z, "resize_design", {"image": photo["id"], "sizes": ["96x96", "120x60"], "mode": "fit"}, owners["mei"]
        ),
        "logo": run(z, "cutout", {"image": logo["id"], "mode": "logo"}, owners["mei"]),
        "matting": run(
            z, "cutout", {"image": other["id"], "mode": "product", "model": "tiny-matting"}, legacy["owner_id"]
        ),
    }
    queued, _ = z.submit("resize_design", {"image": doomed["id"], "sizes": ["64x64"], "mode": "fit"}, owners["admin"])
    z.assets.delete(doomed["id"], owner_id=owners["admin"])  # its input is gone when the worker runs it: failed
    assert Worker(z).run_one(queued["id"])
    jobs["failed"] = z.jobs.get(queued["id"])
    cancelled, _ = z.submit("cutout", {"image": logo["id"], "mode": "logo"}, owners["mei"], idempotency_key="retry-1")
    jobs["cancelled"] = z.jobs.cancel(cancelled["id"], owners["mei"])
    for name, state in (("resize", "succeeded"), ("logo", "succeeded"), ("matting", "succeeded"), ("failed", "failed")):
        assert jobs[name]["state"] == state, (name, jobs[name]["state"], jobs[name].get("error"))

    bundled = json.loads((Path(sys.modules["zhike"].__file__).parent / "design/templates/coupon.json").read_text())
    TemplateStore(z.engine).create(owners["mei"], bundled)

    z.safety.add_term("custom", "旧词测试", match="variant", added_by="admin")
    params = z.validate("txt2img", {"prompt": "a poster with 旧词测试 on it"})[1]
    try:
        z.safety.screen("txt2img", params, owners["mei"])
        raise AssertionError("the added term was not refused")
    except ZhikeError:
        pass
    z.safety.screen("txt2img", params, owners["admin"], override=True)

    z.engine.dispose()  # the last connection closes: SQLite checkpoints the WAL into zhike.db and removes it
    assert not (home / "zhike.db-wal").exists()
    return {
        "made_by": "60de743",
        "passwords": PASSWORDS,
        "owners": owners,
        "session_token": session_token,
        "keys": {"mei": key_mei, "admin": key_admin, "legacy": key_legacy},
        "legacy_owner": legacy["owner_id"],
        "assets": {"logo": logo["id"], "photo": photo["id"], "other": other["id"]},
        "jobs": {name: job["id"] for name, job in jobs.items()},
    }


def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        manifest = make(home)
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False))
            for path in sorted(home.rglob("*")):
                if path.is_file():
                    zf.write(path, "home/" + path.relative_to(home).as_posix())
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
