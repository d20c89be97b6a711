"""TrainConfig: everything a training run needs, as one dataclass.

Three layers set it, each overriding the one before:

    dataclass defaults  <  YAML file (--config run.yaml)  <  flags (--lr 3e-4 --model.n_layer 4)

The model is a preset name plus `GPTConfig` field overrides, so an ablation is one dict:

>>> cfg = TrainConfig(preset="tiny", model={"norm_placement": "none"})
>>> cfg.model_config(vocab_size=4096).norm_placement
'none'
>>> apply_overrides(cfg, {"lr": "3e-4", "model.n_layer": "2"}).model
{'norm_placement': 'none', 'n_layer': 2}

`vocab_size` is taken from the data's tokenizer unless set; the resolved config is saved as
`runs/NAME/config.yaml`, and `--resume NAME` refuses a config that differs from it in
anything that changes the trajectory (see RESUMABLE_CHANGES).
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gpt2lab.config import PRESETS, ConfigError, GPTConfig
from gpt2lab.errors import GPT2LabError

SCHEDULES = ("cosine", "linear", "constant")
DTYPES = ("float32", "float64", "bfloat16", "float16")
ENGINES = ("torch", "numpy")
NUMPY_DTYPES = ("float32", "float64")

# Fields that may differ on --resume: they change what is logged or kept, never the
# trajectory (evaluation and sampling use their own random generators).
RESUMABLE_CHANGES = frozenset(
    {
        "name",
        "out_dir",
        "log_interval",
        "eval_interval",
        "eval_iters",
        "sample_interval",
        "sample_tokens",
        "sample_prompt",
        "monitor_interval",
        "checkpoint_interval",
        "keep_last",
        "max_nonfinite",
        "tensorboard",
        "progress",
    }
)


def _help(text: str, **kwargs: Any) -> Any:
    """A dataclass field whose help text is also its `--flag` help."""
    return field(metadata={"help": text}, **kwargs)


@dataclass
class TrainConfig:
    # --- what to train ---------------------------------------------------------------------
    data: str = _help(
        "prepared data dir (token shards + meta.json, see `gpt2lab data prepare`)",
        default="data/stories-4096",
    )
    preset: str = _help("model preset: " + ", ".join(PRESETS), default="tiny")
    model: dict[str, Any] = _help(
        "GPTConfig overrides, e.g. --model.n_layer 4 (vocab_size defaults to the data's)",
        default_factory=dict,
    )
    init_from: str | None = _help(
        "start from pretrained weights: gpt2 (hub name) or a model/run dir", default=None
    )

    # --- where -----------------------------------------------------------------------------
    out_dir: str = _help("parent of run directories", default="runs")
    name: str | None = _help("run name (default: <data>-<preset>-<time>)", default=None)

    # --- batch -----------------------------------------------------------------------------
    batch_size: int = _help("sequences per micro-batch and rank", default=32)
    block_size: int | None = _help("tokens per sequence (default: the model's)", default=None)
    grad_accum: int = _help("micro-batches per optimizer step and rank", default=1)

    # --- optimisation ----------------------------------------------------------------------
    max_steps: int = _help("optimizer steps", default=400)
    lr: float = _help("peak learning rate", default=3e-3)
    min_lr: float = _help("learning rate at the end of the decay", default=3e-4)
    warmup_steps: int = _help("linear warmup steps", default=30)
    decay: str = _help("lr decay after warmup: " + ", ".join(SCHEDULES), default="cosine")
    decay_steps: int | None = _help(
        "step where decay reaches min_lr (default: max_steps)", default=None
    )
    weight_decay: float = _help("AdamW weight decay on matrices and embeddings", default=0.1)
    beta1: float = _help("AdamW beta1", default=0.9)
    beta2: float = _help("AdamW beta2", default=0.95)
    grad_clip: float = _help("global gradient-norm clip (0 = off)", default=1.0)

    # --- numerics and hardware -------------------------------------------------------------
    engine: str = _help(
        "torch (autograd) or numpy (the hand-written backward of gpt2lab.reference; tiny "
        "models, one CPU process)",
        default="torch",
    )
    device: str = _help("auto, cpu, cuda, cuda:1, mps", default="auto")
    dtype: str = _help(
        "float32, float64 (weights and math in double, e.g. to compare engines), or bfloat16 / "
        "float16 (autocast)",
        default="float32",
    )
    compile: bool = _help("torch.compile the model", default=False)
    fsdp: bool = _help("shard the model with FSDP (under torchrun)", default=False)
    seed: int = _help("seed of every random thing", default=1337)
    threads: int = _help("CPU threads for torch (0 = torch's default)", default=0)

    # --- evaluation, samples, monitoring, checkpoints --------------------------------------
    log_interval: int = _help("steps between train-loss records", default=10)
    eval_interval: int = _help("steps between evaluations (0 = only at the end)", default=100)
    eval_iters: int = _help("val batches per evaluation", default=20)
    sample_interval: int = _help("steps between samples (0 = only at the end)", default=100)
    sample_tokens: int = _help("tokens per sample", default=120)
    sample_prompt: str = _help("prompt of the samples", default="Once upon a time")
    monitor_interval: int = _help("steps between layer statistics (0 = off)", default=50)
    checkpoint_interval: int = _help("steps between checkpoints (0 = only at the end)", default=200)
    keep_last: int = _help("step checkpoints kept (the best-val one is kept too)", default=3)
    max_nonfinite: int = _help("stop after this many consecutive non-finite steps", default=5)
    tensorboard: bool = _help("also log to TensorBoard (when installed)", default=True)
    progress: bool = _help("show a progress bar", default=True)

    def __post_init__(self) -> None:
        if isinstance(self.model, GPTConfig):  # a whole GPTConfig is accepted as overrides
            self.model = {k: v for k, v in self.model.to_dict().items() if k != "extra"}
        validate(self)

    # --- derived -----------------------------------------------------------------------------

    def model_config(self, vocab_size: int | None = None) -> GPTConfig:
        """The GPTConfig: preset, then `model` overrides; vocab_size fills in when not set."""
        overrides = dict(self.model)
        if vocab_size is not None:
            overrides.setdefault("vocab_size", vocab_size)
        return GPTConfig.preset(self.preset, **overrides)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


def validate(cfg: TrainConfig) -> None:
    """One clear line for any field that cannot work."""
    for name in ("batch_size", "grad_accum", "max_steps", "eval_iters", "max_nonfinite"):
        if getattr(cfg, name) < 1:
            raise GPT2LabError(f"{name} must be >= 1, got {getattr(cfg, name)}")
    for name in (
        "warmup_steps",
        "threads",
        "log_interval",
        "eval_interval",
        "sample_interval",
        "sample_tokens",
        "monitor_interval",
        "checkpoint_interval",
        "keep_last",
    ):
        if getattr(cfg, name) < 0:
            raise GPT2LabError(f"{name} must be >= 0, got {getattr(cfg, name)}")
    if cfg.block_size is not None and cfg.block_size < 1:
        raise GPT2LabError(f"block_size must be >= 1, got {cfg.block_size}")
    if not (cfg.lr > 0 and 0 <= cfg.min_lr <= cfg.lr):
        raise GPT2LabError(
            f"need lr > 0 and 0 <= min_lr <= lr, got lr={cfg.lr} min_lr={cfg.min_lr}"
        )
    if cfg.decay not in SCHEDULES:
        raise GPT2LabError(f"decay must be one of {', '.join(SCHEDULES)}, got {cfg.decay!r}")
    if cfg.dtype not in DTYPES:
        raise GPT2LabError(f"dtype must be one of {', '.join(DTYPES)}, got {cfg.dtype!r}")
    if cfg.engine not in ENGINES:
        raise GPT2LabError(f"engine must be one of {', '.join(ENGINES)}, got {cfg.engine!r}")
    if cfg.engine == "numpy":
        validate_numpy_engine(cfg)
    if not (0 <= cfg.beta1 < 1 and 0 <= cfg.beta2 < 1):
        raise GPT2LabError(f"betas must be in [0, 1), got {cfg.beta1}, {cfg.beta2}")
    if cfg.weight_decay < 0 or cfg.grad_clip < 0 or not math.isfinite(cfg.grad_clip):
        raise GPT2LabError("weight_decay and grad_clip must be finite and >= 0")
    if cfg.name is not None and (not cfg.name or "/" in cfg.name or cfg.name.startswith(".")):
        raise GPT2LabError(f"run name must be a plain directory name, got {cfg.name!r}")
    try:
        cfg.model_config(vocab_size=1)
    except ConfigError as err:
        raise GPT2LabError(f"model: {err}") from None


def validate_numpy_engine(cfg: TrainConfig) -> None:
    """What the NumPy engine cannot do: it is one CPU process of plain float32/float64 arrays.

    The model itself (dropout, size) is checked when it is built: `--init_from` decides it.
    """
    refusals = (
        (cfg.compile, "--compile is for torch modules; the numpy engine has nothing to compile"),
        (cfg.fsdp, "--fsdp shards torch modules; the numpy engine runs in one process"),
        (
            cfg.dtype not in NUMPY_DTYPES,
            f"the numpy engine computes in float32 or float64, not {cfg.dtype}",
        ),
        (
            cfg.device not in ("auto", "cpu"),
            f"the numpy engine runs on the CPU; drop --device {cfg.device}",
        ),
    )
    for refused, message in refusals:
        if refused:
            raise GPT2LabError(message)


# ---------------------------------------------------------------------------------------------
# YAML and flags
# ---------------------------------------------------------------------------------------------

FIELD_TYPES = typing.get_type_hints(TrainConfig)
MODEL_TYPES = {k: v for k, v in typing.get_type_hints(GPTConfig).items() if k != "extra"}


def coerce(value: Any, annotation: Any, key: str) -> Any:
    """Turn a flag string or YAML value into the field's type: '3e-4' -> 0.0003 for a float.

    Strings are read as YAML scalars first ('true' -> True, '4' -> 4, 'null' -> None).
    """
    options = typing.get_args(annotation) if typing.get_origin(annotation) else (annotation,)
    if isinstance(value, str) and annotation is not str:
        value = yaml.safe_load(value) if value.strip() else value
    if isinstance(value, str) and float in options:  # YAML 1.1 reads '3e-4' as a string
        try:
            value = float(value)
        except ValueError:
            pass
    if value is None:
        if type(None) in options:
            return None
        raise GPT2LabError(f"{key} cannot be null")
    for option in options:
        if option is bool and isinstance(value, bool):
            return value
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if option is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    wanted = " or ".join(getattr(o, "__name__", str(o)) for o in options if o is not type(None))
    raise GPT2LabError(f"{key} must be {wanted}, got {value!r}")


def apply_overrides(cfg: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """A copy of cfg with `{"lr": "3e-4", "model.n_layer": 4, "model": {...}}` applied.

    Keys are TrainConfig fields, or `model.FIELD` for a GPTConfig field; anything else is an
    error naming the key (a typo must not pass silently).
    """
    data = cfg.to_dict()
    data["model"] = dict(data["model"])
    for key, value in overrides.items():
        if key == "model":
            if not isinstance(value, dict):
                raise GPT2LabError(f"model must be a mapping of GPTConfig fields, got {value!r}")
            for sub, subvalue in value.items():
                data["model"][sub] = _model_value(sub, subvalue)
        elif key.startswith("model."):
            sub = key.removeprefix("model.")
            data["model"][sub] = _model_value(sub, value)
        elif key in FIELD_TYPES:
            data[key] = coerce(value, FIELD_TYPES[key], key)
        else:
            raise GPT2LabError(f"unknown training option {key!r}")
    return TrainConfig(**data)


def _model_value(name: str, value: Any) -> Any:
    if name not in MODEL_TYPES:
        raise GPT2LabError(f"unknown model option 'model.{name}'")
    return coerce(value, MODEL_TYPES[name], f"model.{name}")


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping of options (a config file or a run's config.yaml)."""
    path = Path(path)
    if not path.is_file():
        raise GPT2LabError(f"no such config file: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise GPT2LabError(f"{path} is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise GPT2LabError(f"{path} must hold a mapping of options, got {type(data).__name__}")
    return data


def to_yaml(cfg: TrainConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


def trajectory_changes(old: TrainConfig, new: TrainConfig) -> list[str]:
    """Fields that differ between two configs and would change the training trajectory."""
    a, b = old.to_dict(), new.to_dict()
    return [k for k in a if k not in RESUMABLE_CHANGES and a[k] != b[k]]
