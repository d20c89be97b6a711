"""Attention pictures: one head's heatmap, a layer's heads, layer × head grids, logit lens.

Pure functions (numpy arrays and token strings in, a matplotlib `Figure` out); nothing here
knows about models. Figures grow with the number of tokens so labels keep a readable font,
and when there are more tokens than fit, only every k-th label is drawn (labels never
overlap; tested by measuring their rendered boxes). Figures are built with `Figure()`, not
pyplot, so nothing is kept in a global registry: save them with `fig.savefig(path)`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

LABEL_FONT = 9
CELL_INCHES = 0.24  # one token row/column: fits a 9 pt label
MAX_SIDE_INCHES = 22.0
MAX_LABELS = 90  # beyond this many tokens, label every k-th one


def token_label(token: str) -> str:
    """A token as a tick label: whitespace made visible, and no mathtext surprises.

    ' cat' -> ' cat'; '\\n' -> '↵'; ' ' -> '␣'; '$5' -> '\\$5' (matplotlib would start math).
    """
    text = token.replace("\n", "↵").replace("\t", "⇥").replace("\r", "")
    if not text.strip():
        text = "␣" * max(1, len(text)) if "↵" not in text else text
    return text.replace("$", r"\$")


def _label_step(n: int, max_labels: int = MAX_LABELS) -> int:
    return max(1, math.ceil(n / max_labels))


def _set_token_ticks(ax, tokens: Sequence[str], axis: str) -> None:
    step = _label_step(len(tokens))
    ticks = list(range(0, len(tokens), step))
    labels = [token_label(tokens[i]) for i in ticks]
    if axis == "x":
        ax.set_xticks(ticks, labels, rotation=90, fontsize=LABEL_FONT)
    else:
        ax.set_yticks(ticks, labels, fontsize=LABEL_FONT)


def _side(n: int, extra: float) -> float:
    return min(MAX_SIDE_INCHES, max(4.0, CELL_INCHES * n * _cell_scale(n) + extra))


def _cell_scale(n: int) -> float:
    """Cells shrink when labels are thinned (only every k-th row needs room for text)."""
    return 1.0 / _label_step(n)


def attention_heatmap(pattern: np.ndarray, tokens: Sequence[str], title: str = "") -> Figure:
    """One head's attention (T, T): rows are queries, columns keys, darker = more attention."""
    pattern = np.asarray(pattern, dtype=float)
    T = pattern.shape[0]
    side = _side(T, 2.5)
    fig = Figure(figsize=(side + 1.0, side), layout="constrained")
    ax = fig.subplots()
    masked = np.ma.masked_where(np.triu(np.ones((T, T), bool), 1), pattern)
    image = ax.imshow(masked, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    _set_token_ticks(ax, tokens, "x")
    _set_token_ticks(ax, tokens, "y")
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query (attending)")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, shrink=0.6, label="attention weight")
    return fig


def layer_heads_grid(patterns: np.ndarray, tokens: Sequence[str], layer: int) -> Figure:
    """Every head of one layer, (n_head, T, T), side by side; labels on the outer edge only."""
    patterns = np.asarray(patterns, dtype=float)
    n_head, T = patterns.shape[0], patterns.shape[1]
    cols = math.ceil(math.sqrt(n_head))
    rows = math.ceil(n_head / cols)
    labelled = T <= 40
    panel = max(2.5, min(6.0, CELL_INCHES * T)) if labelled else 3.0
    fig = Figure(figsize=(cols * panel + 1.5, rows * panel + 1.0), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    mask = np.triu(np.ones((T, T), bool), 1)
    for h, ax in enumerate(axes.flat):
        if h >= n_head:
            ax.axis("off")
            continue
        ax.imshow(np.ma.masked_where(mask, patterns[h]), cmap="Blues", vmin=0, vmax=1)
        ax.set_title(f"head {h}", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        if labelled and h % cols == 0:
            _set_token_ticks(ax, tokens, "y")
        if labelled and h >= n_head - cols:
            _set_token_ticks(ax, tokens, "x")
    fig.suptitle(f"layer {layer}: attention of every head (rows: queries, columns: keys)")
    return fig


def annotate_cells(ax, values: np.ndarray, fmt: str, light: np.ndarray) -> None:
    """Write each value of a (rows, columns) heatmap in its cell, white where `light`."""
    for (row, column), value in np.ndenumerate(values):
        ax.text(
            column,
            row,
            format(value, fmt),
            ha="center",
            va="center",
            fontsize=7,
            color="white" if light[row, column] else "black",
        )


def layer_head_grid(
    grid: np.ndarray,
    title: str,
    *,
    label: str = "score",
    diverging: bool = False,
    vmin: float | None = None,
    vmax: float | None = None,
) -> Figure:
    """A (n_layer, n_head) grid of numbers as a heatmap with each value written in its cell.

    diverging: a red/blue map centred on 0 (ablation Δloss: red = the model needed the head).
    """
    grid = np.asarray(grid, dtype=float)
    n_layer, n_head = grid.shape
    fig = Figure(
        figsize=(max(4.0, 0.55 * n_head + 2.0), max(3.0, 0.45 * n_layer + 1.5)),
        layout="constrained",
    )
    ax = fig.subplots()
    if diverging:
        bound = max(float(np.nanmax(np.abs(grid))), 1e-9)
        vmin, vmax, cmap = -bound, bound, "RdBu_r"
    else:
        cmap = "viridis"
    image = ax.imshow(grid, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(n_head), [str(h) for h in range(n_head)], fontsize=LABEL_FONT)
    ax.set_yticks(range(n_layer), [str(layer) for layer in range(n_layer)], fontsize=LABEL_FONT)
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_title(title)
    if n_head <= 16 and n_layer <= 24:
        lo, hi = image.get_clim()
        dark = (grid - lo) / max(hi - lo, 1e-12)
        annotate_cells(ax, grid, ".2f", dark > 0.6 if not diverging else abs(dark - 0.5) > 0.3)
    fig.colorbar(image, ax=ax, label=label)
    return fig


def logit_lens_table(
    stages: Sequence[str],
    tokens: Sequence[str],
    top_tokens: Sequence[Sequence[str]],
    top_probs: np.ndarray,
) -> Figure:
    """Logit lens: cell (stage s, position i) names the top next-token guess after stage s,
    shaded by its probability. The last row is the model's real prediction."""
    top_probs = np.asarray(top_probs, dtype=float)
    n_stages, T = top_probs.shape
    longest = max([len(token_label(t)) for row in top_tokens for t in row] + [4])
    cell_w = max(0.55, 0.075 * min(longest, 14))
    fig = Figure(
        figsize=(min(MAX_SIDE_INCHES * 1.5, cell_w * T + 2.5), 0.32 * n_stages + 2.2),
        layout="constrained",
    )
    ax = fig.subplots()
    image = ax.imshow(top_probs, cmap="Greens", vmin=0, vmax=1, aspect="auto")
    for (s, i), p in np.ndenumerate(top_probs):
        text = token_label(top_tokens[s][i])[:14]
        ax.text(
            i, s, text, ha="center", va="center", fontsize=7, color="white" if p > 0.6 else "black"
        )
    ax.set_xticks(range(T), [token_label(t) for t in tokens], rotation=90, fontsize=LABEL_FONT)
    ax.set_yticks(range(n_stages), list(stages), fontsize=LABEL_FONT)
    ax.set_xlabel("input token (the prediction is for the token after it)")
    ax.set_ylabel("residual stream after")
    ax.set_title("logit lens: top next-token guess after each layer")
    fig.colorbar(image, ax=ax, shrink=0.8, label="probability")
    return fig
