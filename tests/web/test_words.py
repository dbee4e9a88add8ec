"""The 文案 and 知识库 pages as a merchant uses them: a real `zhike serve` with the tiny random Qwen2 (real tokenizer,
random words) as its default language model, real Chromium.

文案: product copy written from the page streams its words into the page while the job runs, then shows the result
(title measured against 淘宝's 30-character limit, selling points) with exports that download a real .docx and a
Markdown file carrying the AI notice; Remix puts the facts back in the form (a selling point with a Chinese comma
stays one point); #/tool/<words op> opens its tab; the library finds the copy by its product's name.
知识库: a knowledge base is created, two files are dropped at once (a policy document in GBK and a binary file named
.txt: one is added, the other says why not, in the page's language), and a question from the document is answered
with its sources under it; one the documents do not cover is marked "not in the documents". Both pages are shot in
Chinese and English."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from tests.helpers.server import Server, create_user, server_fixture
from tests.helpers.tiny_llm import make_tiny_qwen2
from tests.web.conftest import PASSWORD, expect, login_client, open_studio, shot, sign_in

KB_DOC = Path(__file__).resolve().parent.parent / "fixtures" / "kb" / "after_sales_policy.txt"
ANSWER_MS = 120_000  # the first answer loads the model and the embedder in the server process


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tiny_sd15: Path
) -> Iterator[Server]:
    """A server whose default language model is the tiny Qwen2, registered the way an admin adds one; short answers
    (its words are random: only how they are shown is tested)."""
    llm = make_tiny_qwen2(tmp_path_factory.mktemp("llm"), gguf=False)
    for srv in server_fixture(
        request, tmp_path_factory.mktemp("web-words"), tiny_sd15, llm_default="tiny-qwen", kb_answer_tokens=24
    ):
        create_user(srv.home, "root", PASSWORD, admin=True)
        with closing(login_client(srv, "root")) as admin:
            r = admin.post("/api/v1/models", json={"source": str(llm), "name": "tiny-qwen"})
            assert r.status_code == 201, r.text
            assert r.json()["kind"] == "llm"
        yield srv


# Every text #words-live showed while the job was not done yet (the words as they stream in).
RECORD_LIVE = """() => {
  window.liveSeen = [];
  const live = document.querySelector('#words-live');
  new MutationObserver(() => {
    const state = document.querySelector('#words-status').dataset.state;
    if (state === 'running' && !live.classList.contains('waiting')) window.liveSeen.push(live.textContent);
  }).observe(live, {childList: true, characterData: true, subtree: true});
}"""


def one_line_nav(page: Page) -> bool:
    return page.evaluate("() => document.querySelector('.topbar').getBoundingClientRect().height < 70")


def test_copy_streams_and_exports_and_the_knowledge_base_answers_with_sources(
    server: Server, users: dict[str, str], new_context: Any, tmp_path: Path
) -> None:
    page = open_studio(new_context(locale="zh-CN", viewport={"width": 1280, "height": 900}), server)
    sign_in(page, "alice", PASSWORD)
    expect(page.locator("#nav")).to_be_visible()
    page.goto(f"{server.base_url}/?test=1#/words/product_copy")
    expect(page.locator("#words")).to_have_attribute("data-loaded", "true")
    expect(page.locator("#words-tabs [data-op=product_copy]")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#words-no-llm")).to_have_attribute("data-checked", "true")
    expect(page.locator("#words-no-llm")).to_be_hidden()  # the tiny model is installed
    assert one_line_nav(page)

    # The form is the op's Params: name, price, the LLM select listing the installed model.
    page.fill("#wf-name", "青花瓷茶杯")
    page.fill("#wf-price", "89")
    # A list of free text is one item per line: the Chinese comma inside a selling point stays in it.
    page.fill("#wf-selling_points", "杯身轻薄，握感好\n容量 350 毫升")
    page.click("#words-form details.sf-more summary")
    expect(page.locator("#wf-llm")).to_have_attribute("data-loaded", "true")
    assert "tiny-qwen" in page.locator("#wf-llm option").all_inner_texts()[0]  # the default, named
    page.fill("#wf-max_tokens", "48")
    page.evaluate(RECORD_LIVE)
    page.click("#words-run")
    result = page.locator("#words-result .text-result")
    expect(result).to_be_visible(timeout=ANSWER_MS)
    seen = page.evaluate("() => window.liveSeen")
    assert any(s.strip() for s in seen), "no words were shown while the job ran"
    expect(page.locator("#words-status")).to_have_attribute("data-state", "succeeded")

    # The title measured as 淘宝 counts it (60, a Chinese character counting 2); the Markdown drawn as elements.
    length = page.locator("#words-title-length")
    expect(length).to_have_attribute("data-limit", "60")
    assert 0 < int(length.get_attribute("data-n") or "0") <= 60
    expect(length).to_contain_text("汉字算 2")
    expect(page.locator("#words-body h3").first).to_be_visible()  # "# title": a heading, not "#" shown as text
    expect(page.locator("#words-body table.md-table")).to_contain_text("89")  # the spec table, as a table
    shot(page, "words-result-zh")

    # Exports: a real DOCX (a ZIP) and Markdown with the AI notice where it was asked for.
    page.select_option("#words-export-format", "docx")
    with page.expect_download() as dl:
        page.click("#words-export")
    assert dl.value.suggested_filename.endswith(".docx")
    docx = tmp_path / "copy.docx"
    dl.value.save_as(docx)
    assert docx.read_bytes()[:2] == b"PK"
    page.select_option("#words-export-format", "md")
    page.select_option("#words-export-notice", "start")
    with page.expect_download() as dl:
        page.click("#words-export")
    assert dl.value.suggested_filename.endswith(".md")
    md = tmp_path / "copy.md"
    dl.value.save_as(md)
    assert "人工智能生成" in md.read_text(encoding="utf-8")[:400]

    page.click("#lang")
    expect(page.locator("#words-run")).to_have_text("Write the listing")
    shot(page, "words-result-en")
    assert one_line_nav(page)
    page.click("#lang")

    aid = page.locator("#words-result .text-result").get_attribute("data-asset-id")
    params = page.evaluate("async (id) => (await (await fetch(`/api/v1/assets/${id}`)).json()).params", aid)
    assert params["selling_points"] == ["杯身轻薄，握感好", "容量 350 毫升"]

    # Remix: the facts back in the form, from the asset's parameters.
    page.click("#words-remix")
    expect(page.locator("#wf-name")).to_have_value("青花瓷茶杯")
    expect(page.locator("#wf-price")).to_have_value("89")
    expect(page.locator("#wf-selling_points")).to_have_value("杯身轻薄，握感好\n容量 350 毫升")

    # A words op opened as a generic tool goes to its tab here (a text result is no picture).
    page.goto(f"{server.base_url}/?test=1#/tool/translate")
    expect(page.locator("#words")).to_have_attribute("data-op", "translate")
    assert page.url.endswith("#/words/translate")

    # The library finds the copy by its product's name when it shows text, and its search box says so.
    page.goto(f"{server.base_url}/?test=1#/library?kind=text")
    expect(page.locator("#library-search")).to_have_attribute("placeholder", "搜索商品名称或文案要求，例如：保温杯")
    page.fill("#library-search", "青花瓷")
    expect(page.locator(f"#library-grid figure[data-asset-id='{aid}']")).to_be_visible()
    page.fill("#library-search", "没有这个商品")
    expect(page.locator("#library-no-results")).to_be_visible()

    # 知识库
    page.goto(f"{server.base_url}/?test=1#/kb")
    expect(page.locator("#kb")).to_have_attribute("data-loaded", "true")
    page.fill("#kb-new-name", "店铺商品")
    page.click("#kb-create")
    expect(page.locator("#kb-main")).to_have_attribute("data-loaded", "true")
    expect(page.locator("#kb-name")).to_have_text("店铺商品")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(os.urandom(4000))
    page.set_input_files("#kb-file", [str(KB_DOC), str(binary)])
    good = page.locator(f"#kb-uploads li[data-file='{KB_DOC.name}']")
    bad = page.locator("#kb-uploads li[data-file='binary.txt']")
    expect(good).to_have_attribute("data-state", "done", timeout=ANSWER_MS)
    expect(bad).to_have_attribute("data-state", "error", timeout=ANSWER_MS)
    expect(bad).to_have_attribute("data-code", "document_not_text")
    expect(bad.locator(".kb-upload-error")).to_contain_text("不是文本文件")
    expect(page.locator("#kb-docs tr[data-doc-id]")).to_have_count(1)
    # Indexed in the background: the table follows it to 可用 (the upload row said "done" once it was ready).
    expect(page.locator("#kb-docs tr[data-doc-id]")).to_have_attribute("data-status", "ready")
    expect(page.locator("#kb-docs .kb-doc-status")).to_have_text("可用")

    # A question the documents do not cover (asked first: a short follow-up is searched with the one before it).
    page.fill("#kb-question", "你们可以开增值税专用发票吗")
    page.click("#kb-ask")
    unknown = page.locator(".kb-answer").first
    expect(unknown).to_have_attribute("data-answered", "false", timeout=ANSWER_MS)
    expect(unknown).to_contain_text("不知道")
    expect(unknown.locator(".kb-unknown-badge")).to_be_visible()

    page.fill("#kb-question", "下单后多久发货")
    page.click("#kb-ask")
    answer = page.locator(".kb-answer").nth(1)
    expect(answer).to_have_attribute("data-answered", "true", timeout=ANSWER_MS)
    citation = answer.locator(".kb-citation").first
    expect(citation).to_contain_text(KB_DOC.name)
    citation.locator("summary").click()
    expect(citation.locator(".kb-passage")).to_contain_text("48")
    shot(page, "kb-zh")

    # The conversation is kept on coming back; "new conversation" starts afresh.
    page.reload()
    expect(page.locator(".kb-msg")).to_have_count(4)
    page.click("#lang")
    expect(page.locator("#kb-ask")).to_have_text("Ask")
    expect(page.locator(".kb-unknown-badge")).to_have_text("Not in the documents")
    expect(page.locator("#kb-docs .kb-doc-status")).to_have_text("Ready")
    shot(page, "kb-en")
    page.click("#kb-new-chat")
    expect(page.locator(".kb-msg")).to_have_count(0)
    assert page.js_errors == []  # type: ignore[attr-defined]
