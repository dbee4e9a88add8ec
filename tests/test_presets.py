"""Style presets: expansion at submit, user values win, user presets, LoRA tags and weights in prompts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.test_generate import BASE, first, pixels, run
from zhike.core.errors import InvalidInput
from zhike.services.container import Zhike

REQUIRED = {"cg", "caihui", "guofeng", "youhua", "erciyuan"}


def test_bundled_presets_cover_the_platform_styles(zhike: Zhike) -> None:
    presets = {p.id: p for p in zhike.presets.list()}
    assert set(presets) >= REQUIRED and len(presets) >= 8
    for p in presets.values():
        assert p.builtin and p.name["zh"] and p.name["en"] and "{prompt}" in p.prompt
    assert presets["guofeng"].name["zh"] == "国风"


def test_preset_expands_at_submit_and_user_values_win(zhike: Zhike) -> None:
    job, _ = zhike.submit("txt2img", {**BASE, "preset": "erciyuan", "negative_prompt": "extra fingers"}, "u")
    p = job.params
    assert p["prompt"].startswith(BASE["prompt"] + ", anime style")
    assert p["negative_prompt"].endswith("extra fingers") and "lowres" in p["negative_prompt"]
    assert (p["scheduler"], p["clip_skip"], p["preset"], p["applied_preset"]) == ("Euler a", 2, None, "erciyuan")
    assert p["steps"] == BASE["steps"]  # set by the user: the preset's 28 does not override it
    with pytest.raises(InvalidInput) as e:
        zhike.submit("txt2img", {**BASE, "preset": "nope"}, "u")
    assert e.value.field == "params.preset"


def test_preset_changes_the_image_and_remakes_exactly(zhike: Zhike) -> None:
    plain = pixels(zhike, first(run(zhike, "txt2img", BASE)))
    styled_row = run(zhike, "txt2img", {**BASE, "preset": "guofeng"})
    styled = pixels(zhike, first(styled_row))
    assert np.abs(plain - styled).mean() > 0.5
    # Re-submitting the stored params (what --from does) must not expand the template twice.
    again = run(zhike, "txt2img", {**styled_row.params, "seed": 42})
    assert again.params["prompt"] == styled_row.params["prompt"]
    assert np.array_equal(pixels(zhike, first(again)), styled)


def test_user_presets_are_validated_and_listed(zhike: Zhike, tmp_path: Path) -> None:
    good = tmp_path / "shop.json"
    good.write_text(
        json.dumps(
            {
                "id": "shop-red",
                "name": {"zh": "店铺红", "en": "Shop red"},
                "prompt": "{prompt}, red theme",
                "params": {"steps": 12},
            }
        ),
        encoding="utf-8",
    )
    zhike.presets.add(good)
    job, _ = zhike.submit("txt2img", {**BASE, "preset": "shop-red", "steps": None} | {"steps": 3}, "u")
    assert job.params["prompt"].endswith("red theme")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"id": "bad", "name": {"en": "x"}, "prompt": "no slot", "params": {"model": "x"}}))
    with pytest.raises(InvalidInput, match="prompt"):
        zhike.presets.add(bad)


def test_weighted_prompt_changes_pixels(zhike: Zhike) -> None:
    a = pixels(zhike, first(run(zhike, "txt2img", {**BASE, "prompt": "a red apple on a table"})))
    b = pixels(zhike, first(run(zhike, "txt2img", {**BASE, "prompt": "a (red:1.6) apple on a table"})))
    c = pixels(zhike, first(run(zhike, "txt2img", {**BASE, "prompt": "a red apple BREAK on a table"})))
    assert np.abs(a - b).mean() > 0.2 and np.abs(a - c).mean() > 0.2


def test_unknown_lora_tag_in_prompt_is_named(zhike: Zhike) -> None:
    with pytest.raises(InvalidInput) as e:
        zhike.submit("txt2img", {**BASE, "prompt": "a cat <lora:missing:0.7>"}, "u")
    assert e.value.field == "params.loras.0.name" and "missing" in e.value.message
