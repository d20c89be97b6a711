"""Looking inside a model while it trains: statistics per layer, and where a NaN was born.

Layers are named `embed` (wte, wpe), `block0` … `block{L-1}`, and `final` (ln_f, an untied
lm_head). A tied wte/lm_head matrix belongs to `embed`; its gradient holds both uses.

What is measured (all cheap enough to run every few hundred steps; nothing runs when off):
- gradient norm per layer: ‖g‖₂ over the layer's parameters, before clipping;
- update/weight ratio per layer: ‖θ_after − θ_before‖ / ‖θ_before‖ — around 1e-3 is healthy,
  much larger means the lr is too high for that layer;
- residual stream per depth (embed = the input of block 0, block i = its output): mean, std,
  RMS and max |x| over the batch;
- attention entropy per layer and head: H_i = −Σ_j A_ij log A_ij divided by log(i + 1) (row i
  sees i + 1 keys), averaged over rows i ≥ 1: 0 = each query looks at one key, 1 = uniform;
- dead MLP units per layer: the fraction of hidden units whose pre-activation is ≤ 0 at every
  position of the batch (for ReLU they output 0 everywhere and get no gradient).

The activation statistics come from a separate no-grad forward in eval mode on one batch, so
monitoring never changes the training trajectory.

Every step (`--step-log`, `AttentionLogits`): the largest attention logit of each layer in the
training forward itself, max over batch, heads and visible (query, key) pairs of q·k·scale —
the pre-softmax score as the model computes it, 1/sqrt(hs) included or not. Its growth is the
instability Wortsman et al. (2023) and Dehghani et al. (2023) trace at high learning rates.
"""

from __future__ import annotations

import math
import re
from contextlib import AbstractContextManager, nullcontext

import torch
from torch import nn

from gpt2lab.model import GPT, causal_mask
from gpt2lab.train import distributed as D

BLOCK = re.compile(r"^blocks\.(\d+)\.")


EMBED = ("wte.", "wpe.", "hook_embed", "hook_pos_embed")


def layer_of(name: str) -> str:
    """The layer of a parameter or hook point: 'blocks.3.mlp.c_fc.weight' -> 'block3';
    'wte.weight', 'hook_embed' -> 'embed'; 'ln_f.bias', 'hook_logits' -> 'final'."""
    match = BLOCK.match(name)
    if match:
        return f"block{match.group(1)}"
    return "embed" if name.startswith(EMBED) else "final"


def _by_layer(squares: dict[str, float]) -> dict[str, float]:
    return {layer: math.sqrt(total) for layer, total in squares.items()}


def grad_norms(model: GPT) -> dict[str, float]:
    """‖grad‖₂ of each layer (parameters without a gradient are skipped)."""
    squares: dict[str, float] = {}
    for name, p in model.named_parameters():
        if p.grad is not None:
            layer = layer_of(name)
            squares[layer] = squares.get(layer, 0.0) + float(p.grad.detach().float().square().sum())
    return _by_layer(squares)


def snapshot(model: GPT) -> dict[str, torch.Tensor]:
    """A copy of every parameter, to measure the next update against."""
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def update_ratios(model: GPT, before: dict[str, torch.Tensor]) -> dict[str, float]:
    """‖θ_now − θ_before‖ / ‖θ_before‖ for each layer."""
    delta: dict[str, float] = {}
    weight: dict[str, float] = {}
    for name, p in model.named_parameters():
        layer = layer_of(name)
        old = before[name].float()
        delta[layer] = delta.get(layer, 0.0) + float((p.detach().float() - old).square().sum())
        weight[layer] = weight.get(layer, 0.0) + float(old.square().sum())
    return {k: math.sqrt(delta[k]) / max(math.sqrt(weight[k]), 1e-12) for k in delta}


def residual_stats(x: torch.Tensor) -> dict[str, float]:
    """Mean, std, RMS and max |x| of a (B, T, C) activation."""
    x = x.detach().float()
    return {
        "mean": float(x.mean()),
        "std": float(x.std()),
        "rms": float(x.square().mean().sqrt()),
        "max_abs": float(x.abs().max()),
    }


def attention_entropy(pattern: torch.Tensor) -> list[float]:
    """Per-head mean normalised entropy of a (B, nh, T, S) pattern (rows i >= 1, causal).

    A row that puts all weight on one key has entropy 0; a row that spreads evenly over its
    i + 1 visible keys has log(i + 1), so the normalised value is 1.
    """
    p = pattern.detach().float()
    T, S = p.shape[-2:]
    h = -(p * p.clamp_min(1e-30).log()).sum(-1)  # (B, nh, T)
    visible = torch.arange(S - T, S, device=p.device) + 1.0  # keys row i can see
    rows = visible > 1
    normalised = h[..., rows] / visible[rows].log()  # (B, nh, T')
    return normalised.mean(dim=(0, 2)).tolist()


def activation_stats(model: GPT, idx: torch.Tensor) -> dict[str, dict]:
    """One no-grad, eval-mode forward with hooks: residual, attention and MLP statistics."""
    n_layer = model.config.n_layer
    softmax = model.config.attn_normalization == "softmax"
    resid: dict[str, dict] = {}
    entropy: dict[str, list[float]] = {}
    dead: dict[str, float] = {}

    def on_resid(x, hook):
        name = "embed" if hook.name == "blocks.0.hook_resid_pre" else layer_of(hook.name)
        resid[name] = residual_stats(x)

    def on_pattern(x, hook):
        entropy[layer_of(hook.name)] = attention_entropy(x)

    def on_mlp_pre(x, hook):
        alive = (x.detach() > 0).flatten(0, -2).any(dim=0)  # (F,) ever positive in the batch
        dead[layer_of(hook.name)] = 1.0 - float(alive.float().mean())

    hooks = [
        (["blocks.0.hook_resid_pre"], on_resid),
        ([f"blocks.{i}.hook_resid_post" for i in range(n_layer)], on_resid),
        ([f"blocks.{i}.mlp.hook_pre" for i in range(n_layer)], on_mlp_pre),
    ]
    if softmax:  # without a softmax the "pattern" is no distribution: no entropy
        hooks.append(([f"blocks.{i}.attn.hook_pattern" for i in range(n_layer)], on_pattern))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), model.hooks(hooks):
            model(idx)
    finally:
        model.train(was_training)
    return {"act": resid, "attn_entropy": entropy, "dead_frac": dead}


# ---------------------------------------------------------------------------------------------
# The largest attention logit, every step
# ---------------------------------------------------------------------------------------------


def max_attention_logit(q: torch.Tensor, k: torch.Tensor, scale: float) -> torch.Tensor:
    """max of q·kᵀ·scale over batch, heads and causally visible (query, key) pairs, as a
    0-d float32 tensor (no host sync). q (B, nh, T, hs), k (B, nh, S, hs).

    One batch row's (nh, T, S) score matrix at a time, so the extra memory is that of a
    single row's scores.

    >>> q = torch.tensor([[[[1.0], [2.0]]]]); k = torch.tensor([[[[3.0], [-1.0]]]])
    >>> float(max_attention_logit(q, k, 0.5))   # visible: 1·3, 2·3, 2·(−1); ×0.5 -> 3
    3.0
    """
    q, k = q.detach().float(), k.detach().float()
    hidden = ~causal_mask(q.size(-2), k.size(-2), q.device)  # (T, S)
    rows = [
        (qb @ kb.transpose(-2, -1)).masked_fill(hidden, -math.inf).amax()  # (nh, T, S) -> ()
        for qb, kb in zip(q, k)
    ]
    return torch.stack(rows).amax() * scale


class AttentionLogits:
    """The largest attention logit of each layer over the forwards run while `armed()`.

    Hooks on each layer's q and k (not on the scores: those would switch the attention off
    its fused path) recompute the scores' maximum without gradients; the training forward
    itself is unchanged. `pop(dist)` returns [per layer] (max over ranks too) and resets.
    """

    def __init__(self, model: GPT) -> None:
        self.model = model
        self.scales = [block.attn.scale for block in model.blocks]
        self.best: list[torch.Tensor | None] = [None] * len(self.scales)
        self.q: dict[int, torch.Tensor] = {}

    def _on_q(self, q, hook):
        self.q[int(hook.name.split(".")[1])] = q

    def _on_k(self, k, hook):
        layer = int(hook.name.split(".")[1])
        value = max_attention_logit(self.q.pop(layer), k, self.scales[layer])
        old = self.best[layer]
        self.best[layer] = value if old is None else torch.maximum(old, value)

    def armed(self):
        """A context in which every forward of the model updates the maxima."""
        n = len(self.scales)
        return self.model.hooks(
            [
                ([f"blocks.{i}.attn.hook_q" for i in range(n)], self._on_q),
                ([f"blocks.{i}.attn.hook_k" for i in range(n)], self._on_k),
            ]
        )

    def pop(self, dist: D.Dist) -> list[float]:
        """[max logit per layer] since the last pop (NaN for a layer no forward reached)."""
        nan = torch.tensor(math.nan)
        values = torch.stack([nan if b is None else b.cpu() for b in self.best])  # (n_layer,)
        self.best = [None] * len(self.scales)
        return D.all_reduce_max(values.to(dist.device), dist).tolist()


# ---------------------------------------------------------------------------------------------
# The non-finite guard's locator
# ---------------------------------------------------------------------------------------------


def first_nonfinite(
    model: GPT,
    idx: torch.Tensor,
    autocast: AbstractContextManager | None = None,
) -> str | None:
    """Where a forward on `idx` first produced a non-finite value, in execution order.

    Checks the parameters first ('blocks.2.attn.c_attn.weight'), then every hook point as
    the forward reaches it ('blocks.3.hook_attn_out'); None when all is finite. The forward
    runs in train mode under a forked RNG, so the training streams are left untouched.
    """
    for name, p in model.named_parameters():
        if not torch.isfinite(p.detach()).all():
            return name
    found: list[str] = []

    def check(x, hook):
        if not found and not torch.isfinite(x.detach()).all():
            found.append(hook.name)

    with torch.random.fork_rng(devices=[]), torch.no_grad(), model.hooks([(None, check)]):
        with autocast or nullcontext():
            model(idx)
    return found[0] if found else None


def first_nonfinite_grad(model: nn.Module) -> str | None:
    """The parameter nearest the loss whose gradient is non-finite (backward order)."""
    for name, p in reversed(list(model.named_parameters())):
        if p.grad is not None and not torch.isfinite(p.grad.detach()).all():
            return name
    return None
