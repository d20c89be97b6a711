"""A run's curve (cheap: files only), one checkpoint's measurements (seconds), and the whole
timeline: what `gpt2lab timeline` computes before writing it (report.py).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gpt2lab.errors import GPT2LabError
from gpt2lab.timeline.slopes import SlopeChange, SlopeFit, slope_changes

# ---------------------------------------------------------------------------------------------
# 1. A run's curve and checkpoints (cheap: files only)
# ---------------------------------------------------------------------------------------------


@dataclass
class LossCurve:
    """metrics.jsonl's train and val losses, the slope fit, and the kept checkpoint steps."""

    run_dir: str
    train_steps: list[int]
    train_losses: list[float]
    val_steps: list[int]
    val_losses: list[float]
    fit: SlopeFit
    checkpoint_steps: list[int]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data: the fields, `fit` and its `changes` as dicts too."""
        return asdict(self)


def checkpoint_dirs(run_dir: Path) -> dict[int, Path]:
    """{step: directory} of a run's complete step_* checkpoints, oldest first (best/ is one of
    them under another name, so it is left out); none is a GPT2LabError."""
    from gpt2lab.train.checkpoint import STEP_DIR, step_dirs

    found = {
        int(STEP_DIR.match(d.name).group(1)): d
        for d in step_dirs(Path(run_dir) / "checkpoints")
        if (d / "config.json").is_file()
    }
    if not found:
        raise GPT2LabError(
            f"training run {run_dir} has no step checkpoints; train it with --keep-every N"
        )
    return found


def loss_curve(run_dir: str | Path, *, log_step: bool = False) -> LossCurve:
    """The run's curves from metrics.jsonl and its slope changes (`slope_changes` on the
    train loss); no model is loaded."""
    from gpt2lab.train.metrics import find_run, read_metrics

    run_dir = find_run(run_dir)
    steps = sorted(checkpoint_dirs(run_dir))
    records = read_metrics(run_dir)
    train = [(r["step"], r["loss"]) for r in records if r["kind"] == "train"]
    val = [(r["step"], r["val_loss"]) for r in records if r["kind"] == "eval"]
    if len(train) < 2:
        raise GPT2LabError(f"{run_dir}/metrics.jsonl has fewer than 2 train-loss records")
    return LossCurve(
        str(run_dir),
        [s for s, _ in train],
        [v for _, v in train],
        [s for s, _ in val],
        [v for _, v in val],
        slope_changes(*zip(*train), log_step=log_step),
        steps,
    )


# ---------------------------------------------------------------------------------------------
# 2. One checkpoint
# ---------------------------------------------------------------------------------------------


@dataclass
class TimelineInputs:
    """What every checkpoint is measured on, made once per timeline (`make_inputs`)."""

    tokenizer: Any
    texts: Any  # interp.heads.TextSet: the packed stories probes
    cloze_records: list[dict]
    data: Path
    batch_size: int
    block_size: int
    val_batches: int
    prompt: str
    sample_tokens: int
    seed: int
    n_probes: int
    names: Any = None  # interp.behaviours.NameRecall: held-out stories' name mentions


def run_config(run_dir: Path):
    """The run's TrainConfig, from its config.yaml."""
    from gpt2lab.options import load_yaml
    from gpt2lab.train.config import saved_config

    return saved_config(load_yaml(Path(run_dir) / "config.yaml"))


def val_data(run_dir: Path, data: str | Path | None, config_data: str) -> Path:
    """The prepared data to take val batches from: `data`, else the run's own as written in
    its config (relative to here, then to the folder above runs/)."""
    from gpt2lab.data.prepared import DataSpec

    if data is not None:
        candidates = [Path(data)]
    else:
        candidates = [Path(config_data), Path(run_dir).resolve().parent.parent / config_data]
    for path in candidates:
        if DataSpec.exists(path):
            return path
    raise GPT2LabError(
        f"no prepared data at {candidates[0]} for the val loss; pass --data DIR "
        "(the data the run was trained on)"
    )


def make_inputs(
    run_dir: str | Path,
    *,
    prompt: str | None = None,
    seed: int | None = None,
    probes: int = 200,
    data: str | Path | None = None,
    val_batches: int | None = None,
    sample_tokens: int | None = None,
) -> TimelineInputs:
    """The fixed inputs of every checkpoint's measurements. Defaults are the run's own:
    prompt = sample_prompt, seed = its seed, sample_tokens, val_batches = eval_iters, and its
    data, batch_size and block_size; `probes` stories probe examples (seed 0, as `gpt2lab
    heads`)."""
    from gpt2lab.data.prepared import read_data_spec
    from gpt2lab.evaluate import read_probe_records
    from gpt2lab.interp.behaviours import name_recall_set
    from gpt2lab.interp.texts import packed_probe_text_set
    from gpt2lab.pretrained import read_config, tokenizer_for
    from gpt2lab.train.metrics import find_run

    if probes < 1:
        raise GPT2LabError(f"--probes must be at least 1, got {probes}")
    for name, value in (("val_batches", val_batches), ("sample_tokens", sample_tokens)):
        if value is not None and value < 1:
            raise GPT2LabError(f"{name} must be at least 1, got {value}")
    run_dir = find_run(run_dir)
    first = next(iter(checkpoint_dirs(run_dir).values()))
    model_config = read_config(first)
    tokenizer = tokenizer_for(first, model_config.vocab_size)
    cfg = run_config(run_dir)
    path = val_data(run_dir, data, cfg.data)
    if read_data_spec(path).tokenizer_identity != tokenizer.identity:
        raise GPT2LabError(f"{path} was prepared with another tokenizer than the run's")
    context = min(model_config.block_size, 256)
    return TimelineInputs(
        tokenizer=tokenizer,
        texts=packed_probe_text_set(tokenizer, probes, 0, context),
        cloze_records=read_probe_records(None, probes, 0),
        data=path,
        batch_size=cfg.batch_size,
        block_size=cfg.block_size or model_config.block_size,
        val_batches=val_batches or cfg.eval_iters,
        prompt=cfg.sample_prompt if prompt is None else prompt,
        sample_tokens=sample_tokens or cfg.sample_tokens,
        seed=cfg.seed if seed is None else seed,
        n_probes=probes,
        names=name_recall_set(tokenizer, max_tokens=min(context, 128)),
    )


def val_loss(model, inputs: TimelineInputs) -> tuple[float, int]:
    """(mean cross-entropy in nats, tokens scored) over the first `val_batches` val batches,
    in order, in float32: the trainer's `evaluate` for one process."""
    import torch

    from gpt2lab.data.loader import TokenLoader
    from gpt2lab.evaluate import token_losses
    from gpt2lab.model import device_of, eval_mode

    loader = TokenLoader(
        inputs.data,
        "val",
        batch_size=inputs.batch_size,
        block_size=inputs.block_size,
        mode="sequential",
    )
    total, count = 0.0, 0
    with torch.inference_mode(), eval_mode(model):
        for _, (x, y) in zip(range(inputs.val_batches), loader):
            losses = token_losses(model, x.to(device_of(model)), y.to(device_of(model)))  # (B, T)
            total += float(losses.double().sum())
            count += y.numel()
    return total / count, count


@dataclass(frozen=True)
class RoleBest:
    """The best head for one role: its score, where it is, and how many heads pass."""

    role: str
    score: float
    layer: int
    head: int
    threshold: float
    heads: int
    """Heads `classify_heads` gives this role (≥ threshold; a sink is never long-range)."""


def best_roles(scores, texts) -> list[RoleBest]:
    """One `RoleBest` per rule of ROLE_RULES whose score was measured."""
    from gpt2lab.interp.heads import ROLE_RULES, classify_heads, relative_distance
    from gpt2lab.interp.heads import uniform_distance as uniform

    grids = dict(scores.grids)
    grids["relative_distance"] = relative_distance(scores, uniform(texts))
    roles = classify_heads(scores, mean_uniform_distance=uniform(texts))
    found = []
    for rule in ROLE_RULES:
        if rule.score not in grids:
            continue
        grid = grids[rule.score]  # (n_layer, n_head)
        layer, head = np.unravel_index(int(np.argmax(grid)), grid.shape)
        count = sum(r.role == rule.role for r in roles)
        found.append(
            RoleBest(
                rule.role, float(grid[layer, head]), int(layer), int(head), rule.threshold, count
            )
        )
    return found


@dataclass
class CheckpointSummary:
    """One checkpoint's measurements (see the module docstring)."""

    step: int
    val_loss: float
    val_tokens: int
    train_loss: float | None
    """The logged train loss of the last record at or before this step."""
    sample: str
    roles: list[RoleBest]
    induction_loss: float | None
    cloze_accuracy: float
    cloze_by_kind: dict[str, float]
    said_name_loss: float | None = None
    """The loss on names already said in a held-out story (interp.behaviours.name_losses)."""
    new_name_loss: float | None = None
    """The loss on names said there for the first time."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data: the fields, `roles` as a list of dicts."""
        return asdict(self)

    def role_score(self, role: str) -> float | None:
        return next((r.score for r in self.roles if r.role == role), None)


def summarize_model(model, step: int, inputs: TimelineInputs, train_loss: float | None = None):
    """A `CheckpointSummary` of a loaded model (what `checkpoint_summary` does after loading)."""
    from gpt2lab.evaluate import cloze_score
    from gpt2lab.interp.behaviours import name_losses
    from gpt2lab.interp.heads import compute_head_scores
    from gpt2lab.train.callbacks import sample_text

    loss, tokens = val_loss(model, inputs)
    sample = sample_text(model, inputs.tokenizer, inputs.prompt, inputs.sample_tokens, inputs.seed)
    scores = compute_head_scores(model, inputs.texts, progress=False)
    cloze = cloze_score(model, inputs.tokenizer, inputs.cloze_records)
    names = name_losses(model, inputs.names) if inputs.names is not None else {}
    return CheckpointSummary(
        step=step,
        val_loss=loss,
        val_tokens=tokens,
        train_loss=train_loss,
        sample=sample,
        roles=best_roles(scores, inputs.texts),
        induction_loss=scores.induction_loss,
        cloze_accuracy=cloze["accuracy"],
        cloze_by_kind={k: v["accuracy"] for k, v in cloze["by_kind"].items()},
        said_name_loss=names.get("said_name_loss"),
        new_name_loss=names.get("new_name_loss"),
    )


def checkpoint_summary(
    run_dir: str | Path,
    step: int,
    *,
    inputs: TimelineInputs | None = None,
    device: Any = "cpu",
    **settings,
) -> CheckpointSummary:
    """Load checkpoint `step` of a run and measure it. `inputs` (`make_inputs`) is made here
    from `settings` (make_inputs' keywords) when not given; a timeline makes it once."""
    from gpt2lab.model import resolve_device
    from gpt2lab.pretrained import load_pretrained
    from gpt2lab.train.metrics import find_run, read_metrics

    run_dir = find_run(run_dir)
    directories = checkpoint_dirs(run_dir)
    if step not in directories:
        raise GPT2LabError(
            f"{run_dir} has no checkpoint at step {step} (kept: {', '.join(map(str, directories))})"
        )
    inputs = inputs or make_inputs(run_dir, **settings)
    device = resolve_device(device) if isinstance(device, str) else device
    model = load_pretrained(directories[step], device=device)
    logged = [
        r["loss"] for r in read_metrics(run_dir) if r["kind"] == "train" and r["step"] <= step
    ]
    return summarize_model(model, step, inputs, logged[-1] if logged else None)


# ---------------------------------------------------------------------------------------------
# 3. The whole timeline
# ---------------------------------------------------------------------------------------------


@dataclass
class Timeline:
    curve: LossCurve
    checkpoints: list[CheckpointSummary]
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (what timeline.json holds and a viewer reads): {"curve":
        LossCurve.to_dict(), "checkpoints": [CheckpointSummary.to_dict(), …], "settings"}."""
        return asdict(self)

    def changes_at(self, index: int) -> list[SlopeChange]:
        """The slope changes after checkpoint index − 1 and up to checkpoint `index`: the
        checkpoint that first shows what the change did."""
        step = self.checkpoints[index].step
        before = self.checkpoints[index - 1].step if index else -math.inf
        return [c for c in self.curve.fit.changes if before < c.step <= step]

    def around(self, change: SlopeChange):
        """(the last checkpoint before the change, the first at or after it); None where
        there is none: what to compare to see what the change did."""
        before = [c for c in self.checkpoints if c.step < change.step]
        after = [c for c in self.checkpoints if c.step >= change.step]
        return (before[-1] if before else None, after[0] if after else None)


def build_timeline(
    run_dir: str | Path,
    *,
    inputs: TimelineInputs | None = None,
    log_step: bool = False,
    device: Any = "cpu",
    progress: bool = False,
    **settings,
) -> Timeline:
    """`loss_curve` plus a `checkpoint_summary` of every kept step checkpoint, oldest first
    (one tqdm step per checkpoint). `inputs` is made from `settings` (make_inputs' keywords:
    prompt, seed, probes, data, val_batches, sample_tokens) when not given."""
    from tqdm.auto import tqdm

    curve = loss_curve(run_dir, log_step=log_step)
    inputs = inputs or make_inputs(curve.run_dir, **settings)
    summaries = [
        checkpoint_summary(curve.run_dir, step, inputs=inputs, device=device)
        for step in tqdm(curve.checkpoint_steps, desc="checkpoints", disable=not progress)
    ]
    used = {
        "prompt": inputs.prompt,
        "seed": inputs.seed,
        "sample_tokens": inputs.sample_tokens,
        "probes": inputs.n_probes,
        "probe_texts": len(inputs.texts),
        "data": str(inputs.data),
        "val_batches": inputs.val_batches,
        "batch_size": inputs.batch_size,
        "block_size": inputs.block_size,
        "log_step": log_step,
    }
    return Timeline(curve, summaries, used)


def timeline_data(run_dir: str | Path, **options) -> dict[str, Any]:
    """`build_timeline(run_dir, **options).to_dict()`: the JSON a viewer's step slider reads."""
    return build_timeline(run_dir, **options).to_dict()
