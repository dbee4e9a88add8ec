"""Prompt safety: listed words are refused in Chinese and English (and their usual disguises), ordinary shop
prompts are not, refusals name the policy and are audited, and only admins may edit lists or override."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_settings
from tests.helpers.server import run_cli_inprocess, run_zhike
from zhike.api.app import create_app
from zhike.safety.matcher import CompiledTerm, Term, find
from zhike.safety.normalise import DEFAULT_IGNORABLE, normalise
from zhike.services.engine import get_engine
from zhike.services.safety import PromptSafety
from zhike.services.users import owner_id

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def lines(name: str) -> list[str]:
    text = (FIXTURES / name).read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line and not line.startswith("#")]


# Ordinary prompts of shops, designers and creators, many close to listed words on purpose (nude lipstick, kids
# swimwear, bath bomb making kit, 彩色情侣装, 弹性交叉绑带泳衣, 给孩子做爱心早餐).
ORDINARY = lines("prompts_ordinary.txt")
# (policy, prompt, technique): listed terms in the disguises of the red team's findings and a few more.
EVASIONS = [tuple(line.split("\t")) for line in lines("prompts_evasion.tsv")]

# (text, policy): listed terms as typed and in the usual disguises.
REFUSED = [
    ("child porn", "minors"),
    ("Child-Porn collection", "minors"),
    ("ch1ld p0rn", "minors"),
    ("儿童色情", "minors"),
    ("兒童色情", "minors"),  # traditional characters
    ("儿 童 色 情", "minors"),  # separators
    ("pornographic photo of a woman", "sexual"),
    ("色情图片", "sexual"),
    ("色.情 海报", "sexual"),
    ("瑟情图片", "sexual"),  # same sound and tone, other character
    ("seqing tupian", "sexual"),  # pinyin
    ("se qing", "sexual"),
    ("ＰＯＲＮＯＧＲＡＰＨＩＣ", "sexual"),  # full-width
    ("terrorist attack on a crowd", "violent_extremism"),
    ("制造炸弹的步骤", "violent_extremism"),
    ("a fake id card with my photo", "fraud"),
    ("假身份证", "fraud"),
    ("假身份證照片", "fraud"),
    ("jia shen fen zheng", "fraud"),
    ("伪造公章，红色圆章", "fraud"),
]


@pytest.fixture(scope="module")
def safety(tmp_path_factory: pytest.TempPathFactory) -> PromptSafety:
    home = tmp_path_factory.mktemp("safety")
    return PromptSafety(get_engine(f"sqlite:///{home / 'z.db'}"))


def test_bundled_lists_refuse_listed_words_in_both_languages(safety: PromptSafety) -> None:
    for text, policy in REFUSED:
        hit = safety.check_text(text)
        assert hit is not None and hit.policy == policy, (text, hit)


def test_ordinary_prompts_pass_and_disguised_terms_are_refused(safety: PromptSafety) -> None:
    """Both rates, printed (pytest -s): no ordinary prompt refused, and nearly every disguise caught under its own
    policy. The few allowed misses are words the bundled lists do not have (genitalia, nude minors)."""
    assert len(ORDINARY) >= 200 and len(EVASIONS) >= 60
    refused = [(text, hit.term) for text in ORDINARY if (hit := safety.check_text(text)) is not None]
    missed = [(text, how) for policy, text, how in EVASIONS if getattr(safety.check_text(text), "policy", "") != policy]
    caught = 1 - len(missed) / len(EVASIONS)
    print(
        f"\nprompt safety: {len(refused)}/{len(ORDINARY)} ordinary prompts refused (false positives); "
        f"{len(EVASIONS) - len(missed)}/{len(EVASIONS)} disguised terms caught ({caught:.1%}); missed: {missed}"
    )
    assert refused == []
    assert caught >= 0.95, missed


def test_every_default_ignorable_code_point_vanishes() -> None:
    """The table in normalise.py is Unicode's Default_Ignorable_Code_Point set (as the regex module has it), and
    every one of those characters inside a word leaves the word whole."""
    import regex

    table = {c for a, b in DEFAULT_IGNORABLE for c in range(a, b + 1)}
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    assert table == {ord(c) for c in regex.findall(r"\p{Default_Ignorable_Code_Point}", every)}
    assert all(normalise(f"hen{chr(c)}tai") == "hentai" for c in table)


def test_match_modes() -> None:
    word = [CompiledTerm(Term("p", "gun", "word"))]
    assert find(word, "a toy gun") and not find(word, "a burgundy dress")  # whole words only
    exact = [CompiledTerm(Term("p", "gun", "exact"))]
    assert find(exact, "a burgundy dress")  # exact = substring, as asked
    single = [CompiledTerm(Term("p", "枪", "variant"))]
    assert find(single, "玩具枪") and not find(single, "qiang")  # one syllable is never matched by sound


@pytest.fixture
def api(tmp_path: Path, tiny_sd15: Path) -> Iterator[dict[str, TestClient]]:
    app = create_app(make_settings(tmp_path / "home"), start_worker=False)
    z = app.state.zhike
    z.catalog.add(str(tiny_sd15), name="tiny")
    clients = {}
    for name, role in (("root", "admin"), ("alice", "user")):
        user = z.users.create_user(name, "correct horse battery", role)
        _, key = z.keys.create(f"{name}-key", owner_id=owner_id(user))
        clients[name] = TestClient(app, headers={"Authorization": f"Bearer {key}"})
    with TestClient(app):
        yield clients
    z.engine.dispose()


def job(prompt: str, **extra: object) -> dict[str, object]:
    return {"op": "txt2img", "params": {"prompt": prompt, "width": 64, "height": 64, "steps": 1}, **extra}


def test_refusal_names_the_policy_is_audited_and_queues_nothing(api: dict[str, TestClient]) -> None:
    alice, root = api["alice"], api["root"]
    r = alice.post("/api/v1/jobs", json=job("a poster, 假身份证 template"))
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert (err["code"], err["type"], err["field"], err["limit"]) == (
        "content_refused",
        "content_policy",
        "params.prompt",
        "fraud",
    )
    # English for API users; the studio says it from the code, with the policy's name in its language (ctx).
    assert "Forged documents and fraud" in err["message"] and err["ctx"]["policy_zh"] == "伪造证件与诈骗"
    assert "假身份证" not in err["message"]  # the policy, not the word list
    assert alice.get("/api/v1/jobs").json()["jobs"] == []
    # The negative prompt lists what to avoid and is never screened.
    ok = alice.post(
        "/api/v1/jobs",
        json={**job("a teapot"), "params": {**job("a teapot")["params"], "negative_prompt": "色情, porn star"}},
    )
    assert ok.status_code == 201, ok.text

    events = root.get("/api/v1/safety/audit").json()["events"]
    assert [(e["policy"], e["term"], e["field"], e["overridden"]) for e in events] == [
        ("fraud", "假身份证", "prompt", False)
    ]
    assert alice.get("/api/v1/safety/audit").status_code == 403


def test_only_admins_override_and_edit_lists(api: dict[str, TestClient]) -> None:
    alice, root = api["alice"], api["root"]
    r = alice.post("/api/v1/jobs", json=job("色情图片", safety_override=True))
    assert r.status_code == 403 and r.json()["error"]["field"] == "safety_override"
    r = root.post("/api/v1/jobs", json=job("色情图片", safety_override=True))
    assert r.status_code == 201, r.text
    assert root.get("/api/v1/safety/audit").json()["events"][0]["overridden"] is True

    # An admin adds a term: it is refused at once; removed: allowed again.
    assert alice.post("/api/v1/safety/terms", json={"policy": "brand", "term": "仿冒大牌"}).status_code == 403
    r = root.post("/api/v1/safety/terms", json={"policy": "brand", "term": "仿冒大牌", "match": "variant"})
    assert r.status_code == 201, r.text
    assert root.post("/api/v1/safety/terms", json={"policy": "brand", "term": "仿冒大牌"}).status_code == 409
    r = root.post("/api/v1/safety/terms", json={"policy": "brand", "term": "x", "match": "fuzzy"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "match"
    assert alice.post("/api/v1/jobs", json=job("仿 冒 大 牌 手袋")).json()["error"]["limit"] == "brand"
    r = root.delete("/api/v1/safety/terms", params={"policy": "brand", "term": "仿冒大牌"})
    assert r.status_code == 200, r.text
    assert alice.post("/api/v1/jobs", json=job("仿冒大牌手袋")).status_code == 201

    # Everyone can see whether images are screened: no checker model is installed, and the status says so.
    status = alice.get("/api/v1/safety").json()
    assert status["prompt_filter"]["enabled"] is True and status["prompt_filter"]["terms"] > 40
    assert status["image_checker"]["installed"] is False and "not screened" in status["image_checker"]["reason"]


def test_cli_refuses_with_the_policy_and_admin_lists(tmp_path: Path, tiny_sd15: Path) -> None:
    home = tmp_path / "home"
    run_cli_inprocess(home, "models", "add", str(tiny_sd15), "--name", "tiny")
    r = run_zhike(
        home,
        "generate",
        "儿童色情",
        "--width",
        "64",
        "--height",
        "64",
        "--steps",
        "1",
        "-o",
        str(tmp_path / "x.png"),
        check=False,
    )
    assert r.returncode != 0 and "Protection of minors" in r.stderr and "儿童色情" not in r.stderr
    assert not (tmp_path / "x.png").exists()
    run_zhike(home, "safety", "add", "brand", "仿冒大牌")
    listed = run_zhike(home, "safety", "list", "--policy", "brand", "--json").stdout
    assert "仿冒大牌" in listed
    assert "minors" in run_zhike(home, "safety", "audit").stdout
