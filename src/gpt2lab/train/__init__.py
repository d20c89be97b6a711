"""Training: `train(TrainConfig(...)) -> RunResult`, and the pieces it is made of.

>>> result = train(TrainConfig(data="data/stories", preset="tiny", max_steps=200))
>>> result.val_loss, result.checkpoint        # doctest: +SKIP

Modules: config (TrainConfig, YAML/flags), loop (the Trainer), optim (param groups, lr
schedule), checkpoint (atomic, resumable), monitor (layer statistics, the non-finite
locator), callbacks (metrics, progress, samples, checkpoints), distributed (torchrun, DDP,
FSDP), data (meta.json, the default stories corpus), metrics (reading runs, drawing plots),
numpy_engine (`--engine numpy`: the same loop on the hand-written NumPy backward).
"""

from gpt2lab.train.callbacks import Callback
from gpt2lab.train.config import TrainConfig, apply_overrides
from gpt2lab.train.loop import RunResult, Trainer, resume_config, train

__all__ = [
    "Callback",
    "RunResult",
    "TrainConfig",
    "Trainer",
    "apply_overrides",
    "resume_config",
    "train",
]
