"""Embedding-space pictures: PCA scatters coloured by category, the position tables, probes.

Pure functions: coordinates, labels and numbers in, a matplotlib `Figure` out (no torch, no
model). A category keeps its colour across every panel of a figure; points without one are
small and grey ("other"), drawn first so the categories sit on top.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

Scatter = tuple[np.ndarray, Sequence[str]]
"""(coords (n, 2), the category of each point, 'other' when it has none)."""


def category_colors(order: Sequence[str]) -> dict[str, str]:
    """A colour per category in `order`: tab10, then tab20's lighter shades; 'other' grey."""
    palette = [f"C{i}" for i in range(10)] + [
        "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2",
    ]  # fmt: skip
    colors = {c: palette[i % len(palette)] for i, c in enumerate(order)}
    return {**colors, "other": "0.8"}


def category_scatter(
    panels: Mapping[str, Scatter], order: Sequence[str], title: str = "", columns: int = 3
) -> Figure:
    """One PCA scatter per panel {title: (coords, categories)}, one legend for all."""
    colors = category_colors(order)
    rows = math.ceil(len(panels) / columns)
    cols = min(columns, len(panels))
    fig = Figure(figsize=(4.2 * cols + 1.8, 3.8 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, (name, (coords, cats)) in zip(axes, panels.items()):
        cats = np.asarray(cats)
        other = cats == "other"
        ax.scatter(*coords[other].T, s=4, c=colors["other"], lw=0)
        for c in order:
            here = cats == c
            if here.any():
                ax.scatter(*coords[here].T, s=9, c=colors[c], lw=0, label=c)
        ax.set_title(name, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    present = {c for _, cats in panels.values() for c in cats}
    handles = [axes[0].scatter([], [], s=20, c=colors[c], label=c) for c in order if c in present]
    if handles:
        fig.legend(handles=handles, loc="outside right upper", fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def position_tables_figure(tables: Mapping[str, tuple[np.ndarray, np.ndarray, float]]) -> Figure:
    """A row per table {name: (PCA coords (T, 2), cosine (T, T), explained variance of the two
    axes)}: left the rows in PCA space joined in order and coloured by position, right the
    position × position cosine similarity."""
    fig = Figure(figsize=(10, 4.4 * len(tables)), layout="constrained")
    axes = fig.subplots(len(tables), 2, squeeze=False)
    for (left, right), (name, (coords, cosine, explained)) in zip(axes, tables.items()):
        T = len(coords)
        left.plot(*coords.T, color="0.75", lw=0.6, zorder=1)
        dots = left.scatter(*coords.T, c=np.arange(T), cmap="viridis", s=8, zorder=2)
        fig.colorbar(dots, ax=left, label="position")
        left.set_title(f"{name}: {T} rows, PCA ({explained:.0%} of variance)", fontsize=10)
        left.set_xticks([])
        left.set_yticks([])
        image = right.imshow(cosine, cmap="RdBu_r", vmin=-1, vmax=1, origin="upper")
        fig.colorbar(image, ax=right, label="cosine")
        right.set(xlabel="position j", ylabel="position i")
        right.set_title(f"{name}: cosine(row i, row j)", fontsize=10)
    return fig


def probe_figure(
    layers: Sequence[str], accuracy: Mapping[str, tuple[Sequence[float], Sequence[float]]]
) -> Figure:
    """Held-out probe accuracy per layer, a line per group {group: (accuracies, baselines)},
    with its majority-class baseline dashed in the same colour."""
    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(layers))
    for i, (group, (acc, base)) in enumerate(accuracy.items()):
        ax.plot(x, acc, marker="o", color=f"C{i}", label=group)
        ax.plot(x, base, ls="--", color=f"C{i}", lw=1, alpha=0.7)
    ax.plot([], [], ls="--", color="0.4", lw=1, label="majority baseline")
    ax.set_xticks(x, layers)
    ax.set(ylim=(0, 1.02), xlabel="layer", ylabel="accuracy on held-out words")
    ax.set_title("linear probe: can a layer tell the category of an unseen word?")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig
