"""Per-layer profiles: named lines over the model's stages, with interval bands, in panels.

Pure functions (numbers in, a matplotlib `Figure` out). Used by the garden-path report: the
surprisal of a word after each layer for two conditions, and their difference beside it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

Line = tuple[Sequence[float], Sequence[float] | None, Sequence[float] | None]
"""(values, lower bound or None, upper bound or None), one entry per stage."""


@dataclass(frozen=True)
class Panel:
    """One axes: a title, the y label, and its lines by name."""

    title: str
    ylabel: str
    lines: Mapping[str, Line]


def stage_profiles(
    stages: Sequence[str],
    panels: Sequence[Panel],
    xlabel: str = "stage (residual stream after this layer)",
) -> Figure:
    """The panels side by side over the same `stages` (x axis): each line with markers, a
    shaded band where bounds are given, and a dashed line at 0 when a panel reaches it."""
    width = max(5.0, 0.45 * len(stages) + 3.0)
    fig = Figure(figsize=(width * len(panels), 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    x = np.arange(len(stages))
    for ax, panel in zip(axes, panels):
        lowest = np.inf
        for name, (values, lo, hi) in panel.lines.items():
            values = np.asarray(values, dtype=float)
            (drawn,) = ax.plot(x, values, marker="o", label=name)
            if lo is not None and hi is not None:
                ax.fill_between(x, lo, hi, color=drawn.get_color(), alpha=0.2, linewidth=0)
                lowest = min(lowest, float(np.min(lo)))
            lowest = min(lowest, float(values.min()))
        if lowest <= 0:
            ax.axhline(0.0, color="grey", linestyle="--", linewidth=1)
        ax.set_xticks(x, list(stages), rotation=45 if len(stages) > 12 else 0)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(panel.ylabel)
        ax.set_title(panel.title, fontsize=10)
        ax.legend(fontsize=8)
    return fig
