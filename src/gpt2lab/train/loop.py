"""The training loop: `train(config) -> RunResult`.

One optimizer step, on every rank:

    lr = lr_at(step)                                       pure schedule (optim.py)
    for each of grad_accum micro-batches (x, y):            no_sync until the last (DDP)
        logits = model(x)                                   under autocast for bf16/fp16
        (Σ token losses · world / N_global).backward()      N_global: valid tokens of the
                                                            global batch, all ranks summed
    norm = clip_grad_norm_(params, clip)                    global norm, one pass
    all-reduce [Σ loss, stop flag]                          every rank sees the same numbers
    if loss or norm is non-finite: skip (log where), else optimizer.step()

Because every micro-batch's summed loss is divided by the token count of the whole global
batch, the gradient is that of the mean over all its tokens, whatever the split into ranks
and micro-batches — the reason 2 ranks × 1 micro-batch equal 1 rank × 2 micro-batches.
DDP averages gradients over ranks, hence the factor `world`.

Micro-batch i of rank r reads loader shard r·grad_accum + i of world·grad_accum, so the
global batch of a step does not depend on how it is split either.

The math of a step (forward/backward, clipping, the AdamW update, eval losses) is an engine's:
`TorchEngine` (autograd, the default) or `numpy_engine.NumpyEngine` (`--engine numpy`, the
hand-written backward of gpt2lab.reference). Everything else (metrics, progress, samples,
monitoring, checkpoints) is a callback, the same for both.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import random
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gpt2lab.data.loader import TokenLoader
from gpt2lab.errors import GPT2LabError
from gpt2lab.model import GPT
from gpt2lab.train import checkpoint as ckpt
from gpt2lab.train import distributed as D
from gpt2lab.train import monitor
from gpt2lab.train.callbacks import (
    Callback,
    Checkpoints,
    MetricsFile,
    Monitor,
    Progress,
    Samples,
    TensorBoard,
    Timer,
    due,
)
from gpt2lab.train.config import TrainConfig, load_yaml, to_yaml, trajectory_changes
from gpt2lab.train.data import DataSpec, open_data
from gpt2lab.train.optim import lr_at, make_optimizer, set_lr


@dataclass
class RunResult:
    """What a run reached. `stopped`: completed | nonfinite | signal | callback."""

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


# ---------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def autocast_context(device: torch.device, dtype: str):
    """A fresh autocast context (bf16/fp16) or a no-op for fp32 and fp64."""
    if dtype in ("float32", "float64"):
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=getattr(torch, dtype))


def param_dtype(dtype: str) -> torch.dtype:
    """The parameters' dtype: float64 for a float64 run, else float32 (autocast computes in
    bf16/fp16 but keeps float32 weights)."""
    return torch.float64 if dtype == "float64" else torch.float32


def check_dtype(device: torch.device, dtype: str) -> None:
    if dtype == "float16" and device.type != "cuda":
        raise GPT2LabError(
            f"float16 autocast needs a CUDA device (this is {device.type}); use bfloat16"
        )
    if dtype == "bfloat16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise GPT2LabError("this GPU does not support bfloat16; use --dtype float16")
    if dtype == "float64" and device.type == "mps":
        raise GPT2LabError("mps has no float64; use --device cpu for --dtype float64")


def estimate_step_bytes(config, batch_size: int, block_size: int) -> int:
    """Rough fp32 memory of one micro-batch's activations kept for backward, in bytes.

    Per layer and token about 34·C + 5·nh·T values (Korthikanti et al. 2022, without
    recomputation); the logits and their gradient add 3·V per token.
    """
    tokens = batch_size * block_size
    per_layer = tokens * (34 * config.n_embd + 5 * config.n_head * block_size)
    return 4 * (config.n_layer * per_layer + 3 * tokens * config.vocab_size)


def available_memory(device: torch.device) -> int | None:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type == "cpu" and hasattr(os, "sysconf"):
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return None


def build_model(cfg: TrainConfig, data: DataSpec) -> GPT:
    """A fresh GPT for the data's vocabulary, or pretrained weights (`init_from`)."""
    if cfg.init_from:
        return pretrained_model(cfg, data)
    model = GPT(cfg.model_config(vocab_size=data.n_vocab))
    if model.config.vocab_size < data.n_vocab:
        raise GPT2LabError(
            f"the data's tokenizer has {data.n_vocab} tokens but model.vocab_size is "
            f"{model.config.vocab_size}; drop --model.vocab_size or prepare the data with the "
            "model's tokenizer"
        )
    return model


def pretrained_model(cfg: TrainConfig, data: DataSpec) -> GPT:
    """Weights to fine-tune: the data must use the tokenizer the weights were trained with.

    A directory with encoder.json/vocab.bpe (a gpt2lab checkpoint) names its tokenizer; a hub
    name or a bare Hugging Face directory means GPT-2's. Only model.dropout may be changed.
    """
    from gpt2lab.pretrained import import_state_dict, read_config, read_weights, resolve_model_dir
    from gpt2lab.tokenizer import get_tokenizer

    changed = sorted(set(cfg.model) - {"dropout"})
    if changed:
        raise GPT2LabError(f"with --init_from the model is fixed; cannot set model.{changed[0]}")
    directory = resolve_model_dir(cfg.init_from)
    try:
        tokenizer = get_tokenizer(str(directory))
    except GPT2LabError:
        tokenizer = get_tokenizer("gpt2")
    if tokenizer.identity != data.tokenizer_identity:
        raise GPT2LabError(
            f"{cfg.init_from} was trained with tokenizer {tokenizer.name} but {data.path} was "
            f"prepared with {data.meta['tokenizer']['name']}; prepare the data with the same one"
        )
    model = GPT(read_config(directory).replace(**cfg.model))
    import_state_dict(model, read_weights(directory))
    return model


def check_block_size(cfg: TrainConfig, model: GPT) -> int:
    block = cfg.block_size or model.config.block_size
    if model.config.pos_encoding == "learned" and block > model.config.block_size:
        raise GPT2LabError(
            f"block_size {block} is larger than the model's {model.config.block_size} "
            "learned positions; lower --block_size or raise --model.block_size"
        )
    return block


def count_targets(y: torch.Tensor) -> int:
    """Tokens that count in the loss (targets of -1 are ignored)."""
    return int((y != -1).sum())


def token_loss_sum(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Σ cross-entropy of (B, T, V) logits against (B, T) targets (-1 ignored), computed in
    float32 at least: bf16/fp16 logits are upcast, float64 ones stay float64."""
    logits = logits.flatten(0, 1)  # (B·T, V)
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    return F.cross_entropy(logits, y.flatten(), ignore_index=-1, reduction="sum")


def accumulate_gradients(
    model: torch.nn.Module,
    batches: list[tuple[torch.Tensor, torch.Tensor]],
    *,
    scale: float,
    device: torch.device,
    dtype: str = "float32",
    scaler: torch.amp.GradScaler | None = None,
) -> torch.Tensor:
    """Backward of (Σ token losses) · scale over all micro-batches; returns Σ token losses.

    With scale = 1 / (valid tokens of the whole batch) the gradient is that of the mean over
    all tokens, however unevenly the ignored (-1) targets fall into the micro-batches. DDP
    syncs the gradients only during the last micro-batch's backward.
    """
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    for i, (x, y) in enumerate(batches):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with D.no_sync(model, i == len(batches) - 1):
            with autocast_context(device, dtype):
                logits, _ = model(x)  # (B, T, V)
            loss = token_loss_sum(logits, y)
            scaled = loss * scale
            (scaler.scale(scaled) if scaler is not None else scaled).backward()
        loss_sum += loss.detach()
    return loss_sum


# ---------------------------------------------------------------------------------------------
# Engines: the math of a step
# ---------------------------------------------------------------------------------------------


class TorchEngine:
    """Autograd and torch.optim.AdamW: the default engine (DDP, FSDP, compile, autocast).

    An engine does the math the Trainer asks for; the loop around it (batches, lr schedule,
    agreement between ranks, callbacks, checkpoints) is the same for every engine:

        forward_backward(batches, scale) -> Σ token losses   gradients of Σ·scale accumulate
        clip_gradients(max_norm) -> global norm before clipping
        optimizer_step(lr); zero_grad()
        eval_loss_sum(batches) -> Σ token losses             no gradients, eval mode
        torch_model() -> the plain GPT holding the current weights (callbacks look at it)
        states() -> (model, optimizer, grad-scaler state); load_states(checkpoint dir)
    """

    def __init__(self, config: TrainConfig, raw: GPT, dist: D.Dist) -> None:
        self.config, self.device = config, dist.device
        raw.to(self.device)
        model = D.wrap(raw, dist, config.fsdp)
        self.raw: GPT = D.unwrap(model)
        self.model = torch.compile(model) if config.compile else model
        self.optimizer = make_optimizer(
            self.model,
            config.lr,
            config.weight_decay,
            (config.beta1, config.beta2),
            self.device.type,
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=config.dtype == "float16")

    def torch_model(self) -> GPT:
        return self.raw

    def forward_backward(self, batches, scale: float) -> float:
        return float(
            accumulate_gradients(
                self.model,
                batches,
                scale=scale,
                device=self.device,
                dtype=self.config.dtype,
                scaler=self.scaler,
            )
        )

    def clip_gradients(self, max_norm: float) -> float:
        self.scaler.unscale_(self.optimizer)
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        return float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)

    def optimizer_step(self, lr: float) -> None:
        set_lr(self.optimizer, lr)
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    @torch.no_grad()
    def eval_loss_sum(self, batches) -> float:
        self.model.eval()
        total = 0.0
        for x, y in batches:
            with autocast_context(self.device, self.config.dtype):
                logits, _ = self.model(x.to(self.device))  # (B, T, V)
            total += float(token_loss_sum(logits, y.to(self.device)))
        self.model.train()
        return total

    def states(self) -> tuple[dict, dict, dict]:
        """Collective under FSDP: every rank calls it."""
        model_state, optim_state = ckpt.full_states(self.model, self.optimizer)
        return model_state, optim_state, self.scaler.state_dict()

    def load_states(self, directory: Path) -> None:
        """The optimizer and grad-scaler state of a checkpoint (its weights are loaded already)."""
        scaler_state = ckpt.load_optimizer(directory, self.model, self.optimizer)
        if scaler_state:
            self.scaler.load_state_dict(scaler_state)


def make_engine(config: TrainConfig, raw: GPT, dist: D.Dist):
    """The engine `config.engine` names, around the freshly built (or restored) model."""
    if config.engine == "numpy":
        from gpt2lab.train.numpy_engine import NumpyEngine

        return NumpyEngine(config, raw, dist)
    return TorchEngine(config, raw, dist)


# ---------------------------------------------------------------------------------------------
# The trainer
# ---------------------------------------------------------------------------------------------


class Trainer:
    """Holds a run's state; `fit()` runs it. Build it with `Trainer.create(config)`."""

    def __init__(
        self,
        config: TrainConfig,
        run_dir: Path,
        dist: D.Dist,
        data: DataSpec,
        callbacks: list[Callback],
        resume_from: Path | None,
    ) -> None:
        self.config, self.run_dir, self.dist, self.data = config, run_dir, dist, data
        self.device = dist.device
        check_dtype(self.device, config.dtype)
        if config.threads:
            torch.set_num_threads(config.threads)
        seed_everything(config.seed)  # the same initial weights on every rank (FSDP needs it)
        raw = build_model(config, data).to(param_dtype(config.dtype))
        seed_everything(config.seed + dist.rank)  # then each rank its own dropout stream
        self.block_size = check_block_size(config, raw)
        if resume_from is not None:
            ckpt.load_model_weights(raw, resume_from)
        self.model_config = raw.config
        self.engine = make_engine(config, raw, dist)

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
        self.stop_reason: str | None = None
        self.last_checkpoint: Path | None = None
        self.last_checkpoint_step = -1
        self.last_sample: str | None = None
        self.last_sample_step = -1
        self.result = RunResult(run_dir=run_dir)
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
        need = estimate_step_bytes(self.model_config, self.config.batch_size, self.block_size)
        free = available_memory(self.device)
        if free is not None and need > free:
            raise GPT2LabError(
                f"a micro-batch of {self.config.batch_size} × {self.block_size} tokens needs about "
                f"{need / 2**30:.1f} GiB of activations, {free / 2**30:.1f} GiB is free; lower "
                "--batch_size and raise --grad_accum"
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
            decay=cfg.decay,
        )
        batches = [loader.next_batch() for loader in self.train_loaders]
        n_global = self._global_tokens(batches)
        loss_sum = self.engine.forward_backward(batches, scale=self.dist.world_size / n_global)
        norm = self.engine.clip_gradients(cfg.grad_clip if cfg.grad_clip > 0 else math.inf)
        agreed = torch.tensor([loss_sum, float(self.stop_reason is not None)], dtype=torch.float64)
        D.all_reduce_sum(agreed, self.dist)
        mean_loss = float(agreed[0]) / n_global
        if agreed[1] > 0:
            self.request_stop("signal")

        record = {"step": self.step + 1, "lr": lr, "loss": mean_loss, "grad_norm": norm}
        if math.isfinite(mean_loss) and math.isfinite(norm):
            self.nonfinite_streak = 0
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
        """Locate where a non-finite value appeared; stop after max_nonfinite in a row."""
        self.nonfinite_streak += 1
        where = monitor.first_nonfinite(
            self.raw_model, x.to(self.device), autocast_context(self.device, self.config.dtype)
        ) or monitor.first_nonfinite_grad(self.raw_model)
        info = {
            "kind": "nonfinite",
            "where": where,
            "layer": monitor.layer_index(where),
            "consecutive": self.nonfinite_streak,
        }
        if self.nonfinite_streak >= self.config.max_nonfinite:
            self.request_stop("nonfinite")
            self.result.nonfinite = {"step": self.step + 1, **info}
        return info

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
                ckpt.prune(checkpoints, self.config.keep_last)
        D.barrier(self.dist)
        if not best:
            self.last_checkpoint, self.last_checkpoint_step = directory, self.step
        return directory

    # --- the loop ------------------------------------------------------------------------------

    def fit(self) -> RunResult:
        cfg = self.config
        self.emit("on_train_start")
        with stop_on_signals(self):
            while self.step < cfg.max_steps and self.stop_reason is None:
                record = self.train_step()
                self.result.train_loss = record["loss"]
                if record["kind"] != "train" or due(self.step, cfg.log_interval) or self.step == 1:
                    self.log(record)
                self.emit("on_step_end", record)
                finishing = self.step == cfg.max_steps or self.stop_reason == "signal"
                if due(self.step, cfg.eval_interval) or (finishing and self.stop_reason is None):
                    self._evaluate_and_report()
        result = self.result
        result.step, result.tokens = self.step, self.tokens
        result.stopped = self.stop_reason or "completed"
        self.emit("on_train_end", result)
        result.best_val_loss = None if math.isinf(self.best_val) else self.best_val
        return result

    def _evaluate_and_report(self) -> None:
        record = self.evaluate()
        self.result.val_loss, self.result.val_ppl = record["val_loss"], record["val_ppl"]
        self.log(record)
        self.emit("on_eval_end", record)


@contextlib.contextmanager
def stop_on_signals(trainer: Trainer):
    """SIGINT/SIGTERM: finish the step, checkpoint, return. A second signal acts as usual."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum, frame):
        trainer.request_stop("signal")
        for s, h in previous.items():
            signal.signal(s, h)

    for s in previous:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


# ---------------------------------------------------------------------------------------------
# Run directories and the public entry point
# ---------------------------------------------------------------------------------------------


def default_name(cfg: TrainConfig) -> str:
    return f"{Path(cfg.data).name}-{cfg.preset}-{time.strftime('%Y%m%d-%H%M%S')}"


def resume_config(run_dir: Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The config of an existing run, with changes that do not alter the trajectory."""
    from gpt2lab.train.config import apply_overrides

    if not (run_dir / "config.yaml").is_file():
        raise GPT2LabError(f"cannot resume {run_dir}: it has no config.yaml")
    saved = apply_overrides(TrainConfig(), load_yaml(run_dir / "config.yaml"))
    wanted = apply_overrides(saved, overrides or {})
    changed = trajectory_changes(saved, wanted)
    if changed:
        raise GPT2LabError(
            f"cannot resume {run_dir} with a different config ({', '.join(changed[:4])} changed); "
            "start a new run instead"
        )
    return wanted.replace(name=run_dir.name, out_dir=str(run_dir.parent))


def truncate_metrics(path: Path, step: int) -> None:
    """Drop records after `step` (they will be written again by the resumed run)."""
    if not path.is_file():
        return
    kept = [line for line in path.read_text().splitlines() if json.loads(line)["step"] <= step]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(line + "\n" for line in kept))
    os.replace(tmp, path)


def default_callbacks(cfg: TrainConfig, run_dir: Path, data: DataSpec) -> list[Callback]:
    callbacks: list[Callback] = [Timer(), MetricsFile(run_dir / "metrics.jsonl")]
    if cfg.tensorboard:
        with contextlib.suppress(ImportError):
            callbacks.append(TensorBoard(run_dir / "tensorboard"))
    if cfg.progress:
        callbacks.append(Progress())
    if cfg.monitor_interval:
        callbacks.append(Monitor(cfg.monitor_interval))
    callbacks.append(
        Samples(
            run_dir / "samples.txt",
            data.tokenizer(),
            cfg.sample_prompt,
            cfg.sample_tokens,
            cfg.sample_interval,
        )
    )
    callbacks.append(Checkpoints(cfg.checkpoint_interval))
    return callbacks


def train(
    config: TrainConfig,
    callbacks: list[Callback] = (),
    *,
    resume: bool = False,
) -> RunResult:
    """Train (or, with resume=True, continue) the run `config.out_dir/config.name`.

    Returns what the run reached. A divergence (max_nonfinite non-finite steps in a row) is
    not an exception: `result.stopped == "nonfinite"` and `result.nonfinite` says where.
    Under torchrun every rank calls this; only rank 0 writes.
    """
    dist = D.setup(config.device)
    try:
        if config.fsdp and not dist.enabled:
            raise GPT2LabError(
                "--fsdp shards over processes: launch with torchrun --nproc_per_node N"
            )
        name = config.name or default_name(config)
        config = config.replace(name=name)
        run_dir = Path(config.out_dir) / name
        checkpoints = run_dir / "checkpoints"
        resume_from = None
        if resume:
            if dist.is_main:
                ckpt.recover(checkpoints)
            D.barrier(dist)
            resume_from = ckpt.latest(checkpoints)
        elif (run_dir / "config.yaml").exists():
            raise GPT2LabError(
                f"run {run_dir} already exists; continue it with --resume {run_dir} "
                "or choose another --name"
            )
        data = open_data(config, dist)
        trainer_callbacks = [*default_callbacks(config, run_dir, data), *callbacks]
        trainer = Trainer(config, run_dir, dist, data, trainer_callbacks, resume_from)
        if dist.is_main:  # only now: a config that fails its checks leaves no run behind
            (run_dir / "plots").mkdir(parents=True, exist_ok=True)
            (run_dir / "config.yaml").write_text(to_yaml(config))
        if dist.is_main and resume:
            truncate_metrics(run_dir / "metrics.jsonl", trainer.step)
        return trainer.fit()
    finally:
        D.teardown(dist)
