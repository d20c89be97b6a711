"""BPE training: checked against a naive trainer, deterministic, loadable by both backends."""

from __future__ import annotations

from collections import Counter

import pytest

from gpt2lab.cli import main
from gpt2lab.data.stories import generate_text
from gpt2lab.errors import GPT2LabError
from gpt2lab.tokenizer import get_tokenizer, train_bpe, train_tokenizer
from gpt2lab.tokenizer.train import count_words


def naive_merges(text: str, n_merges: int) -> list[tuple[bytes, bytes]]:
    """Textbook BPE: recount every pair of every word after each merge (slow, obviously right)."""
    words = [
        [bytes([b]) for b in word] for word, n in count_words([text]).items() for _ in range(n)
    ]
    merges = []
    for _ in range(n_merges):
        pairs = Counter(pair for word in words for pair in zip(word, word[1:]))
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        merges.append(best)
        for i, word in enumerate(words):
            merged, j = [], 0
            while j < len(word):
                if j + 1 < len(word) and (word[j], word[j + 1]) == best:
                    merged.append(word[j] + word[j + 1])
                    j += 2
                else:
                    merged.append(word[j])
                    j += 1
            words[i] = merged
    return merges


@pytest.fixture(scope="module")
def text() -> str:
    return generate_text(300_000, seed=5) + "\nnaïve café — 東京 😀 3.14 don't\r\n"


def test_matches_the_naive_trainer(text):
    small = text[:20_000]
    assert train_bpe([small], 257 + 60) == naive_merges(small, 60)


def test_deterministic_and_exact_size(tmp_path, text):
    a = train_tokenizer([text], 256 + 500 + 1, tmp_path / "a")
    b = train_tokenizer([text], 256 + 500 + 1, tmp_path / "b")
    for name in ("encoder.json", "vocab.bpe"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    lines = (a / "vocab.bpe").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "#version: 0.2" and len(lines) - 1 == 500
    for backend in ("tiktoken", "bpe"):
        tok = get_tokenizer(str(a), backend=backend)
        assert tok.n_vocab == 757 and tok.eot_token == 756


def test_both_backends_agree_and_round_trip(tmp_path, text):
    out = train_tokenizer([text], 1024, tmp_path / "tok")
    fast, slow = get_tokenizer(str(out)), get_tokenizer(str(out), backend="bpe")
    samples = [text[:50_000], generate_text(50_000, seed=99), "ünïcödé ✓ 中文 \n\n  x", ""]
    for sample in samples:
        ids = fast.encode(sample)
        assert ids == slow.encode(sample)
        assert fast.decode(ids) == sample == slow.decode(ids)
    # the learned merges compress the text they were trained on
    assert len(fast.encode(text)) < 0.4 * len(text.encode())
    ids = fast.encode("a<|endoftext|>b", allowed_special="all")
    assert ids[1] == fast.eot_token == 1023


def test_too_small_a_corpus(tmp_path):
    with pytest.raises(GPT2LabError, match="only enough distinct pairs"):
        train_bpe(["ab ab"], 400)
    with pytest.raises(GPT2LabError, match="at least 257"):
        train_bpe(["ab ab"], 100)


def test_cli_train_then_load(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(generate_text(100_000, seed=1), encoding="utf-8")
    out = tmp_path / "tok"
    code = main(
        ["tokenizer", "train", "--input", str(corpus), "--vocab-size", "600", "--out", str(out)]
    )
    assert code == 0
    tok = get_tokenizer(str(out))
    assert tok.n_vocab == 600
    assert tok.decode(tok.encode("Lily smiled.")) == "Lily smiled."


def test_cli_train_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"caf\xe9 ok")
    for argv, message in [
        (["--input", str(tmp_path / "missing.txt")], "input not found"),
        (["--input", str(bad)], "not valid UTF-8"),
    ]:
        code = main(
            ["tokenizer", "train", *argv, "--vocab-size", "300", "--out", str(tmp_path / "o")]
        )
        err = capsys.readouterr().err
        assert code == 2 and message in err and err.count("\n") == 1
