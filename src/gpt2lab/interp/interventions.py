"""Runtime interventions: hook functions that change activations during a forward pass.

Each factory returns a list of `(hook name, fn)` pairs ready for `model.hooks(...)`; the model
itself never knows (see ARCHITECTURE.md, "two kinds of breaking things"):

    with model.hooks(zero_ablate_head(model, layer=3, head=7)):
        logits, loss = model(idx, targets)

Heads are edited at `blocks.{L}.attn.hook_z`, each head's output (B, nh, T, hs) just before
the output projection `c_proj`. Because `c_proj` is linear, zeroing head h's z equals zeroing
the h-th slice of `c_proj`'s input columns (tested), and scaling z scales the head's write
into the residual stream.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from gpt2lab.errors import GPT2LabError
from gpt2lab.hooks import HookFn, HookPoint
from gpt2lab.model import device_of

Hooks = list[tuple[str, HookFn]]


def z_name(layer: int) -> str:
    return f"blocks.{layer}.attn.hook_z"


def check_head(model, layer: int, head: int | None = None) -> None:
    """A one-line GPT2LabError when layer (or head) does not exist in `model`."""
    n_layer, n_head = model.config.n_layer, model.config.n_head
    if not 0 <= layer < n_layer:
        raise GPT2LabError(f"layer {layer} is out of range: the model has layers 0..{n_layer - 1}")
    if head is not None and not 0 <= head < n_head:
        raise GPT2LabError(f"head {head} is out of range: each layer has heads 0..{n_head - 1}")


def replace_head(head: int, value: torch.Tensor | float) -> HookFn:
    """A hook on hook_z that sets head `head`'s output to `value` ((hs,) or a scalar)."""

    def hook(z: torch.Tensor, hook: HookPoint) -> torch.Tensor:  # (B, nh, T, hs)
        z = z.clone()
        z[:, head] = value.to(z.device, z.dtype) if torch.is_tensor(value) else value
        return z

    return hook


def zero_ablate_head(model, layer: int, head: int) -> Hooks:
    """Zero-ablation: head `head` of `layer` writes nothing (its z is 0)."""
    check_head(model, layer, head)
    return [(z_name(layer), replace_head(head, 0.0))]


def mean_ablate_head(model, layer: int, head: int, means: torch.Tensor) -> Hooks:
    """Mean-ablation: the head's z is replaced by its mean over a reference text set.

    means: (n_layer, n_head, hs) from `head_means` (mean over every position of every text),
    so the head still adds its average write, but nothing that depends on the input.
    """
    check_head(model, layer, head)
    return [(z_name(layer), replace_head(head, means[layer, head]))]


def scale_head(model, layer: int, head: int, factor: float) -> Hooks:
    """Multiply head `head`'s output by `factor` (0 = zero-ablation, 1 = no change)."""
    check_head(model, layer, head)

    def hook(z: torch.Tensor, hook: HookPoint) -> torch.Tensor:  # (B, nh, T, hs)
        z = z.clone()
        z[:, head] = z[:, head] * factor
        return z

    return [(z_name(layer), hook)]


def ablate_heads(
    model, heads: Iterable[tuple[int, int]], method: str = "zero", means=None
) -> Hooks:
    """Hooks that ablate several (layer, head) pairs at once, by 'zero' or 'mean'."""
    if method not in ("zero", "mean"):
        raise GPT2LabError(f"unknown ablation {method!r}; choose zero or mean")
    if method == "mean" and means is None:
        raise GPT2LabError("mean ablation needs the heads' mean outputs (head_means)")
    hooks: Hooks = []
    for layer, head in heads:
        hooks += (
            zero_ablate_head(model, layer, head)
            if method == "zero"
            else mean_ablate_head(model, layer, head, means)
        )
    return hooks


@torch.no_grad()
def head_means(model, sequences: Sequence[Sequence[int]]) -> torch.Tensor:
    """(n_layer, n_head, hs): each head's output z averaged over every position of every text."""
    device = device_of(model)
    total, count = None, 0
    names = [z_name(i) for i in range(model.config.n_layer)]
    for tokens in sequences:
        _, cache = model.run_with_cache(torch.tensor([list(tokens)], device=device), names=names)
        z = torch.stack([cache[z_name(i)][0] for i in range(model.config.n_layer)])
        total = z.sum(2) if total is None else total + z.sum(2)  # (L, nh, hs)
        count += z.size(2)
    if not count:
        raise GPT2LabError("no text to average head outputs over")
    return total / count


def patch_activation(
    name: str,
    source: torch.Tensor,
    positions: Sequence[int] | None = None,
    head: int | None = None,
) -> Hooks:
    """Activation patching: replace activation `name` by `source`, cached from another run.

    positions: only these sequence positions (dim 1, or dim 2 for per-head activations);
    head: only this head of a per-head activation (hook_q/k/v/z/pattern, dim 1).
    Typical use: run a clean prompt with `run_with_cache`, then patch one of its activations
    into a corrupted run and see how much of the clean answer comes back.
    """

    def hook(activation: torch.Tensor, hook: HookPoint) -> torch.Tensor:
        if activation.shape != source.shape:
            raise GPT2LabError(
                f"cannot patch {name}: the source has shape {tuple(source.shape)}, "
                f"this run {tuple(activation.shape)}"
            )
        patched = activation.clone()
        index: list = [slice(None)] * activation.dim()
        per_head = head is not None
        if per_head:
            index[1] = head
        if positions is not None:
            index[2 if per_head or _is_per_head(name) else 1] = list(positions)
        patched[tuple(index)] = source.to(activation.device, activation.dtype)[tuple(index)]
        return patched

    return [(name, hook)]


def _is_per_head(name: str) -> bool:
    kind = name.rsplit(".", 1)[-1]
    return kind in ("hook_q", "hook_k", "hook_v", "hook_z", "hook_attn_scores", "hook_pattern")
