"""Tracing any torch module: a mapping from canonical points to the module paths (and
layouts) where that model computes them, read with forward hooks during one forward."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from gpt2lab.errors import GPT2LabError
from gpt2lab.trace.points import Trace, canonical, point_order


@dataclass(frozen=True)
class Tap:
    """Read a point off one module: its output (or its first argument, take="input"),
    turned into the canonical layout by `layout` (None: already canonical)."""

    module: str  # a path of model.named_modules(), e.g. "transformer.h.0.ln_1"
    take: str = "output"  # "output" or "input"
    layout: Callable[[object], torch.Tensor] | None = None


@dataclass(frozen=True)
class Derived:
    """A point no module outputs, computed from points of the same trace: fn(*inputs)."""

    inputs: tuple[str, ...]
    fn: Callable[..., torch.Tensor]


def split_heads(x: torch.Tensor, n_head: int) -> torch.Tensor:  # (B, T, C) -> (B, nh, T, hs)
    """Head h owns the contiguous columns h*hs:(h+1)*hs (GPT-2's convention)."""
    B, T, C = x.shape
    return x.view(B, T, n_head, C // n_head).transpose(1, 2)


def qkv_part(x: torch.Tensor, part: int, n_head: int) -> torch.Tensor:
    """q (part 0), k (1) or v (2) of a fused c_attn output: (B, T, 3C) -> (B, nh, T, hs)."""
    return split_heads(x.chunk(3, dim=-1)[part], n_head)


def first(output) -> torch.Tensor:
    """The tensor of a module that returns (tensor, extras...) or a tensor."""
    return output[0] if isinstance(output, (tuple, list)) else output


def last(output) -> torch.Tensor:
    """The last element of a returned tuple (HF attention: (output, weights))."""
    return output[-1]


def scaled_scores(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """(B, nh, T, hs), (B, nh, S, hs) -> (B, nh, T, S): q·kᵀ / √hs."""
    return q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))


def scores_from_qk(layer: int) -> Derived:
    """Scores for an implementation that never materialises them (transformers' GPT-2,
    nanoGPT's fused attention): GPT-2's formula applied to that side's own q and k."""
    prefix = f"blocks.{layer}.attn."
    return Derived((prefix + "q", prefix + "k"), scaled_scores)


@torch.no_grad()
def trace_module(
    model: nn.Module, mapping: Mapping[str, Tap | Derived], idx: torch.Tensor, **forward_kwargs
) -> Trace:
    """Run `model(idx, **forward_kwargs)` once and return {point: tensor} for every point of
    `mapping`, in execution order. Each tapped module must run exactly once in the forward
    (a module shared by all layers cannot say which layer it served)."""
    modules = dict(model.named_modules())
    for name in mapping:
        point_order(name)  # a known point name, or a one-line error
    taps = {name: m for name, m in mapping.items() if isinstance(m, Tap)}
    for name, tap in taps.items():
        if tap.module not in modules:
            raise GPT2LabError(f"trace point {name}: the model has no module {tap.module!r}")
        if tap.take not in ("output", "input"):
            raise GPT2LabError(f"trace point {name}: take must be 'output' or 'input'")
    captured: dict[str, list[torch.Tensor]] = {name: [] for name in taps}

    def capture(name: str, tap: Tap, module, args, kwargs, output) -> None:
        value = output if tap.take == "output" else (args[0] if args else [*kwargs.values()][0])
        value = tap.layout(value) if tap.layout else value
        if not isinstance(value, torch.Tensor):
            raise GPT2LabError(f"trace point {name}: {tap.module} gave {type(value).__name__}")
        captured[name].append(value.detach().clone())

    handles = [
        modules[tap.module].register_forward_hook(partial(capture, name, tap), with_kwargs=True)
        for name, tap in taps.items()
    ]
    try:
        model(idx, **forward_kwargs)
    finally:
        for handle in handles:
            handle.remove()
    trace: Trace = {}
    for name, values in captured.items():
        if len(values) != 1:
            raise GPT2LabError(
                f"trace point {name}: {taps[name].module} ran {len(values)} times in one forward"
            )
        trace[name] = values[0]
    for name, derived in mapping.items():
        if isinstance(derived, Derived):
            trace[name] = derived.fn(*(trace[i] for i in derived.inputs))
    return {name: canonical(name, trace[name]) for name in sorted(trace, key=point_order)}
