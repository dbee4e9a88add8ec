"""prompt_expand: parsing what models really answer (labels in two languages, JSON, fences, chatter), the preset
choice, and the op on the real job path with a tiny random Qwen2 (whose words are noise: the op must still give
an English prompt, a negative prompt and an installed preset or none)."""

from __future__ import annotations

import pytest

from tests.helpers.jobs import run
from zhike.ops.prompt_expand import DEFAULT_NEGATIVE, parse_answer, pick_preset, tidy_prompt
from zhike.services.container import Zhike

OFFERED = {
    "guofeng": "Chinese style / 国风 / Traditional Chinese ink wash and gongbi painting",
    "product": "Product shot / 电商产品图 / Clean e-commerce product photo",
    "youhua": "Oil painting / 油画 / Classical oil painting",
}


@pytest.mark.parametrize(
    "answer",
    [
        "PROMPT: tea gift box, wooden table\nNEGATIVE: blurry, text\nPRESET: guofeng",
        "Sure! Here it is:\n**Prompt:** tea gift box, wooden table\n"
        "**Negative prompt:** blurry, text\n**Preset:** guofeng",
        "提示词：tea gift box, wooden table\n反向提示词：blurry, text\n风格：guofeng",
        '```json\n{"prompt": "tea gift box, wooden table", "negative_prompt": "blurry, text",'
        ' "preset": "guofeng"}\n```',
        "Prompt:\ntea gift box, wooden table\nNegative:\nblurry, text\nPreset: guofeng (ink wash suits tea)",
    ],
)
def test_answers_in_every_shape_parse_to_the_same_fields(answer: str) -> None:
    got = parse_answer(answer)
    assert got["prompt"] == "tea gift box, wooden table" and got["negative_prompt"] == "blurry, text"
    assert pick_preset(got["preset"], "茶叶礼盒", OFFERED) == "guofeng"


def test_an_unlabelled_answer_is_the_prompt() -> None:
    assert parse_answer("tea gift box, soft light\n\nThis prompt shows...") == {"prompt": "tea gift box, soft light"}


def test_a_preset_that_is_not_installed_falls_back_to_what_the_idea_names() -> None:
    assert pick_preset("cyberpunk", "油画风格的茶叶礼盒", OFFERED) == "youhua"
    assert pick_preset(None, "a Product shot of tea", OFFERED) == "product"
    assert pick_preset("none", "茶叶礼盒", OFFERED) is None


def test_prompts_are_tidied_to_one_comma_separated_line() -> None:
    assert tidy_prompt(" tea box ,, wooden table,\nsoft light. ") == "tea box, wooden table, soft light"


@pytest.fixture
def z(tiny_llm_app: Zhike) -> Zhike:
    return tiny_llm_app


def test_the_job_gives_an_english_prompt_a_negative_and_an_installed_preset_or_none(z: Zhike) -> None:
    row = run(z, "prompt_expand", {"idea": "国风茶叶礼盒，桌上有茶具", "max_tokens": 48})
    installed = {p.id for p in z.presets.list()}
    assert set(row.params["presets"]) == installed and row.params["llm"] == "tiny-qwen"
    r = row.result
    assert r["prompt"] and r["negative_prompt"] and r["preset"] in installed | {None}
    # the idea names 国风: whatever the noise model said, that installed style is the suggestion
    assert r["preset"] == "guofeng"
    assert r["data"] == {
        "prompt": r["prompt"],
        "negative_prompt": r["negative_prompt"],
        "preset": "guofeng",
        "idea": row.params["idea"],
    }
    asset = z.assets.get(r["asset_id"], owner_id="u1")
    assert asset.mime == "text/markdown" and r["prompt"] in z.assets.read_bytes(asset).decode()
    assert DEFAULT_NEGATIVE  # used when the model gives none


def test_the_idea_is_screened_at_submission(z: Zhike) -> None:
    from zhike.core.errors import ContentRefused

    with pytest.raises(ContentRefused) as e:
        z.submit("prompt_expand", {"idea": "假身份证 样张"}, "u1")
    assert e.value.field == "params.idea"
