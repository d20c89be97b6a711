"""The optimizer and the learning-rate schedule.

AdamW decays only what it should: matrices and embeddings (dim >= 2) shrink towards zero,
biases and LayerNorm gains (dim < 2) do not — pulling a gain of 1 towards 0 would just fight
the normalisation. A tied wte/lm_head matrix is one parameter and is counted once.

The schedule is a pure function of the step (nanoGPT's `get_lr`): easy to test, easy to plot.
"""

from __future__ import annotations

import inspect
import math

import torch
from torch import nn


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: {"params": matrices, "weight_decay": wd} and biases/gains with 0.

    `named_parameters` yields a shared (tied) tensor once, so nothing is optimised twice.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def make_optimizer(
    model: nn.Module, lr: float, weight_decay: float, betas: tuple[float, float], device_type: str
) -> torch.optim.AdamW:
    """AdamW over `param_groups`, fused on CPU and CUDA (one pass over each parameter).

    Without `fused`, torch's CPU AdamW runs about ten elementwise ops per parameter tensor,
    each a full pass over memory; the fused kernel does the whole update in one. GPT-2 124M,
    2 threads, the development machine, one run: 95 ms a step against 450 ms for
    the per-tensor loop and 446 ms for foreach. The numbers agree with the unfused update to
    float rounding (identical in float64; float32 within a few ulp).
    """
    fused = (
        device_type in ("cpu", "cuda")
        and "fused" in inspect.signature(torch.optim.AdamW).parameters
    )
    extra = {"fused": True} if fused else {}
    return torch.optim.AdamW(param_groups(model, weight_decay), lr=lr, betas=betas, **extra)


def lr_at(
    step: int,
    *,
    lr: float,
    min_lr: float,
    warmup_steps: int,
    decay_steps: int,
    decay: str = "cosine",
) -> float:
    """Learning rate for optimizer step `step` (0-based).

    1. warmup: lr · (step + 1) / warmup_steps, so step 0 already moves (lr/warmup, not 0);
    2. decay from lr to min_lr between warmup_steps and decay_steps, cosine or linear;
    3. min_lr after decay_steps ('constant' stays at lr after warmup).

    >>> [round(lr_at(s, lr=1.0, min_lr=0.0, warmup_steps=2, decay_steps=4), 3) for s in range(6)]
    [0.5, 1.0, 1.0, 0.5, 0.0, 0.0]
    """
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if decay == "constant":
        return lr
    if step >= decay_steps:
        return min_lr
    progress = (step - warmup_steps) / max(1, decay_steps - warmup_steps)  # 0 -> 1
    if decay == "linear":
        return lr - (lr - min_lr) * progress
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (lr - min_lr)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
