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

from gpt2lab.trace.capture import (
    Derived,
    Tap,
    first,
    last,
    qkv_part,
    scaled_scores,
    scores_from_qk,
    split_heads,
    trace_module,
)
from gpt2lab.trace.diff import (
    TOLERANCES,
    PointDiff,
    TraceDiff,
    check_tolerances,
    diff_point,
    diff_traces,
    first_divergence,
)
from gpt2lab.trace.points import BLOCK_POINTS, POINT_LAYOUTS, Trace, point_names, point_order
from gpt2lab.trace.report import describe, summary, trace_markdown, write_trace_report
from gpt2lab.trace.sides import (
    gpt2lab_mapping,
    hf_mapping,
    numpy_trace,
    reference_trace,
    resolve_against,
    trace_gpt2lab,
    trace_transformers,
)

__all__ = [
    "BLOCK_POINTS",
    "POINT_LAYOUTS",
    "TOLERANCES",
    "Derived",
    "PointDiff",
    "Tap",
    "Trace",
    "TraceDiff",
    "check_tolerances",
    "describe",
    "diff_point",
    "diff_traces",
    "first",
    "first_divergence",
    "gpt2lab_mapping",
    "hf_mapping",
    "last",
    "numpy_trace",
    "point_names",
    "point_order",
    "qkv_part",
    "reference_trace",
    "resolve_against",
    "scaled_scores",
    "scores_from_qk",
    "split_heads",
    "summary",
    "trace_gpt2lab",
    "trace_markdown",
    "trace_module",
    "trace_transformers",
    "write_trace_report",
]
