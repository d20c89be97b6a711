"""Layer statistics against direct torch computations; the non-finite locator."""

import math

import pytest
import torch

from gpt2lab.config import GPTConfig
from gpt2lab.model import GPT
from gpt2lab.train import monitor


@pytest.fixture
def model():
    torch.manual_seed(0)
    return GPT(GPTConfig.preset("tiny", vocab_size=64, n_layer=3, block_size=16, activation="relu"))


def test_layer_names():
    assert monitor.layer_of("blocks.12.attn.c_attn.weight") == "block12"
    assert monitor.layer_of("wte.weight") == monitor.layer_of("wpe.weight") == "embed"
    assert monitor.layer_of("ln_f.bias") == monitor.layer_of("lm_head.weight") == "final"
    assert monitor.layer_of("blocks.3.hook_attn_out") == "block3"
    assert monitor.layer_of("hook_embed") == monitor.layer_of("hook_pos_embed") == "embed"
    assert monitor.layer_of("hook_logits") == monitor.layer_of("ln_f.hook_normalized") == "final"


def test_grad_norms_and_update_ratios(model):
    x = torch.randint(0, 64, (2, 16))
    model(x, x)[1].backward()
    norms = monitor.grad_norms(model)
    block1 = [p.grad for n, p in model.named_parameters() if n.startswith("blocks.1.")]
    assert norms["block1"] == pytest.approx(
        float(torch.linalg.vector_norm(torch.cat([g.flatten() for g in block1]))), rel=1e-5
    )
    assert set(norms) == {"embed", "block0", "block1", "block2", "final"}

    before = monitor.snapshot(model)
    with torch.no_grad():
        model.blocks[2].mlp.c_fc.weight.mul_(1.5)  # a known update: Δ = 0.5 W
    ratios = monitor.update_ratios(model, before)
    w = before["blocks.2.mlp.c_fc.weight"]
    block2 = torch.cat([v.flatten() for n, v in before.items() if n.startswith("blocks.2.")])
    assert ratios["block2"] == pytest.approx(0.5 * float(w.norm()) / float(block2.norm()), rel=1e-5)
    assert ratios["block0"] == 0.0


def test_attention_entropy_hand_values():
    T = 5
    uniform = torch.tril(torch.ones(T, T)) / torch.arange(1, T + 1)[:, None]  # row i: 1/(i+1)
    one_hot = torch.eye(T)
    pattern = torch.stack([uniform, one_hot])[None]  # (1, 2 heads, T, T)
    assert monitor.attention_entropy(pattern) == pytest.approx([1.0, 0.0], abs=1e-6)
    half = torch.zeros(T, T)
    half[:, 0] = 0.5
    half[torch.arange(T), torch.arange(T)] += 0.5  # two keys of 0.5 (row 0: itself only)
    expected = sum(math.log(2) / math.log(i + 1) for i in range(1, T)) / (T - 1)
    assert monitor.attention_entropy(half[None, None])[0] == pytest.approx(expected, rel=1e-5)


def test_activation_stats_match_run_with_cache(model):
    x = torch.randint(0, 64, (3, 16))
    stats = monitor.activation_stats(model, x)
    model.eval()
    _, cache = model.run_with_cache(x)
    post = cache["blocks.1.hook_resid_post"]
    assert stats["act"]["block1"]["rms"] == pytest.approx(
        float(post.pow(2).mean().sqrt()), rel=1e-5
    )
    assert stats["act"]["block1"]["max_abs"] == pytest.approx(float(post.abs().max()), rel=1e-6)
    assert stats["act"]["embed"]["mean"] == pytest.approx(
        float(cache["blocks.0.hook_resid_pre"].mean()), abs=1e-6
    )
    pre = cache["blocks.2.mlp.hook_pre"]  # (B, T, F)
    dead = float(((pre > 0).flatten(0, 1).any(0) == 0).float().mean())
    assert stats["dead_frac"]["block2"] == pytest.approx(dead)
    pattern = cache["blocks.0.attn.hook_pattern"]
    assert stats["attn_entropy"]["block0"] == pytest.approx(monitor.attention_entropy(pattern))
    assert len(stats["attn_entropy"]["block0"]) == model.config.n_head


def test_dead_units_are_counted(model):
    with torch.no_grad():
        model.blocks[0].mlp.c_fc.bias[:10] = -1e4  # ten units can never fire
    stats = monitor.activation_stats(model, torch.randint(0, 64, (2, 16)))
    assert stats["dead_frac"]["block0"] >= 10 / model.config.mlp_dim


def test_no_entropy_without_softmax():
    m = GPT(GPTConfig.preset("tiny", vocab_size=64, n_layer=2, attn_normalization="none"))
    assert monitor.activation_stats(m, torch.randint(0, 64, (1, 8)))["attn_entropy"] == {}


def test_first_nonfinite_names_the_activation_and_leaves_rng_alone(model):
    x = torch.randint(0, 64, (2, 16))
    assert monitor.first_nonfinite(model, x) is None
    with torch.no_grad():  # ReLU units at 3e38, summed by an all-ones c_proj: overflow to inf
        model.blocks[1].mlp.c_fc.bias.fill_(3e38)
        model.blocks[1].mlp.c_proj.weight.fill_(1.0)
    state = torch.get_rng_state()
    assert monitor.first_nonfinite(model, x) == "blocks.1.hook_mlp_out"
    assert torch.equal(torch.get_rng_state(), state)
    with torch.no_grad():
        model.blocks[0].attn.c_attn.weight[0, 0] = float("nan")
    assert monitor.first_nonfinite(model, x) == "blocks.0.attn.c_attn.weight"


def test_first_nonfinite_grad(model):
    x = torch.randint(0, 64, (2, 16))
    model(x, x)[1].backward()
    assert monitor.first_nonfinite_grad(model) is None
    model.blocks[1].attn.c_proj.weight.grad[0, 0] = float("inf")
    assert monitor.first_nonfinite_grad(model) == "blocks.1.attn.c_proj.weight"
