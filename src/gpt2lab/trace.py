"""Layer-by-layer diff: run two GPT-2 implementations on the same tokens, record every
intermediate under one name and layout, and name the first point where they part.

A final-logit check says *that* two models differ; a trace says *where*. Each side is run once
with forward hooks that copy what its modules produce, and each copy is filed under a
canonical point name, in execution order:

    embed, pos_embed,
    blocks.0.resid_pre, blocks.0.ln_1, blocks.0.attn.q, .k, .v, .scores, .pattern, .z,
    blocks.0.attn_out, blocks.0.resid_mid, blocks.0.ln_2, blocks.0.mlp.pre, blocks.0.mlp.post,
    blocks.0.mlp_out, blocks.0.resid_post, blocks.1.resid_pre, ..., ln_f, logits

in one layout (POINT_LAYOUTS): q, k, v and z as (B, nh, T, hs), scores and pattern as
(B, nh, T, T), the rest as (B, T, C), (B, T, F) or (B, T, V). Scores are the scaled
q·kᵀ/√hs before the softmax, with the future (key after query) set to 0 on every side: one
implementation masks before its hook and another after, and the masked entries carry no
information, so they are taken out of the comparison.

How a model's modules map to the points is a plain dict, so any GPT-2 can be traced, a
learner's own class included:

    mapping = {
        "embed": Tap("transformer.wte"),                           # the module's output
        "blocks.0.resid_mid": Tap("transformer.h.0.ln_2", take="input"),
        "blocks.0.attn.q": Tap("transformer.h.0.attn.c_attn", layout=partial(qkv_part, part=0, n_head=12)),
        "blocks.0.attn.scores": scores_from_qk(0),                 # computed from q and k
        ...
    }
    trace = trace_module(model, mapping, idx)                      # {point: tensor}

`gpt2lab_mapping(model)` maps our own hook points, `hf_mapping(n_layer, n_head)` transformers'
GPT2LMHeadModel, and `numpy_trace` records the NumPy reference's layer functions called in
GPT-2's order. `diff_traces(a, b)` compares two traces point by point: a point agrees when
max |a - b| <= atol + rtol * max |b|, i.e. relative to the size of the reference tensor.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gpt2lab.errors import GPT2LabError
from gpt2lab.files import atomic_write_text
from gpt2lab.model import GPT
from gpt2lab.pretrained import (
    load_pretrained,
    load_transformers,
    read_config,
    reference_params,
    resolve_model_dir,
    save_pretrained,
)

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

TOLERANCES = {torch.float32: (1e-4, 1e-8), torch.float64: (1e-10, 1e-14)}
"""dtype -> default (rtol, atol). Two float32 implementations of GPT-2 agree to about 1e-6 of
each tensor's largest value (up to 5e-5 where softmaxes saturate); float64 ones to about 1e-15
(docs/verification.md). A bug smaller than float32's margin (GELU's exact erf form for its tanh
approximation moves an output by at most 4.7e-4) shows clearly in float64."""


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


# ---------------------------------------------------------------------------------------------
# Tracing a torch module through a mapping
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# The mappings of the implementations gpt2lab knows
# ---------------------------------------------------------------------------------------------

GPT2LAB_HOOKS = {
    "resid_pre": "hook_resid_pre",
    "ln_1": "ln_1.hook_normalized",
    "attn.q": "attn.hook_q",
    "attn.k": "attn.hook_k",
    "attn.v": "attn.hook_v",
    "attn.scores": "attn.hook_attn_scores",
    "attn.pattern": "attn.hook_pattern",
    "attn.z": "attn.hook_z",
    "attn_out": "hook_attn_out",
    "resid_mid": "hook_resid_mid",
    "ln_2": "ln_2.hook_normalized",
    "mlp.pre": "mlp.hook_pre",
    "mlp.post": "mlp.hook_post",
    "mlp_out": "hook_mlp_out",
    "resid_post": "hook_resid_post",
}
"""A block's point -> gpt2lab's hook point under blocks.N (model.py). Hooking the scores
switches the attention to its explicit path, so nothing goes unseen inside a fused kernel."""


def gpt2lab_mapping(model: GPT) -> dict[str, Tap]:
    """Our own GPT's hook points (those that exist: a model without LayerNorms has no ln_1)."""
    hooks = {"embed": "hook_embed", "pos_embed": "hook_pos_embed", "ln_f": "ln_f.hook_normalized"}
    for i in range(model.config.n_layer):
        hooks |= {f"blocks.{i}.{p}": f"blocks.{i}.{h}" for p, h in GPT2LAB_HOOKS.items()}
    hooks["logits"] = "hook_logits"
    available = set(model.hook_points())
    return {point: Tap(hook) for point, hook in hooks.items() if hook in available}


def hf_mapping(n_layer: int, n_head: int) -> dict[str, Tap | Derived]:
    """transformers' GPT2LMHeadModel (run with attn_implementation="eager", so its attention
    modules return their weights). nanoGPT's model.py uses the same names but for mlp.act
    (its `mlp.gelu`) and has no pattern to tap; see docs/verification.md."""
    heads = partial(split_heads, n_head=n_head)
    mapping: dict[str, Tap | Derived] = {
        "embed": Tap("transformer.wte"),
        "pos_embed": Tap("transformer.wpe"),
    }
    for i in range(n_layer):
        h, b = f"transformer.h.{i}", f"blocks.{i}"
        mapping |= {
            f"{b}.resid_pre": Tap(h, take="input"),
            f"{b}.ln_1": Tap(f"{h}.ln_1"),
            f"{b}.attn.q": Tap(f"{h}.attn.c_attn", layout=partial(qkv_part, part=0, n_head=n_head)),
            f"{b}.attn.k": Tap(f"{h}.attn.c_attn", layout=partial(qkv_part, part=1, n_head=n_head)),
            f"{b}.attn.v": Tap(f"{h}.attn.c_attn", layout=partial(qkv_part, part=2, n_head=n_head)),
            f"{b}.attn.scores": scores_from_qk(i),
            f"{b}.attn.pattern": Tap(f"{h}.attn", layout=last),
            f"{b}.attn.z": Tap(f"{h}.attn.c_proj", take="input", layout=heads),
            f"{b}.attn_out": Tap(f"{h}.attn", layout=first),
            f"{b}.resid_mid": Tap(f"{h}.ln_2", take="input"),
            f"{b}.ln_2": Tap(f"{h}.ln_2"),
            f"{b}.mlp.pre": Tap(f"{h}.mlp.c_fc"),
            f"{b}.mlp.post": Tap(f"{h}.mlp.act"),
            f"{b}.mlp_out": Tap(f"{h}.mlp"),
            f"{b}.resid_post": Tap(h, layout=first),
        }
    mapping |= {"ln_f": Tap("transformer.ln_f"), "logits": Tap("lm_head")}
    return mapping


def trace_gpt2lab(model: GPT, idx: torch.Tensor) -> Trace:
    return trace_module(model, gpt2lab_mapping(model), idx)


def trace_transformers(hf_model: nn.Module, idx: torch.Tensor) -> Trace:
    """transformers' GPT2LMHeadModel, loaded with attn_implementation="eager"."""
    config = hf_model.config
    return trace_module(
        hf_model, hf_mapping(config.n_layer, config.n_head), idx, output_attentions=True
    )


def numpy_trace(model: GPT, idx: torch.Tensor) -> Trace:
    """The NumPy reference (float64, on the model's weights): numpy_gpt's own layer functions
    called in a pre-norm GPT-2 block's order, each output recorded. Its logits are exactly
    those of numpy_gpt.forward (tests/model/test_trace.py checks it)."""
    from gpt2lab.reference import numpy_gpt as ref

    config = model.config
    resolve_against("numpy", config)  # a pre-norm (or norm-free) model
    params = reference_params(model, np.float64)
    x_idx = idx.cpu().numpy()
    trace = {"embed": params["wte"][x_idx]}  # [B, T, C]
    pos = ref.positions(params, x_idx.shape[1], config)  # [T, C] | None
    if pos is not None:
        trace["pos_embed"] = pos[None]  # [1, T, C]
    x, _ = ref.embedding_forward(x_idx, params["wte"], pos)  # [B, T, C]
    has_norm = config.norm_placement != "none"
    for i in range(config.n_layer):
        b, p = f"blocks.{i}.", ref.subdict(params, f"h.{i}.")
        mlp_p = ref.subdict(p, "mlp.")
        trace[b + "resid_pre"] = x
        h, _ = ref.norm_forward(x, p, "ln_1", config)  # [B, T, C]
        a, (_, q, k, v, scale, att, _, c_proj) = ref.attention_forward(
            h, ref.subdict(p, "attn."), config
        )
        x = x + a
        h2, _ = ref.norm_forward(x, p, "ln_2", config)  # [B, T, C]
        pre, _ = ref.named_linear_forward(h2, mlp_p, "c_fc")  # [B, T, F]
        m, (_, _, mlp_c_proj) = ref.mlp_forward(h2, mlp_p, config)  # [B, T, C]
        points = {
            "ln_1": h,
            "attn.q": q,
            "attn.k": k,
            "attn.v": v,
            "attn.scores": (q @ k.transpose(0, 1, 3, 2)) * scale,  # [B, nh, T, T]
            "attn.pattern": att,
            "attn.z": ref.split_heads(c_proj[0], config.n_head),  # c_proj's input [B, nh, T, hd]
            "attn_out": a,
            "resid_mid": x,
            "ln_2": h2,
            "mlp.pre": pre,
            "mlp.post": mlp_c_proj[0],  # c_proj's input [B, T, F]
            "mlp_out": m,
            "resid_post": x + m,
        }
        trace |= {b + n: t for n, t in points.items() if has_norm or not n.startswith("ln_")}
        x = x + m
    if config.norm_placement == "pre":
        x, _ = ref.norm_forward(x, params, "ln_f", config)
        trace["ln_f"] = x
    head = params["wte"] if config.tie_embeddings else params["lm_head.weight"]
    trace["logits"], _ = ref.lm_head_forward(x, head)  # [B, T, V]
    return {k: canonical(k, torch.from_numpy(np.ascontiguousarray(v))) for k, v in trace.items()}


# ---------------------------------------------------------------------------------------------
# Comparing two traces
# ---------------------------------------------------------------------------------------------


def _finite(value: float | None) -> float | None:
    """JSON has no inf or nan: those become null (the row's "ok" says what happened)."""
    return value if value is not None and math.isfinite(value) else None


@dataclass(frozen=True)
class PointDiff:
    """One point of two traces. `tolerance` = atol + rtol * scale, scale = max |b|."""

    name: str
    shape_a: tuple[int, ...]
    shape_b: tuple[int, ...]
    max_abs_diff: float  # inf when the shapes differ, nan when a value is nan
    scale: float
    tolerance: float
    worst_index: tuple[int, ...] | None  # where |a - b| is largest
    a_at_worst: float | None
    b_at_worst: float | None

    @property
    def ok(self) -> bool:
        return self.shape_a == self.shape_b and self.max_abs_diff <= self.tolerance

    def to_dict(self) -> dict:
        return {
            "point": self.name,
            "shape_a": list(self.shape_a),
            "shape_b": list(self.shape_b),
            "max_abs_diff": _finite(self.max_abs_diff),
            "scale": _finite(self.scale),
            "tolerance": _finite(self.tolerance),
            "worst_index": None if self.worst_index is None else list(self.worst_index),
            "a_at_worst": _finite(self.a_at_worst),
            "b_at_worst": _finite(self.b_at_worst),
            "ok": self.ok,
        }


def diff_point(name: str, a: torch.Tensor, b: torch.Tensor, rtol: float, atol: float):
    """Compare one point in float64; a shape mismatch is a divergence of its own."""
    scale = float(b.double().abs().max()) if b.numel() else 0.0
    tolerance = atol + rtol * scale
    if a.shape != b.shape:
        return PointDiff(
            name, tuple(a.shape), tuple(b.shape), math.inf, scale, tolerance, None, None, None
        )
    delta = (a.double().cpu() - b.double().cpu()).abs()
    flat = int(delta.nan_to_num(math.inf).argmax())  # a nan counts as the worst
    worst = tuple(int(i) for i in np.unravel_index(flat, tuple(delta.shape)))
    return PointDiff(
        name,
        tuple(a.shape),
        tuple(b.shape),
        float(delta.flatten()[flat]),
        scale,
        tolerance,
        worst,
        float(a[worst]),
        float(b[worst]),
    )


@dataclass
class TraceDiff:
    """Every point both traces hold, compared in execution order."""

    rows: list[PointDiff]
    only_a: list[str]  # points one side did not record (e.g. no module to tap)
    only_b: list[str]
    rtol: float
    atol: float
    label_a: str = "A"  # what each side is, for the report
    label_b: str = "B"

    @property
    def first(self) -> PointDiff | None:
        """The first point beyond tolerance, or None when all agree."""
        return next((r for r in self.rows if not r.ok), None)

    def to_dict(self) -> dict:
        first = self.first
        return {
            "a": self.label_a,
            "b": self.label_b,
            "rule": "max|a - b| <= atol + rtol * max|b|",
            "rtol": self.rtol,
            "atol": self.atol,
            "first_divergence": None if first is None else first.name,
            "points": [r.to_dict() for r in self.rows],
            "only_in_a": self.only_a,
            "only_in_b": self.only_b,
        }


def check_tolerances(rtol: float, atol: float) -> None:
    if not (0 <= rtol < math.inf and 0 <= atol < math.inf):
        raise GPT2LabError(f"tolerances must be finite and >= 0, got rtol={rtol}, atol={atol}")


def diff_traces(
    a: Trace,
    b: Trace,
    rtol: float = 1e-4,
    atol: float = 1e-8,
    labels: tuple[str, str] = ("A", "B"),
) -> TraceDiff:
    """Compare two traces at every point they share; b is the reference (its scale sets the
    tolerance). `labels` say what A and B are, for the report."""
    check_tolerances(rtol, atol)
    shared = sorted(set(a) & set(b), key=point_order)
    rows = [diff_point(name, a[name], b[name], rtol, atol) for name in shared]
    only_a = sorted(set(a) - set(b), key=point_order)
    only_b = sorted(set(b) - set(a), key=point_order)
    return TraceDiff(rows, only_a, only_b, rtol, atol, *labels)


def first_divergence(a: Trace, b: Trace, rtol: float = 1e-4, atol: float = 1e-8):
    """The first point where two traces differ beyond tolerance (a PointDiff), or None."""
    return diff_traces(a, b, rtol, atol).first


# ---------------------------------------------------------------------------------------------
# What `gpt2lab verify --trace` compares against, and what it writes
# ---------------------------------------------------------------------------------------------


def resolve_against(against: str, config) -> str | Path:
    """ "hf", "numpy", or the model directory `against` names, checked before any long work:
    the reference must be able to run this architecture, a directory must hold a model of
    the same shape (vocabulary, layers, heads, width)."""
    if against == "hf":
        reasons = config.hf_incompatibilities()
        if reasons:
            raise GPT2LabError(
                f"transformers' GPT-2 cannot run this architecture ({', '.join(reasons)}); "
                "use --against numpy"
            )
        return against
    if against == "numpy":
        if config.norm_placement == "post":
            raise GPT2LabError(
                "the NumPy trace follows the pre-norm block; this model is post-norm"
            )
        return against
    path = Path(against).expanduser()
    if not path.is_dir():
        raise GPT2LabError(f"--against must be hf, numpy or a model directory; no folder {against}")
    directory = resolve_model_dir(path)
    other = read_config(directory)
    for name in ("vocab_size", "n_layer", "n_head", "n_embd"):
        if getattr(other, name) != getattr(config, name):
            raise GPT2LabError(
                f"{against} has {name}={getattr(other, name)}, the model {getattr(config, name)}"
            )
    return directory


def reference_trace(model: GPT, against: str | Path, idx: torch.Tensor) -> tuple[str, Trace]:
    """(description, trace) of the reference side, at the model's dtype: "hf" (transformers
    on this model's own weights, through a temporary save), "numpy" (the NumPy reference), or
    a model directory (a Hugging Face one runs in transformers, a gpt2lab one in gpt2lab)."""
    dtype = next(model.parameters()).dtype
    against = resolve_against(str(against), model.config)
    if against == "numpy":
        return "NumPy reference (float64, the same weights)", numpy_trace(model, idx)
    if against == "hf":
        with tempfile.TemporaryDirectory() as tmp:
            save_pretrained(model, tmp, format="hf")
            hf = load_transformers(tmp, attn_implementation="eager").to(dtype)
        return "transformers GPT2LMHeadModel (the same weights)", trace_transformers(hf, idx)
    if json.loads((against / "config.json").read_text()).get("model_type") == "gpt2":
        hf = load_transformers(against, attn_implementation="eager").to(dtype)
        return f"transformers GPT2LMHeadModel from {against}", trace_transformers(hf, idx)
    other = load_pretrained(against, dtype=dtype)
    return f"gpt2lab GPT from {against}", trace_gpt2lab(other, idx)


def format_shape(row: PointDiff) -> str:
    shape = lambda s: "×".join(map(str, s)) or "scalar"  # noqa: E731
    if row.shape_a == row.shape_b:
        return shape(row.shape_a)
    return f"A {shape(row.shape_a)} / B {shape(row.shape_b)}"


def describe(row: PointDiff) -> str:
    """One line about a point: 'blocks.0.attn.scores 2×4×8×8: max |Δ| 3.1e-01 > tolerance
    1.2e-06 at (0, 1, 5, 3): A 0.4121, B 0.1030'."""
    if row.shape_a != row.shape_b:
        return f"{row.name}: shapes differ ({format_shape(row)})"
    verdict = "<=" if row.ok else ">"
    text = (
        f"{row.name} {format_shape(row)}: max |Δ| {row.max_abs_diff:.2e} {verdict} tolerance "
        f"{row.tolerance:.2e}"
    )
    if row.worst_index is not None:
        text += f" at {row.worst_index}: A {row.a_at_worst:.6g}, B {row.b_at_worst:.6g}"
    return text


def summary(diff: TraceDiff) -> str:
    """The line the command prints: the first divergence, or that every point agrees."""
    first = diff.first
    if first is not None:
        return "first divergence: " + describe(first)
    if not diff.rows:
        return "no point in common to compare"
    worst = max(diff.rows, key=lambda r: r.max_abs_diff / r.tolerance)
    return (
        f"all {len(diff.rows)} points agree; closest to its tolerance: {worst.name} "
        f"(max |Δ| {worst.max_abs_diff:.2e}, tolerance {worst.tolerance:.2e})"
    )


def trace_markdown(diff: TraceDiff, setup: str) -> str:
    """trace.md: what was compared, the verdict, and one table row per point."""
    lines = [
        "# Layer-by-layer diff",
        "",
        f"- A: {diff.label_a}",
        f"- B: {diff.label_b}",
        f"- {setup}",
        f"- A point agrees when max |A - B| ≤ atol + rtol · max |B| "
        f"(rtol {diff.rtol:g}, atol {diff.atol:g}).",
        "",
        f"**{summary(diff)}**",
        "",
        "| point | shape | max \\|Δ\\| | tolerance | ok |",
        "|---|---|---:|---:|:---:|",
    ]
    for r in diff.rows:
        mark = "yes" if r.ok else "**NO**"
        lines.append(
            f"| `{r.name}` | {format_shape(r)} | {r.max_abs_diff:.2e} | {r.tolerance:.2e} | "
            f"{mark} |"
        )
    for side, names in (("A", diff.only_a), ("B", diff.only_b)):
        if names:
            lines += ["", f"Recorded by {side} only (not compared): {', '.join(names)}."]
    lines += [
        "",
        "Layouts: q, k, v, z (B, nh, T, hs); scores (q·kᵀ/√hs before the softmax, the "
        "future set to 0) and pattern (B, nh, T, T); the rest (B, T, C), (B, T, F) or (B, T, V).",
    ]
    return "\n".join(lines) + "\n"


def write_trace_report(diff: TraceDiff, out: Path, setup: str) -> tuple[Path, Path]:
    """trace.md and trace.json in `out` (an existing folder), each written atomically."""
    record = diff.to_dict() | {"setup": setup}
    return (
        atomic_write_text(out / "trace.md", trace_markdown(diff, setup)),
        atomic_write_text(out / "trace.json", json.dumps(record, indent=1) + "\n"),
    )
