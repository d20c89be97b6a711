"""The claims of the seed article, how each is measured, and the rule that judges it.

Every claim compares a variant with its reference (the baseline, or `deep` for the depth
claims), each at its own best learning rate (runner.py), seed s against seed s (the same
batches; the same initial weights where the shapes agree). A claim's rule computes per-seed
differences d_s signed so that d > 0 is what the claim says, and a paired Student-t 95%
interval for their mean:

    holds            the interval lies above 0
    does not hold    it lies below 0
    inconclusive     it contains 0, or fewer than 2 seeds (no interval)

Steps to a target are censored when a run never reaches it: the difference is then a lower
bound, so only "holds" can follow from it, and a ratio is reported as a bound ("> 2.1×").
The stability claims are judged on the learning-rate sweep (seed 0) instead: they hold when
the variant fails at a learning rate where the reference trains.

One small rule function per kind of claim, in RULES (kind -> function).

>>> paired_interval([3.2, 3.3, 3.4], [3.0, 3.0, 3.1]).verdict()
'holds'
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from gpt2lab.experiments.measures import (
    PLATEAU_MARGIN,
    AttentionStats,
    Censored,
    Run,
    role_agreement,
)
from gpt2lab.experiments.runner import RunKey, best_of, run_name

LEVEL = 0.95
STABLE = f"stable = finite and at least {PLATEAU_MARGIN:g} below the unigram loss"
"""How the stability rules read a run (`Run.trains`), in the report's words."""
"""Confidence level of every interval (two-sided)."""
TARGET_SLACK = 0.10
"""'Steps to target': steps to reach the reference's mean final val loss plus 10%."""
BARELY_LEARNS = 0.5
"""'Barely learns': less than half of the reference's improvement over the unigram loss."""

# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------


def t_cdf_two_sided(t: float, dof: int) -> float:
    """P(|T| < t) for Student's t with an integer number of degrees of freedom, from the
    closed form (Abramowitz & Stegun 26.7.3–4) with θ = atan(t / sqrt(dof)).

    >>> round(t_cdf_two_sided(4.302652729911275, 2), 6)   # the 95% point for 2 dof
    0.95
    """
    theta = math.atan(abs(t) / math.sqrt(dof))
    s, c = math.sin(theta), math.cos(theta)
    if dof % 2 == 1:
        return (2 / math.pi) * (theta + s * sum_odd(c, dof))
    total, term = 0.0, 1.0
    for k in range(dof // 2):
        total += term
        term *= c * c * (2 * k + 1) / (2 * k + 2)
    return s * total


def sum_odd(c: float, dof: int) -> float:
    """c + (2/3) c³ + (2·4)/(3·5) c⁵ + … up to c^(dof−2): the odd-dof series (0 for 1 dof)."""
    total, term = 0.0, c
    for k in range(1, (dof - 1) // 2 + 1):
        total += term
        term *= c * c * (2 * k) / (2 * k + 1)
    return total


def t_quantile(level: float, dof: int) -> float:
    """The t with P(|T| < t) = level (bisection on the closed-form CDF).

    >>> round(t_quantile(0.95, 2), 3), round(t_quantile(0.95, 10), 3)
    (4.303, 2.228)
    """
    lo, hi = 0.0, 1.0
    while t_cdf_two_sided(hi, dof) < level:
        hi *= 2
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_cdf_two_sided(mid, dof) < level else (lo, mid)
    return (lo + hi) / 2


@dataclass(frozen=True)
class Interval:
    """A mean of per-seed differences with its two-sided t interval (lo, hi) at `level`.

    `bound`: "lower" when the differences are lower bounds (a censored variant), "upper"
    when upper bounds; then only the matching verdict can be drawn."""

    mean: float
    lo: float
    hi: float
    n: int
    level: float = LEVEL
    bound: str = ""

    def verdict(self) -> str:
        if self.n < 2 or math.isnan(self.lo) or self.bound == "both":
            return "inconclusive"
        if self.lo > 0 and self.bound != "upper":
            return "holds"
        if self.hi < 0 and self.bound != "lower":
            return "does not hold"
        return "inconclusive"

    def __str__(self) -> str:
        if self.n < 2:
            return f"{self.mean:+.3g} (n = {self.n}: no interval)"
        kind = {"lower": " (lower bound)", "upper": " (upper bound)"}.get(self.bound, "")
        return f"{self.mean:+.3g} [{self.lo:+.3g}, {self.hi:+.3g}]{kind}"


def paired_interval(a: list[float], b: list[float], *, level: float = LEVEL, bound="") -> Interval:
    """Interval for mean(a_s − b_s) over the seeds both have (a, b in seed order).

    A difference of +inf (the variant diverged, the reference did not) is a lower bound of
    anything: with every difference +inf the interval is [inf, inf] (holds); a mix of
    infinite and finite differences gives no interval.
    """
    d = np.asarray(a[: len(b)], float) - np.asarray(b[: len(a)], float)
    if len(d) and np.isposinf(d).all():
        return Interval(math.inf, math.inf, math.inf, len(d), level, bound)
    if not np.isfinite(d).all() or len(d) < 2:
        mean = float(d.mean()) if len(d) and np.isfinite(d).all() else math.nan
        return Interval(mean, math.nan, math.nan, len(d), level, bound)
    mean = float(d.mean())
    half = t_quantile(level, len(d) - 1) * float(d.std(ddof=1)) / math.sqrt(len(d))
    return Interval(mean, mean - half, mean + half, len(d), level, bound)


# ---------------------------------------------------------------------------------------------
# A variant as measured: its sweep and its seeds
# ---------------------------------------------------------------------------------------------


@dataclass
class Arm:
    """One variant of a suite: its lr sweep (seed 0) and its runs at the best lr, by seed."""

    name: str
    reference: str
    warmup: bool
    overrides: dict[str, Any]
    sweep: dict[float, Run]
    best_lr: float | None
    runs: list[Run]

    @property
    def losses(self) -> list[float]:
        return [r.final_val for r in self.runs]

    def largest_stable_lr(self, unigram: float) -> float | None:
        """The largest lr of the sweep whose run is stable: finite, and clearly below the
        unigram loss (`Run.trains`)."""
        return max((lr for lr, r in self.sweep.items() if r.trains(unigram)), default=None)

    def lr_sensitivity(self) -> float:
        """Wortsman et al. (2023): mean over the sweep of min(loss(η), initial loss) − the
        best loss (a diverged run counts as the initial loss). 0: every lr as good as the
        best; large: the result depends on finding the right lr."""
        if not self.sweep:
            return math.nan
        initial = float(np.mean([r.initial_loss for r in self.sweep.values()]))
        capped = [min(r.final_val, initial) for r in self.sweep.values()]
        return float(np.mean(capped) - min(capped))


def load_arms(suite_dir: Path, plan: dict[str, Any]) -> dict[str, Arm]:
    """{variant: Arm} from the finished runs (unfinished or failed runs are left out)."""
    lrs = plan["budget"]["lrs"]
    arms = {}
    for v in plan["variants"]:

        def read(lr, seed, name=v["name"]):
            return Run.read(RunKey(name, lr, seed), suite_dir / "runs" / run_name(name, lr, seed))

        sweep = {lr: run for lr in lrs if (run := read(lr, 0)) is not None}
        best = best_of(lrs, [sweep[lr].result for lr in lrs]) if len(sweep) == len(lrs) else None
        runs = [] if best is None else [r for s in plan["seeds"] if (r := read(best, s))]
        arms[v["name"]] = Arm(
            v["name"], v["reference"], v["warmup"], v["overrides"], sweep, best, runs
        )
    return arms


# ---------------------------------------------------------------------------------------------
# Claims
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    text: str
    variant: str
    kind: str
    """A key of RULES."""
    reference: str = "baseline"
    partner: tuple[str, str] = ("", "")
    """needs_warmup: the (no-warmup, warmup) pair that should NOT need it (pre-norm)."""
    extras: tuple[str, ...] = ()
    """Measures reported besides the rule's (keys of EXTRAS)."""
    figures: tuple[str, ...] = ()
    """The report's pictures of this claim (default: those of its kind)."""


CLAIMS = (
    Claim("removing layer norm makes training diverge", "no_layernorm", "unstable"),
    Claim(
        "removing layer norm makes a deep model diverge",
        "deep_no_layernorm",
        "unstable",
        "deep",
    ),
    Claim("without the 1/sqrt(d) scaling training becomes unstable", "no_attn_scale", "unstable"),
    Claim(
        "no positional encoding gives a higher loss (and word salad)",
        "no_pos",
        "higher_loss",
        extras=("word_order",),
        figures=("loss", "lr", "extrapolation"),
    ),
    Claim(
        "learned positions converge faster than sinusoidal",
        "sinusoidal",
        "slower",
        figures=("loss", "extrapolation"),
    ),
    Claim("ReLU trains slower than GELU", "relu", "slower", extras=("roughness", "unigram_share")),
    Claim("sigmoid barely learns", "sigmoid", "barely_learns"),
    Claim("pre-norm beats post-norm", "post_norm", "higher_loss"),
    Claim("pre-norm beats post-norm in a deep model", "deep_post_norm", "higher_loss", "deep"),
    Claim(
        "post-norm needs learning-rate warmup (Xiong et al. 2020)",
        "post_norm_no_warmup",
        "unstable",
        "post_norm",
        figures=("warmup", "stability"),
    ),
    Claim(
        "post-norm needs learning-rate warmup more than pre-norm does (Xiong et al. 2020)",
        "post_norm_no_warmup",
        "needs_warmup",
        "post_norm",
        ("baseline_no_warmup", "baseline"),
    ),
    Claim(
        "a deep post-norm model needs warmup (Xiong et al. 2020)",
        "deep_post_norm_no_warmup",
        "unstable",
        "deep_post_norm",
        figures=("warmup", "stability"),
    ),
    Claim("GPT-2's 1/sqrt(2N) residual scaling converges faster", "no_residual_scaling", "slower"),
    Claim(
        "GPT-2's 1/sqrt(2N) residual scaling converges faster in a deep model",
        "deep_no_residual_scaling",
        "slower",
        "deep",
    ),
    Claim("GPT-2's init converges faster than PyTorch's default", "torch_default_init", "slower"),
    Claim("fewer heads (equal width) is worse", "fewer_heads", "higher_loss"),
    Claim(
        "without softmax, attention is not a distribution and heads do not specialize stably",
        "no_softmax",
        "unstable_roles",
    ),
)


@dataclass
class Evidence:
    """Everything the rules read: the arms, and what the report measured besides."""

    arms: dict[str, Arm]
    steps: int
    """The budget's steps: a censored steps-to-target is '> steps'."""
    warmup_steps: int
    unigram: float
    """Val loss of the unigram model fitted on the train split."""
    order: dict[str, list[float]] = field(default_factory=dict)
    """{variant: per-seed word-order sensitivity} (report.py measures it from the weights)."""
    attention: dict[str, list[AttentionStats]] = field(default_factory=dict)
    """{variant: per-seed attention statistics}."""
    n_layer: dict[str, int] = field(default_factory=dict)
    level: float = LEVEL
    """Confidence level of the intervals (a Bonferroni correction raises it)."""


@dataclass
class Verdict:
    """A claim's outcome: what was measured, the numbers, the interval, the word."""

    claim: Claim
    verdict: str
    measure: str
    """What the rule compares, in words."""
    evidence: str
    """The numbers, in a sentence."""
    interval: Interval | None = None
    change: str = ""
    """What it would take to change the verdict."""
    values: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    """The table's one-line result (default: the interval)."""

    def __post_init__(self) -> None:
        if not self.summary and self.interval is not None:
            self.summary = str(self.interval)


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


def lr_text(lr: float | None) -> str:
    return "none" if lr is None else f"{lr:g}"


# --- the rules ---------------------------------------------------------------------------------


def rule_higher_loss(claim: Claim, ev: Evidence) -> Verdict:
    """Final val loss, each at its best lr: variant − reference > 0."""
    mine, ref = ev.arms[claim.variant], ev.arms[claim.reference]
    iv = paired_interval(mine.losses, ref.losses, level=ev.level)
    text = (
        f"val loss {mean_sd(mine.losses)} (lr {lr_text(mine.best_lr)}) vs "
        f"{mean_sd(ref.losses)} (lr {lr_text(ref.best_lr)}); difference {iv}"
    )
    return Verdict(
        claim,
        iv.verdict(),
        "final val loss at each side's best lr, paired by seed",
        text,
        iv,
        change_text(iv),
        {"variant": mine.losses, "reference": ref.losses},
    )


def steps_text(values: list[Censored]) -> str:
    """'120 ± 5' or '> 200 (3/3 never reached)'."""
    censored = sum(v.censored for v in values)
    if censored:
        return f"> {max(v.value for v in values):.0f} ({censored}/{len(values)} never reached)"
    return mean_sd([v.value for v in values], 0)


def rule_slower(claim: Claim, ev: Evidence) -> Verdict:
    """Steps to reach the reference's mean final loss + 10%, censored at the budget."""
    mine, ref = ev.arms[claim.variant], ev.arms[claim.reference]
    target = float(np.mean(ref.losses)) * (1 + TARGET_SLACK)
    a = [r.steps_to(target, ev.steps) for r in mine.runs]
    b = [r.steps_to(target, ev.steps) for r in ref.runs]
    censored = (any(x.censored for x in a), any(x.censored for x in b))
    bound = {(True, False): "lower", (False, True): "upper", (True, True): "both"}.get(censored, "")
    iv = paired_interval([x.value for x in a], [x.value for x in b], bound=bound, level=ev.level)
    ratio = np.mean([x.value for x in a]) / np.mean([x.value for x in b])
    ratio_text = f"{'> ' if bound == 'lower' else '< ' if bound == 'upper' else ''}{ratio:.2f}×"
    if bound == "both":
        ratio_text = "unknown (both sides censored)"
    text = (
        f"steps to val loss {target:.3f}: {steps_text(a)} vs {steps_text(b)}; ratio {ratio_text}; "
        f"difference {iv}"
    )
    return Verdict(
        claim,
        iv.verdict(),
        f"steps to the reference's final val loss +{TARGET_SLACK:.0%}, censored at {ev.steps}",
        text,
        iv,
        change_text(iv),
        {"variant": [x.value for x in a], "reference": [x.value for x in b], "bound": bound},
    )


def shares(mine: Arm, ref: Arm, ev: Evidence) -> list[float]:
    """Per seed: (unigram − variant loss) / (unigram − reference loss); NaN where the
    reference did not improve on the unigram loss (no improvement to take a share of)."""
    return [
        (ev.unigram - a) / (ev.unigram - b) if ev.unigram > b else math.nan
        for a, b in zip(mine.losses, ref.losses)
    ]


def share_text(mine: Arm, ref: Arm, ev: Evidence) -> str:
    share = shares(mine, ref, ev)
    value = (
        mean_sd(share)
        if share and not np.isnan(share).any()
        else ("undefined (the reference did not get below the unigram loss)")
    )
    return f"share of the reference's improvement over the unigram loss ({ev.unigram:.3f}): {value}"


def rule_barely_learns(claim: Claim, ev: Evidence) -> Verdict:
    """Share of the reference's improvement over the unigram loss < 0.5."""
    mine, ref = ev.arms[claim.variant], ev.arms[claim.reference]
    share = shares(mine, ref, ev)
    iv = paired_interval([BARELY_LEARNS] * len(share), share, level=ev.level)
    return Verdict(
        claim,
        iv.verdict(),
        f"share of the reference's improvement over the unigram loss, below {BARELY_LEARNS}",
        f"{share_text(mine, ref, ev)}; {BARELY_LEARNS} − share {iv}; val loss "
        f"{mean_sd(mine.losses)} vs {mean_sd(ref.losses)}",
        iv,
        change_text(iv),
        {"share": share},
    )


def rule_unstable(claim: Claim, ev: Evidence) -> Verdict:
    """On the sweep (seed 0): the variant's largest stable lr is below the reference's, i.e.
    it fails (diverges, or ends no better than the unigram loss) at higher lrs that the
    reference trains at. Does not hold: stable up to the reference's largest stable lr."""
    mine, ref = ev.arms[claim.variant], ev.arms[claim.reference]
    lrs = sorted(ref.sweep)
    a, b = mine.largest_stable_lr(ev.unigram), ref.largest_stable_lr(ev.unigram)
    if a is None or b is None:
        verdict, separating = "inconclusive", []
    else:
        separating = [lr for lr in lrs if a < lr <= b and ref.sweep[lr].trains(ev.unigram)]
        verdict = "holds" if separating else "does not hold"
    peaks = ", ".join(
        f"{lr:g}: ‖g‖ {mine.sweep[lr].peak_grad_norm:.3g} vs {ref.sweep[lr].peak_grad_norm:.3g}, "
        f"logit {mine.sweep[lr].peak_logit:.3g} vs {ref.sweep[lr].peak_logit:.3g}"
        for lr in lrs
    )
    iv = paired_interval(mine.losses, ref.losses, level=ev.level)
    text = (
        f"largest stable lr {lr_text(a)} vs {lr_text(b)} (grid {lrs[0]:g}–{lrs[-1]:g}); "
        f"lrs where the variant fails and the reference trains: {', '.join(f'{lr:g}' for lr in separating) or 'none'}"
        f"; peak gradient norm and attention logit per lr (variant vs reference): {peaks}; "
        f"at each side's best lr the val loss difference is {iv}"
    )
    if verdict == "holds":
        change = (
            "the reference failing at those lrs too (another seed), or the variant trained there"
        )
    elif verdict == "does not hold":
        change = f"a failure of the variant at or below {lr_text(b)} (a grid above {lrs[-1]:g} tests more)"
    else:
        change = "a stable run of each at some lr of the grid (a lower grid)"
    return Verdict(
        claim,
        verdict,
        f"largest stable lr of the sweep (seed 0; {STABLE})",
        text,
        iv,
        change,
        {"largest_stable_lr": [a, b], "separating_lrs": separating},
        summary=f"largest stable lr {lr_text(a)} vs {lr_text(b)}; val loss at best lrs {iv}",
    )


def grid_steps_lost(without: Arm, with_: Arm, unigram: float) -> int | None:
    """How many lrs of the grid removing the warmup takes off the top of the stable range:
    largest stable lr 3e-3 with warmup and 1e-3 without, on the grid 1e-3, 3e-3, … -> 1.
    None when the run with warmup is stable at no lr (nothing to lose)."""
    lrs = sorted(with_.sweep)
    top_with, top_without = with_.largest_stable_lr(unigram), without.largest_stable_lr(unigram)
    if top_with is None:
        return None
    return lrs.index(top_with) - (lrs.index(top_without) if top_without is not None else -1)


def rule_needs_warmup(claim: Claim, ev: Evidence) -> Verdict:
    """Xiong et al. (2020): removing the warmup shrinks post-norm's stable lr range more than
    pre-norm's. Holds if it takes more lrs of the grid off post-norm's range than off
    pre-norm's; does not hold if no more; inconclusive if either side with warmup is stable
    at no lr. The val loss cost (each at its best lr, paired by seed) is reported with it."""
    post_nw, post_w = ev.arms[claim.variant], ev.arms[claim.reference]
    pre_nw, pre_w = ev.arms[claim.partner[0]], ev.arms[claim.partner[1]]
    lost_post = grid_steps_lost(post_nw, post_w, ev.unigram)
    lost_pre = grid_steps_lost(pre_nw, pre_w, ev.unigram)
    if lost_post is None or lost_pre is None:
        verdict = "inconclusive"
    else:
        verdict = "holds" if lost_post > lost_pre else "does not hold"
    post = [a - b for a, b in zip(post_nw.losses, post_w.losses)]
    pre = [a - b for a, b in zip(pre_nw.losses, pre_w.losses)]
    iv = paired_interval(post, pre, level=ev.level)
    u = ev.unigram
    stable = (
        f"largest stable lr without / with warmup: post-norm "
        f"{lr_text(post_nw.largest_stable_lr(u))} / {lr_text(post_w.largest_stable_lr(u))}, "
        f"pre-norm {lr_text(pre_nw.largest_stable_lr(u))} / {lr_text(pre_w.largest_stable_lr(u))}"
    )
    text = (
        f"{stable} (lrs of the grid lost: post-norm {lost_post}, pre-norm {lost_pre}); cost of "
        f"no warmup in val loss at each side's best lr: post-norm {mean_sd(post)}, pre-norm "
        f"{mean_sd(pre)}, difference {iv}"
    )
    change = {
        "holds": "pre-norm losing as much of its stable range without warmup (another seed)",
        "does not hold": "post-norm losing more of its stable range (a finer or higher grid)",
    }.get(verdict, "a stable run with warmup on each side (a lower grid)")
    return Verdict(
        claim,
        verdict,
        "lrs of the grid that removing the warmup takes off the stable range, post-norm vs "
        f"pre-norm (seed 0 sweeps; {STABLE})",
        text,
        iv,
        change,
        {"post": post, "pre": pre, "lost": [lost_post, lost_pre]},
        summary=f"{stable}; loss cost difference {iv}",
    )


def rule_unstable_roles(claim: Claim, ev: Evidence) -> Verdict:
    """Head roles agree less across seeds without softmax: reference − variant agreement > 0,
    paired by seed pair (0–1, 0–2, 1–2, …)."""

    def agreements(name: str) -> list[float]:
        stats, layers = ev.attention.get(name, []), ev.n_layer.get(name, 1)
        return [role_agreement(a.roles, b.roles, layers) for a, b in combinations(stats, 2)]

    mine, ref = agreements(claim.variant), agreements(claim.reference)
    iv = paired_interval(ref, mine, level=ev.level)
    stats = ev.attention.get(claim.variant, [])
    text = (
        f"head-role agreement across seeds (mean matched correlation) {mean_sd(mine)} vs "
        f"{mean_sd(ref)}, reference − variant {iv}; not a distribution: negative weights "
        f"{mean_sd([100 * s.negative_share for s in stats], 1)}%, row sums sd "
        f"{mean_sd([s.row_sum_sd for s in stats])}, max |weight| "
        f"{mean_sd([s.max_abs for s in stats], 2)} (softmax: 0%, 0, ≤ 1)"
    )
    return Verdict(
        claim,
        iv.verdict(),
        "agreement of head roles across seeds (after the best matching of heads)",
        text,
        iv,
        change_text(iv),
        {"variant": mine, "reference": ref},
    )


# --- measures a claim reports besides its rule's ----------------------------------------------


def roughness_text(claim: Claim, ev: Evidence) -> str:
    mine, ref = ev.arms[claim.variant], ev.arms[claim.reference]
    return (
        "loss-curve roughness after warmup (sd of step-to-step changes, every step) "
        f"{mean_sd([r.roughness(ev.warmup_steps) for r in mine.runs])} vs "
        f"{mean_sd([r.roughness(ev.warmup_steps) for r in ref.runs])}"
    )


def unigram_share_text(claim: Claim, ev: Evidence) -> str:
    return share_text(ev.arms[claim.variant], ev.arms[claim.reference], ev)


def word_order_text(claim: Claim, ev: Evidence) -> str:
    mine, ref = ev.order.get(claim.variant, []), ev.order.get(claim.reference, [])
    iv = paired_interval(ref, mine, level=ev.level)
    return (
        f"word-order sensitivity (val loss on token-shuffled minus ordered text) {mean_sd(mine)}"
        f" vs {mean_sd(ref)}, reference − variant {iv}"
    )


EXTRAS: dict[str, Callable[[Claim, Evidence], str]] = {
    "roughness": roughness_text,
    "unigram_share": unigram_share_text,
    "word_order": word_order_text,
}
"""Measures a claim reports besides its rule's (Claim.extras): name -> text."""

RULES: dict[str, Callable[[Claim, Evidence], Verdict]] = {
    "higher_loss": rule_higher_loss,
    "slower": rule_slower,
    "barely_learns": rule_barely_learns,
    "unstable": rule_unstable,
    "needs_warmup": rule_needs_warmup,
    "unstable_roles": rule_unstable_roles,
}


def change_text(iv: Interval) -> str:
    """What would change an interval's verdict, in words."""
    if iv.n < 2:
        return "another seed (no interval from a single difference)"
    if iv.bound == "both":
        return "a longer budget (both sides never reach the target in some seeds)"
    verdict = iv.verdict()
    if verdict == "inconclusive":
        if not math.isfinite(iv.lo):
            return "a finite value on every seed (a run diverged, or a share is undefined)"
        width = iv.hi - iv.lo
        return f"more seeds or a larger effect: the interval ({width:.3g} wide) contains 0"
    if verdict == "holds":
        return f"seeds that bring the interval's lower end ({iv.lo:+.3g}) down to 0"
    return f"seeds that bring the interval's upper end ({iv.hi:+.3g}) up to 0"


def needed(claim: Claim) -> list[str]:
    """The variants a claim's rule reads."""
    return [n for n in (claim.variant, claim.reference, *claim.partner) if n]


def assess(claim: Claim, ev: Evidence) -> Verdict:
    """Apply the claim's rule, or 'not run' when one of its variants has no runs."""
    if any(not ev.arms.get(n) or not ev.arms[n].runs for n in needed(claim)):
        return Verdict(claim, "not run", "", "not run")
    verdict = RULES[claim.kind](claim, ev)
    verdict.evidence = "; ".join([verdict.evidence, *(EXTRAS[e](claim, ev) for e in claim.extras)])
    return verdict
