"""Capture and intervene: cached patterns vs attention computed by hand and by transformers,
hook ablations vs weight edits, mean ablation, scaling, activation patching, bad inputs."""

from __future__ import annotations

import math

import pytest
import torch

from gpt2lab.errors import GPT2LabError
from gpt2lab.interp.heads import attention_patterns
from gpt2lab.interp.interventions import (
    ablate_heads,
    head_means,
    mean_ablate_head,
    patch_activation,
    scale_head,
    zero_ablate_head,
)
from gpt2lab.pretrained import config_to_hf, export_state_dict

from .conftest import random_ids


def test_cached_pattern_equals_softmax_of_cached_q_k(small_model):
    model = small_model()
    idx = random_ids(2, 20)
    _, cache = model.run_with_cache(idx)
    T, hs = idx.shape[1], model.config.head_dim
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    for layer in range(model.config.n_layer):
        q = cache[f"blocks.{layer}.attn.hook_q"]  # (B, nh, T, hs)
        k = cache[f"blocks.{layer}.attn.hook_k"]
        by_hand = ((q @ k.transpose(-1, -2)) / math.sqrt(hs)).masked_fill(~causal, -math.inf)
        expected = by_hand.softmax(-1)
        got = cache[f"blocks.{layer}.attn.hook_pattern"]
        assert got.shape == (2, model.config.n_head, T, T)
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
        # and the pattern really weights the cached values into the cached z
        v = cache[f"blocks.{layer}.attn.hook_v"]
        torch.testing.assert_close(
            cache[f"blocks.{layer}.attn.hook_z"], got @ v, atol=1e-5, rtol=1e-5
        )
    # attention is peaked, not uniform, so the comparison above means something
    assert cache["blocks.0.attn.hook_pattern"].max() > 0.5


def test_patterns_equal_transformers_output_attentions(small_model):
    from transformers import GPT2Config, GPT2LMHeadModel

    model = small_model(seed=3)
    hf_config = {k: v for k, v in config_to_hf(model.config).items() if k != "architectures"}
    hf = GPT2LMHeadModel(GPT2Config(**hf_config, attn_implementation="eager")).eval()
    result = hf.load_state_dict(export_state_dict(model), strict=False)
    assert result.missing_keys == ["lm_head.weight"] and not result.unexpected_keys  # tied
    idx = random_ids(2, 16, seed=1)
    with torch.no_grad():
        theirs = hf(idx, output_attentions=True).attentions  # n_layer × (B, nh, T, T)
    ours = attention_patterns(model, idx)  # (B, L, nh, T, T)
    torch.testing.assert_close(ours, torch.stack(theirs, 1), atol=1e-5, rtol=1e-4)


def test_patterns_hook_leaves_the_fused_path_when_done(small_model):
    model = small_model()
    attention_patterns(model, random_ids(1, 8))
    assert model.blocks[0].attn.use_fused()  # hooks removed: back to the fused kernel


@pytest.mark.parametrize("layer,head", [(0, 0), (1, 2), (2, 3)])
def test_zero_ablation_via_hook_equals_zeroing_the_weights(small_model, layer, head):
    model = small_model()
    idx = random_ids(2, 20, seed=2)
    with torch.no_grad():
        with model.hooks(zero_ablate_head(model, layer, head)):
            hooked, _ = model(idx)
        clean, _ = model(idx)
        hs = model.config.head_dim
        model.blocks[layer].attn.c_proj.weight[:, head * hs : (head + 1) * hs] = 0.0
        edited, _ = model(idx)
    torch.testing.assert_close(hooked, edited, atol=1e-5, rtol=1e-5)
    assert (hooked - clean).abs().max() > 1e-3  # the ablation changed something


def test_scaling_a_head_equals_scaling_its_output_columns(small_model):
    model = small_model()
    idx = random_ids(1, 12, seed=4)
    with torch.no_grad():
        with model.hooks(scale_head(model, 1, 1, 2.5)):
            hooked, _ = model(idx)
        with model.hooks(scale_head(model, 1, 1, 0.0)):
            scaled_to_zero, _ = model(idx)
        with model.hooks(zero_ablate_head(model, 1, 1)):
            zeroed, _ = model(idx)
        hs = model.config.head_dim
        model.blocks[1].attn.c_proj.weight[:, hs : 2 * hs] *= 2.5
        edited, _ = model(idx)
    torch.testing.assert_close(hooked, edited, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(scaled_to_zero, zeroed)


def test_mean_ablation_uses_the_mean_output_and_equals_a_bias_edit(small_model):
    model = small_model()
    texts = random_ids(3, 10, seed=5).tolist()
    means = head_means(model, texts)  # (L, nh, hs)
    _, cache = model.run_with_cache(torch.tensor(texts), names=["blocks.2.attn.hook_z"])
    torch.testing.assert_close(means[2], cache["blocks.2.attn.hook_z"].mean(dim=(0, 2)))
    idx = random_ids(1, 12, seed=6)
    hs = model.config.head_dim
    with torch.no_grad():
        with model.hooks(mean_ablate_head(model, 2, 1, means)):
            hooked, _ = model(idx)
        # same as: zero the head's columns and add its mean write to the output bias
        proj = model.blocks[2].attn.c_proj
        cols = proj.weight[:, hs : 2 * hs].clone()
        proj.bias += cols @ means[2, 1]
        proj.weight[:, hs : 2 * hs] = 0.0
        edited, _ = model(idx)
    torch.testing.assert_close(hooked, edited, atol=1e-5, rtol=1e-5)


def test_activation_patching(small_model):
    model = small_model()
    clean, corrupt = random_ids(1, 12, seed=7), random_ids(1, 12, seed=8)
    clean_logits, cache = model.run_with_cache(clean)
    # patching the whole residual stream before block 0 turns the corrupt run into the clean one
    with (
        torch.no_grad(),
        model.hooks(patch_activation("blocks.0.hook_resid_pre", cache["blocks.0.hook_resid_pre"])),
    ):
        patched, _ = model(corrupt)
    torch.testing.assert_close(patched, clean_logits)
    # one position and one head: only that slice changes
    name = "blocks.1.attn.hook_z"
    seen = {}
    with (
        torch.no_grad(),
        model.hooks(
            patch_activation(name, cache[name], positions=[3], head=2)
            + [(name, lambda z, hook: seen.update(z=z))]
        ),
    ):
        model(corrupt)
    _, corrupt_cache = model.run_with_cache(corrupt, names=[name])
    expected = corrupt_cache[name].clone()
    expected[:, 2, 3] = cache[name][:, 2, 3]
    torch.testing.assert_close(seen["z"], expected)
    with (
        pytest.raises(GPT2LabError, match="cannot patch"),
        model.hooks(patch_activation(name, cache[name][:, :, :5])),
    ):
        model(corrupt)


def test_bad_heads_and_hook_names_are_one_line_errors(small_model):
    model = small_model()
    with pytest.raises(GPT2LabError, match=r"layer 3 is out of range: the model has layers 0\.\.2"):
        zero_ablate_head(model, 3, 0)
    with pytest.raises(GPT2LabError, match=r"head 4 is out of range: each layer has heads 0\.\.3"):
        scale_head(model, 0, 4, 1.0)
    with pytest.raises(GPT2LabError, match="unknown ablation"):
        ablate_heads(model, [(0, 0)], "random")
    with pytest.raises(GPT2LabError, match="needs the heads' mean"):
        ablate_heads(model, [(0, 0)], "mean")
    with (
        pytest.raises(GPT2LabError, match="hook_pattern") as err,
        model.hooks(patch_activation("blocks.0.attn.hook_patern", torch.zeros(1))),
    ):
        pass
    assert "\n" not in str(err.value)
