"""Each kind of claim judged from hand-made runs whose answer is known."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from gpt2lab.experiments.verdicts import CLAIMS, Run, assess

CLAIM = {c.variant: c for c in CLAIMS}
V = 1024


def run(variant, seed, evals, grad_norms=(1.0,), nonfinite=None):
    """A finished run: eval records at steps 20, 40, …; train records with grad norms."""
    records = [{"kind": "train", "step": i + 1, "loss": 5.0, "grad_norm": g}
               for i, g in enumerate(grad_norms)]  # fmt: skip
    records += [{"kind": "eval", "step": 20 * (i + 1), "val_loss": v} for i, v in enumerate(evals)]
    result = {"stopped": "nonfinite" if nonfinite else "completed", "step": 20 * len(evals),
              "nonfinite": nonfinite}  # fmt: skip
    return Run(variant, seed, Path("."), result, records)


def ctx(baseline_final):
    return {"target": baseline_final * 1.1, "steps": 100, "uniform_loss": math.log(V),
            "baseline_loss": baseline_final}  # fmt: skip


BASE = [run("baseline", s, [5.0, 4.0, 3.5, 3.2, 3.0 + 0.01 * s]) for s in range(3)]


@pytest.mark.parametrize(("diverged", "verdict"), [(3, "holds"), (0, "does not hold"), (1, "inconclusive")])  # fmt: skip
def test_divergence_counts_seeds(diverged, verdict):
    boom = {"step": 7, "where": "blocks.2.hook_attn_out", "layer": 2}
    runs = [
        run("no_layernorm", s, [5.0], nonfinite=boom if s < diverged else None) for s in range(3)
    ]
    v = assess(CLAIM["no_layernorm"], {"baseline": BASE, "no_layernorm": runs}, ctx(3.01))
    assert v.verdict == verdict
    if diverged:
        assert f"{diverged}/3 seeds diverged: s0 at step 7 (blocks.2.hook_attn_out)" in v.evidence


def test_exploding_gradients_need_ten_times_the_peak_beyond_the_spread():
    # log10 peaks: variant [2, 2.301] vs baseline [0, 0.0792]; d = 2.111 - 1 = 1.111,
    # pooled sd = sqrt((0.04531 + 0.00314) / 2) = 0.1557 -> 2σ = 0.311 < d: holds
    base = [run("baseline", s, [3.0], grad_norms=[0.5, g]) for s, g in enumerate([1.0, 1.2])]
    big = [run("no_attn_scale", s, [3.0], grad_norms=[g, 2.0]) for s, g in enumerate([100, 200])]
    v = assess(CLAIM["no_attn_scale"], {"baseline": base, "no_attn_scale": big}, ctx(3.0))
    assert v.verdict == "holds"
    assert v.values["variant"] == pytest.approx([2.0, math.log10(200)])
    small = [run("no_attn_scale", s, [3.0], grad_norms=[g]) for s, g in enumerate([2.0, 2.5])]
    v = assess(CLAIM["no_attn_scale"], {"baseline": base, "no_attn_scale": small}, ctx(3.0))
    assert v.verdict == "does not hold"  # 2× is no explosion


def test_sigmoid_barely_learns_is_a_share_of_the_baselines_drop():
    # baseline drop: ln 1024 - 3.01 = 3.9215; finals 6.5, 6.6 -> shares 0.1099, 0.0844
    sig = [run("sigmoid", s, [6.9, 6.5 + 0.1 * s]) for s in range(2)]
    v = assess(CLAIM["sigmoid"], {"baseline": BASE, "sigmoid": sig}, ctx(3.01))
    assert v.values["share"] == pytest.approx([(math.log(V) - 6.5) / (math.log(V) - 3.01),
                                               (math.log(V) - 6.6) / (math.log(V) - 3.01)])  # fmt: skip
    assert v.verdict == "holds"
    good = [run("sigmoid", s, [3.1 + 0.01 * s]) for s in range(2)]
    assert assess(CLAIM["sigmoid"], {"baseline": BASE, "sigmoid": good}, ctx(3.01)).verdict == "does not hold"  # fmt: skip


def test_slower_uses_steps_to_the_target_and_loss_claims_the_final_loss():
    # target 3.311: the baseline crosses between step 60 (3.5) and 80 (3.2) at 72.6;
    # the slow variant reaches it only at its last evaluation (step 100)
    slow = [run("relu", s, [6.0, 5.0, 4.5, 4.0, 3.3 - 0.01 * s]) for s in range(3)]
    c = ctx(3.01)
    v = assess(CLAIM["relu"], {"baseline": BASE, "relu": slow}, c)
    assert v.values["baseline"] == pytest.approx([60 + (3.5 - 3.311) / 0.3 * 20] * 3)
    assert v.verdict == "holds"
    v = assess(CLAIM["fewer_heads"], {"baseline": BASE, "fewer_heads": slow}, c)
    assert v.verdict == "holds" and v.values["variant"] == [3.3, 3.29, 3.28]
    v = assess(CLAIM["post_norm"], {"baseline": BASE, "post_norm": []}, c)
    assert v.verdict == "not run"
