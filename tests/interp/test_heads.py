"""Head-role scores on hand-built attention patterns, where the answer is known by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gpt2lab.errors import GPT2LabError
from gpt2lab.interp.heads import (
    HeadScores,
    TextSet,
    antecedent_attention,
    attention_entropy,
    boundary_mask,
    boundary_pattern,
    classify_heads,
    compute_head_scores,
    duplicate_token_pattern,
    first_token_score,
    induction_pattern,
    induction_stripe_score,
    mean_attention_distance,
    nearest_candidate_hits,
    pattern_score,
    previous_token_pattern,
    self_pattern,
    uniform_distance,
)


def rows(*r):
    return torch.tensor(r, dtype=torch.float32)


# A perfect previous-token head on 4 tokens (row 0 can only attend to itself).
PREV = rows([1, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0])
# Uniform causal attention on 4 tokens.
UNIFORM = torch.ones(4, 4).tril() / torch.arange(1, 5)[:, None]
# Everything on the first token (an attention sink).
SINK = torch.zeros(4, 4).index_fill_(1, torch.tensor([0]), 1.0)


def test_detection_patterns_by_hand():
    assert previous_token_pattern(3).tolist() == [[0, 0, 0], [1, 0, 0], [0, 1, 0]]
    assert self_pattern(2).tolist() == [[1, 0], [0, 1]]
    tokens = torch.tensor([5, 7, 5, 7])
    assert duplicate_token_pattern(tokens).nonzero().tolist() == [[2, 0], [3, 1]]
    # 5 at position 2 -> key 1 (the 7 that followed the first 5); 7 at 3 -> key 2.
    assert induction_pattern(tokens).nonzero().tolist() == [[2, 1], [3, 2]]
    ends = torch.tensor([False, True, False, True, False])
    assert boundary_pattern(ends).nonzero().tolist() == [[2, 1], [3, 1], [4, 3]]


def test_previous_token_score_mul_and_abs():
    P = previous_token_pattern(4)
    assert pattern_score(PREV, P).item() == pytest.approx(3 / 4)  # (T-1)/T at best
    # abs: only row 0 differs from P (|1 - 0| = 1) -> 1 - 1/4
    assert pattern_score(PREV, P, measure="abs").item() == pytest.approx(0.75)
    # uniform: A[1,0] + A[2,1] + A[3,2] = 1/2 + 1/3 + 1/4 over a total of 4
    assert pattern_score(UNIFORM, P).item() == pytest.approx((1 / 2 + 1 / 3 + 1 / 4) / 4)
    # exclude_bos removes column 0 from A: the only remaining mass of PREV is rows 2, 3
    assert pattern_score(PREV, P, exclude_bos=True).item() == pytest.approx(1.0)
    with pytest.raises(GPT2LabError, match="measure"):
        pattern_score(PREV, P, measure="nope")


def test_scores_reduce_only_the_last_two_dims():
    grid = torch.stack([torch.stack([PREV, UNIFORM, SINK])] * 2)  # (2, 3, 4, 4)
    scores = pattern_score(grid, previous_token_pattern(4))
    assert scores.shape == (2, 3)
    assert scores[1, 0].item() == pytest.approx(0.75)


def test_self_and_duplicate_scores():
    assert pattern_score(torch.eye(4), self_pattern(4)).item() == 1.0
    # uniform diag: 1 + 1/2 + 1/3 + 1/4 over 4
    assert pattern_score(UNIFORM, self_pattern(4)).item() == pytest.approx(
        (1 + 1 / 2 + 1 / 3 + 1 / 4) / 4
    )
    tokens = torch.tensor([5, 7, 5, 7])
    dup = rows([1, 0, 0, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0])
    assert pattern_score(dup, duplicate_token_pattern(tokens)).item() == pytest.approx(2 / 4)


def test_first_token_score():
    assert first_token_score(SINK).item() == 1.0
    assert first_token_score(PREV).item() == pytest.approx(1 / 3)  # only row 1 of rows 1..3
    assert first_token_score(UNIFORM).item() == pytest.approx((1 / 2 + 1 / 3 + 1 / 4) / 3)


def test_induction_stripe_score_on_a_perfect_and_a_previous_token_head():
    L = 3  # tokens a b c a b c: query 3 (a) -> key 1 (b), 4 -> 2, 5 -> 3
    perfect = torch.zeros(6, 6)
    perfect[0, 0] = perfect[1, 0] = perfect[2, 0] = 1.0
    perfect[3, 1] = perfect[4, 2] = perfect[5, 3] = 1.0
    assert induction_stripe_score(perfect, L).item() == 1.0
    prev = previous_token_pattern(6)
    prev[0, 0] = 1.0
    assert induction_stripe_score(prev, L).item() == 0.0
    # The stripe score agrees with the induction detection pattern on the second repeat.
    tokens = torch.tensor([4, 8, 9, 4, 8, 9])
    assert induction_pattern(tokens)[3:].nonzero().tolist() == [[0, 1], [1, 2], [2, 3]]
    with pytest.raises(GPT2LabError, match="second repeat"):
        induction_stripe_score(perfect, 4)


def test_mean_attention_distance():
    assert mean_attention_distance(PREV).item() == pytest.approx(3 / 4)  # rows 1..3 look 1 back
    assert mean_attention_distance(SINK).item() == pytest.approx((0 + 1 + 2 + 3) / 4)
    assert mean_attention_distance(UNIFORM).item() == pytest.approx((0 + 0.5 + 1 + 1.5) / 4)
    assert uniform_distance(TextSet([[1, 2, 3, 4]], [list("abcd")])) == pytest.approx(0.75)


def test_attention_entropy():
    assert attention_entropy(PREV).item() == 0.0
    assert attention_entropy(UNIFORM).item() == pytest.approx(1.0)
    raw = (0 + math.log(2) + math.log(3) + math.log(4)) / 4
    assert attention_entropy(UNIFORM, normalize=False).item() == pytest.approx(raw)
    half = rows([1, 0, 0], [0.5, 0.5, 0], [1, 0, 0])  # row 1 max entropy, row 2 none
    assert attention_entropy(half).item() == pytest.approx(0.5)


def test_antecedent_attention_and_accuracy():
    A = rows([1, 0, 0, 0], [0.5, 0.5, 0, 0], [0.2, 0.7, 0.1, 0], [0.1, 0.3, 0.4, 0.2])
    mass, hits = antecedent_attention(A, [(2, 1), (3, 1)])
    assert mass.item() == pytest.approx(0.7 + 0.3)
    assert hits.item() == 1.0  # row 2 argmax is 1; row 3 argmax is 2
    assert nearest_candidate_hits([(6, 1)], [1, 4]) == 0
    assert nearest_candidate_hits([(6, 4), (3, 1)], [1, 4]) == 2


def test_boundary_mask_and_score():
    mask = boundary_mask(["Hi", ".", " It", '!"', " ok", "?"])
    assert mask.tolist() == [False, True, False, True, False, True]
    # a head attending to the last boundary from every query that has one
    P = boundary_pattern(mask)
    A = P.clone()
    A[0, 0] = A[1, 1] = 1.0  # rows without an earlier boundary attend to themselves
    assert pattern_score(A, P).item() == pytest.approx(4 / 6)


def test_textset_baseline_and_errors():
    texts = TextSet(
        [[1, 2, 3, 4, 5, 6, 7]], [list("abcdefg")], pronouns=[[(6, 1)]], candidates=[[1, 4]]
    )
    assert texts.baseline_accuracy() == 0.0
    assert texts.boundaries == [[]]
    with pytest.raises(GPT2LabError, match="no text"):
        TextSet([], []).check()


def test_classify_heads_thresholds():
    grids = {
        "previous_token": np.array([[0.95, 0.1], [0.49, 0.2]]),
        "induction": np.array([[0.0, 0.0], [0.1, 0.6]]),
        "first_token": np.array([[0.0, 0.9], [0.0, 0.0]]),
        "mean_distance": np.array([[1.0, 9.0], [2.0, 6.0]]),
    }
    roles = classify_heads(HeadScores(grids, n_texts=1), mean_uniform_distance=4.0)
    got = {(r.layer, r.head, r.role) for r in roles}
    # (0,1) is a sink: its large distance does not also make it long-range
    assert got == {
        (0, 0, "previous-token"),
        (0, 1, "sink"),
        (1, 1, "induction"),
        (1, 1, "long-range"),
    }
    assert str(roles[0]) == "layer 0, head 0: previous-token (0.95)"


def test_scoring_heads_leaves_the_model_in_its_own_mode(small_model):
    model = small_model().train()
    tokens = [[1, 5, 9, 2, 5, 9, 2, 7]]
    texts = TextSet(tokens, [[str(t) for t in tokens[0]]], source="by hand")
    scores = compute_head_scores(model, texts, progress=False)
    assert model.training  # dropout was off while scoring, and is on again after
    assert scores.grids["previous_token"].shape == (3, 4)
