"""Which Unicode version decides what a "letter" is, and that the bpe backend follows tiktoken's.

GPT-2's pre-tokenizer splits text into runs of letters (\\p{L}), numbers (\\p{N}) and other
symbols, and every Unicode release makes more code points letters. tiktoken >= 0.8 splits with
Unicode 16.0's tables; the Python `regex` module follows each release (2026.11 ships 18.0). The
bpe backend spells both classes out as Unicode 16.0 ranges (`unicode_classes.py`), so it gives
tiktoken's ids whatever `regex` is installed. When that stops being true, these tests say which
side moved and what to do.
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pytest
import regex
import tiktoken
import tomllib
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.requirements import Requirement

from gpt2lab.tokenizer.pretokenize import LETTER_CLASS, NUMBER_CLASS, PATTERN, split
from gpt2lab.tokenizer.unicode_classes import UNICODE_VERSION

SENTINELS = {  # letters and digits first assigned in each version: symbols to older engines
    "16.0": (0x1C89, 0xA7CB, 0x1E5F8),
    "17.0": (0x088F, 0xA7CE, 0x323B0),
    "18.0": (0x0558, 0x208F, 0xA7DD, 0x107BB),
}
PROVEN_TIKTOKEN = ("0.8.0", "0.9.0", "0.10.0", "0.11.0", "0.12.0", "0.13.0", "0.14.0")
"""tiktoken releases whose classes were checked equal to the tables (0.7 and older: Unicode 15.1)."""

CODE_POINTS = [chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000]
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def unicode_version(is_letter_or_number) -> str:
    """The newest Unicode version whose sentinels all count as letters or numbers."""
    newest = "15.1 or older"
    for release, codes in SENTINELS.items():
        if all(is_letter_or_number(chr(code)) for code in codes):
            newest = release
    return newest


@pytest.fixture(scope="module")
def tiktoken_classes(reference_gpt2):
    """(is_letter, is_number) as tiktoken's own regex decides them.

    An encoding with GPT-2's split pattern whose only merges are 'x' + any byte and '7' + any
    byte: "x" + c starts with a merged token exactly when c continues the letter run "x", that
    is when tiktoken counts c as a letter (likewise '7' for numbers).
    """
    ranks = {bytes([b]): b for b in range(256)}
    for head in (b"x", b"7"):
        ranks.update({head + bytes([b]): len(ranks) + b for b in range(256)})
    probe = tiktoken.Encoding(
        "class-probe", pat_str=reference_gpt2._pat_str, mergeable_ranks=ranks, special_tokens={}
    )

    def joins(head: str, char: str) -> bool:
        return probe.encode_ordinary(head + char)[0] >= 256

    return (lambda c: joins("x", c)), (lambda c: joins("7", c))


def ours(c: str) -> bool:
    return regex.fullmatch(f"[{LETTER_CLASS}{NUMBER_CLASS}]", c) is not None


def test_the_bpe_tables_are_the_unicode_version_tiktoken_splits_with(tiktoken_classes):
    is_letter, is_number = tiktoken_classes
    theirs = unicode_version(lambda c: is_letter(c) or is_number(c))
    installed_regex = unicode_version(lambda c: regex.fullmatch(r"[\p{L}\p{N}]", c) is not None)
    assert unicode_version(ours) == UNICODE_VERSION.rpartition(".")[0]
    assert theirs == unicode_version(ours), (
        f"tiktoken {tiktoken.__version__} splits with Unicode {theirs} letters, but the bpe "
        f"backend's tables are Unicode {UNICODE_VERSION} (regex {regex.__version__} alone would "
        f"use {installed_regex}): regenerate src/gpt2lab/tokenizer/unicode_classes.py with "
        f"tools/make_unicode_classes.py for Unicode {theirs}, then widen pyproject's tiktoken range"
    )


def test_every_code_point_is_a_letter_or_number_exactly_when_tiktoken_says_so(tiktoken_classes):
    is_letter, is_number = tiktoken_classes
    letter = regex.compile(f"[{LETTER_CLASS}]")
    number = regex.compile(f"[{NUMBER_CLASS}]")
    wrong = [
        f"U+{ord(c):04X}"
        for c in CODE_POINTS
        if (letter.fullmatch(c) is not None) != is_letter(c)
        or (number.fullmatch(c) is not None) != is_number(c)
    ]
    assert not wrong, f"{len(wrong)} code points classed unlike tiktoken, e.g. {wrong[:8]}"


def test_the_tables_are_unicode_16_as_published():
    """An independent source: the Unicode 16.0 database packaged as unicodedata2 16.0.0."""
    unicodedata2 = pytest.importorskip("unicodedata2")
    if unicodedata2.unidata_version != UNICODE_VERSION:
        pytest.skip(f"unicodedata2 {unicodedata2.unidata_version} is not Unicode {UNICODE_VERSION}")
    letter = regex.compile(f"[{LETTER_CLASS}]")
    number = regex.compile(f"[{NUMBER_CLASS}]")
    for c in CODE_POINTS:
        category = unicodedata2.category(c)
        assert (letter.fullmatch(c) is not None) == category.startswith("L"), hex(ord(c))
        assert (number.fullmatch(c) is not None) == category.startswith("N"), hex(ord(c))


def test_the_installed_versions_are_within_the_ranges_that_were_proven():
    """What pip resolves from pyproject is what the parity tests ran on; tiktoken's range holds
    only releases whose letter classes were checked (a new release may move to Unicode 17)."""
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    declared = {r.name: r.specifier for r in map(Requirement, project["dependencies"])}
    for package in ("tiktoken", "regex"):
        assert version(package) in declared[package], (
            f"{package} {version(package)} is installed, outside pyproject's {declared[package]}"
        )
    proven = declared["tiktoken"]
    assert all(release in proven for release in PROVEN_TIKTOKEN)
    assert "0.7.0" not in proven, "tiktoken 0.7 splits with Unicode 15.1 letters"
    assert "0.15.0" not in proven, "tiktoken 0.15 was never checked against the tables"


SENTINEL_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from([chr(code) for codes in SENTINELS.values() for code in codes]),
    )
)


@settings(max_examples=400, deadline=None)
@given(SENTINEL_TEXT)
def test_split_cuts_any_text_like_the_spelled_out_pattern(text):
    """The fast path (installed \\p{L}) is taken only where it cannot differ."""
    assert split(text) == regex.findall(PATTERN, text)


def test_split_examples():
    assert split(" Hello world!!") == [" Hello", " world", "!!"]
    assert split("x\u0558y 7\u208f1") == ["x", "\u0558", "y", " 7", "\u208f", "1"]
