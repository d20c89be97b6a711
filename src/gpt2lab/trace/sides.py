"""The implementations gpt2lab can trace by itself: its own GPT (hook points), transformers'
GPT2LMHeadModel (module hooks), the NumPy reference (its layer functions), and a model
directory; and `reference_trace`, side B of `gpt2lab verify --trace`."""

from __future__ import annotations

import json
import tempfile
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gpt2lab.errors import GPT2LabError
from gpt2lab.model import GPT
from gpt2lab.pretrained import (
    load_pretrained,
    load_transformers,
    read_config,
    reference_params,
    resolve_model_dir,
    save_pretrained,
)
from gpt2lab.trace.capture import (
    Derived,
    Tap,
    first,
    last,
    qkv_part,
    scores_from_qk,
    split_heads,
    trace_module,
)
from gpt2lab.trace.points import Trace, canonical

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


def resolve_against(against: str, config) -> str | Path:
    """ "hf", "numpy", or the model directory `against` names, checked before any long work:
    the reference must be able to run this architecture, a directory must hold a model of
    the same shape (vocabulary, layers, heads, width)."""
    if against == "hf":
        reasons = config.hf_incompatibilities()
        if reasons:
            raise GPT2LabError(
                f"transformers' GPT-2 cannot run this architecture ({', '.join(reasons)}); "
                + (
                    "use --against DIR"
                    if config.norm_placement == "post"
                    else "use --against numpy"
                )
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
