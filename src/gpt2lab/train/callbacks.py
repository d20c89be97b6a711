"""The standard callbacks: metrics, TensorBoard, progress, samples, monitoring, checkpoints.

The hooks and their order are in `trainer.Callback`'s docstring. Each callback keeps its own
state; what it adds to the outcome it writes into the `RunResult` at `on_train_end`.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import torch

from gpt2lab.generate import generate
from gpt2lab.model import device_of
from gpt2lab.train import monitor
from gpt2lab.train.trainer import Callback, due

SAMPLE_HEADER = "=== step {step} ==="
"""The line that opens each sample in samples.txt; SAMPLE_LINE finds it (run.py cuts the
file back to a checkpoint's step by it)."""
SAMPLE_LINE = re.compile(r"^=== step (\d+) ===$", re.MULTILINE)

# ---------------------------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------------------------


def append_record(path: Path, record: dict[str, Any]) -> None:
    """One JSON line at the end of a .jsonl file."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


class MetricsFile(Callback):
    """Appends each record as one JSON line to runs/NAME/metrics.jsonl (rank 0)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_log(self, trainer, record):
        if trainer.dist.is_main:
            append_record(self.path, record)


STEP_FIELDS = ("step", "kind", "lr", "loss", "grad_norm", "attn_logit_max")
"""What steps.jsonl keeps of each step's record (`--step-log`)."""


class StepsFile(Callback):
    """Every step's compact record (STEP_FIELDS) as one JSON line in runs/NAME/steps.jsonl
    (rank 0): the exact peak of the gradient norm or of an attention logit, which the
    metrics every log_interval steps can miss."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_step_end(self, trainer, record):
        if trainer.dist.is_main:
            append_record(self.path, {k: record[k] for k in STEP_FIELDS if k in record})


class TensorBoard(Callback):
    """The same records as TensorBoard scalars, when `tensorboard` is installed (rank 0)."""

    def __init__(self, log_dir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(log_dir))

    def on_log(self, trainer, record):
        if trainer.dist.is_main:
            for key, value in flatten(record).items():
                if isinstance(value, (int, float)) and key != "step":
                    self.writer.add_scalar(f"{record['kind']}/{key}", value, record["step"])

    def on_train_end(self, trainer, result):
        self.writer.close()


def flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"act": {"block0": {"rms": 1.2}}} -> {"act/block0/rms": 1.2}; lists get indices."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "/"))
        elif isinstance(value, list):
            out.update(flatten(dict(enumerate(value)), name + "/"))
        else:
            out[name] = value
    return out


class Progress(Callback):
    """A tqdm bar: step, loss, lr, tokens/s and the ETA (rank 0)."""

    def on_train_start(self, trainer):
        from tqdm.auto import tqdm

        self.bar = None
        if trainer.dist.is_main:
            self.bar = tqdm(
                total=trainer.config.max_steps, initial=trainer.step, desc="train", unit="step"
            )

    def on_step_end(self, trainer, record):
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(
                loss=f"{record.get('loss', float('nan')):.3f}",
                lr=f"{record['lr']:.2e}",
                tok_s=f"{record['tokens_per_s']:,.0f}",
                refresh=False,
            )

    def on_eval_end(self, trainer, record):
        if self.bar is not None:
            self.bar.write(
                f"step {record['step']}: val loss {record['val_loss']:.4f}, "
                f"perplexity {record['val_ppl']:.2f}"
            )

    def on_train_end(self, trainer, result):
        if self.bar is not None:
            self.bar.close()


# ---------------------------------------------------------------------------------------------
# Samples
# ---------------------------------------------------------------------------------------------


def sample_text(model, tokenizer, prompt: str, n_tokens: int, seed: int) -> str:
    """The prompt and a continuation of `n_tokens` (temperature 0.8, top-k 40, seeded): what
    samples.txt holds, and what `gpt2lab timeline` recomputes from a checkpoint."""
    ids = tokenizer.encode(prompt) or [tokenizer.eot_token]
    idx = torch.tensor([ids], device=device_of(model))  # (1, T)
    out = generate(model, idx, n_tokens, temperature=0.8, top_k=40, seed=seed)  # (1, T + n)
    return prompt + tokenizer.decode(out[0, len(ids) :].tolist())


class Samples(Callback):
    """Writes a sample continuation of the prompt to samples.txt every `interval` steps and
    at the end of a completed run (temperature 0.8, top-k 40, seeded with the run's seed: the
    training RNG is untouched). Weights that are not finite get no sample."""

    def __init__(self, path: Path, tokenizer, prompt: str, n_tokens: int, interval: int):
        self.path, self.tokenizer, self.prompt = path, tokenizer, prompt
        self.n_tokens, self.interval = n_tokens, interval
        self.last: str | None = None
        self.last_step = -1

    def write(self, trainer) -> str:
        text = sample_text(
            trainer.raw_model, self.tokenizer, self.prompt, self.n_tokens, trainer.config.seed
        )
        if trainer.dist.is_main:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(f"{SAMPLE_HEADER.format(step=trainer.step)}\n{text}\n\n")
        self.last, self.last_step = text, trainer.step
        return text

    def on_step_end(self, trainer, record):
        if due(trainer.step, self.interval) and trainer.weights_finite():
            self.write(trainer)

    def on_train_end(self, trainer, result):
        # Only a completed run ends with a sample: a stopped one resumes and must then write
        # exactly the samples of a run never stopped.
        done = result.stopped == "completed" and self.last_step != trainer.step
        if done and trainer.weights_finite():
            self.write(trainer)
        result.sample = self.last


# ---------------------------------------------------------------------------------------------
# Monitoring
# ---------------------------------------------------------------------------------------------


class Monitor(Callback):
    """Per-layer gradient norms, update ratios and activation statistics (see monitor.py)."""

    def __init__(self, interval: int) -> None:
        self.interval = interval
        self.pending: dict[str, Any] | None = None

    def on_before_optimizer_step(self, trainer):
        step = trainer.step + 1  # the step being taken
        if due(step, self.interval):
            model = trainer.raw_model
            self.pending = {
                "grad_norm": monitor.grad_norms(model),
                "before": monitor.snapshot(model),
            }

    def on_step_end(self, trainer, record):
        if self.pending is None:
            return
        model = trainer.raw_model
        before = self.pending.pop("before")
        if record["kind"] == "train":
            self.pending["update_ratio"] = monitor.update_ratios(model, before)
        stats = monitor.activation_stats(model, trainer.monitor_batch)
        trainer.log({"kind": "monitor", "step": trainer.step, **self.pending, **stats})
        self.pending = None


# ---------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------


class Checkpoints(Callback):
    """step_* every `interval` steps and every `keep_every` steps (the last `keep_last` kept,
    and every multiple of keep_every), best/ on a new best val loss, and one at the end —
    each only while the trainer is healthy: from the first non-finite step (or non-finite
    weight) on nothing is written, so the last checkpoint is the last good one and no later
    write prunes it."""

    def __init__(self, interval: int, keep_every: int = 0) -> None:
        self.interval, self.keep_every = interval, keep_every

    def on_step_end(self, trainer, record):
        wanted = due(trainer.step, self.interval) or due(trainer.step, self.keep_every)
        if wanted and trainer.healthy():
            trainer.save_checkpoint()

    def on_eval_end(self, trainer, record):
        if trainer.best_step == trainer.step and trainer.healthy():  # a new best val loss
            trainer.save_checkpoint(best=True)

    def on_train_end(self, trainer, result):
        if trainer.last_checkpoint_step != trainer.step and trainer.healthy():
            trainer.save_checkpoint()
        result.checkpoint = trainer.last_checkpoint


class Timer(Callback):
    """Wall-clock seconds of the run, into the result."""

    def on_train_start(self, trainer):
        self.start = time.perf_counter()

    def on_train_end(self, trainer, result):
        result.seconds = time.perf_counter() - self.start
