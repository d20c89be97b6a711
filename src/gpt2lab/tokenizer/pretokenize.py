"""Pre-tokenization: GPT-2's regex cuts text into words before any merge, letters as tiktoken sees them.

" Hello world!!" -> [" Hello", " world", "!!"]: merges never cross these cuts. The cut depends on
which characters are letters (\\p{L}) and numbers (\\p{N}), and that depends on the Unicode
version of the regex engine. tiktoken (0.8 to 0.14) splits with Unicode 16.0's tables; the Python
`regex` module ships each new release (17.0 made U+A7CE a letter, 18.0 made U+0558 one). So
`split` holds the classes at Unicode 16.0 whatever `regex` is installed:

- `PATTERN` spells both classes out as Unicode 16.0's code-point ranges (`unicode_classes.py`).
  It is exact on any `regex`, but its long classes make it about 8x slower than `\\p{L}`.
- `GPT2_PATTERN` uses the installed `regex`'s own `\\p{L}`/`\\p{N}`: fast, and identical to
  `PATTERN` on any text without a *disputed* character (one the installed tables class
  differently from Unicode 16.0). `split` checks for those first, so almost all text takes the
  fast path and any text takes the exact one when it must.
"""

from __future__ import annotations

from functools import cache

import regex

from gpt2lab.tokenizer.unicode_classes import LETTERS, NUMBERS

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
"""GPT-2's pre-tokenization, as released. Alternatives are tried left to right at each position:

- contractions: "don't" -> ["don", "'t"];
- an optional space plus a run of letters, of digits, or of other symbols:
  " 2024 cats!!" -> [" 2024", " cats", "!!"];
- whitespace not followed by non-space: in "a   b" the run "   " splits as "  " + " b", so the
  last space stays attached to the next word; at the end of the text the whole run is one piece.
"""

FAST_PATTERN = (
    r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
)
"""tiktoken's equivalent of GPT2_PATTERN: possessive quantifiers avoid backtracking."""


def code_points(ranges: str) -> set[int]:
    """'0041-0043 00AA' -> {0x41, 0x42, 0x43, 0xAA}."""
    points: set[int] = set()
    for item in ranges.split():
        first, _, last = item.partition("-")
        points.update(range(int(first, 16), int(last or first, 16) + 1))
    return points


def spell_class(points: set[int]) -> str:
    """Code points as the inside of a regex character class, consecutive runs as ranges:
    {0x41, 0x42, 0x43, 0xAA} -> '\\U00000041-\\U00000043\\U000000AA'."""
    runs: list[list[int]] = []
    for point in sorted(points):
        if runs and runs[-1][1] == point - 1:
            runs[-1][1] = point
        else:
            runs.append([point, point])
    return "".join(rf"\U{a:08X}" if a == b else rf"\U{a:08X}-\U{b:08X}" for a, b in runs)


LETTER_CLASS = spell_class(code_points(LETTERS))
NUMBER_CLASS = spell_class(code_points(NUMBERS))
PATTERN = rf"""'s|'t|'re|'ve|'m|'ll|'d| ?[{LETTER_CLASS}]+| ?[{NUMBER_CLASS}]+| ?[^\s{LETTER_CLASS}{NUMBER_CLASS}]+|\s+(?!\S)|\s+"""
"""GPT2_PATTERN with \\p{L} and \\p{N} spelled out as Unicode 16.0's ranges: the exact cut."""


def installed_class(prop: str) -> set[int]:
    """The code points the installed `regex` puts in a property class such as r'\\p{L}'."""
    every = "".join(map(chr, [*range(0xD800), *range(0xE000, 0x110000)]))
    return {ord(c) for run in regex.findall(rf"{prop}+", every) for c in run}


@cache
def splitters() -> tuple[regex.Pattern, regex.Pattern, regex.Pattern | None]:
    """(fast, exact, disputed): the two patterns and a class matching any disputed character
    (None when the installed `regex` agrees with Unicode 16.0 everywhere). Built once, ~0.2 s."""
    disputed = (installed_class(r"\p{L}") ^ code_points(LETTERS)) | (
        installed_class(r"\p{N}") ^ code_points(NUMBERS)
    )
    check = regex.compile(f"[{spell_class(disputed)}]") if disputed else None
    return regex.compile(GPT2_PATTERN), regex.compile(PATTERN), check


def split(text: str) -> list[str]:
    """GPT-2's pre-tokens of `text`, letters and numbers as in Unicode 16.0 (tiktoken's):
    " Hello world!!" -> [" Hello", " world", "!!"]; "x\\u0558y" -> ["x", "\\u0558", "y"]."""
    fast, exact, disputed = splitters()
    if disputed is None or disputed.search(text) is None:
        return fast.findall(text)
    return exact.findall(text)
