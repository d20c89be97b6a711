"""Each rule function of RULES judged on hand-made runs whose answer is known: holds, does
not hold, inconclusive, and (for steps to a target) censored."""

from __future__ import annotations

import math

import pytest

from gpt2lab.experiments.measures import AttentionStats
from gpt2lab.experiments.verdicts import CLAIMS, EXTRAS, RULES, assess

from .runs import arm, evidence

CLAIM = {c.variant: c for c in CLAIMS}
BASE = arm("baseline", [3.00, 3.10, 3.05])


def test_every_claim_kind_has_a_rule_and_every_seed_claim_a_row():
    assert {c.kind for c in CLAIMS} <= set(RULES)
    assert {e for c in CLAIMS for e in c.extras} <= set(EXTRAS)
    variants = {c.variant for c in CLAIMS}
    for name in ("no_layernorm", "no_attn_scale", "no_pos", "sinusoidal", "relu", "sigmoid",
                 "post_norm", "no_residual_scaling", "fewer_heads", "no_softmax"):  # fmt: skip
        assert name in variants


@pytest.mark.parametrize(
    ("finals", "verdict"),
    [([3.30, 3.42, 3.33], "holds"), ([2.80, 2.85, 2.82], "does not hold"),
     ([3.40, 2.70, 3.20], "inconclusive"), ([3.5], "inconclusive")],
)  # fmt: skip
def test_higher_loss(finals, verdict):
    v = assess(CLAIM["fewer_heads"], evidence(BASE, arm("fewer_heads", finals)))
    assert v.verdict == verdict
    if len(finals) == 3:  # the interval of the paired differences, by hand for the first
        d = [a - b for a, b in zip(finals, BASE.losses)]
        assert v.interval.mean == pytest.approx(sum(d) / 3)


CURVE = [5.0, 4.0, 3.5, 3.2, 3.0]  # val at steps 20 … 100; target 3.05·1.1 = 3.355 at 63.3


@pytest.mark.parametrize(
    ("curves", "verdict", "bound"),
    [([[6.0, 5.0, 4.0, 3.5, 3.3]] * 3, "holds", ""),           # reached at ~93
     ([[4.0, 3.3, 3.1, 3.0, 2.9]] * 3, "does not hold", ""),   # reached at ~37
     ([[6.0, 5.0, 4.5, 4.0, 3.8]] * 3, "holds", "lower"),      # never: > 100, a lower bound
     ([[4.0, 3.3, 3.1, 3.0, 2.9], [6.0, 5.0, 4.5, 4.0, 3.8], [4.0, 3.3, 3.1, 3.0, 2.9]],
      "inconclusive", "lower")],                                # one seed censored
)  # fmt: skip
def test_slower_with_censoring(curves, verdict, bound):
    base = arm("baseline", [c[-1] for c in [CURVE] * 3], curves=[CURVE, CURVE, CURVE])
    relu = arm("relu", [c[-1] for c in curves], curves=curves)
    v = assess(CLAIM["relu"], evidence(base, relu))
    assert (v.verdict, v.values["bound"]) == (verdict, bound)
    assert v.values["reference"] == pytest.approx([60 + (3.5 - 3.3) / 0.3 * 20] * 3)
    if bound == "lower":
        assert "> 100" in v.evidence and "ratio > " in v.evidence  # never a made-up ratio
    assert "loss-curve roughness" in v.evidence and "over the unigram loss" in v.evidence


def test_slower_censored_on_both_sides_is_inconclusive():
    flat = [[6.0, 5.9, 5.8, 5.8, 5.8]] * 3  # the reference never reaches its own +10% either
    base = arm("baseline", [5.8] * 3, curves=[[6.0, 5.0, 4.0, 3.5, 3.0], *flat[:2]])
    v = assess(CLAIM["relu"], evidence(base, arm("relu", [5.8] * 3, curves=flat)))
    assert v.verdict == "inconclusive" and "unknown" in v.evidence


@pytest.mark.parametrize(
    ("finals", "verdict"),
    [([5.70, 5.75, 5.72], "holds"),            # shares ≈ 0.04: barely learns
     ([3.20, 3.30, 3.25], "does not hold"),    # shares ≈ 0.93
     ([4.50, 5.60, 3.40], "inconclusive")],
)  # fmt: skip
def test_barely_learns_is_a_share_of_the_improvement_over_the_unigram_loss(finals, verdict):
    v = assess(CLAIM["sigmoid"], evidence(BASE, arm("sigmoid", finals), unigram=5.8))
    assert v.verdict == verdict
    assert v.values["share"] == pytest.approx(
        [(5.8 - a) / (5.8 - b) for a, b in zip(finals, BASE.losses)]
    )


GRID = (1e-3, 3e-3, 1e-2, 3e-2)


@pytest.mark.parametrize(
    ("variant_sweep", "verdict"),
    [((3.5, 3.3, math.inf, math.inf), "holds"),          # fails at 1e-2 where the baseline trains
     ((3.5, 3.3, 3.2, 3.6), "does not hold"),            # stable wherever the baseline is
     ((7.5, 7.2, math.inf, math.inf), "inconclusive")],  # never stable: nothing to compare
)  # fmt: skip
def test_unstable_reads_the_largest_stable_lr_of_the_sweep(variant_sweep, verdict):
    base = arm("baseline", [3.0, 3.1, 3.05], sweep=dict(zip(GRID, (3.4, 3.1, 3.0, math.inf))))
    mine = arm("no_layernorm", [3.3, 3.4, 3.35], sweep=dict(zip(GRID, variant_sweep)))
    v = assess(CLAIM["no_layernorm"], evidence(base, mine))
    assert v.verdict == verdict
    if verdict == "holds":
        assert v.values["separating_lrs"] == [1e-2]
        assert v.values["largest_stable_lr"] == [3e-3, 1e-2]


def test_needs_warmup_compares_the_stable_lr_range_lost():
    # unigram loss 5.8: runs ending at 5.83 sit on the frequency plateau and do not count
    sweeps = {
        "baseline": (3.4, 3.1, 3.0, 4.2),  # stable up to 3e-2 with warmup ...
        "baseline_no_warmup": (3.9, 4.4, 4.5, 5.2),  # ... and without: nothing lost
        "post_norm": (4.2, 3.8, 5.83, 5.84),  # stable up to 3e-3 with warmup
        "post_norm_no_warmup": (4.5, 5.83, 5.83, 5.83),  # 1e-3 without: one lr lost
    }
    finals = {"baseline": [3.0, 3.1, 3.05], "baseline_no_warmup": [3.9, 3.95, 3.9],
              "post_norm": [3.8, 3.9, 3.85], "post_norm_no_warmup": [4.5, 4.6, 4.55]}  # fmt: skip

    def judge(**changes):
        s = {**sweeps, **changes}
        arms = [arm(n, finals[n], sweep=dict(zip(GRID, s[n]))) for n in sweeps]
        return assess(claim, evidence(*arms))

    claim = next(c for c in CLAIMS if c.kind == "needs_warmup")
    v = judge()
    assert v.verdict == "holds"
    assert v.values["lost"] == [1, 0]
    assert v.values["post"] == pytest.approx([0.7, 0.7, 0.7])  # the loss cost, reported
    assert judge(post_norm_no_warmup=sweeps["post_norm"]).verdict == "does not hold"
    # pre-norm losing as much as post-norm: no more need for warmup
    assert judge(baseline_no_warmup=(3.9, 4.4, 5.9, 5.9)).verdict == "does not hold"
    # post-norm never trains, even with warmup: nothing to lose, nothing to conclude
    assert judge(post_norm=(5.9, 5.9, 5.9, 5.9)).verdict == "inconclusive"


def stats(roles):
    return AttentionStats(0.3, 0.5, 2.0, [0.1, -0.2], roles)


def test_head_roles_stable_across_seeds_or_not():
    a, b, c = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]
    same = [stats([a, b]), stats([b, a]), stats([a, b])]  # heads swap, roles identical
    mixed = [stats([a, b]), stats([c, a]), stats([b, c])]  # roles change with the seed
    ev = evidence(BASE, arm("no_softmax", [3.4, 3.5, 3.45]))
    ev.attention, ev.n_layer = (
        {"baseline": same, "no_softmax": mixed},
        {"baseline": 1, "no_softmax": 1},
    )
    v = assess(CLAIM["no_softmax"], ev)
    assert v.values["reference"] == pytest.approx([1.0, 1.0, 1.0])
    assert v.verdict == "holds" and "negative weights 30.0" in v.evidence
    ev.attention = {"baseline": mixed, "no_softmax": same}
    assert assess(CLAIM["no_softmax"], ev).verdict == "does not hold"


def test_a_claim_whose_variant_did_not_run():
    assert assess(CLAIM["post_norm"], evidence(BASE)).verdict == "not run"
