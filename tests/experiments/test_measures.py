"""The report's measures from data and weights, against direct computations: the unigram
loss (a Counter over the tokens), word-order sensitivity (the model's own loss on shuffled
batches), attention statistics (the raw scores of the explicit path) and head roles."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch

from gpt2lab.data.loader import open_split
from gpt2lab.experiments.measures import (
    attention_stats,
    order_sensitivity,
    role_agreement,
    shuffle_within,
    unigram_loss,
    val_batches,
)

SHAPE = dict(vocab_size=512, n_layer=2, n_head=4, n_embd=32, block_size=32)


def test_unigram_loss_is_the_train_frequencies_scored_on_val(stories_data):
    train = Counter(int(t) for shard in open_split(stories_data, "train")[0] for t in shard)
    val = [int(t) for shard in open_split(stories_data, "val")[0] for t in shard]
    total = sum(train.values()) + 512  # add-one over a 512-token vocabulary
    expect = -sum(math.log((train[t] + 1) / total) for t in val) / len(val)
    assert unigram_loss(stories_data, 512) == pytest.approx(expect, rel=1e-9)


def test_shuffling_keeps_each_sequences_tokens_and_the_next_token_targets():
    x = torch.arange(20).view(2, 10)
    y = x + 1
    xs, ys = shuffle_within(x, y, seed=3)
    assert torch.equal(xs[:, 1:], ys[:, :-1])  # targets are the next (shuffled) token
    for row in range(2):
        seen = sorted(xs[row].tolist() + ys[row, -1:].tolist())
        assert seen == sorted(x[row].tolist() + y[row, -1:].tolist())
    assert not torch.equal(xs, x)


def test_order_sensitivity_is_the_loss_difference_of_the_models_own_loss(tiny_gpt, stories_data):
    model = tiny_gpt("tiny", 0, **SHAPE)
    batches = val_batches(stories_data, 32, 2)
    with torch.no_grad():
        ordered = np.mean([float(model(x, y)[1]) for x, y in batches])
        shuffled = np.mean(
            [float(model(*shuffle_within(x, y, i))[1]) for i, (x, y) in enumerate(batches)]
        )
    # float32 losses of about 6.2: their difference agrees to float32 precision
    assert order_sensitivity(model, batches) == pytest.approx(shuffled - ordered, abs=1e-5)


def test_attention_statistics_of_softmax_and_raw_scores(tiny_gpt, stories_data):
    batches = val_batches(stories_data, 32, 2)
    soft = attention_stats(tiny_gpt("tiny", 0, **SHAPE), batches)
    assert soft.negative_share == 0 and soft.row_sum_sd < 1e-6 and soft.max_abs <= 1
    raw_model = tiny_gpt("tiny", 0, attn_normalization="none", init="torch_default", **SHAPE)
    raw = attention_stats(raw_model, batches)
    # the raw scores, read before masking, restricted to the visible pairs by hand
    names = [f"blocks.{i}.attn.hook_attn_scores" for i in range(2)]
    visible = torch.ones(32, 32, dtype=torch.bool).tril()
    scores = []
    for x, _ in batches:
        _, cache = raw_model.run_with_cache(x, names=names)
        scores += [cache[n][..., visible].flatten() for n in names]
    s = torch.cat(scores)
    assert raw.negative_share == pytest.approx(float((s < 0).float().mean()))
    assert raw.max_abs == pytest.approx(float(s.abs().max()))
    assert 0.2 < raw.negative_share < 0.8 and raw.row_sum_sd > 0
    assert len(raw.roles) == 2 * 4 and all(sum(r) == pytest.approx(1.0) for r in raw.roles)


def test_role_agreement_matches_heads_one_to_one():
    a = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    assert role_agreement(a, a[::-1], 1) == pytest.approx(1.0)
    # head 0 of b = head 0 of a; head 1 of b is flat-ish: corr([0,1,0], [1,0,1]) = −1
    b = [[1.0, 0.0, 0.0], [1.0, 0.0, 1.0]]
    c = np.corrcoef(np.asarray(a), np.asarray(b))[:2, 2:]
    best = max(c[0, 0] + c[1, 1], c[0, 1] + c[1, 0]) / 2
    assert role_agreement(a, b, 1) == pytest.approx(best)
