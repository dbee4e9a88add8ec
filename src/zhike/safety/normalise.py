"""Undo the ways a word is disguised before matching: compatibility forms, invisible characters, accents,
look-alike letters from other scripts, traditional characters, letters split by separators and leetspeak."""

from __future__ import annotations

import re
import unicodedata

import opencc

# Unicode's Default_Ignorable_Code_Point property (DerivedCoreProperties.txt; the same set as the `regex` module's
# \p{Default_Ignorable_Code_Point}, which tests/test_safety.py checks): characters that render as nothing, such as
# soft hyphen, ZWSP/ZWNJ/ZWJ, bidi controls, word joiner and invisible operators, variation selectors, Hangul
# fillers, Mongolian free variation selectors and vowel separator, and tag characters.
DEFAULT_IGNORABLE = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)
_IGNORABLE = re.compile("[" + "".join(f"{chr(a)}-{chr(b)}" for a, b in DEFAULT_IGNORABLE) + "]")

# Letters of other scripts that look like Latin ones, after UTS #39 confusables.txt (the subset that passes for
# Latin in a prompt: Cyrillic, Greek, Armenian, Cherokee, small capitals and Latin variants). Upper case is mapped
# before case folding because Greek Η/η or Ν/ν look like different Latin letters.
_LOOK_ALIKES = {
    "Latin": ("ƒɑɡıɩʟɪɴʀʏǀȷ", "fagiilinryli"),
    "small capitals": ("ᴀʙᴄᴅᴇꜰɢʜᴊᴋᴍᴏᴘꜱᴛᴜᴠᴡᴢ", "abcdefghjkmopstuvwz"),
    "Cyrillic": ("АВЕЅІЈКМНОРСТХУӀаеѕіјоԁһрсуԛԝхьвкмнтпгӏ", "ABESIJKMHOPCTXYlaesijodhpcyqwxbbkmhtnrl"),
    "Greek": ("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧαβεικνορτυχγωϲημ", "ABEZHIKMNOPTYXabeikvoptuxywcnu"),
    "Armenian": ("ագհոսօզ", "wghnuoq"),
    "Cherokee": ("ᎪᏴᏟᎠᎬᏀᎻᎫᏦᏞᎷᏃᏢᏚᎢᏙᏔ", "ABCDEGHJKLMZPSTVW"),
}
_CONFUSABLES = str.maketrans(
    {a: b for src, dst in _LOOK_ALIKES.values() for a, b in zip(src, dst, strict=True)}
    | {chr(0x1F1E6 + i): chr(ord("a") + i) for i in range(26)}  # regional indicators 🇦..🇿
)
_T2S = opencc.OpenCC("t2s")
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")

# Second pass, for Latin words: leetspeak (1 is read both as i and as l), and separators between letters.
_LEET = {"0": "o", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i", "+": "t"}
LEET_I = str.maketrans(_LEET | {"1": "i", "|": "i"})
LEET_L = str.maketrans(_LEET | {"1": "l", "|": "l"})
# A run of three or more single letters or digits split by separators: "p o r n", "p.o.r.n".
_SPELLED = re.compile(r"(?<![a-z0-9])[a-z0-9](?:[\s._\-·•/\\|~*+]{1,3}[a-z0-9](?![a-z0-9])){2,}")
# Punctuation inside a word ("por.n", "bomb-making", "p_orn"): the halves are one word.
_INNER = re.compile(r"(?<=[a-z0-9])[._\-·•'’`~^|+*]+(?=[a-z0-9])")
_MASKED = re.compile(r"(?<=[a-z])\*(?=[a-z])")  # "p*rn": a letter hidden by an asterisk


def normalise(text: str) -> str:
    """NFKC (full-width, circled and mathematical letters), no default-ignorable code points, no accents or other
    combining marks, look-alike letters as Latin, case folded, simplified Chinese."""
    text = _IGNORABLE.sub("", unicodedata.normalize("NFKC", text))
    if not text.isascii():
        bare = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
        text = unicodedata.normalize("NFC", bare).translate(_CONFUSABLES)
    text = text.casefold()
    return _T2S.convert(text) if CJK.search(text) else text


def squash(text: str) -> str:
    """Join letters split by separators: spelled-out runs first, then punctuation inside words."""
    text = _SPELLED.sub(lambda m: "".join(c for c in m.group() if c.isalnum()), text)
    return _INNER.sub("", text)


def latin_views(text: str) -> list[str]:
    """The normalised text as written, squashed, and squashed with leetspeak read both ways; with an asterisk
    between letters, also with each vowel in its place. Distinct views only."""
    views = [text, squash(text), squash(text.translate(LEET_I)), squash(text.translate(LEET_L))]
    if _MASKED.search(text):
        views += [squash(_MASKED.sub(v, text)) for v in "aeiou"]
    return list(dict.fromkeys(views))
