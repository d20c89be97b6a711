"""Statistics of the verdicts (t quantiles, paired intervals, LR sensitivity, stable lr),
steps-to-target with censoring, and seed bands, against scipy or a hand computation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gpt2lab.experiments.report import band
from gpt2lab.experiments.verdicts import Interval, mean_sd, paired_interval, t_quantile

from .runs import arm, run


@pytest.mark.parametrize("dof", [1, 2, 3, 4, 7, 12])
@pytest.mark.parametrize("level", [0.95, 0.99, 1 - 0.05 / 16])
def test_t_quantile_agrees_with_scipy(dof, level):
    stats = pytest.importorskip("scipy.stats")
    assert t_quantile(level, dof) == pytest.approx(stats.t.ppf(0.5 + level / 2, dof), rel=1e-9)


def test_paired_interval_is_scipys_t_interval_of_the_differences():
    stats = pytest.importorskip("scipy.stats")
    a, b = [3.31, 3.42, 3.29, 3.40], [3.20, 3.25, 3.22, 3.27]
    d = np.subtract(a, b)
    lo, hi = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
    iv = paired_interval(a, b)
    assert (iv.mean, iv.lo, iv.hi, iv.n) == (pytest.approx(d.mean()), pytest.approx(lo),
                                             pytest.approx(hi), 4)  # fmt: skip
    assert iv.verdict() == "holds"  # lo = 0.043 > 0
    # by hand, 3 seeds: d = [0.1, 0.2, 0.3], sd 0.1, t(0.975, 2) = 4.3027 -> ± 0.2484
    iv = paired_interval([1.1, 1.2, 1.3], [1.0, 1.0, 1.0])
    assert (iv.lo, iv.hi) == pytest.approx((0.2 - 0.2484138, 0.2 + 0.2484138), abs=1e-6)
    assert iv.verdict() == "inconclusive"


def test_interval_verdicts_and_bounds():
    assert Interval(0.5, 0.1, 0.9, 3).verdict() == "holds"
    assert Interval(-0.5, -0.9, -0.1, 3).verdict() == "does not hold"
    assert Interval(0.1, -0.1, 0.3, 3).verdict() == "inconclusive"
    assert Interval(0.5, 0.1, 0.9, 1).verdict() == "inconclusive"  # one seed
    # censored differences: a lower bound below 0 says nothing, an upper bound above 0 neither
    assert Interval(-0.5, -0.9, -0.1, 3, bound="lower").verdict() == "inconclusive"
    assert Interval(0.5, 0.1, 0.9, 3, bound="upper").verdict() == "inconclusive"
    assert Interval(0.5, 0.1, 0.9, 3, bound="lower").verdict() == "holds"
    # every variant seed diverged, no reference seed did: +inf differences hold
    assert paired_interval([math.inf, math.inf], [3.0, 3.1]).verdict() == "holds"
    assert paired_interval([math.inf, 4.0], [3.0, 3.1]).verdict() == "inconclusive"


def test_lr_sensitivity_is_wortsmans_formula_by_hand():
    # initial loss 7.0 for every run; finals 4.0, 3.0, 6.0, diverged (counts as 7.0):
    # mean(min(loss, 7)) = (4 + 3 + 6 + 7) / 4 = 5.0, best 3.0 -> sensitivity 2.0
    a = arm("v", [3.0], sweep={1e-3: 4.0, 3e-3: 3.0, 1e-2: 6.0, 3e-2: math.inf})
    assert a.lr_sensitivity() == pytest.approx(2.0)
    assert a.largest_stable_lr(6.5) == 1e-2  # 3e-2 diverged; 1e-2 ends below 6.5
    # a run that ends at or above the unigram loss learned only frequencies: not stable
    assert a.largest_stable_lr(6.0) == 3e-3
    b = arm("v", [3.0], sweep={1e-3: 3.0, 3e-3: 7.5})
    assert b.largest_stable_lr(5.8) == 1e-3
    assert arm("v", [6.0], sweep={1e-3: 6.0}).largest_stable_lr(5.8) is None
    # a run a few hundredths below the unigram loss is still on the plateau
    assert arm("v", [5.77], sweep={1e-3: 5.77}).largest_stable_lr(5.8) is None
    assert b.lr_sensitivity() == pytest.approx((3.0 + 7.0) / 2 - 3.0)


def test_mean_sd_text():
    assert mean_sd([1.0, 2.0, 3.0]) == "2.000 ± 1.000"
    assert mean_sd([]) == "—"
    assert mean_sd([2.0, math.inf, math.inf]) == "2.000, 2/3 diverged"


def test_steps_to_target_interpolates_and_censors():
    r = run(evals=[5.0, 4.0, 3.0])  # at steps 20, 40, 60
    assert r.steps_to(3.5, budget=60).value == pytest.approx(50.0)  # halfway from 40 to 60
    assert r.steps_to(5.5, budget=60).value == pytest.approx(20.0)  # at the first eval
    never = r.steps_to(2.0, budget=60)
    assert (never.value, never.censored, str(never)) == (60.0, True, "> 60")
    assert r.final_val == 3.0 and run(evals=[5.0], diverged=True).final_val == math.inf


def test_peak_grad_norm_and_logit_are_the_max_over_every_step():
    norms = [0.5, 3.2, 1.0, 2.9, 0.7]
    r = run(grad_norms=norms, logits=(1.5, 4.0))
    assert r.peak_grad_norm == max(norms) and r.peak_logit == 4.0
    assert run(grad_norms=[1.0, math.inf, 2.0]).peak_grad_norm == math.inf


def test_roughness_is_the_sd_of_step_to_step_changes_after_warmup():
    r = run(grad_norms=[1.0] * 6)  # losses: 7.0 at step 1, then 5.0
    for step, loss in zip(range(1, 7), [7.0, 5.0, 4.0, 4.5, 3.5, 3.0]):
        r.steps[step - 1]["loss"] = loss
    # after step 2: losses 4.0, 4.5, 3.5, 3.0 -> changes +0.5, -1.0, -0.5
    assert r.roughness(after=2) == pytest.approx(np.std([0.5, -1.0, -0.5], ddof=1))


def test_band_is_mean_min_max_over_seeds_per_step():
    xs, mean, lo, hi = band([([1, 2], [1.0, 4.0]), ([1, 2, 3], [3.0, 2.0, 7.0])])
    assert xs == [1, 2, 3]
    assert mean == [2.0, 3.0, 7.0] and lo == [1.0, 2.0, 7.0] and hi == [3.0, 4.0, 7.0]
    xs, mean, _, _ = band([([0, 1, 2, 3], [4.0, 2.0, 6.0, 0.0])], smooth=2)
    assert mean == pytest.approx([4.0, 3.0, 4.0, 3.0])
