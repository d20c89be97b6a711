"""The training timeline's figure: the loss curve with its slope changes and checkpoints
above, the probe scores of each checkpoint below (`gpt2lab timeline`).

A pure function: arrays in, `matplotlib.figure.Figure` out (Agg, no pyplot state).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

Curve = tuple[Sequence[float], Sequence[float]]  # (steps, values)


def timeline_figure(
    *,
    train: Curve,
    fitted: Curve,
    changes: Sequence[float],
    val: Curve,
    checkpoints: Curve,
    role_scores: Mapping[str, Sequence[float | None]],
    cloze: Sequence[float],
    names: tuple[Sequence[float | None], Sequence[float | None]] | None = None,
    log_step: bool = False,
) -> Figure:
    """Two panels on one step axis.

    top: the logged train loss (thin), its piecewise-linear fit (`fitted`: the fit's points
    and values), the logged val loss (dots), each checkpoint's recomputed val loss
    (`checkpoints`: steps, losses; squares), the loss on names said before and on names said
    first (`names`: one value per checkpoint each, None where not measured; triangles) and a
    dashed line at each slope change;
    bottom: per checkpoint, the best head score of each role (`role_scores`: {role: one
    value per checkpoint, None where not measured}) and the cloze accuracy (black).
    """
    fig = Figure(figsize=(10, 7), layout="constrained")
    ax_loss, ax_probe = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    ax_loss.plot(*train, color="0.6", lw=1, label="train loss (logged)")
    ax_loss.plot(*fitted, color="C1", lw=2, label="piecewise-linear fit")
    if len(val[0]):
        ax_loss.plot(*val, "o", color="C0", ms=4, label="val loss (logged)")
    ax_loss.plot(*checkpoints, "s", color="k", ms=5, mfc="none", label="val loss (checkpoint)")
    if names is not None:
        for values, style, label in zip(
            names, ("^-", "v--"), ("loss on names said before", "loss on names said first")
        ):
            values = np.array([np.nan if v is None else v for v in values], dtype=float)
            ax_loss.plot(checkpoints[0], values, style, color="C2", ms=4, lw=1, label=label)
    for i, step in enumerate(changes):
        for ax in (ax_loss, ax_probe):
            ax.axvline(step, color="C3", ls="--", lw=1, label="slope change" if i == 0 else None)
    ax_loss.set(ylabel="cross-entropy (nats/token)", title="loss, slope changes and checkpoints")
    steps = checkpoints[0]
    for i, (role, scores) in enumerate(role_scores.items()):
        values = np.array([np.nan if v is None else v for v in scores], dtype=float)
        ax_probe.plot(steps, values, "o-", color=f"C{i % 10}", ms=3, lw=1.2, label=role)
    ax_probe.plot(steps, cloze, "s-", color="k", ms=4, lw=2, label="cloze accuracy")
    ax_probe.set(
        xlabel="step (log scale)" if log_step else "step",
        ylabel="best head score / accuracy\n(long-range: × uniform distance)",
        title="probe scores per checkpoint",
    )
    if log_step:
        ax_probe.set_xscale("log")
    for ax in (ax_loss, ax_probe):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    return fig
