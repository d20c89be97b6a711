"""Training figures: loss curves, the lr schedule, and per-layer statistics over time.

Pure functions: arrays in, `matplotlib.figure.Figure` out (Agg, no pyplot state). Reading
runs from disk lives in `gpt2lab.train.metrics`; `curve` and `layer_matrix` turn its
records into arrays, `training_figures` draws all of a run's figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

Curve = tuple[Sequence[float], Sequence[float]]  # (steps, values)


def loss_curves(runs: Mapping[str, Mapping[str, Curve]]) -> Figure:
    """Loss (left) and perplexity (right) of several runs, overlaid.

    runs: {run name: {"train": (steps, losses), "val": (steps, losses)}}; train is drawn thin,
    val with markers in the same colour.
    """
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax_loss, ax_ppl = fig.subplots(1, 2)
    for i, (name, curves) in enumerate(runs.items()):
        color = f"C{i % 10}"
        for split, style in (
            ("train", dict(lw=1, alpha=0.6)),
            ("val", dict(lw=2, marker="o", ms=3)),
        ):
            steps, losses = curves.get(split, ((), ()))
            if len(steps) == 0:
                continue
            losses = np.asarray(losses, dtype=float)
            label = f"{name} {split}"
            ax_loss.plot(steps, losses, color=color, label=label, **style)
            ax_ppl.plot(steps, np.exp(np.minimum(losses, 50)), color=color, label=label, **style)
    ax_loss.set(xlabel="step", ylabel="cross-entropy (nats/token)", title="loss")
    ax_ppl.set(xlabel="step", ylabel="perplexity", title="perplexity", yscale="log")
    for ax in (ax_loss, ax_ppl):
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    return fig


def lr_curves(runs: Mapping[str, Curve]) -> Figure:
    """The learning rate against the step, one line per run."""
    fig = Figure(figsize=(6, 3.5), layout="constrained")
    ax = fig.subplots()
    for name, (steps, lrs) in runs.items():
        ax.plot(steps, lrs, label=name)
    ax.set(xlabel="step", ylabel="learning rate", title="learning-rate schedule")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=8)
    return fig


def layer_heatmap(
    steps: Sequence[int],
    layers: Sequence[str],
    values: np.ndarray,
    *,
    title: str,
    label: str,
    log: bool = True,
) -> Figure:
    """A (layer × step) heatmap: values[i, j] is layer i at steps[j] (layers bottom-up).

    Used for gradient norm per layer, update/weight ratio and residual RMS by depth. A log
    colour scale shows ratios: a layer 10× above its neighbours stands out.
    """
    values = np.asarray(values, dtype=float)
    fig = Figure(figsize=(9, 0.35 * len(layers) + 2.2), layout="constrained")
    ax = fig.subplots()
    positive = values[np.isfinite(values) & (values > 0)]
    norm = LogNorm(positive.min(), positive.max()) if log and positive.size else None
    image = ax.imshow(
        np.ma.masked_invalid(values),
        aspect="auto",
        origin="lower",
        cmap="viridis",
        norm=norm,
        interpolation="nearest",
    )
    ax.set_yticks(range(len(layers)), layers)
    ticks = np.linspace(0, len(steps) - 1, min(len(steps), 8)).round().astype(int)
    ax.set_xticks(ticks, [str(steps[t]) for t in ticks])
    ax.set(xlabel="step", title=title)
    fig.colorbar(image, ax=ax, label=label)
    return fig


def head_heatmap(values: np.ndarray, *, title: str, label: str) -> Figure:
    """A (layer × head) heatmap with each cell's value written in it."""
    values = np.asarray(values, dtype=float)
    n_layer, n_head = values.shape
    fig = Figure(figsize=(0.7 * n_head + 2.5, 0.45 * n_layer + 1.8), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(values, origin="lower", cmap="magma", vmin=0.0, vmax=1.0, aspect="auto")
    for (layer, head), value in np.ndenumerate(values):
        color = "white" if value < 0.6 else "black"
        ax.text(head, layer, f"{value:.2f}", ha="center", va="center", fontsize=7, color=color)
    ax.set_xticks(range(n_head))
    ax.set_yticks(range(n_layer))
    ax.set(xlabel="head", ylabel="layer", title=title)
    fig.colorbar(image, ax=ax, label=label)
    return fig


# ---------------------------------------------------------------------------------------------
# metrics.jsonl records -> arrays (records as `gpt2lab.train.metrics.read_metrics` returns them)
# ---------------------------------------------------------------------------------------------


def curve(records: list[dict], kind: str, key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of `key` in records of `kind`."""
    rows = [(r["step"], r[key]) for r in records if r["kind"] == kind and key in r]
    return [s for s, _ in rows], [v for _, v in rows]


def layer_matrix(
    records: list[dict], key: str, field: str | None = None
) -> tuple[list[int], list[str], np.ndarray]:
    """Monitor records as (steps, layers, values[layer, step]); NaN where a layer is missing."""
    rows = [r for r in records if r["kind"] == "monitor" and r.get(key)]
    layers = sorted({layer for r in rows for layer in r[key]}, key=_depth)
    values = np.full((len(layers), len(rows)), np.nan)
    for j, r in enumerate(rows):
        for i, layer in enumerate(layers):
            if layer in r[key]:
                value = r[key][layer]
                values[i, j] = value[field] if field else value
    return [r["step"] for r in rows], layers, values


def _depth(layer: str) -> int:
    """embed < block0 < block1 < ... < final."""
    if layer == "embed":
        return -1
    return int(layer.removeprefix("block")) if layer.startswith("block") else 10**6


def training_figures(runs: Mapping[str, Sequence[dict]]) -> dict[str, Figure]:
    """Every figure of these runs' metrics records, by file stem.

    Loss/perplexity and lr overlay all runs (`loss`, `lr`). Per-run figures (gradient norm
    per layer, update ratio, residual RMS by depth, attention entropy per head) are named
    `<figure>`, or `<figure>-<run>` when several runs are drawn.
    """
    figures = {
        "loss": loss_curves(
            {
                name: {"train": curve(r, "train", "loss"), "val": curve(r, "eval", "val_loss")}
                for name, r in runs.items()
            }
        ),
        "lr": lr_curves({name: curve(r, "train", "lr") for name, r in runs.items()}),
    }
    for name, records in runs.items():
        suffix = f"-{name}" if len(runs) > 1 else ""
        for key, field, title, label in (
            ("grad_norm", None, "gradient norm per layer", "‖g‖₂"),
            ("update_ratio", None, "update / weight ratio per layer", "‖Δθ‖ / ‖θ‖"),
            ("act", "rms", "residual-stream RMS by depth", "RMS"),
        ):
            steps, layers, values = layer_matrix(records, key, field)
            if steps:
                figures[f"{key}{suffix}"] = layer_heatmap(
                    steps, layers, values, title=f"{name}: {title}", label=label
                )
        entropy = [r for r in records if r["kind"] == "monitor" and r.get("attn_entropy")]
        if entropy:
            last = entropy[-1]
            per_layer = sorted(last["attn_entropy"].items(), key=lambda kv: _depth(kv[0]))
            figures[f"attn_entropy{suffix}"] = head_heatmap(
                np.array([heads for _, heads in per_layer]),
                title=f"{name}: attention entropy per head (step {last['step']})",
                label="entropy / log(keys)",
            )
    return figures
