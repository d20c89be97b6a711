"""Reading a run's metrics.jsonl back, and drawing its PNGs (`gpt2lab plot`).

metrics.jsonl holds one JSON object per line, each with "step" and "kind":
    train      loss, lr, grad_norm, tokens, tokens_per_s
    eval       val_loss, val_ppl
    monitor    grad_norm, update_ratio {layer: x}; act {layer: {mean, std, rms, max_abs}};
               attn_entropy {layer: [per head]}; dead_frac {layer: x}
    nonfinite  loss, grad_norm, where (hook or parameter name), layer, consecutive
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from gpt2lab.errors import GPT2LabError


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """All records of a run, in order (a half-written last line is skipped)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise GPT2LabError(f"{run_dir} is not a training run (no metrics.jsonl)")
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


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


def write_plots(run_dirs: list[str | Path], out_dir: str | Path | None = None) -> list[Path]:
    """Write every figure for these runs; return the PNG paths.

    Loss/perplexity and lr overlay all runs (`loss.png`, `lr.png`). Per-run figures (gradient
    norm per layer, update ratio, residual RMS by depth, attention entropy per head) are
    named `<figure>.png`, or `<figure>-<run>.png` when several runs are drawn. `out_dir`
    defaults to the first run's plots/.
    """
    from gpt2lab.plots import training as figs

    runs = {Path(d).name: read_metrics(d) for d in run_dirs}
    out = Path(out_dir) if out_dir else Path(run_dirs[0]) / "plots"
    out.mkdir(parents=True, exist_ok=True)
    figures = {
        "loss": figs.loss_curves(
            {
                name: {"train": curve(r, "train", "loss"), "val": curve(r, "eval", "val_loss")}
                for name, r in runs.items()
            }
        ),
        "lr": figs.lr_curves({name: curve(r, "train", "lr") for name, r in runs.items()}),
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
                figures[f"{key}{suffix}"] = figs.layer_heatmap(
                    steps, layers, values, title=f"{name}: {title}", label=label
                )
        entropy = [r for r in records if r["kind"] == "monitor" and r.get("attn_entropy")]
        if entropy:
            last = entropy[-1]
            per_layer = sorted(last["attn_entropy"].items(), key=lambda kv: _depth(kv[0]))
            figures[f"attn_entropy{suffix}"] = figs.head_heatmap(
                np.array([heads for _, heads in per_layer]),
                title=f"{name}: attention entropy per head (step {last['step']})",
                label="entropy / log(keys)",
            )
    paths = []
    for stem, fig in figures.items():
        path = out / f"{stem}.png"
        fig.savefig(path, dpi=110)
        paths.append(path)
    return paths
