"""One language per message, on every page: the walk signs in, follows every link of the nav it finds (so pages
added later are walked too) in Chinese and then in English, and provokes error states (a text file uploaded as an
image; an ID photo from a small portrait, which warns). In Chinese no visible text has a run of three or more
English words outside a short list (brand and format names, units, user data); in English no visible text has
Chinese outside user data. Real server, real Chromium."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Page
from skimage import data as skdata

from tests.helpers.server import Server, server_fixture
from tests.web.conftest import GENERATION_MS, PASSWORD, expect, login_client, open_studio, shot, sign_in

# Words that are the same in both languages: names of brands, formats, standards and units; the test's user data.
_SAME_IN_BOTH = (
    "zhike api png jpeg jpg webp gif bmp heic heif avif tiff tif svg pdf csv xlsx json zip utf-8 gbk url http https",
    "lora sd 1.5 sdxl xl controlnet isnet isnet-medium isnet-small real-esrgan realesrgan esrgan c2pa tc260 xmp",
    "hugging face huggingface safetensors diffusers onnx openai webui a1111 comfyui civitai ai gpu cpu cuda",
    "dpm++ sde karras euler a ddim ddpm heun lms pndm unipc",  # sampler names, as every SD tool spells them
    "px mb kb gb mp dpi x ok id alice bob root shop",
)
ALLOWED = {word for line in _SAME_IN_BOTH for word in line.split()}
USER_DATA = ["咖啡杯", "宇航员"]  # names of this test's uploads: shown as the user typed them
CJK = re.compile(r"[\u3400-\u9fff\u3000-\u303f\uff01-\uff5e]")
# A run of English words: letters (with ' . - +), separated by spaces or light punctuation.
RUN = re.compile(r"[A-Za-z][\w'’.+-]*(?:[ ,:;/()\"“”-]+[A-Za-z][\w'’.+-]*){2,}")
WORD = re.compile(r"[A-Za-z][\w'’.+-]*")

# The visible text of the page, one entry per text node (plus placeholders and select options); code samples,
# the language switch (it names the other language) and the user's own name are not the page's words.
VISIBLE_TEXT = """() => {
  const skip = "script, style, code, pre, kbd, samp, noscript, #lang, #whoami, .brand";
  const seen = (el) => el.getClientRects().length && getComputedStyle(el).visibility !== "hidden";
  const out = [];
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walk.nextNode()) {
    const el = walk.currentNode.parentElement;
    const text = walk.currentNode.textContent.trim();
    if (text && el && !el.closest(skip) && seen(el)) out.push(text);
  }
  for (const el of document.querySelectorAll("input[placeholder], textarea[placeholder]")) {
    if (seen(el) && el.placeholder) out.push(el.placeholder);
  }
  for (const sel of document.querySelectorAll("select")) {
    if (seen(sel)) for (const o of sel.options) out.push(o.text.trim());
  }
  return out.filter(Boolean);
}"""


def mixed(texts: list[str], lang: str) -> list[str]:
    """The texts that show the other language."""
    bad = []
    for text in texts:
        plain = text
        for name in USER_DATA:
            plain = plain.replace(name, " ")
        if lang == "en":
            if CJK.search(plain):
                bad.append(text)
            continue
        for run in RUN.finditer(plain):
            words = [w for w in WORD.findall(run[0]) if w.lower().strip(".") not in ALLOWED and not w[0].isdigit()]
            if len(words) >= 3:
                bad.append(text)
                break
    return bad


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tiny_sd15: Path
) -> Iterator[Server]:
    """A server with the tiny model and the embedded weights (cutout, ID photo)."""
    embedded = Path(os.environ["ZHIKE_EMBEDDED_DIR"])
    yield from server_fixture(request, tmp_path_factory.mktemp("web-lang"), tiny_sd15, embedded_dir=str(embedded))


@pytest.fixture(scope="module")
def alice(server: Server, users: dict[str, str]) -> Iterator[httpx.Client]:
    c = login_client(server, "alice")
    yield c
    c.close()


def upload(client: httpx.Client, img: Image.Image, name: str) -> str:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    r = client.post("/api/v1/assets", files={"file": (name, buf.getvalue(), "image/jpeg")})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def settle(page: Page) -> None:
    """The page has drawn what it loads (its requests done), so its words are all there."""
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(300)


def set_language(page: Page, lang: str) -> None:
    want = "English" if lang == "zh" else "中文"  # the switch names the other language
    if page.locator("#lang").inner_text().strip() != want:
        page.click("#lang")
    expect(page.locator("#lang")).to_have_text(want)


def walk(page: Page, server: Server, lang: str) -> dict[str, list[str]]:
    """Every nav page's mixed texts, by route."""
    routes = page.eval_on_selector_all(
        "#nav a[href^='#/']", "els => [...new Set(els.map(a => a.getAttribute('href')))]"
    )
    assert len(routes) >= 8, routes  # the nav was found
    found: dict[str, list[str]] = {}
    for route in routes:
        page.goto(f"{server.base_url}/?test=1{route}")
        settle(page)
        bad = mixed(page.evaluate(VISIBLE_TEXT), lang)
        if bad:
            found[route] = bad
            shot(page, f"lang-walk-{lang}-{route.strip('#/').replace('/', '-') or 'home'}")
    return found


def test_every_page_and_error_speaks_one_language(
    server: Server, alice: httpx.Client, new_context: Any, tmp_path: Path
) -> None:
    upload(alice, Image.fromarray(skdata.coffee()).resize((300, 225)), "咖啡杯.jpg")
    portrait = upload(alice, Image.fromarray(skdata.astronaut()), "宇航员.jpg")  # 512 px: 2-inch photos enlarge
    not_image = tmp_path / "notes.png"
    not_image.write_text("this is a text file, not an image\n" * 20)

    page = open_studio(new_context(locale="zh-CN"), server)
    sign_in(page, "alice", PASSWORD)
    expect(page.locator("#nav")).to_be_visible()
    problems: dict[str, Any] = {}
    for lang in ("zh", "en"):
        set_language(page, lang)
        problems.update({f"{lang} {route}": texts for route, texts in walk(page, server, lang).items()})

        # A text file uploaded as an image: the error is a sentence in this language.
        page.goto(f"{server.base_url}/?test=1#/edit")
        settle(page)
        page.set_input_files("#edit-upload", str(not_image))
        error = page.locator("#edit-error")
        expect(error).to_be_visible()
        expect(error).to_contain_text("不是可以读取的图片" if lang == "zh" else "not an image Zhike can read")
        if mixed([error.inner_text()], lang):
            problems[f"{lang} upload error"] = [error.inner_text()]

        # An ID photo that warns: the warnings are said in this language too.
        page.goto(f"{server.base_url}/?test=1#/tool/id_photo?asset={portrait}")
        settle(page)
        page.select_option("#tf-size", "2inch")
        page.click("#tool-run")
        expect(page.locator("#tool-progress")).to_have_attribute("data-state", "succeeded", timeout=GENERATION_MS)
        status = page.locator("#tool-progress-text")
        expect(status).to_contain_text("照片分辨率偏低" if lang == "zh" else "The photo is small")
        shot(page, f"lang-walk-{lang}-id-photo-warning")
        if mixed([status.inner_text()], lang):
            problems[f"{lang} id photo warning"] = [status.inner_text()]
    assert problems == {}
    assert page.js_errors == []  # type: ignore[attr-defined]
