"""Write src/gpt2lab/tokenizer/unicode_classes.py: Unicode 16.0's letters and numbers as ranges.

GPT-2's pre-tokenizer splits on the classes \\p{L} (letters) and \\p{N} (numbers). tiktoken's
Rust regex has Unicode 16.0 compiled in; the Python `regex` module follows each new Unicode
release (17.0 in 2025, 18.0 in 2026). To give tiktoken's ids whatever `regex` is installed, the
`bpe` backend spells both classes out as explicit ranges, taken from `unicodedata2` 16.0.0 (the
Unicode database of that version, as a package):

    pip install --target /tmp/ucd16 unicodedata2==16.0.0
    PYTHONPATH=/tmp/ucd16 python tools/make_unicode_classes.py

`tests/tokenizer/test_unicode_classes.py` checks the written tables against the same database.
"""

from __future__ import annotations

import sys
from pathlib import Path

import unicodedata2

VERSION = "16.0.0"
LETTER = ("Lu", "Ll", "Lt", "Lm", "Lo")
NUMBER = ("Nd", "Nl", "No")
OUT = Path(__file__).resolve().parents[1] / "src/gpt2lab/tokenizer/unicode_classes.py"


def ranges(categories: tuple[str, ...]) -> list[tuple[int, int]]:
    """Maximal runs [first, last] of code points whose category is one of `categories`."""
    runs: list[tuple[int, int]] = []
    for code in range(0x110000):
        if unicodedata2.category(chr(code)) not in categories:
            continue
        if runs and runs[-1][1] == code - 1:
            runs[-1] = (runs[-1][0], code)
        else:
            runs.append((code, code))
    return runs


def literal(runs: list[tuple[int, int]]) -> str:
    """The runs as a string literal of hex ranges, "0041-005A 00AA ...", eight a line."""
    items = [f"{a:04X}" if a == b else f"{a:04X}-{b:04X}" for a, b in runs]
    lines = [" ".join(items[i : i + 8]) for i in range(0, len(items), 8)]
    return '"""\\\n' + "\n".join(lines) + '\n"""'


def main() -> None:
    if unicodedata2.unidata_version != VERSION:
        sys.exit(f"need unicodedata2 {VERSION}, found {unicodedata2.unidata_version}")
    text = f'''"""Unicode {VERSION}'s letters (L*) and numbers (N*) as code-point ranges. Generated: do not edit.

Written by tools/make_unicode_classes.py from unicodedata2 {VERSION}. tiktoken's Rust regex uses
Unicode {VERSION}'s tables for \\\\p{{L}} and \\\\p{{N}}; the Python `regex` module uses whatever
Unicode version its release ships, so the `bpe` backend spells the two classes out from here.
"""

UNICODE_VERSION = "{VERSION}"

LETTERS = {literal(ranges(LETTER))}
"""Runs of general category Lu, Ll, Lt, Lm or Lo, as FIRST-LAST (or one code point), in hex."""

NUMBERS = {literal(ranges(NUMBER))}
"""Runs of general category Nd, Nl or No, written like LETTERS."""
'''
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
