"""The import layers of pyproject.toml hold, and they catch an op that imports a model library itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(config_filename=sys.argv[1], "
RUN += "no_cache=True, no_logo=True))"


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": str(root / "src")}  # this tree's zhike, not an installed one
    return subprocess.run(
        [sys.executable, "-c", RUN, str(root / "pyproject.toml")], cwd=root, env=env, capture_output=True, text=True
    )


def test_the_layer_contracts_hold() -> None:
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 kept, 0 broken" in done.stdout


def test_an_op_importing_cv2_breaks_the_model_library_contract(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "src" / "zhike", tmp_path / "src" / "zhike", ignore=shutil.ignore_patterns("web", "*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    op = tmp_path / "src" / "zhike" / "ops" / "cutout.py"
    lazy_cv2 = "\n\ndef _edges(x):\n    import cv2\n\n    return cv2.Canny(x, 1, 2)\n"  # in a function: counts
    op.write_text(op.read_text(encoding="utf-8") + lazy_cv2)
    done = lint_imports(tmp_path)
    assert done.returncode == 1
    assert "Only backends import model libraries BROKEN" in done.stdout
    assert "zhike.ops.cutout -> cv2" in done.stdout
