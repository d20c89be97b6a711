"""Hook points: named places in the forward pass where activations can be read or changed.

A `HookPoint` is an identity module. The model calls one inline wherever an activation is
worth naming (`x = self.hook_resid_pre(x)`), so each hook point is addressed by its module
path, e.g. `blocks.3.attn.hook_pattern`. With no hook attached, calling it costs one
`nn.Module.__call__` that returns its input.

Hooks are global state on the model, so they are only ever attached temporarily:

    with model.hooks([("blocks.0.attn.hook_pattern", save_it)]):
        model(idx)
    # every hook is removed here, even if the forward raised

A hook function has the TransformerLens signature `fn(activation, hook) -> activation | None`:
return a tensor to replace the activation, or None to leave it unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from gpt2lab.errors import GPT2LabError

HookFn = Callable[[torch.Tensor, "HookPoint"], torch.Tensor | None]
NameFilter = str | Iterable[str] | Callable[[str], bool] | None


class HookPoint(nn.Module):
    """Identity module that names an activation. `name` is its module path in the model."""

    def __init__(self) -> None:
        super().__init__()
        self.name = ""

    @property
    def active(self) -> bool:
        """True when a hook is attached (the attention uses this to pick its explicit path)."""
        return bool(self._forward_hooks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class HookedModule(nn.Module):
    """Mixin for a model made of HookPoints: listing, temporary hooks, and caching."""

    def setup_hooks(self) -> None:
        """Give every HookPoint its module path as name. Call at the end of __init__."""
        for name, module in self.named_modules():
            if isinstance(module, HookPoint):
                module.name = name

    def hook_points(self) -> dict[str, HookPoint]:
        return {m.name: m for m in self.modules() if isinstance(m, HookPoint)}

    def resolve_hook_names(self, names: NameFilter) -> list[str]:
        """Turn a name, a list of names, a predicate, or None (all) into hook point names.

        An unknown name is an error that lists what exists, so a typo never silently
        hooks nothing.
        """
        available = list(self.hook_points())
        if names is None:
            return available
        if callable(names):
            return [n for n in available if names(n)]
        wanted = [names] if isinstance(names, str) else list(names)
        unknown = [n for n in wanted if n not in available]
        if unknown:
            kinds = sorted({n.split(".")[-1] for n in available})
            raise GPT2LabError(
                f"unknown hook point {unknown[0]!r}; names look like 'blocks.0.attn.hook_pattern', "
                f"with kinds: {', '.join(kinds)}"
            )
        return wanted

    @contextmanager
    def hooks(self, fwd_hooks: Iterable[tuple[NameFilter, HookFn]]) -> Iterator[HookedModule]:
        """Attach `(name_or_filter, fn)` pairs for the duration of the block, then remove them."""
        points = self.hook_points()
        handles = []
        try:
            for names, fn in fwd_hooks:
                for name in self.resolve_hook_names(names):
                    handles.append(points[name].register_forward_hook(_adapt(fn)))
            yield self
        finally:
            for handle in handles:
                handle.remove()

    def run_with_cache(
        self, idx: torch.Tensor, names: NameFilter = None, **forward_kwargs
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Run the model once and return (logits, {hook name: activation}).

        Activations are detached; `names` limits what is kept (None keeps everything).
        """
        cache: dict[str, torch.Tensor] = {}

        def save(activation: torch.Tensor, hook: HookPoint) -> None:
            cache[hook.name] = activation.detach()

        with self.hooks([(names, save)]):
            logits, _ = self(idx, **forward_kwargs)
        return logits, cache


def _adapt(fn: HookFn):
    """Wrap `fn(activation, hook)` as a PyTorch forward hook `(module, inputs, output)`."""

    def forward_hook(module: HookPoint, inputs: tuple, output: torch.Tensor):
        return fn(output, module)

    return forward_hook
