"""Perplexity, bits per byte, last-word accuracy and cloze, against `transformers` computed by
hand (naive loops with GPT2LMHeadModel on the same weights)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from generate_helpers import hf_logprobs

from gpt2lab.errors import GPT2LabError
from gpt2lab.evaluate import (
    EvalTokens,
    cloze_items,
    cloze_score,
    last_word_accuracy,
    load_eval_tokens,
    perplexity,
    score_continuations,
    token_nll,
    window_spans,
)

TEXT = (
    "Lily and Tom went to the park. Tom found a red kite by the pond, and Lily laughed. "
    "The dogs near the old barn were happy. Once upon a time there was a naïve café owner. "
)


def hf_docs_loop(hf, ids: torch.Tensor, max_length: int, stride: int) -> torch.Tensor:
    """Hugging Face's perplexity guide loop, collecting per-token NLL instead of means."""
    nll = torch.full((ids.numel() - 1,), float("nan"), dtype=torch.float64)
    seq_len, prev_end = ids.numel(), 0
    for begin in range(0, seq_len, stride):
        end = min(begin + max_length, seq_len)
        trg_len = end - prev_end
        window = ids[begin:end].tolist()
        lp = hf_logprobs(hf, window)
        for j in range(max(end - trg_len, begin + 1), end):  # labels not masked with -100
            nll[j - 1] = -lp[j - begin - 1, ids[j]]
        prev_end = end
        if end == seq_len:
            break
    return nll


def test_window_spans_by_hand():
    assert window_spans(10, 4, 2) == [(0, 4, 1), (2, 6, 4), (4, 8, 6), (6, 10, 8)]
    assert window_spans(10, 4, 3) == [(0, 4, 1), (3, 7, 4), (6, 10, 7)]
    assert window_spans(3, 8, 4) == [(0, 3, 1)]


@pytest.mark.parametrize("n, context, stride", [(50, 8, 3), (37, 5, 4), (64, 16, 1), (9, 4, 2)])
def test_window_spans_score_every_token_once(n, context, stride):
    covered = []
    for begin, end, first in window_spans(n, context, stride):
        assert end - begin <= context and begin < first <= end
        covered += range(first, end)
    assert covered == list(range(1, n))


@pytest.mark.parametrize("stride", [16, 63, 48])
def test_token_nll_matches_the_hf_guide_loop(small, small_hf, stride):
    ids = torch.randint(0, 50257, (300,), generator=torch.Generator().manual_seed(0))
    ours = token_nll(small, ids, context=64, stride=stride, batch_size=3)
    theirs = hf_docs_loop(small_hf, ids, 64, stride)
    assert torch.allclose(ours, theirs, atol=1e-4)


def test_stride_one_gives_every_token_its_full_context(small, small_hf):
    """The most naive loop: each token scored from the (context - 1) tokens before it."""
    ids = torch.randint(0, 50257, (40,), generator=torch.Generator().manual_seed(1))
    ours = token_nll(small, ids, context=12, stride=1)
    for j in range(1, 40):
        start = max(0, j - 11)
        expected = -hf_logprobs(small_hf, ids[start:j].tolist())[-1, ids[j]]
        assert ours[j - 1].item() == pytest.approx(expected.item(), abs=1e-4)


def test_text_file_perplexity_and_bits_per_byte(small, small_hf, gpt2_tokenizer, tmp_path):
    path = tmp_path / "t.txt"
    path.write_text(TEXT, encoding="utf-8")
    result = perplexity(small, load_eval_tokens(path, gpt2_tokenizer))
    ids = [gpt2_tokenizer.eot_token, *gpt2_tokenizer.encode(TEXT)]  # fits the 128-token context
    lp = hf_logprobs(small_hf, ids)
    nll = -sum(lp[i - 1, ids[i]].item() for i in range(1, len(ids)))
    assert result.tokens == len(ids) - 1
    assert result.bytes == len(TEXT.encode("utf-8"))
    assert result.perplexity == pytest.approx(math.exp(nll / (len(ids) - 1)), rel=1e-5)
    assert result.bits_per_byte == pytest.approx(nll / math.log(2) / result.bytes, rel=1e-5)


def test_a_crlf_file_is_scored_byte_for_byte(small, gpt2_tokenizer, tmp_path):
    """Bits per byte is per byte of the file: CRLF stays two bytes, and is tokenized as is."""
    text = TEXT.replace(". ", ".\r\n")
    path = tmp_path / "crlf.txt"
    path.write_bytes(text.encode("utf-8"))
    assert b"\r\n" in path.read_bytes()
    tokens = load_eval_tokens(path, gpt2_tokenizer)
    assert tokens.n_bytes == path.stat().st_size
    assert tokens.ids[1:].tolist() == gpt2_tokenizer.encode(text)


def test_shard_directory(small, gpt2_tokenizer, tmp_path):
    from gpt2lab.data.prepare import prepare

    source = tmp_path / "docs.txt"
    source.write_text(TEXT * 3, encoding="utf-8")
    prepare(str(source), tmp_path / "shards", "gpt2", val_fraction=0.0)
    tokens = load_eval_tokens(tmp_path / "shards", gpt2_tokenizer, split="train")
    assert tokens.ids[0] == gpt2_tokenizer.eot_token
    assert gpt2_tokenizer.decode(tokens.ids[1:].tolist()).replace("<|endoftext|>", "") in (
        (TEXT * 3),
        (TEXT * 3).replace("\n", ""),
    )
    text_bytes = sum(len(gpt2_tokenizer.token_bytes(int(t))) for t in tokens.ids[1:] if t != 50256)
    assert tokens.n_bytes == text_bytes
    result = perplexity(small, tokens, stride=32)
    direct = token_nll(small, torch.from_numpy(tokens.ids), stride=32)
    assert result.nll_nats == pytest.approx(direct.sum().item())
    with pytest.raises(GPT2LabError, match="no split 'test'"):
        load_eval_tokens(tmp_path / "shards", gpt2_tokenizer, split="test")


def test_score_continuations_against_hf(small, small_hf):
    g = torch.Generator().manual_seed(3)
    pairs = [
        (
            torch.randint(0, 50257, (n,), generator=g).tolist(),
            torch.randint(0, 50257, (m,), generator=g).tolist(),
        )
        for n, m in [(5, 1), (20, 4), (1, 7), (200, 3)]  # the last is cut to the context
    ]
    greedy_ctx = pairs[1][0]
    lp = hf_logprobs(small_hf, greedy_ctx)
    pairs.append((greedy_ctx[:-1], [int(lp[-2].argmax())]))  # make one greedy-true case
    scores = score_continuations(small, pairs, batch_size=2)
    for (context, continuation), score in zip(pairs, scores):
        ids = (context + continuation)[-129:]
        lp = hf_logprobs(small_hf, ids[:-1])
        n = len(continuation)
        rows = lp[-n:]
        expected = sum(rows[i, continuation[i]].item() for i in range(n))
        greedy = all(int(rows[i].argmax()) == continuation[i] for i in range(n))
        assert score.logprob == pytest.approx(expected, abs=1e-4)
        assert score.greedy == greedy
    assert scores[-1].greedy


def test_last_word_accuracy(small, small_hf, gpt2_tokenizer):
    texts = ["the cat sat on the mat", "Lily and Tom went to the park", "a b"]
    result = last_word_accuracy(small, gpt2_tokenizer, texts)
    hits, logprob = 0, 0.0
    for text in texts:
        context, word = text.rsplit(" ", 1)
        c, w = gpt2_tokenizer.encode(context), gpt2_tokenizer.encode(" " + word)
        lp = hf_logprobs(small_hf, c + w)[len(c) - 1 : -1]
        logprob += sum(lp[i, w[i]].item() for i in range(len(w)))
        hits += all(int(lp[i].argmax()) == w[i] for i in range(len(w)))
    assert result["accuracy"] == hits / 3
    assert result["perplexity"] == pytest.approx(math.exp(-logprob / 3), rel=1e-5)


def test_cloze_on_stories_probes(small, small_hf, gpt2_tokenizer):
    from gpt2lab.data.stories import probe_examples

    records = probe_examples(40, seed=0, tokenizer=None)
    items = cloze_items(records)
    kinds = {item["kind"].split("/")[0] for item in items}
    assert kinds == {"agreement", "coreference"}
    for item in items:
        assert item["right"] in (" was", " were", " her", " him") and item["wrong"] != item["right"]
    result = cloze_score(small, gpt2_tokenizer, records)
    correct = 0
    for item in items:
        c = gpt2_tokenizer.encode(item["context"])
        right, wrong = gpt2_tokenizer.encode(item["right"]), gpt2_tokenizer.encode(item["wrong"])
        assert len(right) == len(wrong) == 1
        lp = hf_logprobs(small_hf, c)[-1]
        correct += lp[right[0]] > lp[wrong[0]]
    assert result["examples"] == len(items)
    assert result["accuracy"] == pytest.approx(correct / len(items))


def test_bad_eval_inputs(small, gpt2_tokenizer, tmp_path):
    with pytest.raises(GPT2LabError, match="stride must be between 1 and context - 1"):
        token_nll(small, torch.arange(10), context=8, stride=9)
    with pytest.raises(GPT2LabError, match="exceeds the model's block_size"):
        token_nll(small, torch.arange(10), context=500)
    empty = tmp_path / "e.jsonl"
    empty.write_text('{"text": "  "}\n')
    with pytest.raises(GPT2LabError, match="has no text"):
        load_eval_tokens(empty, gpt2_tokenizer)
    bad = tmp_path / "b.jsonl"
    bad.write_text("not json\n")
    with pytest.raises(GPT2LabError, match="expected a JSON object"):
        load_eval_tokens(bad, gpt2_tokenizer)
    with pytest.raises(GPT2LabError, match="at least two words"):
        last_word_accuracy(small, gpt2_tokenizer, ["single"])
    assert isinstance(EvalTokens(np.zeros(2, dtype=np.int64), 0, "x"), EvalTokens)
