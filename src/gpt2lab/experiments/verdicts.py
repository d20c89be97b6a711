"""What a suite's runs measured and what it means: the runs read back, the verdict rule, the
claims and their assessment, and curves over seeds (mean ± spread).

How a claim is judged (the same rule for all, using the spread over seeds):

    d  = mean(variant) − mean(reference) − margin       signed so that d > 0 is the claim
    s  = pooled standard deviation of the two samples   (a fixed reference has none)
    holds            if d >  2·s
    does not hold    if d < −2·s
    inconclusive     otherwise, or with fewer than 2 seeds (no spread to judge by)

>>> judge([3.2, 3.3, 3.4], [3.0, 3.0, 3.1])[2]
'holds'
>>> judge([3.0, 3.5, 2.5], [3.0, 3.0, 3.1])[2]
'inconclusive'
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gpt2lab.errors import GPT2LabError
from gpt2lab.experiments.runner import read_result, run_name
from gpt2lab.plots.training import curve, layer_matrix
from gpt2lab.train.metrics import read_metrics

TARGET_SLACK = 0.10
"""'Steps to target': steps to reach the baseline's mean final val loss plus 10%."""
EXPLODE_DECADES = 1.0
"""'Gradients explode': a peak pre-clip gradient norm at least 10× (1 decade) the baseline's."""
BARELY_LEARNS = 0.5
"""'Barely learns': less than half of the baseline's drop from the uniform loss ln(V)."""

# ---------------------------------------------------------------------------------------------
# The verdict rule
# ---------------------------------------------------------------------------------------------


def pooled_sd(a: list[float], b: list[float]) -> float:
    """sqrt(((na−1)·var(a) + (nb−1)·var(b)) / (na + nb − 2)); a single value adds no spread.

    >>> round(pooled_sd([1.0, 3.0], [2.0, 2.0]), 4)     # sqrt((2 + 0) / 2)
    1.0
    """
    dof = len(a) + len(b) - 2
    if dof <= 0:
        return math.nan
    ss = sum((x - np.mean(a)) ** 2 for x in a) + sum((x - np.mean(b)) ** 2 for x in b)
    return math.sqrt(ss / dof)


def judge(variant: list[float], reference: list[float], margin: float = 0.0):
    """(d, s, verdict) for the claim 'variant exceeds reference by more than margin'.

    A non-finite value is a run that diverged: if every variant run is +inf and every
    reference run finite, the claim holds; any other mix of infinities is inconclusive.
    """
    a, b = np.asarray(variant, float), np.asarray(reference, float)
    if len(a) == 0 or len(b) == 0:
        return math.nan, math.nan, "inconclusive"
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        if np.isposinf(a).all() and np.isfinite(b).all():
            return math.inf, math.nan, "holds"
        return math.nan, math.nan, "inconclusive"
    d = float(a.mean() - b.mean() - margin)
    s = pooled_sd(list(a), list(b))
    if len(a) < 2 or not math.isfinite(s):
        return d, s, "inconclusive"
    if d > 2 * s:
        return d, s, "holds"
    if d < -2 * s:
        return d, s, "does not hold"
    return d, s, "inconclusive"


# ---------------------------------------------------------------------------------------------
# What one run measured
# ---------------------------------------------------------------------------------------------


@dataclass
class Run:
    """One finished (variant, seed) run, read back from its directory."""

    variant: str
    seed: int
    directory: Path
    result: dict[str, Any]
    records: list[dict[str, Any]]

    @property
    def diverged(self) -> bool:
        return self.result["stopped"] == "nonfinite"

    @property
    def final_val(self) -> float:
        """The last evaluation at the final step; +inf for a run that diverged."""
        if self.diverged:
            return math.inf
        steps, values = curve(self.records, "eval", "val_loss")
        return values[-1] if steps and steps[-1] == self.result["step"] else math.inf

    @property
    def peak_grad_norm(self) -> float:
        """Largest pre-clip global gradient norm of any step (inf/NaN count as inf)."""
        norms = [r["grad_norm"] for r in self.records if r["kind"] in ("train", "nonfinite")]
        return max((n if math.isfinite(n) else math.inf for n in norms), default=math.nan)

    def steps_to(self, target: float, budget: int) -> float:
        """First step where the val curve reaches `target` (linear between evaluations);
        `budget` when it never does (a lower bound of the true value)."""
        steps, values = curve(self.records, "eval", "val_loss")
        prev_step, prev_value = 0, math.inf
        for step, value in zip(steps, values):
            if value <= target:
                if not math.isfinite(prev_value):
                    return float(step)
                return prev_step + (prev_value - target) / (prev_value - value) * (step - prev_step)
            prev_step, prev_value = step, value
        return float(budget)


def load_runs(suite_dir: Path, plan: dict[str, Any]) -> dict[str, list[Run]]:
    """{variant: finished runs, by seed}; unfinished or failed runs are left out."""
    runs: dict[str, list[Run]] = {}
    for v in plan["variants"]:
        found = []
        for seed in plan["seeds"]:
            directory = suite_dir / "runs" / run_name(v["name"], seed)
            result = read_result(directory)
            if result is not None:
                found.append(Run(v["name"], seed, directory, result, read_metrics(directory)))
        runs[v["name"]] = found
    return runs


# ---------------------------------------------------------------------------------------------
# Claims
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    text: str
    variant: str
    test: str
    """diverges | explodes | higher_loss | slower | barely_learns (see TESTS)."""
    diagnose: bool = False
    """Draw this variant's gradient-norm and activation-RMS curves (they explain the outcome)."""


CLAIMS = (
    Claim("removing layer norm makes training diverge", "no_layernorm", "diverges", True),
    Claim(
        "no 1/sqrt(d) attention scaling makes gradients explode", "no_attn_scale", "explodes", True
    ),
    Claim("no positional encoding gives a higher loss (and word salad)", "no_pos", "higher_loss"),
    Claim("ReLU trains slower than GELU", "relu", "slower"),
    Claim("sigmoid barely learns", "sigmoid", "barely_learns"),
    Claim("pre-norm beats post-norm", "post_norm", "higher_loss"),
    Claim(
        "GPT-2's scaled init converges faster than PyTorch's default", "torch_init", "slower", True
    ),
    Claim("learned positions converge faster than sinusoidal", "sinusoidal", "slower"),
    Claim("fewer heads (equal width) is worse", "fewer_heads", "higher_loss"),
)

RULES = {
    "diverges": "holds if every seed (≥ 2) goes non-finite, does not hold if none does",
    "explodes": "log10 peak pre-clip ‖g‖ − baseline's − 1 (10×) > 2σ",
    "higher_loss": "final val loss − baseline's > 2σ",
    "slower": f"steps to baseline loss +{TARGET_SLACK:.0%} − baseline's > 2σ",
    "barely_learns": f"{BARELY_LEARNS} − share of baseline's loss drop from ln V > 2σ",
}


@dataclass
class Verdict:
    claim: Claim
    evidence: str
    verdict: str
    values: dict[str, list[float]] = field(default_factory=dict)


def mean_sd(values: list[float], digits: int = 3) -> str:
    """'3.412 ± 0.021' (sample sd over seeds); infinities are counted as diverged runs.

    >>> mean_sd([3.0, 3.5, 4.0]), mean_sd([3.0, float("inf")]), mean_sd([120.0], 0)
    ('3.500 ± 0.500', '3.000, 1/2 diverged', '120')
    """
    if not values:
        return "—"
    a = np.asarray(values, float)
    if not np.isfinite(a).all():
        finite = a[np.isfinite(a)]
        kept = f"{finite.mean():.{digits}f}, " if len(finite) else ""
        return f"{kept}{len(a) - len(finite)}/{len(a)} diverged"
    sd = f" ± {a.std(ddof=1):.{digits}f}" if len(a) > 1 else ""
    return f"{a.mean():.{digits}f}{sd}"


def assess(claim: Claim, runs: dict[str, list[Run]], ctx: dict[str, Any]) -> Verdict:
    """Measure the claim's evidence from the runs and apply its rule."""
    mine, base = runs.get(claim.variant, []), runs.get("baseline", [])
    if not mine or not base:
        return Verdict(claim, "not run", "not run")
    if claim.test == "diverges":
        k = sum(r.diverged for r in mine)
        where = ", ".join(
            f"s{r.seed} at step {r.result['nonfinite']['step']} ({r.result['nonfinite']['where']})"
            for r in mine
            if r.diverged and r.result.get("nonfinite")
        )
        verdict = "inconclusive"
        if len(mine) >= 2 and k in (0, len(mine)):
            verdict = "holds" if k else "does not hold"
        loss = mean_sd([r.final_val for r in mine])
        text = f"{k}/{len(mine)} seeds diverged{': ' + where if where else ''}; val loss {loss}"
        return Verdict(claim, text, verdict, {"diverged": [float(r.diverged) for r in mine]})
    if claim.test == "explodes":
        a = [math.log10(r.peak_grad_norm) for r in mine]
        b = [math.log10(r.peak_grad_norm) for r in base]
        d, s, verdict = judge(a, b, EXPLODE_DECADES)
        text = (
            f"peak ‖g‖ {mean_sd([r.peak_grad_norm for r in mine])} vs baseline "
            f"{mean_sd([r.peak_grad_norm for r in base])}; log10 ratio "
            f"{np.mean(a) - np.mean(b):+.2f} decades (2σ = {2 * s:.2f})"
        )
        return Verdict(claim, text, verdict, {"variant": a, "baseline": b})
    if claim.test == "higher_loss":
        a, b = [r.final_val for r in mine], [r.final_val for r in base]
        d, s, verdict = judge(a, b)
        text = f"val loss {mean_sd(a)} vs {mean_sd(b)} (Δ {d:+.3f}, 2σ = {2 * s:.3f})"
        return Verdict(claim, text, verdict, {"variant": a, "baseline": b})
    if claim.test == "slower":
        target, budget = ctx["target"], ctx["steps"]
        a = [r.steps_to(target, budget) for r in mine]
        b = [r.steps_to(target, budget) for r in base]
        d, s, verdict = judge(a, b)
        text = (
            f"steps to val loss {target:.3f}: {mean_sd(a, 0)} vs {mean_sd(b, 0)} "
            f"(Δ {d:+.1f}, 2σ = {2 * s:.1f}; {budget} = not reached)"
        )
        return Verdict(claim, text, verdict, {"variant": a, "baseline": b})
    if claim.test == "barely_learns":
        uniform, drop = ctx["uniform_loss"], ctx["uniform_loss"] - ctx["baseline_loss"]
        share = [(uniform - r.final_val) / drop for r in mine]
        d, s, verdict = judge([-x for x in share], [-BARELY_LEARNS])
        text = (
            f"share of the baseline's loss drop from ln V = {uniform:.3f}: {mean_sd(share)} "
            f"(threshold {BARELY_LEARNS}, 2σ = {2 * s:.3f})"
        )
        return Verdict(claim, text, verdict, {"share": share})
    raise GPT2LabError(f"unknown claim test {claim.test!r}")


# ---------------------------------------------------------------------------------------------
# Curves over seeds
# ---------------------------------------------------------------------------------------------


def band(curves: list[tuple[list[float], list[float]]], smooth: int = 1):
    """Mean, min and max over seeds at each x that any seed reached: (x, mean, lo, hi).

    smooth > 1 applies a trailing moving average of that many points to each seed first.
    """
    table: dict[float, list[float]] = {}
    for xs, ys in curves:
        ys = np.asarray(ys, float)
        if smooth > 1 and len(ys):
            kernel = np.ones(min(smooth, len(ys))) / min(smooth, len(ys))
            ys = np.convolve(ys, kernel, mode="full")[: len(ys)] * _edge(len(ys), len(kernel))
        for x, y in zip(xs, ys):
            if math.isfinite(y):
                table.setdefault(x, []).append(float(y))
    xs = sorted(table)
    return (
        xs,
        [float(np.mean(table[x])) for x in xs],
        [min(table[x]) for x in xs],
        [max(table[x]) for x in xs],
    )


def _edge(n: int, k: int) -> np.ndarray:
    """Rescale the first k−1 points of a 'full' convolution (fewer points were averaged)."""
    return np.array([k / min(i + 1, k) for i in range(n)])


def depth_band(runs: list[Run], layers: list[str], key: str, which: int, field_name=None):
    """A monitor statistic by depth at monitor record `which` (0 first, −1 last); x is the
    index in `layers` (embed, block0, …, final)."""
    per_seed = []
    for r in runs:
        steps, found, values = layer_matrix(r.records, key, field_name)
        if steps:
            per_seed.append(([layers.index(name) for name in found], list(values[:, which])))
    return band(per_seed)
