"""A training run's kept checkpoints, for the explorer's timeline view (a step slider).

`gpt2lab.timeline` does the measuring; this module only decides *when*:

    overview()        the loss curves, their slope changes and the kept checkpoint steps
                      (metrics.jsonl only: cheap; re-read when the file changes)
    checkpoint(step)  one checkpoint's val loss, sample, best head per role and cloze accuracy
                      (loads that checkpoint: seconds), computed on first request, then kept

so moving the slider costs one checkpoint at a time, never the whole run at once. One lock
serialises the measuring (a second request for the same step waits, then reads the cache);
it is not the explorer's model lock, since the checkpoints are models of their own.

    {"run": "tiny", "steps": [10, 20, 30], "changes": [{"step": 14.0, "slope_before": -0.21,
     "slope_after": -0.02}], "train": {"step": [...], "value": [...]}, "val": ..., "fit": ...}
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from gpt2lab.errors import GPT2LabError
from gpt2lab.timeline import (
    TimelineInputs,
    checkpoint_dirs,
    checkpoint_summary,
    loss_curve,
    make_inputs,
)
from gpt2lab.viewer.metrics import thin_indices


def thinned(steps: list, values: list) -> dict:
    """{'step', 'value'} with at most ~MAX_POINTS points (the last kept)."""
    keep = thin_indices(len(steps))
    return {"step": [steps[i] for i in keep], "value": [values[i] for i in keep]}


class RunTimeline:
    """The timeline of the run at `run_dir`, its checkpoints measured lazily on `device`,
    head roles and cloze on `probes` stories probes."""

    def __init__(self, run_dir: Path, *, device: Any = "cpu", probes: int = 24) -> None:
        self.run_dir = Path(run_dir)
        self.device = device
        self.probes = probes
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._overview: dict = {}
        self._inputs: TimelineInputs | None = None
        self._summaries: dict[int, dict] = {}

    def available(self) -> bool:
        """Whether the run has step checkpoints to put on a slider (a directory listing)."""
        try:
            return bool(checkpoint_dirs(self.run_dir))
        except GPT2LabError:
            return False

    def overview(self) -> dict:
        """Curves, slope changes and checkpoint steps (a GPT2LabError when the run has no
        step checkpoints or too few records)."""
        checkpoint_dirs(self.run_dir)  # "… has no step checkpoints; train it with --keep-every N"
        stat = (self.run_dir / "metrics.jsonl").stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if stamp != self._stamp:
                curve = loss_curve(self.run_dir).to_dict()
                fit = curve["fit"]
                self._overview = {
                    "run": self.run_dir.name,
                    "steps": curve["checkpoint_steps"],
                    "train": thinned(curve["train_steps"], curve["train_losses"]),
                    "val": {"step": curve["val_steps"], "value": curve["val_losses"]},
                    "fit": {"step": fit["steps"], "value": fit["fitted"]},
                    "changes": fit["changes"],
                    "log_step": fit["log_step"],
                    "probes": self.probes,
                }
                self._stamp = stamp
            return self._overview

    def checkpoint(self, step: int) -> dict:
        """`timeline.checkpoint_summary` of the checkpoint at `step`, as JSON-able data."""
        with self._lock:
            if step not in self._summaries:
                checkpoint_dirs(self.run_dir)
                if self._inputs is None:
                    self._inputs = make_inputs(self.run_dir, probes=self.probes)
                summary = checkpoint_summary(
                    self.run_dir, step, inputs=self._inputs, device=self.device
                )
                self._summaries[step] = summary.to_dict()
            return self._summaries[step]
