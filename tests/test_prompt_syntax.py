"""The A1111 attention syntax parses as A1111 documents it."""

from __future__ import annotations

import pytest

from zhike.core.prompt_syntax import parse_prompt_attention, plain_text


def rounded(parsed: list[tuple[str, float]]) -> list[tuple[str, float]]:
    return [(t, round(w, 4)) for t, w in parsed]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("normal text", [("normal text", 1.0)]),
        ("an (important) word", [("an ", 1.0), ("important", 1.1), (" word", 1.0)]),
        ("(unbalanced", [("unbalanced", 1.1)]),
        ("\\(literal\\]", [("(literal]", 1.0)]),
        ("(unnecessary)(parens)", [("unnecessaryparens", 1.1)]),
        (
            "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
            [
                ("a ", 1.0),
                ("house", 1.573),
                (" ", 1.1),
                ("on", 1.0),
                (" a ", 1.1),
                ("hill", 0.55),
                (", sun, ", 1.1),
                ("sky", 1.4641),
                (".", 1.1),
            ],
        ),
        (
            "国风 (水墨:1.2) 山水 BREAK 红色印章",
            [("国风 ", 1.0), ("水墨", 1.2), (" 山水", 1.0), ("BREAK", -1.0), ("红色印章", 1.0)],
        ),
        ("[blurry]", [("blurry", 0.9091)]),
    ],
)
def test_parse_prompt_attention(text: str, expected: list[tuple[str, float]]) -> None:
    assert rounded(parse_prompt_attention(text)) == expected


def test_plain_text_drops_syntax() -> None:
    assert plain_text("a (red:1.3) [apple] BREAK table") == "a red apple table"
