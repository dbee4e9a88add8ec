"""The image safety-checker hook: diffusers' StableDiffusionSafetyChecker (tiny random, saved in its real folder
layout) flags finished images; flagged ones are withheld and audited; without one, the status says so."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import make_settings
from tests.helpers.tiny_safety import save_checker
from zhike.backends.safety_checker import ImageSafetyChecker
from zhike.core.errors import ModelError
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
