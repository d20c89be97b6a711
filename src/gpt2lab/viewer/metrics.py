"""A training run's metrics.jsonl, as curves for the explorer's run view.

The records are read with `gpt2lab.train.metrics` (see its docstring for every kind and key):

    {"step": 10, "kind": "train", "loss": 5.1, "lr": 3e-4, "grad_norm": 1.3, ...}
    {"step": 10, "kind": "eval", "val_loss": 5.3, "val_ppl": 200.3}
    {"step": 10, "kind": "monitor", "grad_norm": {"embed": 0.8, "block0": 1.2, ...}, ...}

and become, for the page,

    series  {"train/loss": {"step": [...], "value": [...]}, "train/perplexity": ..., "eval/val_loss":
             ..., "eval/val_perplexity": ..., "train/lr": ..., "train/grad_norm": ...}
    layered {"grad_norm": {"layers": ["embed", "block0", ...], "step": [...],
                           "values": [[per layer] per step]}, "update_ratio": ..., "dead_frac": ...}

Perplexity is exp(loss), capped at exp(20) so one bad step does not flatten the chart. Long
runs are thinned to at most MAX_POINTS points per curve (the last point always kept).
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

from gpt2lab.plots.training import curve, layer_matrix
from gpt2lab.train.metrics import read_metrics

MAX_POINTS = 2000
MAX_LOG_PPL = 20.0
SERIES = (("train", "loss"), ("eval", "val_loss"), ("train", "lr"), ("train", "grad_norm"))
LAYERED = ("grad_norm", "update_ratio", "dead_frac")


def thin_indices(n: int, max_points: int = MAX_POINTS) -> list[int]:
    """At most ~`max_points` evenly spaced indices of 0..n-1, always keeping the last.

    n = 10, max_points = 4 -> stride 3 -> [0, 3, 6, 9].
    """
    if n <= max_points:
        return list(range(n))
    stride = math.ceil(n / max_points)
    return sorted(set(range(0, n, stride)) | {n - 1})


def _finite(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def run_curves(records: list[dict]) -> dict:
    """The series and layered series of a run's records (see the module docstring)."""
    records = [r for r in records if isinstance(r, dict) and "step" in r and "kind" in r]
    series = {}
    for kind, key in SERIES:
        steps, values = curve(records, kind, key)
        if not steps:
            continue
        keep = thin_indices(len(steps))
        series[f"{kind}/{key}"] = {
            "step": [steps[i] for i in keep],
            "value": [_finite(values[i]) for i in keep],
        }
        if key.endswith("loss"):
            series[f"{kind}/{key.removesuffix('loss')}perplexity"] = {
                "step": [steps[i] for i in keep],
                "value": [_perplexity(values[i]) for i in keep],
            }
    layered = {}
    for key in LAYERED:
        steps, layers, values = layer_matrix(records, key)  # values (layer, step)
        if not steps:
            continue
        keep = thin_indices(len(steps))
        layered[key] = {
            "layers": layers,
            "step": [steps[i] for i in keep],
            "values": [[_finite(values[k, i]) for k in range(len(layers))] for i in keep],
        }
    return {"series": series, "layered": layered}


def _perplexity(loss) -> float | None:
    value = _finite(loss)
    return None if value is None else math.exp(min(value, MAX_LOG_PPL))


class RunMetrics:
    """A run's curves, re-read only when metrics.jsonl changes (so a live run updates)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.path = run_dir / "metrics.jsonl"
        self._stamp: tuple[int, int] | None = None
        self._curves: dict = {}
        self._lock = threading.Lock()

    def curves(self) -> dict:
        stat = self.path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if stamp != self._stamp:
                records = read_metrics(self.run_dir)
                self._curves = {
                    "name": self.run_dir.name,
                    "n_records": len(records),
                    **run_curves(records),
                }
                self._stamp = stamp
            return self._curves
