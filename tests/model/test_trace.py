"""The layer-by-layer diff (gpt2lab.trace, `gpt2lab verify --trace`).

The independent computations: transformers' GPT2LMHeadModel, the NumPy reference and a GPT-2
written here from scratch (`MyGPT`, other module names, traced through a mapping) must agree
with gpt2lab at every point; then a bug planted at runtime in one of them (no file edited)
must be named at the right point, and nowhere before it.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
from functools import partial

import numpy as np
import pytest
import torch
from torch import nn

from gpt2lab.cli import main
from gpt2lab.errors import GPT2LabError
from gpt2lab.pretrained import save_pretrained
from gpt2lab.reference import numpy_gpt
from gpt2lab.trace import (
    Tap,
    diff_point,
    diff_traces,
    first_divergence,
    numpy_trace,
    point_names,
    qkv_part,
    reference_trace,
    split_heads,
    trace_gpt2lab,
    trace_module,
)

SHAPE = dict(vocab_size=97, n_layer=2, n_head=4, n_embd=32, block_size=16)


def enliven(model, seed: int = 1):
    """Random-init GPTs have zero biases and unit LayerNorm gains, which hide bugs such as a
    missing bias. Perturb every parameter (seeded) so that each one matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * (0.15 if p.dim() == 2 else 0.1))
    return model


@pytest.fixture(scope="module")
def model(tiny_gpt):
    return enliven(tiny_gpt("tiny", 0, **SHAPE))


@pytest.fixture(scope="module")
def idx():
    return torch.randint(
        0, SHAPE["vocab_size"], (2, 12), generator=torch.Generator().manual_seed(0)
    )


@pytest.fixture(scope="module")
def references(model, idx):
    """The reference traces, each computed once from the unpatched model."""
    model64 = copy.deepcopy(model).double()
    return {
        "hf": reference_trace(model, "hf", idx)[1],
        "numpy": numpy_trace(model, idx),
        "numpy64": numpy_trace(model64, idx),
        "model64": model64,
    }


# --- agreement with independent implementations ----------------------------------------------


@pytest.mark.parametrize("against", ["hf", "numpy"])
def test_ours_agrees_with_an_independent_implementation_at_every_point(
    model, idx, references, against
):
    diff = diff_traces(trace_gpt2lab(model, idx), references[against])
    assert [r.name for r in diff.rows] == point_names(SHAPE["n_layer"])  # all 34, in order
    assert diff.only_a == diff.only_b == []
    assert diff.first is None, diff.first
    assert max(r.max_abs_diff / r.scale for r in diff.rows) < 1e-5  # float32 rounding only


def test_in_float64_ours_and_numpy_agree_to_1e_12(references, idx):
    ours = trace_gpt2lab(references["model64"], idx)
    diff = diff_traces(ours, references["numpy64"], rtol=1e-12, atol=0)
    assert diff.first is None, diff.first


def test_the_numpy_trace_is_numpy_gpt_forward(model, idx, references):
    """The trace calls numpy_gpt's layer functions in GPT-2's order; its logits are exactly
    those of the reference's own forward."""
    from gpt2lab.pretrained import reference_params

    logits, _, _ = numpy_gpt.forward(reference_params(model), idx.numpy(), model.config)
    assert np.array_equal(references["numpy"]["logits"].numpy(), logits)


def test_scores_are_scaled_and_the_future_is_zeroed(model, idx):
    """Against a hand computation from the trace's q and k: q·kᵀ/√hs on and below the
    diagonal, 0 above it; the pattern's rows sum to 1 with nothing in the future."""
    trace = trace_gpt2lab(model, idx)
    q, k = trace["blocks.1.attn.q"].double(), trace["blocks.1.attn.k"].double()
    hs, T = q.size(-1), q.size(2)
    expected = torch.einsum("bhtd,bhsd->bhts", q, k) / math.sqrt(hs)
    expected = expected * torch.ones(T, T).tril()
    assert torch.allclose(trace["blocks.1.attn.scores"].double(), expected, atol=1e-6)
    pattern = trace["blocks.1.attn.pattern"]
    assert torch.allclose(pattern.sum(-1), torch.ones(2, 4, T), atol=1e-6)
    assert float(pattern.triu(1).abs().max()) == 0.0


# --- planted bugs are named at the right point -------------------------------------------------


@contextlib.contextmanager
def planted(module: nn.Module, name: str, value):
    """A bug planted in one attribute of `module` for the `with` block, then the original put
    back with setattr. (pytest's monkeypatch cannot do this from 9.2 on: its undo deletes an
    attribute it did not find in the instance's __dict__, which is where nn.Module does not
    keep submodules and parameters, so a shared model would lose its `act` or its `bias`.)"""
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)


def assert_first_divergence(ours, reference, name, **tolerance):
    """Every point before `name` agrees (that is what "first" means), `name` does not."""
    diff = diff_traces(ours, reference, **tolerance)
    assert diff.first is not None and diff.first.name == name, diff.first
    return diff.first


@pytest.mark.parametrize("against", ["hf", "numpy"])
def test_a_missing_one_over_sqrt_d_is_named_at_the_scores(model, idx, references, against):
    with planted(model.blocks[0].attn, "scale", 1.0):
        ours = trace_gpt2lab(model, idx)
    row = assert_first_divergence(ours, references[against], "blocks.0.attn.scores")
    assert row.shape_a == (2, 4, 12, 12)
    # the worst entry is √hs = √8 times the reference's
    assert row.a_at_worst == pytest.approx(math.sqrt(8) * row.b_at_worst, rel=1e-5)


def test_exact_gelu_for_gpt2s_tanh_gelu_is_named_at_mlp_post(references, idx):
    """A subtle bug (at most 4.7e-4 per value): float64 shows it clearly."""
    model64 = references["model64"]
    with planted(model64.blocks[0].mlp, "act", nn.GELU()):
        ours = trace_gpt2lab(model64, idx)
    row = assert_first_divergence(
        ours, references["numpy64"], "blocks.0.mlp.post", rtol=1e-10, atol=1e-14
    )
    assert 1e-6 < row.max_abs_diff < 4.8e-4


def test_relu_for_gelu_is_named_at_mlp_post(model, idx, references):
    with planted(model.blocks[0].mlp, "act", nn.ReLU()):
        ours = trace_gpt2lab(model, idx)
    assert_first_divergence(ours, references["numpy"], "blocks.0.mlp.post")


@pytest.mark.parametrize("bug", [("bias", None), ("eps", 1e-1)], ids=["no-bias", "eps"])
def test_a_bug_in_block_1s_ln_2_only_is_named_there(model, idx, references, bug):
    with planted(model.blocks[1].ln_2, *bug):
        ours = trace_gpt2lab(model, idx)
    assert_first_divergence(ours, references["numpy"], "blocks.1.ln_2")


# --- a learner's own GPT-2, through a mapping -------------------------------------------------


class MyAttention(nn.Module):
    def __init__(self, C: int, n_head: int) -> None:
        super().__init__()
        self.n_head = n_head
        self.qkv = nn.Linear(C, 3 * C)
        self.proj = nn.Linear(C, C)
        self.softmax = nn.Softmax(dim=-1)
        self.lookahead = 0  # a planted bug sets 1: each token also sees the next one

    def forward(self, x):  # (B, T, C) -> (B, T, C)
        B, T, C = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.n_head, C // self.n_head)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # 3 × (B, nh, T, hs)
        att = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (B, nh, T, T)
        future = torch.ones(T, T, dtype=torch.bool).triu(1 + self.lookahead)
        att = self.softmax(att.masked_fill(future, float("-inf")))
        return self.proj((att @ v).transpose(1, 2).reshape(B, T, C))


class MyMLP(nn.Module):
    def __init__(self, C: int) -> None:
        super().__init__()
        self.up, self.act, self.down = nn.Linear(C, 4 * C), nn.GELU("tanh"), nn.Linear(4 * C, C)

    def forward(self, x):
        return self.down(self.act(self.up(x)))


class MyBlock(nn.Module):
    def __init__(self, C: int, n_head: int) -> None:
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(C), MyAttention(C, n_head)
        self.norm2, self.ff = nn.LayerNorm(C), MyMLP(C)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.ff(self.norm2(x))


class MyGPT(nn.Module):
    """GPT-2 written from scratch with its own names: tok, pos, layers.N.{norm1, attn.qkv,
    attn.softmax, attn.proj, norm2, ff.up, ff.act, ff.down}, norm, head."""

    def __init__(self, V: int, block: int, C: int, n_layer: int, n_head: int) -> None:
        super().__init__()
        self.tok, self.pos = nn.Embedding(V, C), nn.Embedding(block, C)
        self.layers = nn.ModuleList(MyBlock(C, n_head) for _ in range(n_layer))
        self.norm, self.head = nn.LayerNorm(C), nn.Linear(C, V, bias=False)

    def forward(self, idx):  # (B, T) -> (B, T, V)
        x = self.tok(idx) + self.pos(torch.arange(idx.size(1)))
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(x))


def my_mapping(n_layer: int, n_head: int) -> dict:
    """The mapping docs/verification.md shows: canonical point -> where MyGPT computes it."""
    mapping = {"embed": Tap("tok"), "pos_embed": Tap("pos")}  # (T, C) is read as (1, T, C)
    for i in range(n_layer):
        L, b = f"layers.{i}", f"blocks.{i}"
        mapping |= {
            f"{b}.resid_pre": Tap(L, take="input"),
            f"{b}.ln_1": Tap(f"{L}.norm1"),
            f"{b}.attn.q": Tap(f"{L}.attn.qkv", layout=partial(qkv_part, part=0, n_head=n_head)),
            f"{b}.attn.k": Tap(f"{L}.attn.qkv", layout=partial(qkv_part, part=1, n_head=n_head)),
            f"{b}.attn.v": Tap(f"{L}.attn.qkv", layout=partial(qkv_part, part=2, n_head=n_head)),
            f"{b}.attn.scores": Tap(f"{L}.attn.softmax", take="input"),  # masked: -inf ahead
            f"{b}.attn.pattern": Tap(f"{L}.attn.softmax"),
            f"{b}.attn.z": Tap(
                f"{L}.attn.proj", take="input", layout=partial(split_heads, n_head=n_head)
            ),
            f"{b}.attn_out": Tap(f"{L}.attn"),
            f"{b}.resid_mid": Tap(f"{L}.norm2", take="input"),
            f"{b}.ln_2": Tap(f"{L}.norm2"),
            f"{b}.mlp.pre": Tap(f"{L}.ff.up"),
            f"{b}.mlp.post": Tap(f"{L}.ff.act"),
            f"{b}.mlp_out": Tap(f"{L}.ff"),
            f"{b}.resid_post": Tap(L),
        }
    return mapping | {"ln_f": Tap("norm"), "logits": Tap("head")}


def my_gpt_from(model) -> MyGPT:
    """MyGPT holding gpt2lab's weights (both use nn.Linear's (out, in) layout)."""
    c = model.config
    mine = MyGPT(c.vocab_size, c.block_size, c.n_embd, c.n_layer, c.n_head).eval()
    renames = {
        "wte.": "tok.", "wpe.": "pos.", "blocks.": "layers.", "ln_1.": "norm1.",
        "c_attn.": "qkv.", "attn.c_proj.": "attn.proj.", "ln_2.": "norm2.", "mlp.c_fc.": "ff.up.",
        "mlp.c_proj.": "ff.down.", "ln_f.": "norm.", "lm_head.": "head.",
    }  # fmt: skip
    state = {}
    for name, tensor in model.state_dict().items():
        for old, new in renames.items():
            name = name.replace(old, new)
        state[name] = tensor
    mine.load_state_dict(state, strict=True)
    return mine


def test_a_users_own_class_agrees_through_the_mapping(model, idx):
    mine = my_gpt_from(model)
    theirs = trace_module(mine, my_mapping(SHAPE["n_layer"], SHAPE["n_head"]), idx)
    diff = diff_traces(trace_gpt2lab(model, idx), theirs)
    assert len(diff.rows) == len(point_names(SHAPE["n_layer"]))
    assert diff.first is None, diff.first


def test_a_users_planted_bug_is_named_at_the_pattern_not_the_scores(model, idx):
    """Letting each token see the next one leaves the (causal part of the) scores alone and
    changes the pattern: the trace names blocks.1.attn.pattern."""
    mine = my_gpt_from(model)
    mine.layers[1].attn.lookahead = 1
    theirs = trace_module(mine, my_mapping(SHAPE["n_layer"], SHAPE["n_head"]), idx)
    first = first_divergence(theirs, trace_gpt2lab(model, idx))
    assert first is not None and first.name == "blocks.1.attn.pattern"


def test_mapping_mistakes_are_one_line_errors(model, idx):
    mine = my_gpt_from(model)
    with pytest.raises(GPT2LabError, match="unknown trace point 'blocks.0.attn.query'"):
        trace_module(mine, {"blocks.0.attn.query": Tap("layers.0.attn.qkv")}, idx)
    with pytest.raises(GPT2LabError, match="no module 'layers.0.mlp'"):
        trace_module(mine, {"blocks.0.mlp_out": Tap("layers.0.mlp")}, idx)
    shared = nn.GELU("tanh")
    for layer in mine.layers:
        layer.ff.act = shared  # one module serving every layer cannot be tapped per layer
    with pytest.raises(GPT2LabError, match="ran 2 times"):
        trace_module(mine, {"blocks.0.mlp.post": Tap("layers.0.ff.act")}, idx)


# --- the comparison rule ----------------------------------------------------------------------


def test_tolerance_is_relative_to_the_references_scale():
    b = torch.tensor([[10.0, -2.0], [0.5, 0.0]], dtype=torch.float64)
    a = b.clone()
    a[1, 0] += 2e-3
    row = diff_point("logits", a, b, rtol=1e-4, atol=1e-6)
    assert row.scale == 10.0 and row.tolerance == pytest.approx(1e-3 + 1e-6)
    assert row.worst_index == (1, 0) and row.max_abs_diff == pytest.approx(2e-3)
    assert row.a_at_worst == pytest.approx(0.502) and row.b_at_worst == 0.5
    assert not row.ok
    assert diff_point("logits", a, b, rtol=3e-4, atol=0).ok  # 2e-3 <= 3e-3


def test_shape_mismatch_and_nan_never_agree():
    b = torch.zeros(2, 3)
    assert not diff_point("embed", torch.zeros(2, 4), b, 1e-4, 1e-8).ok
    nan = torch.zeros(2, 3)
    nan[1, 2] = float("nan")
    row = diff_point("embed", nan, b, 1e-4, 1e-8)
    assert not row.ok and row.worst_index == (1, 2)
    assert row.to_dict()["max_abs_diff"] is None  # JSON has no nan


# --- the command ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(model, tmp_path_factory):
    directory = tmp_path_factory.mktemp("trace") / "model"
    save_pretrained(model, directory, format="hf")
    return directory


def test_cli_writes_a_table_and_json_and_exits_0_when_all_agree(model_dir, tmp_path, capsys):
    out = tmp_path / "trace"
    argv = ["verify", "--trace", "--model", str(model_dir), "--against", "numpy"]
    assert main([*argv, "--seq-len", "8", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "all 34 points agree" in printed and "trace.md" in printed
    record = json.loads((out / "trace.json").read_text())
    assert record["first_divergence"] is None and len(record["points"]) == 34
    assert record["points"][7]["point"] == "blocks.0.attn.scores"
    assert record["points"][7]["shape_a"] == [2, 4, 8, 8]
    table = (out / "trace.md").read_text()
    assert "| point | shape | max \\|Δ\\| | tolerance | ok |" in table
    assert table.count("| yes |") == 34
    assert (out / "trace.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_against_another_model_names_the_embeddings(model_dir, tmp_path, tiny_gpt, capsys):
    other = tmp_path / "other"
    save_pretrained(enliven(tiny_gpt("tiny", 1, **SHAPE), seed=2), other, format="hf")
    argv = ["verify", "--trace", "--model", str(model_dir), "--against", str(other)]
    assert main([*argv, "--seq-len", "8", "--out", str(tmp_path / "t")]) == 1
    printed = capsys.readouterr().out
    assert "first divergence: embed 2×8×32" in printed
    assert "transformers GPT2LMHeadModel from" in printed
    assert (tmp_path / "t" / "trace.png").is_file()


def test_the_picture_marks_the_first_point_above_its_tolerance():
    from gpt2lab.plots.trace import trace_figure

    fig = trace_figure(["a", "b", "c", "d"], [1e-9, 5e-3, float("inf"), 0.0], [1e-6] * 4)
    ax = fig.axes[0]
    heights = [bar.get_height() for bar in ax.patches]
    assert heights[0] == pytest.approx(1e-3)  # 1e-9 / 1e-6
    assert heights[1] == pytest.approx(5e3) and heights[2] == max(heights)  # inf on top
    assert [t.get_text() for t in ax.texts] == ["first divergence: b"]
