"""The math of a training step, behind one interface: autocast, the loss, the engines.

An engine does what the Trainer (trainer.py) asks of one optimizer step; the loop around it
(batches, lr schedule, agreement between ranks, callbacks, checkpoints) is the same for every
engine:

    forward_backward(batches, scale) -> Σ token losses   gradients of Σ·scale accumulate
    clip_gradients(max_norm) -> global norm before clipping
    optimizer_step(lr); zero_grad()
    eval_loss_sum(batches) -> Σ token losses             no gradients, eval mode
    torch_model() -> the plain GPT holding the current weights (callbacks look at it)
    states() -> (model, optimizer, grad-scaler state); load_states(checkpoint dir)

`TorchEngine` (autograd, torch.optim.AdamW; DDP, FSDP, compile, autocast) is the default;
`numpy_engine.NumpyEngine` (`--engine numpy`) is the hand-written backward of
gpt2lab.reference. Both count the loss the same way (`count_targets`: Σ over valid tokens);
the torch engine computes it with the fused output layer + cross-entropy (fused_loss.py,
never holding the (B, T, V) logits) wherever it can, else through `token_loss_sum`.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch
import torch.nn.functional as F

from gpt2lab.errors import GPT2LabError
from gpt2lab.model import GPT
from gpt2lab.train import checkpoint as ckpt
from gpt2lab.train import distributed as D
from gpt2lab.train.config import TrainConfig
from gpt2lab.train.fused_loss import linear_cross_entropy
from gpt2lab.train.optim import make_optimizer, set_lr

# ---------------------------------------------------------------------------------------------
# Numerics: autocast, parameter dtype, memory
# ---------------------------------------------------------------------------------------------


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


def fast_attention_path(model: GPT, device: torch.device, dtype: str) -> None:
    """The attention path that is fastest for this dtype and device, set on the model.

    bf16 on a CPU: the explicit path (bf16 matmuls, softmax in float32 by autocast). torch's
    fused CPU attention is slow in bf16, above all its backward (tiny preset, 1 thread, one
    run: a bf16 step took 392 ms fused, 261 ms explicit; a float32 step 415 ms fused, 529 ms
    explicit). Elsewhere the fused path (F.scaled_dot_product_attention) is kept.
    """
    explicit = dtype == "bfloat16" and device.type == "cpu"
    model.set_attention_path("explicit" if explicit else "auto")


def available_memory(device: torch.device) -> int | None:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type == "cpu" and hasattr(os, "sysconf"):
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return None


# ---------------------------------------------------------------------------------------------
# The loss
# ---------------------------------------------------------------------------------------------


def count_targets(y: torch.Tensor) -> int:
    """Tokens that count in the loss (targets of -1 are ignored)."""
    return int((y != -1).sum())


def token_loss_sum(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Σ cross-entropy of (B, T, V) logits against (B, T) targets (-1 ignored), computed in
    float32 at least: bf16/fp16 logits are upcast, float64 ones stay float64."""
    logits = logits.flatten(0, 1)  # (B·T, V)
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    return F.cross_entropy(logits, y.flatten(), ignore_index=-1, reduction="sum")


def fused_head(model: torch.nn.Module, dtype: str) -> torch.Tensor | None:
    """The output layer's weight (V, C) when the fused loss (fused_loss.py) can replace
    lm_head + cross-entropy, else None: not for float16 (its unscaled gradient would underflow
    in fp16 before the grad scaler sees it), not under FSDP (the weight is a shard outside
    the forward), not while a hook watches the logits."""
    raw = D.unwrap(model)
    if dtype == "float16" or not isinstance(raw, GPT) or raw.hook_logits.active:
        return None
    weight = raw.lm_head.weight
    return None if hasattr(weight, "to_local") else weight


def loss_sum(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device, dtype: str
) -> torch.Tensor:
    """Σ token losses of one micro-batch (float32 at least), through the fused loss when
    `fused_head` allows it, else through the (B, T, V) logits."""
    head = fused_head(model, dtype)
    with autocast_context(device, dtype):
        out, _ = model(x, features_only=head is not None)  # (B, T, C) or logits (B, T, V)
    if head is None:
        return token_loss_sum(out, y)
    compute = param_dtype(dtype) if dtype in ("float32", "float64") else getattr(torch, dtype)
    return linear_cross_entropy(out, head, y, compute_dtype=compute)


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
    total = torch.zeros((), dtype=torch.float64, device=device)
    for i, (x, y) in enumerate(batches):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with D.no_sync(model, i == len(batches) - 1):
            loss = loss_sum(model, x, y, device, dtype)
            scaled = loss * scale
            (scaler.scale(scaled) if scaler is not None else scaled).backward()
        total += loss.detach()
    return total


# ---------------------------------------------------------------------------------------------
# The torch engine
# ---------------------------------------------------------------------------------------------


class TorchEngine:
    """Autograd and torch.optim.AdamW: the default engine (DDP, FSDP, compile, autocast).
    The engine interface is in the module docstring.
    """

    def __init__(self, config: TrainConfig, raw: GPT, dist: D.Dist) -> None:
        self.config, self.device = config, dist.device
        raw.to(self.device)
        fast_attention_path(raw, self.device, config.dtype)
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
            x, y = x.to(self.device), y.to(self.device)
            total += float(loss_sum(self.model, x, y, self.device, self.config.dtype))
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
