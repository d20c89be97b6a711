"""Parameter counts and the training-memory estimate, each against an independent count.

- the arithmetic of GPTConfig.param_counts against tensors: `sum(p.numel())` of a built
  model over every architecture switch, and the published totals of the four GPT-2 sizes
  (arithmetic, then the same on the meta device: no memory for gpt2-xl);
- the activation estimate against what autograd really saves (saved_tensors_hooks, each
  storage once, parameters left out), in float32 and under bfloat16 autocast;
- the whole estimate against the measured peak of two CPU training steps (slow: a fresh
  process, whose peak resident memory must grow by the estimate within 10 % in float32).
"""

from __future__ import annotations

import itertools
import json

import pytest
import torch

from gpt2lab.config import GPTConfig
from gpt2lab.model import GPT
from gpt2lab.params import (
    COMPONENTS,
    component_of,
    largest_batch,
    measure_training_peak,
    meta_model,
    module_param_counts,
    non_embedding,
    params_report,
    training_memory,
    write_params_report,
)

PUBLISHED = {
    "gpt2": 124_439_808,
    "gpt2-medium": 354_823_168,
    "gpt2-large": 774_030_080,
    "gpt2-xl": 1_557_611_200,
}
SMALL = dict(vocab_size=97, block_size=16, n_layer=2, n_head=2, n_embd=16)


@pytest.mark.parametrize("preset, total", PUBLISHED.items())
def test_the_published_totals_from_arithmetic_and_on_the_meta_device(preset, total):
    config = GPTConfig.preset(preset)
    assert sum(config.param_counts().values()) == total
    model = meta_model(config)
    assert sum(p.numel() for p in model.parameters()) == total
    assert module_param_counts(model) == config.param_counts()


SWITCHES = list(
    itertools.product(
        ("learned", "sinusoidal", "none"), ("pre", "post", "none"), (True, False), (True, False)
    )
)


@pytest.mark.parametrize("pos, norm, bias, tie", SWITCHES)
def test_arithmetic_equals_the_allocated_tensors_for_every_switch(pos, norm, bias, tie):
    config = GPTConfig(
        **SMALL, pos_encoding=pos, norm_placement=norm, bias=bias, tie_embeddings=tie, n_inner=24
    )
    model = GPT(config)
    counts = config.param_counts()
    assert sum(counts.values()) == sum(p.numel() for p in model.parameters())
    assert module_param_counts(model) == counts
    assert non_embedding(counts) == model.num_params() == config.num_params_estimate()


def test_components_by_hand_for_a_tiny_shape():
    """vocab 10, 4 positions, 1 layer, width 2, MLP 8, biases, tied: counted on paper."""
    counts = GPTConfig(vocab_size=10, block_size=4, n_layer=1, n_head=1, n_embd=2).param_counts()
    assert counts == {
        "token embedding": 20,  # 10 × 2
        "position embedding": 8,  # 4 × 2
        "attention": 24,  # c_attn 2×6 + 6, c_proj 2×2 + 2
        "MLP": 42,  # c_fc 2×8 + 8, c_proj 8×2 + 2
        "layer norm": 12,  # ln_1, ln_2, ln_f: 2 + 2 each
        "output head": 0,  # tied
    }
    assert component_of("blocks.0.attn.c_proj.weight") == "attention"


def test_the_seed_claim_two_thirds_of_the_non_embedding_parameters_are_mlp():
    report = params_report(GPTConfig.preset("gpt2"), 8, 1024)
    assert round(report["mlp_share_of_non_embedding"], 3) == 0.666
    assert round(report["mlp_share_of_total"], 3) == 0.455


def saved_bytes(model, x, y, autocast: torch.dtype | None) -> int:
    """(bytes autograd keeps for backward, bytes of the logits and the loss gradient).

    Kept: floating-point tensors of at least one dimension, each storage once, parameters
    excluded (token ids and the loss's scalar weight are not activations). Logits: the (N, V)
    logits the caller holds, plus the loss gradient's two (N, V) float32 tensors."""
    seen: dict[int, int] = {}

    def pack(t):
        if t.is_floating_point() and t.dim() > 0:
            storage = t.untyped_storage()
            seen.setdefault(storage.data_ptr(), storage.nbytes())
        return t

    with (
        torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t),
        torch.autocast("cpu", dtype=autocast or torch.bfloat16, enabled=autocast is not None),
    ):
        logits, _ = model(x, y)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    kept = sum(n for ptr, n in seen.items() if ptr not in params)
    return kept, logits.numel() * logits.element_size() + 2 * logits.numel() * 4


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_activation_estimate_equals_what_autograd_saves(dtype):
    config = GPTConfig(vocab_size=64, block_size=32, n_layer=3, n_head=4, n_embd=32)
    torch.manual_seed(0)
    model = GPT(config).train()
    x = torch.randint(0, 64, (2, 32))
    kept, logits_and_grads = saved_bytes(
        model, x, x, torch.bfloat16 if dtype == "bfloat16" else None
    )
    estimate = training_memory(config, 2, 32, dtype)
    assert (
        estimate.activations + estimate.logits + estimate.weight_copies == kept + logits_and_grads
    )


def test_largest_batch_is_the_last_that_fits():
    config = GPTConfig.preset("gpt2")
    budget = 16 * 2**30
    b = largest_batch(config, budget, 1024)
    assert (
        training_memory(config, b, 1024).total
        <= budget
        < training_memory(config, b + 1, 1024).total
    )
    assert largest_batch(config, 2**20, 1024) == 0


def test_report_files(tmp_path):
    report = params_report(GPTConfig(**SMALL), 2, 16, measured=12345)
    path = write_params_report(report, tmp_path, "small")
    text = path.read_text()
    assert "| MLP |" in text and "params.png" in text and "measured" in text.lower()
    assert {p.name for p in tmp_path.iterdir()} == {"params.md", "params.json", "params.png"}
    assert set(report["params"]) == set(COMPONENTS)


@pytest.mark.slow
def test_the_estimate_matches_a_measured_cpu_step():
    """Two AdamW steps in a fresh process; its peak resident set grows by the estimate ±10 %.

    The shape makes activations (67 MB) and logits (17 MB) dominate the allocator's noise
    (a few MB); weights, gradients and AdamW are 27 MB.
    """
    config = GPTConfig(vocab_size=512, block_size=256, n_layer=2, n_head=4, n_embd=256)
    estimate = training_memory(config, 8, 256).total
    measured = measure_training_peak(config, 8, 256)
    assert abs(measured / estimate - 1) < 0.10, (measured, estimate)


def test_the_command_writes_its_report(tmp_path, capsys):
    from gpt2lab.cli import main

    argv = ["params", "--preset", "gpt2", "--batch-size", "8", "--out", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "124,439,808 parameters" in out and "MLP 66.6%" in out
    assert json.loads((tmp_path / "params.json").read_text())["total"] == 124_439_808
