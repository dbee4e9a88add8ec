"""Subtitles without models: tokens, Chinese line-breaking rules per aspect, cue timing limits, a known script aligned
onto ASR-like words (its exact characters, the heard words' times), and SRT/VTT/ASS read back by ffmpeg."""

from __future__ import annotations

import re
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from zhike.subtitles import LAYOUTS, make_cues, write
from zhike.subtitles.align import align_lines, align_script, heard_share
from zhike.subtitles.cues import NO_LINE_END, NO_LINE_START, Cue, Token, Word, build_cues, line_ok, tokenize, width

SCRIPT = (
    "今天给大家推荐一款“爆款”保温杯，只要¥99.9！它能保温十二个小时，容量500毫升，适合上班族、学生和户外运动的"
    "朋友们使用。杯身采用316不锈钢（食品级），不生锈、无异味；杯盖一键弹开，单手就能喝水。"
    "现在下单还送《保温杯清洗指南》和杯套！Buy the iPhone 15 Pro case, now 20% off. 赶紧下单吧！"
)


def clocked(text: str, per: float = 0.25) -> list[Token]:
    """Tokens of `text` timed evenly, as if spoken at `per` seconds a token."""
    return [replace(t, start=i * per, end=i * per + per * 0.8) for i, t in enumerate(tokenize(text))]


def bare(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_tokens_keep_the_text_and_latin_words_whole() -> None:
    tokens = tokenize(SCRIPT)
    assert "".join(t.text for t in tokens) == SCRIPT
    texts = [t.text.strip() for t in tokens]
    assert "¥99.9！" in texts and "iPhone" in texts and "20%" in texts and "“爆" in texts and "款”" in texts
    assert "（食" in texts and "级），" in texts and "《保" in texts
    # line breaks of a script are no text; spaces between Latin words are
    assert "".join(t.text for t in tokenize("第一句。\n第二句 OK go")) == "第一句。第二句 OK go"


@pytest.mark.parametrize("aspect", ["9:16", "16:9", "1:1"])
def test_lines_follow_chinese_punctuation_rules_and_fit_the_frame(aspect: str) -> None:
    layout = LAYOUTS[aspect]
    cues = build_cues(clocked(SCRIPT), layout)
    assert bare("".join(c.text for c in cues)) == bare(SCRIPT)  # every character, once, in order
    for cue in cues:
        assert 1 <= len(cue.lines) <= 2
        for line in cue.lines:
            assert width(line) <= layout.max_units, line
            assert line_ok(line), line
            assert line[0] not in NO_LINE_START and line[-1] not in NO_LINE_END
        assert not re.search(r"[A-Za-z0-9]\n[A-Za-z0-9]", cue.text)  # no word or number cut in two
        assert not re.search(r"[。！？!?](?!$)", cue.text)  # a sentence mark ends its cue
    if aspect == "16:9":  # the wider frame needs fewer lines for the same words
        narrow = build_cues(clocked(SCRIPT), LAYOUTS["9:16"])
        assert sum(len(c.lines) for c in cues) < sum(len(c.lines) for c in narrow)


def test_a_closing_mark_never_starts_a_line_where_the_width_would_put_it() -> None:
    # 14 characters fill a 9:16 line exactly; cutting at the width would start line two with "，" and end a line
    # with "《": the marks stay with their characters.
    text = "一二三四五六七八九十甲乙丙丁，戊己庚辛壬癸子丑寅卯辰《巳午》未申。"
    cues = build_cues(clocked(text, per=0.1), LAYOUTS["9:16"])
    lines = [line for c in cues for line in c.lines]
    assert all(line_ok(line) for line in lines), lines
    assert any(line.endswith("丁，") for line in lines)


def test_cue_duration_limits_and_pauses() -> None:
    layout = LAYOUTS["16:9"]
    # slow speech: 1 s a character; no cue lasts longer than max_duration (6 s)
    slow = build_cues(clocked("今天天气很好我们一起去公园散步吧", per=1.0), layout)
    assert len(slow) >= 3 and all(c.end - c.start <= layout.max_duration + 1e-9 for c in slow)
    # a short cue is held for min_duration where the next one leaves room, never over the next one
    toks = [Token("好", "好", 0.0, 0.2), Token("的。", "的", 0.2, 0.4), Token("走", "走", 3.0, 3.3)]
    short = build_cues(toks, layout)
    assert [c.text for c in short] == ["好的。", "走"]
    assert short[0].end == pytest.approx(layout.min_duration) and short[1].end >= 3.0 + layout.min_duration - 1e-9
    # a pause ends a cue even without punctuation
    paused = [Token("一", "一", 0.0, 0.3), Token("二", "二", 0.3, 0.6), Token("三", "三", 2.0, 2.3)]
    assert [c.text for c in build_cues(paused, layout)] == ["一二", "三"]
    # cues never overlap and keep their order
    cues = build_cues(clocked(SCRIPT), LAYOUTS["9:16"])
    assert all(a.end <= b.start + 1e-9 and a.start < a.end for a, b in zip(cues, cues[1:], strict=False))


# -- a known script aligned onto what an ASR heard ----------------------------------------------------------------
SPOKEN = "今天给大家推荐一款爆款保温杯只要九十九点九元它能保温十二个小时"
SCRIPT_SHORT = "今天给大家推荐一款“爆款”保温杯，只要¥99.9！它能保温十二个小时。"


def asr_like() -> list[Word]:
    """Words as Whisper gives them for SCRIPT_SHORT read aloud, with its kind of errors: 保温 heard as 宝温, the
    price as words, 爆款 missed, a filler 嗯 inserted, and a pause between the sentences."""
    words = [
        ("今天", 0.10, 0.42),
        ("给", 0.42, 0.55),
        ("大家", 0.55, 0.91),
        ("推荐", 0.91, 1.30),
        ("一款", 1.30, 1.62),
        ("嗯", 1.62, 1.80),
        ("宝温杯", 2.10, 2.62),
        ("只要", 2.70, 2.98),
        ("九十九点九元", 2.98, 4.05),
        ("它能", 4.80, 5.06),
        ("保温", 5.06, 5.40),
        ("十二个", 5.40, 5.85),
        ("小时", 5.85, 6.30),
    ]
    return [Word(t, s, e) for t, s, e in words]


def word_time(words: list[Word], text: str, k: int = 0) -> tuple[float, float]:
    """The times of character k of the word `text` (a word's time spread over its characters)."""
    w = next(w for w in words if w.text == text)
    step = (w.end - w.start) / len(text)
    return w.start + k * step, w.start + (k + 1) * step


def test_aligned_cues_carry_the_scripts_characters_at_the_heard_times() -> None:
    words = asr_like()
    cues = make_cues(words, aspect="9:16", script=SCRIPT_SHORT)
    assert "".join(c.text.replace("\n", "") for c in cues) == SCRIPT_SHORT  # not 宝温, not 九十九点九元
    assert "宝" not in "".join(c.text for c in cues) and "嗯" not in "".join(c.text for c in cues)
    assert cues[0].start == pytest.approx(0.10, abs=0.2) and cues[0].end == pytest.approx(4.05, abs=0.2)
    assert cues[1].start == pytest.approx(4.80, abs=0.2) and cues[1].end == pytest.approx(6.30, abs=0.2)
    timed = {t.text: t for t in align_script(SCRIPT_SHORT, words)}
    for script_tok, heard, k in (("给", "给", 0), ("推", "推荐", 0), ("能", "它能", 1), ("小", "小时", 0)):
        start, end = word_time(words, heard, k)
        assert timed[script_tok].start == pytest.approx(start, abs=0.2)
        assert timed[script_tok].end == pytest.approx(end, abs=0.2)
    # heard differently: the script's characters share the time of what was heard instead
    price = timed["¥99.9！"]
    assert price.start == pytest.approx(2.98, abs=0.2) and price.end == pytest.approx(4.05, abs=0.2)
    # not heard at all (爆款): between its neighbours, in order
    ordered = align_script(SCRIPT_SHORT, words)
    assert all(a.start <= b.start + 1e-9 for a, b in zip(ordered, ordered[1:], strict=False))
    assert heard_share(SCRIPT_SHORT, words) > 0.7 and heard_share("完全不同的一段文字内容", words) < 0.3


def test_without_a_script_the_cues_carry_what_was_heard() -> None:
    words = asr_like()
    cues = make_cues(words, aspect="16:9")
    assert "".join(c.text for c in cues) == "".join(w.text for w in words)
    assert [round(c.start, 2) for c in cues] == [0.10, 4.80]  # split at the pause
    english = [Word(" Order", 0.0, 0.3), Word(" today,", 0.3, 0.7), Word(" save", 1.0, 1.3), Word(" 20%.", 1.3, 1.9)]
    assert [c.text for c in make_cues(english, aspect="9:16")] == ["Order today, save 20%."]
    with pytest.raises(ValueError, match="no words"):
        make_cues([], script="有文案")


def test_lyrics_lines_are_timed_line_by_line() -> None:
    lines = ["今天给大家推荐一款", "“爆款”保温杯，只要¥99.9！", "它能保温十二个小时。"]
    timed = align_lines(lines, asr_like())
    assert ["".join(t.text for t in line) for line in timed] == lines
    assert timed[0][0].start == pytest.approx(0.10, abs=0.2) and timed[1][-1].end == pytest.approx(4.05, abs=0.2)
    assert timed[2][0].start == pytest.approx(4.80, abs=0.2) and timed[2][-1].end == pytest.approx(6.30, abs=0.2)


def test_english_script_alignment_keeps_its_spelling() -> None:
    heard = [Word(" Buy", 0.0, 0.2), Word(" the", 0.2, 0.3), Word(" I", 0.3, 0.5), Word(" phone", 0.5, 0.8)]
    heard += [Word(" 15", 0.8, 1.2), Word(" now.", 1.2, 1.5)]
    cues = make_cues(heard, aspect="16:9", script="Buy the iPhone 15 now.")
    assert [c.text for c in cues] == ["Buy the iPhone 15 now."]
    assert cues[0].start == pytest.approx(0.0) and cues[0].end == pytest.approx(1.5)


# -- writers, read back by ffmpeg --------------------------------------------------------------------------------
def ffmpeg_srt(path: Path) -> list[tuple[float, float, str]]:
    """The cues ffmpeg reads from a subtitle file (converted to SRT by its own demuxer and decoder)."""
    out = subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", str(path), "-f", "srt", "-"],
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout.decode()
    cues = []
    for block in out.strip().split("\n\n"):
        lines = block.splitlines()
        a, b = (_secs(t) for t in lines[1].split(" --> "))
        cues.append((a, b, "\n".join(lines[2:])))
    return cues


def _secs(stamp: str) -> float:
    h, m, s = stamp.strip().replace(",", ".").split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


@pytest.mark.parametrize("fmt", ["srt", "vtt", "ass"])
def test_written_files_read_back_with_the_same_cues(tmp_path: Path, fmt: str) -> None:
    cues = make_cues(asr_like(), aspect="9:16", script=SCRIPT_SHORT)
    # hours, and characters that are markup in SRT/VTT (<b>) or ASS ({\\b1}) shown as text
    cues.append(Cue(3725.5, 3727.25, ("一小时后 {\\b1}<b>not a tag</b> & co", "第二行")))
    path = tmp_path / f"x.{fmt}"
    path.write_text(write(cues, fmt, aspect="9:16"), encoding="utf-8")
    got = ffmpeg_srt(path)
    assert len(got) == len(cues)
    tol = 0.011 if fmt == "ass" else 0.0015  # ASS counts centiseconds
    for (start, end, text), cue in zip(got, cues, strict=True):
        assert start == pytest.approx(cue.start, abs=tol) and end == pytest.approx(cue.end, abs=tol)
        shown = re.sub(r"<[^>]+>", "", text)  # ffmpeg's SRT writer adds <font> tags for ASS styles
        # markup characters are written as their full-width look-alikes, so no player reads them as tags
        shown = shown.translate(str.maketrans("＼｛｝＜＞", "\\{}<>"))
        assert shown == cue.text


@pytest.mark.parametrize("style", ["douyin", "xiaohongshu"])
def test_ass_styles_burn_in_with_the_cjk_font(tmp_path: Path, embedded_dir: Path, style: str) -> None:
    ass = tmp_path / "x.ass"
    ass.write_text(write([Cue(0.0, 2.0, ("今天推荐保温杯",))], "ass", aspect="9:16", style=style), encoding="utf-8")
    assert "Source Han Sans SC" in ass.read_text() and "PlayResX: 1080\nPlayResY: 1920" in ass.read_text()
    fonts = embedded_dir / "source-han-sans-sc"
    raw = subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "color=c=0x3060a0:s=540x960:d=1"]
        + ["-vf", f"subtitles={ass}:fontsdir={fonts}", "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    frame = np.frombuffer(raw, np.uint8).reshape(960, 540, 3).astype(int)
    r, g, b = frame[..., 0], frame[..., 1], frame[..., 2]
    yellow = (r > 200) & (g > 200) & (b < 90)
    white = (r > 220) & (g > 220) & (b > 220)
    text_rows = np.nonzero((yellow | white).any(axis=1))[0]
    assert text_rows.size and text_rows.min() > 960 * 0.6  # drawn in the lower part, above the bottom margin
    if style == "douyin":
        assert yellow.sum() > 500 and white.sum() < 50
        dark = (r + g + b) < 60  # the black stroke around the yellow glyphs
        assert dark[text_rows.min() : text_rows.max() + 1].sum() > 300
    else:
        assert white.sum() > 200 and yellow.sum() < 50
