"""Both backends give tiktoken's gpt2 ids, on megabytes of real text and on nasty edge cases."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpt2lab.errors import GPT2LabError
from gpt2lab.tokenizer import get_tokenizer

BACKENDS = ("tiktoken", "bpe")

EDGE_CASES = [
    "",
    " ",
    "hello world",
    "Hello, World! How's it going? I'm fine, you'll see; we'd've done it.",
    "DON'T SHOUT, it'S 'quoted' and ''double'' and it's'",
    "emoji 😀👍🏽 family 👨\u200d👩\u200d👧\u200d👦 flags 🇫🇷🇯🇵 keycap 1\ufe0f\u20e3",
    "中文字符和日本語のテキスト、한국어 텍스트。全角：ＡＢＣ１２３",
    "combining: e\u0301 a\u0300\u0316 Z\u0351\u0362\u0338 n\u0303 \u0915\u093f \u0e01\u0e34",
    "spaces:" + " " * 50 + "x" + " " * 3 + "\t\t  \t" + "y" + " " * 20,
    "trailing whitespace   \n\n\n   ",
    "windows\r\nline\r\n\r\nendings\r\n",
    "\n\n\n\nmany\n\n newlines \n",
    "digits 0 12 345 6789 1234567890123 3.14159 -42 1e10 ½ ² ٣٤٥ ๓",
    "it's it'S we've they're I'll she'd I'M 'll 's",
    "lone surrogates \ud800 and \udfff and pair \ud83d\ude00 end",
    "\ud800",
    "nul \x00 control \x01\x1b[31m bell \x07 del \x7f",
    "\ufeffbom then text",
    "nbsp\u00a0here\u2003em\u2009thin\u3000ideographic\u200bzero",
    "rtl: שלום עולם مرحبا بالعالم",
    "\x1c\x1d\x1e\x1f separators \x85 nel \u2028 line \u2029 para",
    "symbols !!! ??? ... --- *** ### @@@ $$$ %%% ^^^ &&& ((( ))) [[[ ]]] {{{ }}} <<< >>>",
    "code: def f(x):\n    return x**2  # comment\n\tif a != b: pass",
    "mixed123abc456 abc-def_ghi.jkl/mno",
    "Ａ𝐀𝔸 math letters 𝑥 𝟙 ancient 𐌰𐌱 cuneiform 𒀀",
    "new in Unicode 17: \ua7ce\ua7cf1'\U00010940's \U00011de0\U00011de1 \U000323b0'll",
    "new in Unicode 18: x\u0558y \u208f1 \ua7dd's \U000107bb\U000107bb",
    "<|endoftext|> as text",
    "'s's's 've're",
]


@pytest.fixture(scope="module", params=BACKENDS)
def tok(request):
    return get_tokenizer("gpt2", backend=request.param)


def test_identity_numbers(tok, reference_gpt2):
    assert tok.n_vocab == reference_gpt2.n_vocab == 50257
    assert tok.eot_token == reference_gpt2.eot_token == 50256
    assert tok.vocab.ranks == reference_gpt2._mergeable_ranks


def test_megabytes_of_real_text(tok, real_text, reference_gpt2):
    assert sum(len(text.encode()) for text in real_text) >= 5_000_000
    for text in real_text:
        assert tok.encode(text, disallowed_special=()) == reference_gpt2.encode_ordinary(text)


def test_hugging_face_agrees_on_a_megabyte(real_text, reference_gpt2, hf_gpt2_fast):
    # A third implementation (Rust, Hugging Face) as a cross-check of the reference itself.
    texts, size = [], 0
    for text in real_text[::2]:  # every other document, until a megabyte
        texts.append(text)
        size += len(text)
        if size > 1_000_000:
            break
    assert size > 1_000_000
    for text in texts:
        assert hf_gpt2_fast.encode(text) == reference_gpt2.encode_ordinary(text)


@pytest.mark.parametrize("text", EDGE_CASES)
def test_edge_cases(tok, text, reference_gpt2):
    expected = reference_gpt2.encode_ordinary(text)
    assert tok.encode_ordinary(text) == expected
    assert tok.decode(expected) == reference_gpt2.decode(expected)


def check_code_points(tok, reference_gpt2, step: int) -> None:
    """Every `step`-th character between letters, digits, a contraction and whitespace."""
    chars = [chr(c) for c in range(0, 0x110000, step) if not 0xD800 <= c < 0xE000]
    for start in range(0, len(chars), 2048):
        text = "".join(f"1{c}'s a{c}1 {c}{c}  \n" for c in chars[start : start + 2048])
        assert tok.encode_ordinary(text) == reference_gpt2.encode_ordinary(text)


def test_many_code_points_in_context(tok, reference_gpt2):
    check_code_points(tok, reference_gpt2, step=11)


@pytest.mark.slow
def test_every_code_point_in_context(tok, reference_gpt2):
    check_code_points(tok, reference_gpt2, step=1)


def test_surrogates_are_mended_as_tiktoken_does(tok, reference_gpt2):
    text = "a\ud83d\ude00b\udc00"
    assert tok.encode(text) == reference_gpt2.encode(text)
    assert tok.decode(tok.encode(text)) == "a😀b\ufffd"


def test_special_tokens_follow_tiktoken(tok, reference_gpt2):
    text = "one<|endoftext|>two"
    with pytest.raises(ValueError):
        reference_gpt2.encode(text)
    with pytest.raises(GPT2LabError, match="special token '<\\|endoftext\\|>'"):
        tok.encode(text)
    for kwargs in (
        {"allowed_special": "all"},
        {"allowed_special": {"<|endoftext|>"}},
        {"disallowed_special": ()},
    ):
        assert tok.encode(text, **kwargs) == reference_gpt2.encode(text, **kwargs)
    assert tok.encode(text, allowed_special="all") == [505, 50256, 11545]
    assert tok.decode([505, 50256, 11545]) == text


def test_encode_batch(tok, reference_gpt2):
    texts = EDGE_CASES[:8]
    assert tok.encode_batch(texts) == reference_gpt2.encode_batch(texts)


def test_unknown_id_is_a_clear_error(tok):
    with pytest.raises(GPT2LabError, match="not in the vocabulary"):
        tok.decode([50257])


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_roundtrip_any_valid_unicode(text):
    for backend in BACKENDS:
        tok = get_tokenizer("gpt2", backend=backend)
        assert tok.decode(tok.encode(text, disallowed_special=())) == text


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec=None, exclude_categories=())))
def test_any_text_matches_tiktoken_including_surrogates(reference_gpt2, text):
    for backend in BACKENDS:
        tok = get_tokenizer("gpt2", backend=backend)
        assert tok.encode_ordinary(text) == reference_gpt2.encode_ordinary(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 50256), max_size=30))
def test_decode_matches_tiktoken_on_any_ids(reference_gpt2, ids):
    for backend in BACKENDS:
        assert get_tokenizer("gpt2", backend=backend).decode(ids) == reference_gpt2.decode(ids)
