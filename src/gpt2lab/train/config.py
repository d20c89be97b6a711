"""TrainConfig: everything a training run needs, as one dataclass.

Three layers set it, each overriding the one before:

    dataclass defaults  <  YAML file (--config run.yaml)  <  flags (--lr 3e-4 --model.n-layer 4)

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
from dataclasses import dataclass, field
from typing import Any

import yaml

from gpt2lab.config import ConfigError, GPTConfig
from gpt2lab.errors import GPT2LabError
from gpt2lab.options import field_types, typed_values

SCHEDULES = ("cosine", "linear", "constant")
DTYPES = ("float32", "float64", "bfloat16", "float16", "auto")
ENGINES = ("torch", "numpy")
NUMPY_DTYPES = ("float32", "float64")
FLOAT32_MAX = 3.4028234663852886e38
"""The largest float32: the weights are float32 (or wider), and AdamW multiplies them by lr,
so a larger lr overflows inside the optimizer."""

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
        "keep_every",
        "max_nonfinite",
        "tensorboard",
        "progress",
    }
)


STORIES_REPEAT_ROWS = 0.5
"""`repeat_rows` of a run that trains a new model on the default stories data: half of every
batch is copying practice, which makes induction and previous-token heads form within the
default run (docs/interpretability.md, round 6)."""

STORIES_DECAY = "constant"
"""`decay` of a run that trains a new model on the default stories data: the lr stays at its
peak, because the copying of names said earlier in a story, which starts late in the default
run, started in the runs measured only while the lr was near its peak, and previous-token and
sentence-boundary heads formed more often with it (docs/interpretability.md, round 8)."""


@dataclass
class TrainConfig:
    """Everything a training run needs. Each field's docstring is its `--flag` help."""

    # --- what to train ---------------------------------------------------------------------
    data: str = "data/stories-4096"
    """prepared data dir (token shards + meta.json, see `gpt2lab data prepare`)"""
    preset: str = "stories"
    """model preset: gpt2, gpt2-medium, gpt2-large, gpt2-xl, tiny, stories, mini"""
    model: dict[str, Any] = field(default_factory=dict)
    """GPTConfig overrides over the preset, e.g. --model.n-layer 4 (vocab_size defaults to the
    data's)"""
    init_from: str | None = None
    """start from pretrained weights: gpt2 (hub name) or a model/run dir"""

    # --- where -----------------------------------------------------------------------------
    out_dir: str = "runs"
    """parent of run directories"""
    name: str | None = None
    """run name (default: <data>-<preset>-<time>)"""

    # --- batch -----------------------------------------------------------------------------
    batch_size: int = 128
    """sequences per micro-batch and rank"""
    block_size: int | None = None
    """tokens per sequence (default: the model's)"""
    grad_accum: int = 1
    """micro-batches per optimizer step and rank"""
    repeat_rows: float | None = None
    """fraction of each training batch made of random token segments said twice (the second
    copies scored): practice at copying from the context, which grows induction heads; 0 = the
    data only (validation always uses the data alone). Default: 0.5 when training from scratch
    on the default stories data, else 0"""

    # --- optimisation ----------------------------------------------------------------------
    max_steps: int = 800
    """optimizer steps"""
    lr: float = 3e-3
    """peak learning rate"""
    min_lr: float = 3e-4
    """learning rate at the end of the decay"""
    warmup_steps: int = 30
    """linear warmup steps"""
    decay: str | None = None
    """lr decay after warmup: cosine, linear, constant. Default: constant when training from
    scratch on the default stories data, else cosine"""
    decay_steps: int | None = None
    """step where decay reaches min_lr (default: max_steps)"""
    weight_decay: float = 0.1
    """AdamW weight decay on matrices and embeddings"""
    beta1: float = 0.9
    """AdamW beta1"""
    beta2: float = 0.95
    """AdamW beta2"""
    grad_clip: float = 1.0
    """global gradient-norm clip (0 = off)"""

    # --- numerics and hardware -------------------------------------------------------------
    engine: str = "torch"
    """torch (autograd) or numpy (the hand-written backward of gpt2lab.reference; tiny models,
    one CPU process)"""
    device: str = "auto"
    """auto, cpu, cuda, cuda:1, mps"""
    dtype: str = "float32"
    """float32, float64 (weights and math in double, e.g. to compare engines), bfloat16 /
    float16 (autocast), or auto (bfloat16 where a short matmul probe finds it at least 2×
    faster, else float32; the choice is saved in config.yaml)"""
    compile: bool = False
    """torch.compile the model"""
    fsdp: bool = False
    """shard the model with FSDP (under torchrun)"""
    seed: int = 1337
    """seed of every random thing"""
    threads: int = 0
    """CPU threads for torch (0 = torch's default)"""

    # --- evaluation, samples, monitoring, checkpoints --------------------------------------
    log_interval: int = 10
    """steps between train-loss records"""
    eval_interval: int = 100
    """steps between evaluations (0 = only at the end)"""
    eval_iters: int = 20
    """val batches per evaluation"""
    sample_interval: int = 100
    """steps between samples (0 = only at the end)"""
    sample_tokens: int = 120
    """tokens per sample"""
    sample_prompt: str = "Once upon a time"
    """prompt of the samples"""
    monitor_interval: int = 50
    """steps between layer statistics (0 = off)"""
    checkpoint_interval: int = 200
    """steps between checkpoints (0 = only at the end)"""
    keep_last: int = 3
    """step checkpoints kept (the best-val one is kept too; 0 = only best/ and the latest)"""
    keep_every: int = 100
    """also write a checkpoint every N steps and never prune it, whatever keep_last says: the
    checkpoints `gpt2lab timeline` compares (0 = none)"""
    step_log: bool = False
    """write steps.jsonl: every step's loss, lr, pre-clip gradient norm and largest attention
    logit per layer (an extra q·kᵀ per layer and step, without gradients)"""
    max_nonfinite: int = 5
    """stop after this many consecutive non-finite steps"""
    tensorboard: bool = True
    """also log to TensorBoard (when installed)"""
    progress: bool = True
    """show a progress bar"""

    def __post_init__(self) -> None:
        if isinstance(self.model, GPTConfig):  # a whole GPTConfig is accepted as overrides
            self.model = {k: v for k, v in self.model.to_dict().items() if k != "extra"}
        validate(self)

    # --- derived -----------------------------------------------------------------------------

    def trains_stories_from_scratch(self) -> bool:
        """Whether this run trains a new model on the default stories data."""
        return self.data == TrainConfig.data and self.init_from is None  # the field's default

    def repeat_fraction(self) -> float:
        """`repeat_rows`, or when unset its default: STORIES_REPEAT_ROWS for a new model on
        the default stories data, else 0 (worked out from the other fields, so flags, YAML
        and a resumed run's config.yaml all get the same)."""
        if self.repeat_rows is not None:
            return self.repeat_rows
        return STORIES_REPEAT_ROWS if self.trains_stories_from_scratch() else 0.0

    def schedule(self) -> str:
        """`decay`, or when unset its default: STORIES_DECAY for a new model on the default
        stories data, else cosine (worked out like `repeat_fraction`)."""
        if self.decay is not None:
            return self.decay
        return STORIES_DECAY if self.trains_stories_from_scratch() else "cosine"

    def repeat_rows_per_batch(self) -> int:
        """Rows of each micro-batch that are repeat rows: round(repeat_fraction × batch_size)."""
        return round(self.repeat_fraction() * self.batch_size)

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
    """One clear line for any field that cannot work (TrainConfig runs it on construction,
    so a bad number is refused before a run directory exists)."""
    for name, value in cfg.to_dict().items():
        if isinstance(value, float) and not math.isfinite(value):
            raise GPT2LabError(f"{name} must be a finite number, got {value}")
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
        "keep_every",
    ):
        if getattr(cfg, name) < 0:
            raise GPT2LabError(f"{name} must be >= 0, got {getattr(cfg, name)}")
    if not 0 <= cfg.repeat_fraction() < 1 or cfg.repeat_rows_per_batch() >= cfg.batch_size:
        raise GPT2LabError(
            f"repeat_rows must be in [0, 1) and leave at least one data row of the batch, "
            f"got {cfg.repeat_fraction()}"
        )
    if cfg.block_size is not None and cfg.block_size < 1:
        raise GPT2LabError(f"block_size must be >= 1, got {cfg.block_size}")
    if not (0 < cfg.lr <= FLOAT32_MAX and 0 <= cfg.min_lr <= cfg.lr):
        raise GPT2LabError(
            f"need 0 < lr <= {FLOAT32_MAX:.3g} (float32's largest) and 0 <= min_lr <= lr, "
            f"got lr={cfg.lr} min_lr={cfg.min_lr}"
        )
    if cfg.schedule() not in SCHEDULES:
        raise GPT2LabError(f"decay must be one of {', '.join(SCHEDULES)}, got {cfg.decay!r}")
    if cfg.dtype not in DTYPES:
        raise GPT2LabError(f"dtype must be one of {', '.join(DTYPES)}, got {cfg.dtype!r}")
    if cfg.engine not in ENGINES:
        raise GPT2LabError(f"engine must be one of {', '.join(ENGINES)}, got {cfg.engine!r}")
    if cfg.engine == "numpy":
        validate_numpy_engine(cfg)
    if cfg.step_log and cfg.compile:
        raise GPT2LabError("--step-log hooks the attention, which --compile would trace; drop one")
    if not (0 <= cfg.beta1 < 1 and 0 <= cfg.beta2 < 1):
        raise GPT2LabError(f"betas must be in [0, 1), got {cfg.beta1}, {cfg.beta2}")
    if cfg.weight_decay < 0 or cfg.grad_clip < 0:
        raise GPT2LabError(
            f"weight_decay and grad_clip must be >= 0, got {cfg.weight_decay}, {cfg.grad_clip}"
        )
    if cfg.name is not None and (not cfg.name or "/" in cfg.name or cfg.name.startswith(".")):
        raise GPT2LabError(f"run name must be a plain directory name, got {cfg.name!r}")
    try:
        cfg.model_config(vocab_size=1)
    except ConfigError as err:
        raise GPT2LabError(f"model: {err}") from None


def validate_numpy_engine(cfg: TrainConfig) -> None:
    """What the NumPy engine cannot do: it is one CPU process of plain float32/float64 arrays.

    The model itself (dropout, size) is checked when it is built: `--init-from` decides it.
    """
    refusals = (
        (cfg.compile, "--compile is for torch modules; the numpy engine has nothing to compile"),
        (cfg.fsdp, "--fsdp shards torch modules; the numpy engine runs in one process"),
        (cfg.step_log, "--step-log hooks the torch model's attention; the numpy engine has none"),
        (
            cfg.dtype not in (*NUMPY_DTYPES, "auto"),
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

FIELD_TYPES = field_types(TrainConfig)
MODEL_TYPES = {k: v for k, v in field_types(GPTConfig).items() if k != "extra"}
"""What `model` overrides may set: every GPTConfig field but the free-form `extra`."""


def model_overrides(values: dict[str, Any], what: str = "model option") -> dict[str, Any]:
    """GPTConfig overrides, each typed: {"n_layer": "2"} -> {"n_layer": 2}."""
    return typed_values(MODEL_TYPES, values, what, prefix="model.")


def apply_overrides(cfg: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """A copy of cfg with `{"lr": "3e-4", "model.n_layer": 4, "model": {...}}` applied.

    Keys are TrainConfig fields, or `model.FIELD` for a GPTConfig field; values are typed by
    `gpt2lab.options` (text from flags or YAML alike); anything else is an error naming the
    key (a typo must not pass silently).
    """
    overrides = dict(overrides)
    model = overrides.pop("model", {})
    if not isinstance(model, dict):
        raise GPT2LabError(f"model must be a mapping of GPTConfig fields, got {model!r}")
    model = {**model, **{k[6:]: overrides.pop(k) for k in list(overrides) if k[:6] == "model."}}
    fields = {k: v for k, v in FIELD_TYPES.items() if k != "model"}
    data = {**cfg.to_dict(), **typed_values(fields, overrides, "training option")}
    data["model"] = {**cfg.model, **model_overrides(model)}
    return TrainConfig(**data)


OLDER_RUNS = {"repeat_rows": 0.0}
"""What a field means in a config saved before the field existed (runs then did without it)."""


def saved_config(options: dict[str, Any]) -> TrainConfig:
    """The TrainConfig of a saved config.yaml or checkpoint state: its options over the
    defaults, where fields it lacks take OLDER_RUNS' values rather than today's defaults."""
    return apply_overrides(TrainConfig(), {**OLDER_RUNS, **options})


def to_yaml(cfg: TrainConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


def trajectory_changes(old: TrainConfig, new: TrainConfig) -> list[str]:
    """Fields that differ between two configs and would change the training trajectory.

    With a constant lr, or with `decay_steps` set (the same in both), the schedule does not
    depend on `max_steps`, so a resumed run may go on longer: `--resume RUN --max-steps 1500`.
    """
    a, b = old.to_dict(), new.to_dict()
    for k, resolved in (
        ("repeat_rows", TrainConfig.repeat_fraction),
        ("decay", TrainConfig.schedule),
    ):
        a[k], b[k] = resolved(old), resolved(new)  # unset = its default
    free = RESUMABLE_CHANGES
    if a["decay"] == "constant" or (
        a["decay_steps"] is not None and a["decay_steps"] == b["decay_steps"]
    ):
        free = free | {"max_steps"}
    return [k for k in a if k not in free and a[k] != b[k]]
