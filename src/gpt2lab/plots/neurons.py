"""Neuron pictures: selective fractions per layer, categories per layer, activation histograms.

Pure functions (numbers in, a matplotlib `Figure` out); the numbers come from
`gpt2lab.interp.neuron_labels` and `gpt2lab.interp.neurons`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure


def selectivity_bars(
    layers: Sequence[int], panels: Mapping[str, Mapping[str, Sequence[float]]]
) -> Figure:
    """One panel per entry of `panels` (title -> {group: fraction per layer}); in each, a
    cluster of bars per layer, one bar per group, heights in percent of the layer's neurons;
    a group has the same colour in every panel.

    panels = {"any label": {"part of speech": [0.10, 0.04], "meaning": [0.02, 0.05]}}
    draws layers 0 and 1 with two bars each.
    """
    fig = Figure(figsize=(max(5.0, 1.2 * len(layers) + 2.5), 3.2 * len(panels)), layout="tight")
    x = np.arange(len(layers))
    names = list(dict.fromkeys(g for groups in panels.values() for g in groups))
    colors = {name: f"C{i % 10}" for i, name in enumerate(names)}  # a group keeps its colour
    for i, (title, groups) in enumerate(panels.items()):
        ax = fig.add_subplot(len(panels), 1, i + 1)
        width = 0.8 / max(1, len(groups))
        tallest = max((100 * max(f, default=0) for f in groups.values()), default=0)
        ax.set_ylim(0, 1.3 * tallest or 1)  # headroom for the legend above the bars
        for j, (group, fractions) in enumerate(groups.items()):
            heights = 100 * np.asarray(fractions, dtype=float)
            offset = (j - (len(groups) - 1) / 2) * width
            ax.bar(x + offset, heights, width, label=group, color=colors[group])
        ax.set_xticks(x, [str(layer) for layer in layers])
        ax.set_xlabel("layer")
        ax.set_ylabel("% of the layer's neurons")
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, ncols=min(5, len(groups)))
    return fig


def category_heatmap(
    layers: Sequence[int], categories: Sequence[str], counts: np.ndarray, title: str = ""
) -> Figure:
    """counts (L, n categories): how many neurons of each layer carry each label, numbers
    written in the cells."""
    counts = np.asarray(counts)
    fig = Figure(figsize=(max(6.0, 0.42 * len(categories) + 2), 0.45 * len(layers) + 2.2))
    ax = fig.add_subplot()
    image = ax.imshow(counts, cmap="Blues", aspect="auto", vmin=0)
    ax.set_xticks(range(len(categories)), categories, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(layers)), [str(layer) for layer in layers])
    ax.set_ylabel("layer")
    top = counts.max() if counts.size else 0
    for (r, c), n in np.ndenumerate(counts):
        if n:
            ax.text(c, r, str(n), ha="center", va="center", fontsize=7,
                    color="white" if n > top / 2 else "black")  # fmt: skip
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="neurons")
    fig.set_layout_engine("tight")
    return fig


def activation_histograms(
    histograms: Sequence[tuple[str, np.ndarray, np.ndarray]], columns: int = 3
) -> Figure:
    """A grid of small histograms, each (title, counts (bins,), edges (bins + 1,)), log count
    axis so a sparse neuron's rare large activations stay visible."""
    n = max(1, len(histograms))
    rows = -(-n // columns)
    fig = Figure(figsize=(3.2 * min(n, columns), 2.4 * rows), layout="tight")
    for i, (title, counts, edges) in enumerate(histograms):
        ax = fig.add_subplot(rows, columns, i + 1)
        ax.stairs(counts, edges, fill=True, alpha=0.7)
        ax.set_yscale("log")
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("activation", fontsize=7)
        ax.tick_params(labelsize=7)
    return fig
