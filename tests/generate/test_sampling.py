"""The logits transforms of one decoding step, against hand-computed distributions and
against `transformers`' own logits processors."""

from __future__ import annotations

import math

import pytest
import torch

from gpt2lab.errors import GPT2LabError
from gpt2lab.generate import (
    SamplingConfig,
    apply_repetition_penalty,
    choose_next,
    next_token_logits,
    top_k_filter,
    top_p_filter,
)

NEG = float("-inf")


def probs_of(logits: torch.Tensor) -> torch.Tensor:
    return logits.softmax(-1)


def test_top_k_keeps_the_k_largest_by_hand():
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.0]])
    out = top_k_filter(logits, 2)
    assert out.tolist() == [[NEG, 3.0, 2.0, NEG]]
    e3, e2 = math.exp(3), math.exp(2)
    expected = [0.0, e3 / (e3 + e2), e2 / (e3 + e2), 0.0]
    assert probs_of(out)[0].tolist() == pytest.approx(expected, abs=1e-7)


def test_top_k_keeps_ties_and_clamps_k():
    logits = torch.tensor([[2.0, 1.0, 2.0, 0.5]])
    assert top_k_filter(logits, 1).tolist() == [[2.0, NEG, 2.0, NEG]]
    assert torch.equal(top_k_filter(logits, 10), logits)


@pytest.mark.parametrize(
    "p, kept",
    [
        (0.3, [0]),  # the most likely token always stays
        (0.5, [0]),  # 0.5 reaches 0.5
        (0.7, [0, 1]),  # 0.5 < 0.7 <= 0.8
        (0.79, [0, 1]),
        (0.81, [0, 1, 2]),
        (1.0, [0, 1, 2, 3]),
    ],
)
def test_top_p_hand_computed(p, kept):
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05], dtype=torch.float64)
    perm = torch.tensor([2, 0, 3, 1])  # shuffled, so the filter must sort
    logits = probs.log()[perm][None]
    out = probs_of(top_p_filter(logits, p))[0]
    expected = torch.zeros(4, dtype=torch.float64)
    expected[kept] = probs[kept] / probs[kept].sum()
    assert torch.allclose(out, expected[perm], atol=1e-12)


def test_filters_match_transformers_warpers():
    from transformers.generation.logits_process import (
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 1000, generator=g) * 3
    ids = torch.randint(0, 1000, (4, 30), generator=g)
    seen = torch.zeros(4, 1000, dtype=torch.bool).scatter_(1, ids, True)
    for k in (1, 5, 50):
        assert torch.equal(top_k_filter(logits, k), TopKLogitsWarper(k)(ids, logits.clone()))
    for p in (0.1, 0.5, 0.9, 0.99):
        ours = top_p_filter(logits, p)
        theirs = TopPLogitsWarper(p)(ids, logits.clone())
        assert torch.equal(ours.isinf(), theirs.isinf()), p
    theirs = RepetitionPenaltyLogitsProcessor(1.3)(ids, logits.clone())
    assert torch.allclose(apply_repetition_penalty(logits, seen, 1.3), theirs)
    full = SamplingConfig(temperature=0.7, top_k=40, top_p=0.9, repetition_penalty=1.3)
    expected = RepetitionPenaltyLogitsProcessor(1.3)(ids, logits.clone())
    for warper in (TemperatureLogitsWarper(0.7), TopKLogitsWarper(40), TopPLogitsWarper(0.9)):
        expected = warper(ids, expected)
    assert torch.allclose(next_token_logits(logits, full, seen), expected)


def test_repetition_penalty_by_hand():
    logits = torch.tensor([[2.0, -1.0, 3.0]])
    seen = torch.tensor([[True, True, False]])
    assert apply_repetition_penalty(logits, seen, 2.0).tolist() == [[1.0, -2.0, 3.0]]


def test_temperature_scales_logits_by_hand():
    logits = torch.tensor([[0.0, 1.0]])
    out = probs_of(next_token_logits(logits, SamplingConfig(temperature=0.5)))[0]
    assert out[1].item() == pytest.approx(math.exp(2) / (1 + math.exp(2)))


def test_greedy_is_argmax():
    logits = torch.tensor([[0.1, 5.0, 0.3], [9.0, 0.0, 1.0]])
    assert choose_next(logits, SamplingConfig(temperature=0)).tolist() == [[1], [0]]


def test_sampling_frequencies_follow_the_filtered_distribution():
    """20,000 seeded draws from top-k=2 of [1, 3, 2, 0]: only tokens 1 and 2, in e:1 ratio."""
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.0]]).expand(20_000, 4)
    g = torch.Generator().manual_seed(0)
    draws = choose_next(logits, SamplingConfig(top_k=2), g)[:, 0]
    counts = torch.bincount(draws, minlength=4).tolist()
    assert counts[0] == counts[3] == 0
    expected = math.exp(3) / (math.exp(3) + math.exp(2))  # 0.731
    assert counts[1] / 20_000 == pytest.approx(expected, abs=0.01)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(temperature=-0.1), "temperature must be >= 0"),
        (dict(top_p=0.0), "top_p must be in (0, 1]"),
        (dict(top_p=1.5), "top_p must be in (0, 1]"),
        (dict(top_k=0), "top_k must be a positive integer"),
        (dict(repetition_penalty=0.0), "repetition_penalty must be > 0"),
    ],
)
def test_bad_sampling_settings(kwargs, message):
    with pytest.raises(GPT2LabError, match=message.replace("(", r"\(").replace(")", r"\)")):
        SamplingConfig(**kwargs)
