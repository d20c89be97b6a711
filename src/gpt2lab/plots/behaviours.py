"""What removing each head does to each behaviour: a heads × behaviours grid of Δ values.

A pure function (numbers and labels in, a matplotlib `Figure` out). Behaviours have
different units (nats of loss, a share of probes), so each column is coloured on its own
scale: the cell's harm divided by the column's largest |harm|, red where removing the head
made the behaviour worse, blue where it made it better. The printed number is the raw Δ
(ablated − clean) in the behaviour's own unit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from gpt2lab.plots.attention import annotate_cells

ANNOTATE_MAX_ROWS = 48  # beyond this many heads the numbers would not be readable


def behaviour_harm_grid(
    delta: np.ndarray,
    higher_is_worse: Sequence[bool],
    head_labels: Sequence[str],
    behaviour_labels: Sequence[str],
    title: str = "",
) -> Figure:
    """delta (n_heads, n_behaviours), ablated − clean; higher_is_worse[b] says whether a rise
    of behaviour b is harm (a loss) or a fall is (an accuracy). Rows are heads, columns
    behaviours; each column is coloured by harm / max |harm| of that column."""
    delta = np.asarray(delta, dtype=float)
    n_heads, n_behaviours = delta.shape
    sign = np.where(np.asarray(higher_is_worse, dtype=bool), 1.0, -1.0)  # (n_behaviours,)
    harm = delta * sign
    scale = np.abs(harm).max(axis=0)
    colour = harm / np.where(scale > 0, scale, 1.0)  # (n_heads, n_behaviours) in −1..1
    fig = Figure(
        figsize=(2.0 + 1.5 * n_behaviours, max(3.0, 1.5 + 0.28 * n_heads)), layout="constrained"
    )
    ax = fig.subplots()
    image = ax.imshow(colour, cmap="RdBu_r", vmin=-1.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(n_behaviours), list(behaviour_labels), rotation=30, ha="right")
    ax.set_yticks(range(n_heads), list(head_labels), fontsize=8)
    ax.set_xlabel("behaviour")
    ax.set_ylabel("zero-ablated head")
    ax.set_title(title)
    if n_heads <= ANNOTATE_MAX_ROWS:
        annotate_cells(ax, delta, "+.2f", np.abs(colour) > 0.6)
    fig.colorbar(image, ax=ax, label="harm / column's largest |harm|", shrink=0.8)
    return fig
