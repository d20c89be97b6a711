"""The layer-by-layer diff as a picture: each point's max |Δ| against its tolerance.

Pure function: names and numbers in, `Figure` out (no torch, no model).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from matplotlib.figure import Figure


def trace_figure(
    names: Sequence[str], diffs: Sequence[float], tolerances: Sequence[float], title: str = ""
) -> Figure:
    """max |Δ| / tolerance of each point in execution order, on a log scale: below the line at
    1 the point agrees. The first point above it is marked and named.

    A point whose shapes differ (Δ = inf) or holds NaN is drawn at the top of the axis.
    """
    ratios = [d / t if t > 0 else math.inf for d, t in zip(diffs, tolerances)]
    finite = [r for r in ratios if math.isfinite(r) and r > 0]
    top = max(finite + [10.0]) * 10
    bottom = min(finite + [1e-3]) / 10
    shown = [min(max(r, bottom), top) if math.isfinite(r) else top for r in ratios]
    ok = [r <= 1 for r in ratios]
    fig = Figure(figsize=(max(8.0, 0.12 * len(names) + 3), 3.8), layout="constrained")
    ax = fig.subplots()
    x = range(len(names))
    ax.bar(x, shown, color=["C0" if good else "C3" for good in ok], width=0.8)
    ax.axhline(1.0, color="0.3", ls="--", lw=1, label="tolerance")
    ax.set_yscale("log")
    ax.set_ylim(bottom, top * 2)
    first = next((i for i, good in enumerate(ok) if not good), None)
    if first is not None:
        ax.annotate(
            f"first divergence: {names[first]}",
            (first, shown[first]),
            xytext=(0, 8),
            textcoords="offset points",
            ha="center",
            fontsize=8,
            color="C3",
        )
    step = max(1, len(names) // 40)  # at most ~40 labels
    ax.set_xticks(list(x)[::step], list(names)[::step], rotation=90, fontsize=6)
    ax.set(ylabel="max |Δ| / tolerance", title=title or "layer-by-layer diff")
    ax.legend(loc="upper left", fontsize=8)
    return fig
