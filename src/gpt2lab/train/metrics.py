"""Reading a run's metrics.jsonl back, and writing its figures as PNGs (`gpt2lab plot`).

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

from gpt2lab.errors import GPT2LabError
from gpt2lab.files import read_text


def find_run(name: str | Path) -> Path:
    """A training run given as a path, or as a name under runs/."""
    path = Path(name)
    for candidate in (path, Path("runs") / name):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise GPT2LabError(f"no training run at {name} (expected a dir with config.yaml)")


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """All records of a run, in order (a half-written last line is skipped)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise GPT2LabError(f"{run_dir} is not a training run (no metrics.jsonl)")
    return parse_records(read_text(path))


def parse_records(text: str) -> list[dict[str, Any]]:
    """The records of metrics.jsonl text; a line that is not a whole record (a half-written
    last line) is skipped."""
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int) and "kind" in record:
            records.append(record)
    return records


def write_plots(run_dirs: list[str | Path], out_dir: str | Path | None = None) -> list[Path]:
    """Write every figure of these runs (`plots.training.training_figures`) as PNGs; return
    their paths. `out_dir` defaults to the first run's plots/."""
    from gpt2lab.plots.training import training_figures  # matplotlib: only when plotting

    runs = {Path(d).name: read_metrics(d) for d in run_dirs}
    out = Path(out_dir) if out_dir else Path(run_dirs[0]) / "plots"
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for stem, fig in training_figures(runs).items():
        path = out / f"{stem}.png"
        fig.savefig(path, dpi=110)
        paths.append(path)
    return paths
