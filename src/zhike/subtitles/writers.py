"""Cues as SRT, WebVTT and ASS text. ASS carries a style preset (抖音: bold yellow with a black stroke; 小红书: clean
white with a soft shadow) and the frame size, so libass (ffmpeg's subtitles filter) burns it in as previewed."""

from __future__ import annotations

from dataclasses import dataclass

from zhike.subtitles.cues import Cue

FORMATS = {"srt": "application/x-subrip", "vtt": "text/vtt", "ass": "text/x-ass"}
# The bundled CJK font's family name (models/embedded.py source-han-sans-sc): libass finds it in the fonts folder.
CJK_FONT = "Source Han Sans SC"
FRAMES = {"9:16": (1080, 1920), "1:1": (1080, 1080), "16:9": (1920, 1080)}


@dataclass(frozen=True)
class AssStyle:
    """One ASS style line's looks. Colours are ASS's &HAABBGGRR (alpha 00 = opaque)."""

    primary: str
    outline_colour: str
    back: str
    bold: bool
    outline: float
    shadow: float
    size: float  # font size as a share of the frame's height
    margin_v: float  # bottom margin as a share of the frame's height


STYLES = {
    "douyin": AssStyle("&H0000FFFF", "&H00000000", "&H80000000", True, 4.0, 1.0, 0.034, 0.16),
    "xiaohongshu": AssStyle("&H00FFFFFF", "&H40333333", "&H64000000", False, 1.2, 2.0, 0.030, 0.12),
}


def _clock(seconds: float, sep: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


# Players read <b> tags in SRT and WebVTT and {\...} override blocks in all three formats (ASS's own, and SRT/VTT
# through libass): a script's own <, >, {, } and \ are shown as their full-width look-alikes, never as markup.
_AS_TEXT = str.maketrans({"\\": "＼", "{": "｛", "}": "｝", "<": "＜", ">": "＞"})


def _text(cue: Cue, sep: str = "\n") -> str:
    return sep.join(line.translate(_AS_TEXT) for line in cue.lines)


def to_srt(cues: list[Cue]) -> str:
    blocks = [f"{i}\n{_clock(c.start, ',')} --> {_clock(c.end, ',')}\n{_text(c)}\n" for i, c in enumerate(cues, 1)]
    return "\n".join(blocks)


def to_vtt(cues: list[Cue]) -> str:
    # A blank line would end a cue and "-->" start one: cue lines hold neither (none is empty; ">" is replaced).
    blocks = [f"{_clock(c.start, '.')} --> {_clock(c.end, '.')}\n{_text(c).replace('&', '&amp;')}\n" for c in cues]
    return "WEBVTT\n\n" + "\n".join(blocks)


def _ass_clock(seconds: float) -> str:
    cs = max(0, round(seconds * 100))
    h, cs = divmod(cs, 360_000)
    m, cs = divmod(cs, 6000)
    s, cs = divmod(cs, 100)
    return f"{h}:{m:02d}:{s:02d}.{cs:02d}"


def to_ass(cues: list[Cue], *, aspect: str = "9:16", style: str = "douyin", font: str = CJK_FONT) -> str:
    w, h = FRAMES[aspect]
    st = STYLES[style]
    size, margin = round(h * st.size), round(h * st.margin_v)
    side = round(w * 0.06)
    head = (
        "[Script Info]\nScriptType: v4.00+\n"
        f"PlayResX: {w}\nPlayResY: {h}\nWrapStyle: 2\nScaledBorderAndShadow: yes\nYCbCr Matrix: TV.709\n\n"
        "[V4+ Styles]\n"
        "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, "
        "Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, "
        "MarginR, MarginV, Encoding\n"
        f"Style: {style},{font},{size},{st.primary},&H000000FF,{st.outline_colour},{st.back},"
        f"{-1 if st.bold else 0},0,0,0,100,100,0,0,1,{st.outline:g},{st.shadow:g},2,{side},{side},{margin},1\n\n"
        "[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
    )
    events = [f"Dialogue: 0,{_ass_clock(c.start)},{_ass_clock(c.end)},{style},,0,0,0,," + _text(c, "\\N") for c in cues]
    return head + "\n".join(events) + "\n"


def write(cues: list[Cue], fmt: str, *, aspect: str = "9:16", style: str = "douyin") -> str:
    """The cues in `fmt` (srt | vtt | ass)."""
    if fmt == "srt":
        return to_srt(cues)
    if fmt == "vtt":
        return to_vtt(cues)
    return to_ass(cues, aspect=aspect, style=style)
