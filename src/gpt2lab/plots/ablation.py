"""Ablation figures: one line per variant, with its spread over seeds as a shaded band.

Pure functions: arrays in, `matplotlib.figure.Figure` out (Agg, no pyplot state). The
numbers come from `gpt2lab.experiments.report`, which reads the runs' metrics files.

A band is `(x, mean, lo, hi)`: the mean over seeds and, around it, the lowest and highest
seed (with three seeds, min–max is the honest spread; a standard error would need more).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

Band = tuple[Sequence[float], Sequence[float], Sequence[float], Sequence[float]]
"""(x, mean, lo, hi), all of one length."""


def variant_colors(panels: Mapping[str, Mapping[str, object]]) -> dict[str, object]:
    """A stable colour per variant in order of first appearance: the first is black (the
    baseline, by convention of the callers), the next twenty the tab20 colours (dark before
    light), then grey."""
    from matplotlib import colormaps

    names: list[str] = []
    for lines in panels.values():
        names += [name for name in lines if name not in names]
    tab20 = [colormaps["tab20"](i) for i in (*range(0, 20, 2), *range(1, 20, 2))]
    palette = ["black", *tab20]
    return {name: palette[i] if i < len(palette) else "0.6" for i, name in enumerate(names)}


def band_panels(
    panels: Mapping[str, Mapping[str, Band]],
    *,
    xlabel: str,
    ylabel: str,
    logy: bool = False,
    vline: tuple[float, str] | None = None,
    xticklabels: Sequence[str] | None = None,
    ylim: tuple[float | None, float | None] = (None, None),
    width: float = 5.5,
) -> Figure:
    """Side-by-side panels {title: {variant: band}}; a variant keeps its colour in all.

    vline: (x, label) draws a dashed vertical marker (e.g. the training context length).
    xticklabels: names for x = 0, 1, 2, … (e.g. the layers embed, block0, …).
    ylim: (bottom, top) of every panel; None keeps matplotlib's choice.
    """
    colors = variant_colors(panels)
    fig = Figure(figsize=(width * len(panels), 4.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels), squeeze=False)[0])
    for ax, (title, lines) in zip(axes, panels.items()):
        for name, (x, mean, lo, hi) in lines.items():
            if len(x) == 0:
                continue
            color = colors[name]
            ax.plot(x, mean, color=color, lw=1.6, label=name, marker="o" if len(x) < 12 else None)
            ax.fill_between(x, lo, hi, color=color, alpha=0.18, lw=0)
        if vline is not None:
            ax.axvline(vline[0], color="0.4", ls="--", lw=1)
            ax.text(vline[0], 1.0, f" {vline[1]}", transform=ax.get_xaxis_transform(), va="top")
        if xticklabels is not None:
            ax.set_xticks(range(len(xticklabels)), xticklabels, rotation=30)
        ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
        if logy:
            ax.set_yscale("log")
        ax.set_ylim(*ylim)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    for ax in axes[1:]:
        for h, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(h)
                labels.append(label)
    if handles:
        fig.legend(handles, labels, loc="outside right upper", fontsize=8)
    return fig


Sweep = tuple[Sequence[float], Sequence[float]]
"""(learning rates, final losses) of one variant; an infinite loss is a diverged run."""


def sweep_panels(
    panels: Mapping[str, Mapping[str, Sweep]],
    *,
    ylabel: str = "final val loss",
    ylim: tuple[float | None, float | None] = (None, None),
    hline: tuple[float, str] | None = None,
    width: float = 5.5,
) -> Figure:
    """Final loss vs learning rate (log x), one curve per variant (Wortsman et al. 2023,
    Figure 1 style); a diverged run (inf or NaN) is an × at the top of the panel.

    hline: (y, label) draws a dotted horizontal reference (e.g. the unigram loss).
    """
    colors = variant_colors(panels)
    fig = Figure(figsize=(width * len(panels), 4.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels), squeeze=False)[0])
    for ax, (title, lines) in zip(axes, panels.items()):
        top = ylim[1]
        if top is None:
            finite = [y for _, ys in lines.values() for y in ys if np.isfinite(y)]
            top = max(finite, default=1.0) + 0.3
        for name, (lrs, losses) in lines.items():
            x, y = np.asarray(lrs, float), np.asarray(losses, float)
            ok = np.isfinite(y)
            ax.plot(x[ok], y[ok], color=colors[name], lw=1.6, marker="o", label=name)
            if (~ok).any():
                ax.plot(x[~ok], np.full((~ok).sum(), top), ls="none", marker="x", ms=9,
                        mew=2, color=colors[name])  # fmt: skip
        ax.set_xscale("log")
        if hline is not None:
            ax.axhline(hline[0], color="0.4", ls=":", lw=1)
            ax.text(0.01, hline[0], hline[1], transform=ax.get_yaxis_transform(), va="bottom",
                    fontsize=8)  # fmt: skip
        ax.set(title=title, xlabel="peak learning rate", ylabel=ylabel)
        ax.set_ylim(ylim[0], top * 1.02 if top > 0 else top)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, title="× diverged", title_fontsize=7)
    return fig


def histograms(
    panels: Mapping[str, Mapping[str, Sequence[float]]],
    *,
    xlabel: str,
    bins: int = 60,
    width: float = 5.5,
) -> Figure:
    """Side-by-side panels {title: {variant: values}}: overlaid histograms (density, log y)."""
    colors = variant_colors(panels)
    fig = Figure(figsize=(width * len(panels), 4.0), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels), squeeze=False)[0])
    for ax, (title, groups) in zip(axes, panels.items()):
        values = [np.asarray(v, float) for v in groups.values()]
        finite = np.concatenate([v[np.isfinite(v)] for v in values]) if values else np.zeros(1)
        edges = np.histogram_bin_edges(finite, bins=bins)
        for name, v in zip(groups, values):
            ax.hist(v[np.isfinite(v)], bins=edges, density=True, histtype="step", lw=1.6,
                    color=colors[name], label=name)  # fmt: skip
        ax.axvline(0, color="0.4", ls=":", lw=1)
        ax.set_yscale("log")
        ax.set(title=title, xlabel=xlabel, ylabel="density")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig
