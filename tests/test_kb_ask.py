"""How an answer is made from what the model wrote (services/kb_ask.py): the question's language, follow-ups,
citations, "I don't know" passed through, the prompt; and the per-owner limit. Pure functions on real text: the
API flow with documents, the embedder and a model is tests/test_kb_api.py."""

from __future__ import annotations

import pytest

from zhike.core.errors import InvalidInput, TooManyRequests
from zhike.services.kb import OwnerSlots, Passage, document_name
from zhike.services.kb_ask import (
    IDK,
    KbAnswers,
    build_messages,
    check_messages,
    check_question,
    cited,
    is_follow_up,
    language,
    says_no,
    says_unknown,
)

PASSAGES = [
    Passage(1, "d1", "thermos_spec.pdf", "第2页 · 三、保温与保冷性能", "6 小时后水温不低于 75℃，12 小时后不低于 60℃。"),
    Passage(2, "d1", "thermos_spec.pdf", "第1页 · 二、基本参数", "建议零售价：129 元"),
    Passage(3, "d2", "after_sales_policy.txt", "", "满 99 元包邮。"),
]


def test_the_answer_speaks_the_questions_language() -> None:
    assert language("保温杯能保温多久？") == "zh" and language("How long does it keep tea hot?") == "en"
    assert language("NT-500 多少钱") == "zh"  # one Chinese character is enough: the shopper reads Chinese
    assert IDK["zh"] == "不知道，请咨询人工客服" and "customer service" in IDK["en"]


def test_short_or_pointing_back_questions_are_follow_ups() -> None:
    assert is_follow_up("那它多少钱？") and is_follow_up("有黑色吗") and is_follow_up("What about its weight?")
    assert is_follow_up("这款保温杯可以放进洗碗机里面清洗吗")  # "这款": the product asked about before
    assert not is_follow_up("暖途保温杯的内胆是什么材质的，能装开水吗？")
    assert not is_follow_up("How long does the NT-500 thermos keep water hot?")


def test_citations_are_the_numbers_the_answer_uses_once_each_in_order() -> None:
    assert cited("能保温 12 小时[1]，售价 129 元[2][1]。", 3) == [1, 2]
    assert cited("见[4]和[0]，[12]", 3) == []  # only passages it was given
    assert cited("没有引用", 3) == []


def test_an_answer_lists_its_cited_passages_or_else_all_it_was_given() -> None:
    a = KbAnswers._answer("保温多久？多少钱？", "12 小时后不低于 60℃[1]，售价 129 元[2]。", PASSAGES, "zh", "m", "stop")
    assert a.answered and [(c["n"], c["document"], c["cited"]) for c in a.citations] == [
        (1, "thermos_spec.pdf", True),
        (2, "thermos_spec.pdf", True),
    ]
    assert a.citations[1]["where"] == "第1页 · 二、基本参数" and a.citations[1]["text"] == "建议零售价：129 元"
    uncited = KbAnswers._answer("多少钱", "售价 129 元。", PASSAGES, "zh", "m", "stop")
    assert uncited.answered and [(c["n"], c["cited"]) for c in uncited.citations] == [
        (1, False),
        (2, False),
        (3, False),
    ]


def test_a_model_that_does_not_know_is_passed_through_without_citations() -> None:
    for text, lang in (("抱歉，资料里没有提到，不知道，请咨询人工客服。", "zh"), ("I don't know.", "en")):
        a = KbAnswers._answer("q", text, PASSAGES, lang, "m", "stop")  # type: ignore[arg-type]
        assert (a.answer, a.answered, a.citations) == (text, False, [])
    empty = KbAnswers._answer("q", "", PASSAGES, "zh", "m", "length")
    assert (empty.answer, empty.answered) == (IDK["zh"], False)  # a model that wrote nothing knew nothing
    assert says_unknown("无法回答这个问题") and not says_unknown("可以放心使用，保修 2 年[1]")


def test_the_prompt_numbers_the_passages_after_the_earlier_turns() -> None:
    msgs = build_messages("那它多少钱？", PASSAGES[:2], [("内胆是什么材质？", "316 不锈钢[1]。")], "zh")
    assert [m.role for m in msgs] == ["system", "user", "assistant", "user"]
    assert "只根据下面编号的资料" in msgs[0].content and IDK["zh"] in msgs[0].content
    last = msgs[-1].content
    assert last.startswith("资料：\n[1] thermos_spec.pdf · 第2页") and "\n[2] thermos_spec.pdf" in last
    assert last.index("[1]") < last.index("[2]") < last.index("问题：那它多少钱？")
    english = build_messages("Price?", PASSAGES[2:], [], "en")
    assert "Cite the passages" in english[0].content and english[-1].content.endswith("Question:Price?")


def test_the_llm_check_asks_yes_or_no_and_only_a_clear_no_vetoes() -> None:
    msgs = check_messages("杯子能放洗碗机吗", ["本品不可放入洗碗机清洗。", "满 99 元包邮。"], "zh")
    assert [m.role for m in msgs] == ["system", "user"] and "只回答“是”或“否”" in msgs[0].content
    assert msgs[1].content == (
        "资料：\n- 本品不可放入洗碗机清洗。\n- 满 99 元包邮。\n\n"
        "顾客的问题：杯子能放洗碗机吗\n资料是否直接回答了这个问题？"
    )
    assert "Reply only yes or no" in check_messages("Dishwasher?", ["No."], "en")[0].content
    assert says_no("否") and says_no("不是") and says_no("No.") and says_no(" 没有")
    # "是", an English yes, or words that are neither (a model that does not follow): the answer goes on.
    assert not says_no("是") and not says_no("Yes") and not says_no("note") and not says_no("")


def test_questions_and_file_names_are_checked() -> None:
    assert check_question("  有货吗？ ") == "有货吗？"
    for bad, kind in (("   ", "string_too_short"), ("问" * 2001, "string_too_long")):
        with pytest.raises(InvalidInput) as e:
            check_question(bad)
        assert (e.value.field, e.value.kind) == ("question", kind)
    assert document_name("C:\\资料\\售后政策.txt") == "售后政策.txt" and document_name("a/b/faq.xlsx") == "faq.xlsx"
    for bad in ("", "/", "..", "x" * 201 + ".md", "a\x00.txt"):
        with pytest.raises(InvalidInput) as e:
            document_name(bad)
        assert e.value.field == "file"


def test_each_owner_holds_at_most_its_share_of_slots() -> None:
    slots = OwnerSlots(2, "questions")
    with slots.hold("shop-a"), slots.hold("shop-a"):
        with pytest.raises(TooManyRequests) as e:
            slots.acquire("shop-a")
        assert (e.value.code, e.value.limit) == ("kb_busy", 2)
        with slots.hold("shop-b"):  # another owner is not held up
            pass
    with slots.hold("shop-a"), slots.hold("shop-a"):  # given back however the block ended
        pass
