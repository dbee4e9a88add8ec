"""The image safety-checker hook: diffusers' StableDiffusionSafetyChecker (tiny random, saved in its real folder
layout) flags finished images; flagged ones are withheld and audited; without one, the status says so."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest
from PIL import Image
from skimage import data as skdata

from tests.conftest import make_settings
from tests.helpers.images import upload
from tests.helpers.tiny_safety import save_checker
from zhike.backends.safety_checker import ImageSafetyChecker
from zhike.core.errors import ModelError
from zhike.core.registry import list_ops
from zhike.services.container import Zhike
from zhike.services.jobs.worker import Worker

RED = Image.new("RGB", (64, 64), (255, 0, 0))
JOB = {"prompt": "a lantern", "width": 64, "height": 64, "steps": 2, "seed": 3, "batch_size": 2}


def test_checker_flags_what_matches_its_concepts_only(tmp_path: Path) -> None:
    save_checker(tmp_path / "sc", threshold=0.95, concept=RED)
    checker = ImageSafetyChecker(tmp_path / "sc")
    others = [Image.new("RGB", (64, 64), c) for c in ((0, 0, 255), (0, 255, 0), (128, 128, 128))]
    assert checker.flag([RED, *others, Image.new("RGB", (80, 48), (250, 5, 5))]) == [True, False, False, False, True]


def test_a_broken_folder_names_the_setting(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError) as e:
        ImageSafetyChecker(tmp_path / "empty")
    assert e.value.field == "image_safety_checker"


def zhike_with(tmp_path: Path, tiny_sd15: Path, checker: Path | None) -> Zhike:
    z = Zhike(make_settings(tmp_path / "home", image_safety_checker=checker))
    z.catalog.add(str(tiny_sd15), name="tiny")
    return z


@pytest.mark.parametrize("threshold", [-1.5, 1.5])
def test_flagged_images_are_withheld_and_audited(tmp_path: Path, tiny_sd15: Path, threshold: float) -> None:
    save_checker(tmp_path / "sc", threshold=threshold)
    z = zhike_with(tmp_path, tiny_sd15, tmp_path / "sc")
    job, _ = z.submit("txt2img", JOB, "owner")
    Worker(z).run_one(job.id)
    row = z.jobs.get(job.id)
    stored = z.assets.list(owner_id="owner")
    if threshold < 0:  # flags everything: the job fails naming the policy, nothing is stored, the log says so
        assert row.state == "failed" and row.error["code"] == "image_withheld"
        assert row.error["type"] == "content_policy"
        assert row.error["limit"] == "image_checker" and stored == []
        event = z.safety.audit()[0]
        assert (event["policy"], event["field"], event["excerpt"]) == (
            "image_checker",
            "image",
            "2 of 2 images withheld",
        )
    else:  # flags nothing: both images are kept
        assert row.state == "succeeded" and len(stored) == 2 and z.safety.audit() == []
    assert z.safety.status()["image_checker"]["installed"] is True


def test_without_a_checker_nothing_is_screened_and_the_status_says_so(tmp_path: Path, tiny_sd15: Path) -> None:
    z = zhike_with(tmp_path, tiny_sd15, None)
    job, _ = z.submit("txt2img", {**JOB, "batch_size": 1}, "owner")
    Worker(z).run_one(job.id)
    assert z.jobs.get(job.id).state == "succeeded"
    status = z.safety.status()["image_checker"]
    assert status["installed"] is False and "not screened" in status["reason"]


# -- every op that makes pixels with diffusion is screened -------------------------------------------------------
GATE = "zhike.ops.diffusion_common.generate"  # the one call of the diffusion backend in the operations
SRC = Path(__file__).resolve().parent.parent / "src"


def _module_of(path: Path) -> str:
    return ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")


class _BackendUses(ast.NodeVisitor):
    """(innermost function, name) for every name an ast takes from zhike.backends.diffusion."""

    def __init__(self, module: str) -> None:
        self.where, self.aliases, self.uses = [module], set(), []

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self.where.append(f"{self.where[0]}.{node.name}")
        self.generic_visit(node)
        self.where.pop()

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module == "zhike.backends.diffusion":
            self.uses += [(self.where[-1], a.name) for a in node.names]
        elif node.module == "zhike.backends":
            self.aliases |= {a.asname or a.name for a in node.names if a.name == "diffusion"}

    def visit_Import(self, node: ast.Import) -> None:
        self.aliases |= {a.asname for a in node.names if a.name == "zhike.backends.diffusion" and a.asname}

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.value, ast.Name) and node.value.id in self.aliases:
            self.uses.append((self.where[-1], node.attr))
        self.generic_visit(node)


def test_only_the_screening_gate_runs_the_diffusion_backend() -> None:
    """Outside the backends, every use of zhike.backends.diffusion is a data class, the warm-up (its images are
    thrown away), or `generate` inside the gate: an op that called the backend itself would skip the checker."""
    import zhike.backends.diffusion as backend

    runs = set()
    for path in sorted((SRC / "zhike").rglob("*.py")):
        module = _module_of(path)
        if not module.startswith("zhike.backends"):
            visitor = _BackendUses(module)
            visitor.visit(ast.parse(path.read_text(encoding="utf-8")))
            runs |= {(where, name) for where, name in visitor.uses if not isinstance(getattr(backend, name), type)}
    assert runs == {(GATE, "generate"), ("zhike.services.warmup.warm_up", "warm_up")}


def _reference_graph(modules: set[str]) -> dict[str, set[str]]:
    """Which functions and classes of these modules name which (static and generous: any use of a name counts,
    so a callback or a class handed to a renderer counts as a call; a class reaches its methods)."""
    graph: dict[str, set[str]] = {}
    for module in modules:
        tree = ast.parse(Path(importlib.import_module(module).__file__ or "").read_text(encoding="utf-8"))
        imported = {
            a.asname or a.name: f"{node.module}.{a.name}"
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
            for a in node.names
        }
        local = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)}

        def resolve(name: str, module: str = module, local: set[str] = local, imported: dict = imported) -> str:
            return f"{module}.{name}" if name in local else imported.get(name, name)

        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                methods = [m for m in node.body if isinstance(m, ast.FunctionDef)]
                graph[f"{module}.{node.name}"] = {f"{module}.{node.name}.{m.name}" for m in methods}
                todo = [(f"{module}.{node.name}.{m.name}", m) for m in methods]
            elif isinstance(node, ast.FunctionDef):
                todo = [(f"{module}.{node.name}", node)]
            else:
                continue
            for name, fn in todo:
                graph[name] = {resolve(n.id) for n in ast.walk(fn) if isinstance(n, ast.Name)}
    return graph


def diffusion_ops() -> set[str]:
    """Every registered op (plugins included) whose run function reaches the diffusion gate."""
    ops = list_ops()
    import zhike.ops

    modules = {f"zhike.ops.{m.name}" for m in pkgutil.iter_modules(zhike.ops.__path__)} | {op.module for op in ops}
    graph = _reference_graph(modules)
    found = set()
    for op in ops:
        seen, todo = set(), [f"{op.module}.{op.run.__name__}"]
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo += graph.get(name, ())
        if GATE in seen:
            found.add(op.name)
    return found


def square(size: tuple[int, int], box: tuple[int, int, int, int]) -> Image.Image:
    mask = Image.new("L", size, 0)
    mask.paste(255, box)
    return mask


def flag_all_jobs(z: Zhike) -> dict[str, dict]:
    """A small job of every op that generates with diffusion, on the tiny models."""
    photo = Image.fromarray(skdata.coffee()).resize((64, 48), Image.LANCZOS)
    product = Image.new("RGBA", (48, 48), (0, 0, 0, 0))
    product.paste((200, 120, 40, 255), (12, 12, 36, 36))  # its own transparency: no matting model needed
    image, mask = upload(z, photo, OWNER), upload(z, square(photo.size, (20, 10, 44, 38)), OWNER)
    base = {"prompt": "a lantern", "width": 64, "height": 64, "steps": 2, "seed": 3, "model": "tiny"}
    edit = {"image": image, "mask": mask, "model": "tiny", "steps": 2, "seed": 1}
    layer = {"type": "generated", "prompt": "{{scene}}, product backdrop", "box": [0, 0, 64, 64]}
    template = {"id": "t", "name": {"zh": "卡", "en": "card"}, "width": 96, "height": 64, "layers": [layer]}
    return {
        "txt2img": base,
        "img2img": {**base, "init_image": image, "strength": 0.8},
        "restyle": {**base, "init_image": image, "preset": "guofeng"},
        "hires": {**base, "hires_scale": 1.5, "hires_strength": 0.5},
        "control": {**base, "controls": [{"model": "cn", "image": image, "preprocess": "canny"}]},
        "inpaint": {**edit, "prompt": "a red flower"},
        "erase": edit,
        "material_swap": {**edit, "material": "brown leather"},
        "outpaint": {"image": image, "aspect": "16:9", "method": "diffusion", "prompt": "a table", "steps": 2},
        "subject_swap": {
            "image": upload(z, product, OWNER),
            **{k: base[k] for k in ("prompt", "width", "height", "steps", "seed", "model")},
            "harmonize": 0,
        },
        "resize_design": {"image": image, "sizes": ["64x96"], "mode": "extend", "prompt": "a table", "steps": 2},
        "batch_design": {"template_json": template, "rows": [{"scene": "雪山"}], "steps": 2},  # 512² on CPU: 1 row
        "product_photos": {  # photos under 64 px are refused before anything is generated
            "photos": [upload(z, product.resize((96, 96)), OWNER)],
            "sizes": ["64x64"],
            "background": "generate",
            **{k: base[k] for k in ("steps", "seed", "model")},
            "scene_prompt": "a table",
        },
    }


OWNER = "owner"
WITHHELD = "withheld by the image safety checker"


def images_on_disk(home: Path) -> set[Path]:
    return {p for p in home.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp")}


def test_every_diffusion_op_stores_nothing_a_flag_all_checker_flags(
    tmp_path: Path, tiny_sd15: Path, tiny_cn15: Path
) -> None:
    """The registry's diffusion ops, found from the code (a new one fails here until it has a job below), each
    run with a checker that flags everything: nothing generated is stored, and each says why as txt2img does."""
    save_checker(tmp_path / "sc", threshold=-1.5)
    z = zhike_with(tmp_path, tiny_sd15, tmp_path / "sc")
    z.catalog.add(str(tiny_cn15), name="cn")
    jobs = flag_all_jobs(z)
    assert diffusion_ops() == set(jobs)
    uploads = {a.id for a in z.assets.list(owner_id=OWNER, limit=1000)}
    files = images_on_disk(tmp_path / "home")
    for op, params in jobs.items():
        job, _ = z.submit(op, params, OWNER)
        Worker(z).run_one(job.id)
        row = z.jobs.get(job.id)
        if op == "batch_design":  # a batch reports each withheld design and renders the rest (none here)
            assert row.state == "succeeded" and row.result["designs_ok"] == 0, row.error
            assert len(row.result["errors"]) == 1
            assert all(WITHHELD in e["message"] and "图像安全检测" in e["message"] for e in row.result["errors"])
        else:
            assert row.state == "failed", (op, row.result)
            assert (row.error["code"], row.error["type"], row.error["limit"]) == (
                "image_withheld",
                "content_policy",
                "image_checker",
            ), op
        assert {a.id for a in z.assets.list(owner_id=OWNER, limit=1000)} == uploads, op
        assert images_on_disk(tmp_path / "home") == files, op
        assert z.safety.audit()[0]["policy"] == "image_checker", op
    z.engine.dispose()


def test_resize_design_keeps_what_the_checker_passes(tmp_path: Path, tiny_sd15: Path) -> None:
    save_checker(tmp_path / "sc", threshold=1.5)  # flags nothing
    z = zhike_with(tmp_path, tiny_sd15, tmp_path / "sc")
    job, _ = z.submit("resize_design", flag_all_jobs(z)["resize_design"], OWNER)
    Worker(z).run_one(job.id)
    row = z.jobs.get(job.id)
    assert row.state == "succeeded" and row.result["outputs"][0]["method"] == "extend:diffusion:tiny", row.error
    assert len(row.result["images"]) == 1 and z.safety.audit() == []
    z.engine.dispose()
