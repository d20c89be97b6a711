"""The verdict rule, steps-to-target and seed bands, against values computed by hand."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from gpt2lab.experiments.verdicts import Run, band, judge, mean_sd, pooled_sd


def test_pooled_sd_matches_the_textbook_formula():
    # a = [1, 2, 3]: SS 2; b = [2, 4]: SS 2; dof 3 -> sqrt(4/3)
    assert pooled_sd([1.0, 2.0, 3.0], [2.0, 4.0]) == pytest.approx(math.sqrt(4 / 3))
    # a fixed reference (one value) adds no spread: the sd of a alone (ddof=1)
    assert pooled_sd([1.0, 3.0], [0.5]) == pytest.approx(math.sqrt(2.0))


def test_judge_holds_refutes_or_abstains_by_twice_the_pooled_sd():
    # d = 3.3 - 3.0 = 0.3; s = sqrt((0.02 + 0.02) / 4) = 0.1 -> 0.3 > 0.2: holds
    d, s, verdict = judge([3.2, 3.3, 3.4], [2.9, 3.0, 3.1])
    assert (d, s, verdict) == (pytest.approx(0.3), pytest.approx(0.1), "holds")
    assert judge([2.9, 3.0, 3.1], [3.2, 3.3, 3.4])[2] == "does not hold"
    assert judge([3.05, 3.15, 3.25], [2.9, 3.0, 3.1])[2] == "inconclusive"  # 0.15 < 0.2
    # the margin shifts the bar: 0.3 - 0.25 = 0.05 < 0.2
    assert judge([3.2, 3.3, 3.4], [2.9, 3.0, 3.1], margin=0.25)[2] == "inconclusive"


def test_judge_needs_two_seeds_and_treats_divergence_as_infinite_loss():
    assert judge([5.0], [3.0])[2] == "inconclusive"
    assert judge([math.inf, math.inf], [3.0, 3.1])[2] == "holds"
    assert judge([math.inf, 4.0], [3.0, 3.1])[2] == "inconclusive"
    assert judge([4.0, 4.1], [math.inf, 3.0])[2] == "inconclusive"


def test_mean_sd_text():
    assert mean_sd([1.0, 2.0, 3.0]) == "2.000 ± 1.000"
    assert mean_sd([]) == "—"
    assert mean_sd([2.0, math.inf, math.inf]) == "2.000, 2/3 diverged"


def _run(evals, stopped="completed"):
    records = [{"kind": "eval", "step": s, "val_loss": v} for s, v in evals]
    result = {"stopped": stopped, "step": evals[-1][0] if evals else 0}
    return Run("v", 0, Path("."), result, records)


def test_steps_to_target_interpolates_between_evaluations():
    run = _run([(10, 5.0), (20, 4.0), (30, 3.0)])
    assert run.steps_to(3.5, budget=30) == pytest.approx(25.0)  # halfway from 20 to 30
    assert run.steps_to(5.5, budget=30) == pytest.approx(10.0)  # already at the first eval
    assert run.steps_to(2.0, budget=30) == 30.0  # never reached: the budget (a lower bound)
    assert run.final_val == 3.0
    assert _run([(10, 5.0)], stopped="nonfinite").final_val == math.inf


def test_band_is_mean_min_max_over_seeds_per_step():
    xs, mean, lo, hi = band([([1, 2], [1.0, 4.0]), ([1, 2, 3], [3.0, 2.0, 7.0])])
    assert xs == [1, 2, 3]
    assert mean == [2.0, 3.0, 7.0] and lo == [1.0, 2.0, 7.0] and hi == [3.0, 4.0, 7.0]


def test_band_smoothing_is_a_trailing_moving_average():
    xs, mean, _, _ = band([([0, 1, 2, 3], [4.0, 2.0, 6.0, 0.0])], smooth=2)
    assert mean == pytest.approx([4.0, 3.0, 4.0, 3.0])
