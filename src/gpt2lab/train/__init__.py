"""Training: `train(TrainConfig(...)) -> RunResult`, and the pieces it is made of.

>>> result = train(TrainConfig(data="data/stories", preset="tiny", max_steps=200))
>>> result.val_loss, result.checkpoint        # doctest: +SKIP

Modules: config (TrainConfig: defaults < YAML < flags, typed), run (run directories, resume,
signals, `train()`), trainer (the loop, `Callback`, `RunResult`), engine (the math of a
step: autocast, the loss, the torch engine), numpy_engine (`--engine numpy`: the same loop on
the hand-written NumPy backward), callbacks (metrics, progress, samples, monitoring,
checkpoints), optim (param groups, lr schedule), checkpoint (atomic, resumable), monitor
(layer statistics, the non-finite locator), distributed (torchrun, DDP, FSDP), metrics
(reading runs back, writing their plots).

The names below are loaded lazily: `from gpt2lab.train import TrainConfig` (and so
`gpt2lab train --help`) does not import torch.
"""

from __future__ import annotations

from gpt2lab.lazy import lazy_attributes

_LAZY = {
    "TrainConfig": "gpt2lab.train.config",
    "apply_overrides": "gpt2lab.train.config",
    "Callback": "gpt2lab.train.trainer",
    "RunResult": "gpt2lab.train.trainer",
    "Trainer": "gpt2lab.train.trainer",
    "resume_config": "gpt2lab.train.run",
    "train": "gpt2lab.train.run",
}

__all__ = list(_LAZY)

__getattr__ = lazy_attributes(__name__, _LAZY)
