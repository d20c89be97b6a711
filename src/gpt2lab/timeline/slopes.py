"""Where the slope of a loss curve changes: a continuous piecewise-linear fit whose bends
must pay for themselves (`slope_changes`). Pure NumPy, deterministic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

KNOT_PRICE = 3.0
"""A knot (a slope change) is kept when it lowers n·ln(RSS) by more than KNOT_PRICE·ln(n):
BIC's price for its two parameters (where, and by how much) is 2·ln(n); the knot's place is
also searched among n candidates, which BIC does not count, hence the stricter 3 (on a straight
line plus Gaussian noise, 2 finds a spurious knot in about 3 of 100 seeds, 3 in none)."""


@dataclass(frozen=True)
class SlopeChange:
    """Two fitted segments meet at `step`; slopes in loss per step (or per unit of ln step
    when the fit was in log steps)."""

    step: float
    slope_before: float
    slope_after: float

    @property
    def ratio(self) -> float:
        """slope_after / slope_before: 0.25 = the descent slowed to a quarter."""
        return self.slope_after / self.slope_before if self.slope_before else math.inf


@dataclass
class SlopeFit:
    """The curve as fitted: the (binned) points, the continuous piecewise-linear fit through
    them, and where its segments meet."""

    steps: list[float]
    smoothed: list[float]
    fitted: list[float]
    changes: list[SlopeChange]
    log_step: bool


def bin_means(steps, values, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Finite (step, value) points, averaged in consecutive bins of (nearly) equal count so
    that at most `max_points` remain (fewer points are returned as they are).

    A bin mean lowers the noise without making neighbours correlated, as a moving average or
    an EMA would (and correlated residuals make every wiggle look significant to a fit).
    bin_means([1, 2, 3, 4], [4, 2, 3, 1], 2) -> ([1.5, 3.5], [3.0, 2.0]).
    """
    steps, values = np.asarray(steps, dtype=float), np.asarray(values, dtype=float)
    finite = np.isfinite(steps) & np.isfinite(values)
    steps, values = steps[finite], values[finite]
    if len(steps) <= max_points:
        return steps, values
    edges = np.linspace(0, len(steps), max_points + 1).round().astype(int)
    pairs = list(zip(edges[:-1], edges[1:]))
    return (
        np.array([steps[a:b].mean() for a, b in pairs]),
        np.array([values[a:b].mean() for a, b in pairs]),
    )


def hinge_design(x: np.ndarray, knots: list[float]) -> np.ndarray:
    """(n, 2 + K) columns 1, x, max(0, x − knot_k): a line that bends at each knot."""
    return np.column_stack([np.ones_like(x), x, *[np.maximum(0.0, x - k) for k in knots]])


def hinge_fit(x: np.ndarray, y: np.ndarray, knots: list[float]) -> tuple[np.ndarray, float]:
    """Least squares of y = a + b·x + Σ_k d_k·max(0, x − knot_k): a line that bends by d_k at
    each knot, continuous. Returns (coefficients [a, b, d_1, …], residual sum of squares)."""
    design = hinge_design(x, knots)  # (n, 2 + K)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)  # (2 + K,)
    residual = y - design @ coef  # (n,)
    return coef, float(residual @ residual)


def best_knot(
    u: np.ndarray, y: np.ndarray, knots: list[float], min_points: int
) -> tuple[float, float] | None:
    """(rss, knot): the point of `u` that, added to `knots`, fits best while leaving at least
    `min_points` points between any two knots and the ends; None when no point is free."""
    n, best = len(u), None
    for i in range(min_points, n - min_points):
        marks = np.sort(np.searchsorted(u, [*knots, u[i]]))
        if np.diff(np.concatenate([[0], marks, [n]])).min() < min_points:
            continue
        _, rss = hinge_fit(u, y, [*knots, float(u[i])])
        if best is None or rss < best[0]:
            best = (rss, float(u[i]))
    return best


def refine_knots(
    u: np.ndarray, y: np.ndarray, knots: list[float], min_points: int
) -> tuple[list[float], float]:
    """Move each knot in turn to its best place given the others, until none moves (at most
    10 rounds): a knot placed first between two true bends moves onto one of them."""
    knots = list(knots)
    for _ in range(10):
        moved = False
        for j in range(len(knots)):
            others = knots[:j] + knots[j + 1 :]
            _, place = best_knot(u, y, others, min_points) or (None, knots[j])
            moved |= place != knots[j]
            knots[j] = place
        if not moved:
            break
    return sorted(knots), hinge_fit(u, y, knots)[1]


def slope_changes(
    steps,
    losses,
    *,
    log_step: bool = False,
    max_points: int = 200,
    min_points: int = 5,
    max_changes: int = 5,
) -> SlopeFit:
    """Where the loss curve's slope changes: a continuous piecewise-linear fit, knots added
    while each pays for itself.

    1. smoothing: `bin_means` to at most `max_points` points (the records as they are when
       fewer); with `log_step` the x axis is ln(step) (a loss that falls by the same amount
       per doubling of steps is then a straight line);
    2. knots: the best new knot (`best_knot`: the smallest residual sum of squares of
       `hinge_fit`, at least `min_points` points from the ends and the other knots), then
       every knot moved to its best place given the others (`refine_knots`); kept if the
       fit lowered n·ln(RSS) by more than KNOT_PRICE·ln(n); repeated at most `max_changes`
       times. Noise below 1e-6 of the curve's magnitude counts as none.

    Deterministic (no random start). Example: 100 points of 5 − 0.004·s, bending to slope
    −0.001 at s = 300, plus N(0, 0.05) noise -> one change near step 300 (−0.004 -> −0.001);
    a straight line plus the same noise -> none (tests/timeline/test_slopes.py).
    """
    s, y = bin_means(steps, losses, max_points)
    if log_step:
        keep = s > 0
        s, y = s[keep], y[keep]
    x = np.log(s) if log_step else s
    n = len(x)
    if n < 2:
        return SlopeFit(s.tolist(), y.tolist(), y.tolist(), [], log_step)
    x0, width = x[0], max(x[-1] - x[0], 1e-12)
    u = (x - x0) / width  # [0, 1]: a well-conditioned design
    floor = n * (1e-6 * max(float(np.ptp(y)), float(np.abs(y).max()), 1e-12)) ** 2
    knots: list[float] = []
    _, rss = hinge_fit(u, y, knots)
    while len(knots) < max_changes:
        found = best_knot(u, y, knots, min_points)
        if found is None:
            break
        candidate, candidate_rss = refine_knots(u, y, [*knots, found[1]], min_points)
        gain = n * math.log(max(rss, floor) / max(candidate_rss, floor))
        if gain <= KNOT_PRICE * math.log(n):
            break
        knots, rss = candidate, candidate_rss
    coef, _ = hinge_fit(u, y, knots)
    slopes = np.cumsum(coef[1:]) / width  # slope of each segment, per unit of x
    changes = [
        SlopeChange(
            float(np.exp(x0 + k * width) if log_step else x0 + k * width),
            float(slopes[i]),
            float(slopes[i + 1]),
        )
        for i, k in enumerate(knots)
    ]
    fitted = hinge_design(u, knots) @ coef  # (n,)
    return SlopeFit(s.tolist(), y.tolist(), fitted.tolist(), changes, log_step)
