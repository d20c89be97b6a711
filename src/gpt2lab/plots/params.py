"""Where a model's parameters and a training step's memory go: two bar charts side by side.

Pure function: counts in, `Figure` out (no torch, no model).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure


def params_figure(
    counts: Mapping[str, int], memory: Sequence[tuple[str, int]], title: str = ""
) -> Figure:
    """Left: parameters per component, each bar labelled with its count and share of all.
    Right: bytes of one training step per item (weights, gradients, ...), in GiB.

    >>> params_figure({"attention": 3, "MLP": 6}, [("weights", 2**30)])  # doctest: +SKIP
    """
    fig = Figure(figsize=(12, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    total = sum(counts.values())
    names = list(counts)[::-1]
    values = [counts[n] / 1e6 for n in names]
    bars = left.barh(names, values, color="C0")
    for bar, n in zip(bars, names):
        share = counts[n] / total if total else 0.0
        left.text(
            bar.get_width(), bar.get_y() + bar.get_height() / 2,
            f" {counts[n]:,} ({share:.1%})", va="center", fontsize=8,
        )  # fmt: skip
    left.set_xlim(0, max(values + [1e-6]) * 1.45)
    left.set(xlabel="parameters (millions)", title="parameters per component")
    labels = [what for what, _ in memory][::-1]
    gib = [n / 2**30 for _, n in memory][::-1]
    bars = right.barh(labels, gib, color="C1")
    for bar, value in zip(bars, gib):
        right.text(
            bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {value:.2f}",
            va="center", fontsize=8,
        )  # fmt: skip
    right.set_xlim(0, max(gib + [1e-6]) * 1.25)
    right.set(xlabel="GiB", title="memory of one training step")
    for ax in (left, right):
        ax.grid(axis="x", alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig
