"""The training loop: `Trainer(...).fit() -> RunResult` (run.py builds it; `train()` is there).

One optimizer step, on every rank:

    lr = lr_at(step)                                       pure schedule (optim.py)
    for each of grad_accum micro-batches (x, y):            no_sync until the last (DDP)
        h = model(x, features_only=True)                    under autocast for bf16/fp16
        Σ token losses = fused lm_head + cross-entropy(h)    (engine.loss_sum)
        (Σ token losses · world / N_global).backward()      N_global: valid tokens of the
                                                            global batch, all ranks summed
    norm = clip_grad_norm_(params, clip)                    global norm, one pass
    all-reduce [Σ loss, stop requests]                      every rank sees the same numbers
    if loss or norm is non-finite: skip (log where), else optimizer.step()
    evaluate (when due), then on_step_end: samples, monitoring, and last the checkpoint

Everything a step writes (its records, its sample, its evaluation) is written before its
checkpoint, so a run killed at any moment and resumed from its latest checkpoint writes the
same files as one never killed (run.py cuts them back to the checkpoint's step).

Because every micro-batch's summed loss is divided by the token count of the whole global
batch, the gradient is that of the mean over all its tokens, whatever the split into ranks
and micro-batches — the reason 2 ranks × 1 micro-batch equal 1 rank × 2 micro-batches.
DDP averages gradients over ranks, hence the factor `world`.

Micro-batch i of rank r reads loader shard r·grad_accum + i of world·grad_accum, so the
global batch of a step does not depend on how it is split either.

The math of a step (forward/backward, clipping, the AdamW update, eval losses) is an engine's
(engine.py): `TorchEngine` (autograd, the default) or `numpy_engine.NumpyEngine` (`--engine
numpy`, the hand-written backward of gpt2lab.reference). Everything else (metrics, progress,
samples, monitoring, checkpoints) is a callback (callbacks.py), the same for both.

The Trainer owns the run's state (step, tokens, best val loss, the non-finite streak, the
last checkpoint); callbacks read it and keep their own state, and what they add to the
outcome they write into the `RunResult` handed to `on_train_end`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gpt2lab.data.loader import TokenLoader
from gpt2lab.data.prepared import DataSpec
from gpt2lab.errors import GPT2LabError
from gpt2lab.model import GPT, context_limit
from gpt2lab.params import training_memory
from gpt2lab.train import checkpoint as ckpt
from gpt2lab.train import distributed as D
from gpt2lab.train import monitor
from gpt2lab.train.config import TrainConfig
from gpt2lab.train.engine import (
    TorchEngine,
    autocast_context,
    available_memory,
    count_targets,
)
from gpt2lab.train.optim import lr_at

STOP_REASONS = ("SIGTERM", "SIGINT", "callback")
"""Why a run may be asked to stop early, the first one any rank asked for winning. (A
divergence, "nonfinite", is decided by every rank alike from the agreed loss.)"""


@dataclass
class RunResult:
    """What a run reached. `stopped`: completed | nonfinite (diverged; `nonfinite` says at
    which step and where it began) | SIGINT | SIGTERM (a checkpoint was saved) | callback."""

    run_dir: Path
    step: int = 0
    tokens: int = 0
    train_loss: float | None = None
    val_loss: float | None = None
    val_ppl: float | None = None
    best_val_loss: float | None = None
    seconds: float = 0.0
    stopped: str = "completed"
    nonfinite: dict[str, Any] | None = None
    checkpoint: Path | None = None
    sample: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        return {k: str(v) if isinstance(v, Path) else v for k, v in data.items()}


class Callback:
    """Base class of everything the loop does besides optimising (minGPT's
    `trigger_callbacks`); every hook does nothing. Override the ones you need.

    The loop calls, in order:
        on_train_start(trainer)
        per step:  on_before_optimizer_step(trainer)   gradients ready (unscaled, not clipped)
                   on_step_end(trainer, record)        record: {"kind": "train" | "nonfinite", ...}
                   on_eval_end(trainer, record)        when an evaluation ran
        on_train_end(trainer, result)                  add what you report to `result`
    and `trainer.log(record)` hands every record to `on_log(trainer, record)`. An evaluation
    runs before its step's `on_step_end`, so a checkpoint written there follows every record
    of its step.

    A callback reads the trainer's state and keeps its own; it never assigns the trainer's.
    Only rank 0 writes files; a callback that needs every rank (checkpoints gather state
    from all ranks; samples run the possibly-sharded model) does its collective part on all.
    """

    def on_train_start(self, trainer: Trainer) -> None: ...

    def on_before_optimizer_step(self, trainer: Trainer) -> None: ...

    def on_step_end(self, trainer: Trainer, record: dict[str, Any]) -> None: ...

    def on_eval_end(self, trainer: Trainer, record: dict[str, Any]) -> None: ...

    def on_log(self, trainer: Trainer, record: dict[str, Any]) -> None: ...

    def on_train_end(self, trainer: Trainer, result: RunResult) -> None: ...


def due(step: int, interval: int) -> bool:
    """True every `interval` steps (never when interval is 0)."""
    return interval > 0 and step % interval == 0


def make_engine(config: TrainConfig, raw: GPT, dist: D.Dist):
    """The engine `config.engine` names, around the freshly built (or restored) model."""
    if config.engine == "numpy":
        from gpt2lab.train.numpy_engine import NumpyEngine

        return NumpyEngine(config, raw, dist)
    return TorchEngine(config, raw, dist)


def check_block_size(cfg: TrainConfig, model: GPT) -> int:
    block = cfg.block_size or model.config.block_size
    limit = context_limit(model.config)
    if limit is not None and block > limit:
        raise GPT2LabError(
            f"block_size {block} is larger than the model's {limit} "
            "learned positions; lower --block-size or raise --model.block-size"
        )
    return block


# ---------------------------------------------------------------------------------------------
# The trainer
# ---------------------------------------------------------------------------------------------


class Trainer:
    """Holds a run's state; `fit()` runs it. `run.train()` builds one (data, model, callbacks).

    `model` is the freshly built (or restored) GPT in its training dtype; the engine that
    `config.engine` names takes it over.
    """

    def __init__(
        self,
        config: TrainConfig,
        run_dir: Path,
        dist: D.Dist,
        data: DataSpec,
        callbacks: list[Callback],
        resume_from: Path | None,
        model: GPT,
    ) -> None:
        self.config, self.run_dir, self.dist, self.data = config, run_dir, dist, data
        self.device = dist.device
        self.block_size = check_block_size(config, model)
        self.model_config = model.config
        self.engine = make_engine(config, model, dist)

        self._check_memory()
        accum, world = config.grad_accum, dist.world_size
        self.train_loaders = [
            TokenLoader(
                data.path,
                "train",
                batch_size=config.batch_size,
                block_size=self.block_size,
                seed=config.seed,
                rank=dist.rank * accum + i,
                world_size=world * accum,
                repeat_rows=config.repeat_rows_per_batch(),
            )
            for i in range(accum)
        ]
        self.val_loader = TokenLoader(
            data.path,
            "val",
            batch_size=config.batch_size,
            block_size=self.block_size,
            seed=config.seed,
            rank=dist.rank,
            world_size=world,
            mode="sequential",
        )
        self.monitor_batch = self.val_loader.next_batch()[0][:8].to(self.device)  # (≤8, T)

        self.step = 0
        self.tokens = 0
        self.best_val = math.inf
        self.nonfinite_streak = 0
        self.first_nonfinite: dict[str, Any] | None = None
        """The first non-finite step of the current streak: step, where, layer."""
        self.stop_reason: str | None = None
        self.last_checkpoint: Path | None = None
        self.last_checkpoint_step = -1
        self.best_step = -1
        """The step whose evaluation set best_val (-1: none in this process)."""
        self.result = RunResult(run_dir=run_dir)
        self.attention_logits = monitor.AttentionLogits(self.raw_model) if config.step_log else None
        """Every step's largest attention logit per layer (`--step-log`), else None."""
        if resume_from is not None:
            self._restore(resume_from)
        self.callbacks = callbacks

    @property
    def raw_model(self) -> GPT:
        """The plain torch GPT with the current weights (and gradients, between backward and
        the optimizer step): what samples, monitoring and the non-finite locator look at."""
        return self.engine.torch_model()

    # --- setup helpers -------------------------------------------------------------------------

    def _check_memory(self) -> None:
        step = training_memory(
            self.model_config, self.config.batch_size, self.block_size, self.config.dtype
        )
        need = step.activations + step.logits  # the weights are already in place
        free = available_memory(self.device)
        if free is not None and need > free:
            raise GPT2LabError(
                f"a micro-batch of {self.config.batch_size} × {self.block_size} tokens needs about "
                f"{need / 2**30:.1f} GiB of activations, {free / 2**30:.1f} GiB is free; lower "
                "--batch-size and raise --grad-accum"
            )

    def _restore(self, directory: Path) -> None:
        state = ckpt.read_state(directory)
        self.engine.load_states(directory)
        ranks = state["ranks"]
        if len(ranks) != self.dist.world_size:
            raise GPT2LabError(
                f"checkpoint {directory} was written by {len(ranks)} process(es), "
                f"this run has {self.dist.world_size}"
            )
        mine = ranks[self.dist.rank]
        for loader, loader_state in zip(self.train_loaders, mine["loaders"], strict=True):
            loader.load_state_dict(loader_state)
        ckpt.set_rng_state(mine["rng"])
        self.step, self.tokens = state["step"], state["tokens"]
        self.best_val = state["best_val"] if state["best_val"] is not None else math.inf
        self.nonfinite_streak = state["nonfinite_streak"]
        self.last_checkpoint, self.last_checkpoint_step = directory, self.step

    # --- events --------------------------------------------------------------------------------

    def emit(self, event: str, *args) -> None:
        for callback in self.callbacks:
            getattr(callback, event)(self, *args)

    def log(self, record: dict[str, Any]) -> None:
        self.emit("on_log", record)

    def request_stop(self, reason: str = "callback") -> None:
        """Finish the current step, write a checkpoint and return (all ranks agree)."""
        self.stop_reason = self.stop_reason or reason

    def weights_finite(self) -> bool:
        """Every weight finite, on every rank (under FSDP each rank checks its shard)."""
        local = [p.to_local() if hasattr(p, "to_local") else p for p in self.raw_model.parameters()]
        bad = sum(not bool(torch.isfinite(t.detach()).all()) for t in local)
        return D.all_reduce_sum(torch.tensor([float(bad)]), self.dist).item() == 0

    def healthy(self) -> bool:
        """A state worth keeping: no non-finite streak under way and every weight finite (a
        huge step can leave non-finite weights before any loss is non-finite)."""
        return self.nonfinite_streak == 0 and self.weights_finite()

    # --- one step ------------------------------------------------------------------------------

    def _global_tokens(self, batches) -> int:
        count = torch.tensor([sum(count_targets(y) for _, y in batches)], dtype=torch.float64)
        return int(D.all_reduce_sum(count, self.dist).item())

    def train_step(self) -> dict[str, Any]:
        cfg = self.config
        started = time.perf_counter()
        lr = lr_at(
            self.step,
            lr=cfg.lr,
            min_lr=cfg.min_lr,
            warmup_steps=cfg.warmup_steps,
            decay_steps=cfg.decay_steps or cfg.max_steps,
            decay=cfg.schedule(),
        )
        batches = [loader.next_batch() for loader in self.train_loaders]
        n_global = self._global_tokens(batches)
        watch = self.attention_logits.armed() if self.attention_logits else contextlib.nullcontext()
        with watch:
            loss_sum = self.engine.forward_backward(batches, scale=self.dist.world_size / n_global)
        norm = self.engine.clip_gradients(cfg.grad_clip if cfg.grad_clip > 0 else math.inf)
        asked = [float(self.stop_reason == reason) for reason in STOP_REASONS]
        agreed = torch.tensor([loss_sum, *asked], dtype=torch.float64)
        D.all_reduce_sum(agreed, self.dist)
        mean_loss = float(agreed[0]) / n_global
        for reason, count in zip(STOP_REASONS, agreed[1:].tolist(), strict=True):
            if count > 0:
                self.stop_reason = reason
                break

        record = {"step": self.step + 1, "lr": lr, "loss": mean_loss, "grad_norm": norm}
        if self.attention_logits:
            record["attn_logit_max"] = self.attention_logits.pop(self.dist)
        if math.isfinite(mean_loss) and math.isfinite(norm):
            self.nonfinite_streak, self.first_nonfinite = 0, None
            self.emit("on_before_optimizer_step")
            self.engine.optimizer_step(lr)
            record["kind"] = "train"
        else:
            record.update(self._nonfinite(batches[0][0]))
        self.engine.zero_grad()
        self.step += 1
        self.tokens += n_global
        seconds = time.perf_counter() - started
        record.update(tokens=self.tokens, tokens_per_s=n_global / seconds)
        return record

    def _nonfinite(self, x: torch.Tensor) -> dict[str, Any]:
        """Locate where a non-finite value appeared (a parameter, then an activation of the
        first micro-batch, then a gradient; "loss" when all of them are finite) and its layer;
        stop after max_nonfinite in a row, reporting the streak's first step."""
        self.nonfinite_streak += 1
        where = (
            monitor.first_nonfinite(
                self.raw_model, x.to(self.device), autocast_context(self.device, self.config.dtype)
            )
            or monitor.first_nonfinite_grad(self.raw_model)
            or "loss"
        )
        info = {"where": where, "layer": monitor.layer_of(where)}
        if self.first_nonfinite is None:
            self.first_nonfinite = {"step": self.step + 1, **info}
        if self.nonfinite_streak >= self.config.max_nonfinite:
            self.request_stop("nonfinite")
            self.result.nonfinite = {**self.first_nonfinite, "consecutive": self.nonfinite_streak}
        return {"kind": "nonfinite", **info, "consecutive": self.nonfinite_streak}

    # --- evaluation ----------------------------------------------------------------------------

    def evaluate(self) -> dict[str, Any]:
        """Mean loss over the first `eval_iters` val batches (the same ones every time)."""
        self.val_loader.load_state_dict({**self.val_loader.state_dict(), "epoch": 0, "step": 0})
        batches = []
        for _ in range(self.config.eval_iters):
            try:
                batches.append(self.val_loader.next_batch())
            except StopIteration:
                break
        totals = torch.tensor(  # Σ loss, tokens
            [self.engine.eval_loss_sum(batches), sum(count_targets(y) for _, y in batches)],
            dtype=torch.float64,
        )
        D.all_reduce_sum(totals, self.dist)
        val = float(totals[0] / totals[1])
        return {
            "kind": "eval",
            "step": self.step,
            "val_loss": val,
            "val_ppl": math.exp(min(val, 700.0)),
        }

    # --- checkpoints ---------------------------------------------------------------------------

    def save_checkpoint(self, best: bool = False) -> Path:
        """A complete checkpoint of this step (collective: every rank calls it)."""
        model_state, optim_state, scaler_state = self.engine.states()
        mine = {"rng": ckpt.rng_state(), "loaders": [ld.state_dict() for ld in self.train_loaders]}
        ranks = [mine]
        if self.dist.enabled:
            ranks = [None] * self.dist.world_size
            torch.distributed.all_gather_object(ranks, mine)
        checkpoints = self.run_dir / "checkpoints"
        directory = checkpoints / ("best" if best else ckpt.step_name(self.step))
        if self.dist.is_main:
            state = {
                "step": self.step,
                "tokens": self.tokens,
                "best_val": None if math.isinf(self.best_val) else self.best_val,
                "nonfinite_streak": self.nonfinite_streak,
                "config": self.config.to_dict(),
                "model_config": self.model_config.to_dict(),
                "data": self.data.describe(),
                "ranks": ranks,
            }
            ckpt.write_checkpoint(
                directory,
                model_config=self.model_config,
                model_state=model_state,
                optimizer_state=optim_state,
                scaler_state=scaler_state,
                state=state,
                extra_files=self.data.tokenizer_files,
            )
            if not best:
                ckpt.prune(checkpoints, self.config.keep_last, self.config.keep_every)
        D.barrier(self.dist)
        if not best:
            self.last_checkpoint, self.last_checkpoint_step = directory, self.step
        return directory

    # --- the loop ------------------------------------------------------------------------------

    def fit(self, guard: contextlib.AbstractContextManager | None = None) -> RunResult:
        """Run to max_steps (or a stop); the steps run inside `guard` (run.py passes the
        signal handler, so that a signal is answered by a checkpoint, not a traceback)."""
        cfg = self.config
        self.emit("on_train_start")
        with guard or contextlib.nullcontext():
            while self.step < cfg.max_steps and self.stop_reason is None:
                record = self.train_step()
                self.result.train_loss = record["loss"]
                if record["kind"] != "train" or due(self.step, cfg.log_interval) or self.step == 1:
                    self.log(record)
                if due(self.step, cfg.eval_interval) or self.completed():
                    self._evaluate_and_report()
                self.emit("on_step_end", record)
        result = self.result
        result.step, result.tokens = self.step, self.tokens
        result.stopped = "completed" if self.completed() else self.stop_reason or "completed"
        self.emit("on_train_end", result)
        result.best_val_loss = None if math.isinf(self.best_val) else self.best_val
        return result

    def completed(self) -> bool:
        """All max_steps taken without diverging (a stop asked for during the last step
        comes too late to change that: nothing is left to resume)."""
        return self.step >= self.config.max_steps and self.stop_reason != "nonfinite"

    def _evaluate_and_report(self) -> None:
        record = self.evaluate()
        self.result.val_loss, self.result.val_ppl = record["val_loss"], record["val_ppl"]
        if record["val_loss"] < self.best_val:
            self.best_val, self.best_step = record["val_loss"], self.step
        self.log(record)
        self.emit("on_eval_end", record)
