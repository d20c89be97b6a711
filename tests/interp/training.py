"""A minimal, test-only training loop (the interp proofs train tiny models in seconds).

Deliberately tiny: AdamW at a constant learning rate after a short warmup, no schedule,
no checkpoints. The real loop lives in gpt2lab.train; these tests only need a model whose
heads have had a chance to specialise.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

from gpt2lab.config import GPTConfig
from gpt2lab.data.synthetic import repeated_segments
from gpt2lab.model import GPT

COPYING = GPTConfig(
    vocab_size=64,
    block_size=32,
    n_layer=2,
    n_head=2,
    n_embd=64,
    norm_placement="none",
    init="torch_default",
)
"""The copying model's shape. No LayerNorm and PyTorch's default init (larger weights): the
induction circuit forms as with GPT-2's switches, but the plateau before it is a few hundred
steps instead of thousands on a CPU."""


def train_lm(
    model,
    batch: Callable[[torch.Generator], tuple[torch.Tensor, torch.Tensor]],
    steps: int,
    lr: float = 3e-3,
    warmup: int = 20,
    seed: int = 0,
) -> list[float]:
    """Train `model` on `batch(generator) -> (x, y)`, each (B, T) (y = −1 is ignored).

    Returns the loss of every step. Runs on one thread: on a shared 2-core machine, two
    threads of a tiny model mostly wait on each other.
    """
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    losses = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model.train()
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / warmup)
        x, y = batch(g)
        _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    torch.set_num_threads(threads)
    return losses


@functools.cache
def copying_model() -> tuple[GPT, list[float]]:
    """A 2-layer COPYING model trained 600 steps on `repeated_segments` (seed 0, init from
    torch.manual_seed(0)), and its losses; trained once per session and shared, so callers
    must not change it (hooks are fine)."""
    torch.manual_seed(0)
    model = GPT(COPYING)
    losses = train_lm(model, repeated_segments(16, 32, 64, (4, 12)), steps=600, lr=1e-2)
    return model, losses
