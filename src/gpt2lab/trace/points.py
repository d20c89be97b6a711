"""The canonical points of a trace: their names, order and layouts (see gpt2lab.trace)."""

from __future__ import annotations

import re

import torch

from gpt2lab.errors import GPT2LabError

Trace = dict[str, torch.Tensor]
"""Canonical point name -> activation, in execution order."""

BLOCK_POINTS = (
    "resid_pre",
    "ln_1",
    "attn.q",
    "attn.k",
    "attn.v",
    "attn.scores",
    "attn.pattern",
    "attn.z",
    "attn_out",
    "resid_mid",
    "ln_2",
    "mlp.pre",
    "mlp.post",
    "mlp_out",
    "resid_post",
)
"""The points of one block, in the order a pre-norm GPT-2 block computes them."""

POINT_LAYOUTS = {
    "embed": "(B, T, C) token embeddings wte[idx]",
    "pos_embed": "(1, T, C) position embeddings wpe[:T]",
    "resid_pre": "(B, T, C) the residual stream entering the block",
    "ln_1": "(B, T, C) ln_1's output",
    "attn.q": "(B, nh, T, hs)",
    "attn.k": "(B, nh, T, hs)",
    "attn.v": "(B, nh, T, hs)",
    "attn.scores": "(B, nh, T, T) q·kᵀ/√hs before the softmax, future (key > query) set to 0",
    "attn.pattern": "(B, nh, T, T) the attention weights, each row sums to 1",
    "attn.z": "(B, nh, T, hs) pattern @ v, each head's output before c_proj",
    "attn_out": "(B, T, C) the attention's output (after c_proj)",
    "resid_mid": "(B, T, C) resid_pre + attn_out",
    "ln_2": "(B, T, C) ln_2's output",
    "mlp.pre": "(B, T, F) c_fc's output, before the activation",
    "mlp.post": "(B, T, F) after the activation",
    "mlp_out": "(B, T, C) the MLP's output (after c_proj)",
    "resid_post": "(B, T, C) resid_mid + mlp_out, the block's output",
    "ln_f": "(B, T, C) the final LayerNorm's output",
    "logits": "(B, T, V)",
}
"""Each point's canonical layout, keyed by its name within a block (or its full name)."""


def point_order(name: str) -> tuple[int, int, int]:
    """Sort key in execution order: "embed" -> (0, 0, 0), "blocks.2.ln_2" -> (1, 2, 10)."""
    top = ("embed", "pos_embed", "ln_f", "logits")
    if name in top:
        return (0 if top.index(name) < 2 else 2, 0, top.index(name))
    match = re.fullmatch(r"blocks\.(\d+)\.(.+)", name)
    if match is None or match[2] not in BLOCK_POINTS:
        raise GPT2LabError(
            f"unknown trace point {name!r}; points are embed, pos_embed, ln_f, logits and "
            f"blocks.N.X with X one of {', '.join(BLOCK_POINTS)}"
        )
    return (1, int(match[1]), BLOCK_POINTS.index(match[2]))


def point_names(n_layer: int) -> list[str]:
    """Every canonical point of an n_layer GPT-2, in execution order."""
    blocks = [f"blocks.{i}.{p}" for i in range(n_layer) for p in BLOCK_POINTS]
    return ["embed", "pos_embed", *blocks, "ln_f", "logits"]


def canonical(name: str, x: torch.Tensor) -> torch.Tensor:
    """The two rules applied to every side after its layouts: scores above the diagonal (the
    future, masked to -inf or left as they are, depending on where an implementation hooks
    them) become 0, and position embeddings looked up as (T, C) are read as (1, T, C)."""
    if name == "pos_embed" and x.dim() == 2:
        return x[None]
    if name.endswith(".attn.scores"):
        T, S = x.shape[-2:]
        future = torch.ones(T, S, dtype=torch.bool, device=x.device).triu(S - T + 1)
        return x.masked_fill(future, 0.0)
    return x
