"""translate, and Chinese prompts for English-only text encoders, with real things: a tiny random Qwen2 (real
tokenizer, real backend) and a tiny random SD 1.5 on the real job path; one short check on the real embedded LLM.
The tiny model's words are noise: tests assert what is kept, recorded and drawn, never wording."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.conftest import make_settings
from tests.helpers.jobs import run
from zhike.core.rows import JobRow
from zhike.ops.translate import _numbered, chinese_runs, clean_answer, detect_language, has_chinese, splice
from zhike.services.container import Zhike

IMG = {"width": 64, "height": 64, "steps": 2, "seed": 7, "model": "tiny"}


@pytest.fixture(scope="module")
def z(tiny_llm_app: Zhike, tiny_sd15: Path) -> Zhike:
    tiny_llm_app.catalog.add(str(tiny_sd15), name="tiny")  # once: the fixture is this module's
    return tiny_llm_app


def pixels(z: Zhike, row: JobRow) -> np.ndarray:
    asset = z.assets.get(row.result["images"][0]["asset_id"], owner_id="u1")
    return np.asarray(Image.open(io.BytesIO(z.assets.read_bytes(asset))).convert("RGB"), dtype=np.int16)


def params_of(z: Zhike, row: JobRow) -> dict[str, Any]:
    return z.assets.get(row.result["images"][0]["asset_id"], owner_id="u1").params


# -- model-free ---------------------------------------------------------------------------------------------------
def test_language_is_detected_by_who_carries_the_text() -> None:
    assert detect_language("iPhone 15 手机壳，防摔") == "zh"
    assert detect_language("Buy the 小米 phone today, the battery lasts two days") == "en"
    assert detect_language("a red dress") == "en" and not has_chinese("a red dress, (silk:1.2)")


def test_only_the_chinese_runs_of_a_prompt_are_replaced_and_its_syntax_survives() -> None:
    prompt = "（一只白猫：1.3），masterpiece, 红色 灯笼BREAK 8k高清 <lora:x:0.5>"
    assert chinese_runs(prompt) == ["一只白猫", "红色 灯笼", "高清"]
    assert splice(prompt, ["a white cat", "red lantern", "high definition"]) == (
        "(a white cat:1.3), masterpiece, red lantern BREAK 8k high definition <lora:x:0.5>"
    )


def test_model_answers_are_unwrapped() -> None:
    assert clean_answer('Translation: "a red dress"') == "a red dress"
    assert clean_answer("```\n译文：红色连衣裙\n```") == "红色连衣裙"
    assert _numbered("Sure!\n1. a cat\n2) red lantern.\n3：high", 3) == {1: "a cat", 2: "red lantern", 3: "high"}
    assert _numbered("1. a cat\n5. extra", 2) == {1: "a cat"}


# -- the translate op on the tiny model -----------------------------------------------------------------------------
def test_translate_job_stores_a_text_asset_with_its_params(z: Zhike) -> None:
    row = run(z, "translate", {"text": "夏季新款连衣裙\n\n透气面料，显瘦", "max_tokens": 24})
    r = row.result
    assert r["data"]["source"] == "zh" and r["data"]["target"] == "en" and r["data"]["calls"] == 1
    assert r["text"] and r["llm"] == "tiny-qwen"
    asset = z.assets.get(r["asset_id"], owner_id="u1")
    assert asset.mime == "text/markdown" and asset.params["text"] == "夏季新款连衣裙\n\n透气面料，显瘦"
    assert z.assets.read_bytes(asset).decode() == r["text"]


def test_text_already_in_the_target_language_comes_back_without_a_model_call(z: Zhike) -> None:
    row = run(z, "translate", {"text": "透气面料，显瘦", "target": "zh"})
    assert row.result["text"] == "透气面料，显瘦" and row.result["data"]["calls"] == 0


def test_a_prompt_is_translated_around_its_syntax(z: Zhike) -> None:
    row = run(z, "translate", {"text": "（红色灯笼：1.3）, masterpiece, BREAK, 8k", "kind": "prompt"})
    out = row.result["text"]
    assert out.startswith("(") and ":1.3)" in out and out.endswith(", masterpiece, BREAK, 8k")


# -- Chinese prompts on SD 1.5 -----------------------------------------------------------------------------------
def test_a_chinese_prompt_is_drawn_in_english_and_the_translation_is_recorded(
    z: Zhike, monkeypatch: pytest.MonkeyPatch
) -> None:
    chinese = run(z, "txt2img", {**IMG, "prompt": "一只白猫，(红色灯笼:1.2)", "negative_prompt": "模糊"})
    rec = params_of(z, chinese)["prompt_translated"]
    assert rec["source"] == "一只白猫，(红色灯笼:1.2)" and rec["negative_source"] == "模糊"
    assert rec["llm"] == "tiny-qwen" and ":1.2)" in rec["prompt"] and "，" not in rec["prompt"]
    assert params_of(z, chinese)["prompt"] == "一只白猫，(红色灯笼:1.2)"  # the user's words stay the prompt
    assert not chinese.result["notes"]
    # What was drawn is the English: the same English typed in gives the same pixels.
    english = run(z, "txt2img", {**IMG, "prompt": rec["prompt"], "negative_prompt": rec["negative_prompt"]})
    assert np.array_equal(pixels(z, chinese), pixels(z, english))
    assert "prompt_translated" not in params_of(z, english) or params_of(z, english)["prompt_translated"] is None
    # A remix of the output re-makes it from the record, without a language model.
    monkeypatch.setattr(z.settings, "llm_default", "no-such-llm")  # the module's app: undone after the test
    remix = run(z, "txt2img", {**params_of(z, chinese), "seed": IMG["seed"]})  # the seed is on the asset row
    assert np.array_equal(pixels(z, chinese), pixels(z, remix)) and not remix.result["notes"]


def test_without_a_language_model_the_job_goes_on_with_a_note(z: Zhike, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(z.settings, "llm_default", "no-such-llm")  # the module's app: undone after the test
    row = run(z, "txt2img", {**IMG, "prompt": "一只白猫"})
    assert [n["code"] for n in row.result["notes"]] == ["prompt_not_translated"]
    assert params_of(z, row)["prompt_translated"] is None
    # Off per job, or an English prompt: nothing to say, no model asked.
    off = run(z, "txt2img", {**IMG, "prompt": "一只白猫", "translate_prompt": False})
    assert not off.result["notes"] and np.array_equal(pixels(z, off), pixels(z, row))
    assert not run(z, "txt2img", {**IMG, "prompt": "a white cat"}).result["notes"]


# -- the real embedded LLM (CI fetches it; skipped with a reason where it is not) ----------------------------------
def test_real_llm_translates_copy_and_expands_a_prompt(real_llm: Any, tmp_path: Path) -> None:
    """Greedy and short on the embedded Qwen2.5 1.5B (under 40 s on 2 cores): the words must be right."""
    embedded = Path(os.environ["ZHIKE_EMBEDDED_DIR"])
    zh = Zhike(make_settings(tmp_path / "home", llm_default=real_llm.name, embedded_dir=embedded))
    try:
        row = run(zh, "translate", {"text": "红色连衣裙", "temperature": 0, "max_tokens": 16})
        assert "red" in row.result["text"].lower() and "dress" in row.result["text"].lower(), row.result["text"]
        row = run(zh, "prompt_expand", {"idea": "国风茶叶礼盒", "temperature": 0, "max_tokens": 90})
        r = row.result
        assert r["prompt"] and not has_chinese(r["prompt"]) and "tea" in r["prompt"].lower(), r["prompt"]
        assert r["negative_prompt"] and r["preset"] in row.params["presets"], r
    finally:
        zh.engine.dispose()
