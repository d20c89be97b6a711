"""Weights in and out: parity with transformers' GPT2LMHeadModel in both directions, files on
disk in both layouts, and every bad input as one clear error."""

from __future__ import annotations

import json

import pytest
import torch
from model_helpers import hf_model_for, random_tokens

from gpt2lab.config import GPTConfig
from gpt2lab.errors import GPT2LabError
from gpt2lab.model import GPT
from gpt2lab.pretrained import config_from_hf, import_state_dict, load_pretrained, save_pretrained

SHAPES = {
    "odd-heads-small-vocab": GPTConfig(
        vocab_size=101, block_size=32, n_layer=2, n_head=3, n_embd=48
    ),
    "one-head": GPTConfig(vocab_size=257, block_size=16, n_layer=1, n_head=1, n_embd=16),
    "five-heads-inner-untied": GPTConfig(
        vocab_size=300,
        block_size=40,
        n_layer=3,
        n_head=5,
        n_embd=80,
        n_inner=100,
        tie_embeddings=False,
    ),
    "exact-gelu-unscaled": GPTConfig(
        vocab_size=64,
        block_size=20,
        n_layer=2,
        n_head=2,
        n_embd=32,
        activation="gelu",
        attn_scale=False,
    ),
    "eps-and-full-vocab": GPTConfig(
        block_size=24, n_layer=1, n_head=4, n_embd=64, layer_norm_eps=1e-3
    ),
}


def logits_and_loss_hf(hf, idx, targets):
    logits = hf(idx).logits
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
    return logits, loss


@pytest.mark.parametrize("name", SHAPES)
@torch.no_grad()
def test_hf_to_gpt2lab_in_memory_and_through_files(name, tmp_path):
    config = SHAPES[name]
    hf = hf_model_for(config, seed=1)
    idx, targets = random_tokens(config)
    ref_logits, ref_loss = logits_and_loss_hf(hf, idx, targets)

    ours = GPT(config).eval()
    import_state_dict(ours, hf.state_dict())
    logits, loss = ours(idx, targets)
    assert (logits - ref_logits).abs().max() <= 1e-4
    assert abs(loss.item() - ref_loss.item()) <= 1e-5

    hf.save_pretrained(tmp_path)  # HF's own files, as on the hub
    loaded = load_pretrained(tmp_path)
    assert (
        loaded.config.n_head == config.n_head
        and loaded.config.tie_embeddings == config.tie_embeddings
    )
    assert (loaded(idx)[0] - ref_logits).abs().max() <= 1e-4


@pytest.mark.parametrize("name", SHAPES)
@torch.no_grad()
def test_gpt2lab_to_hf_through_files(name, tmp_path):
    from transformers import GPT2LMHeadModel

    config = SHAPES[name]
    torch.manual_seed(2)
    ours = GPT(config).eval()
    assert save_pretrained(ours, tmp_path) == "hf"
    hf = GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    idx, targets = random_tokens(config, seed=3)
    logits, loss = ours(idx, targets)
    hf_logits, hf_loss = logits_and_loss_hf(hf, idx, targets)
    assert (logits - hf_logits).abs().max() <= 1e-4
    assert abs(loss.item() - hf_loss.item()) <= 1e-5
    greedy_ours = logits[:, -1].argmax(-1)
    assert torch.equal(greedy_ours, hf_logits[:, -1].argmax(-1))


@torch.no_grad()
def test_full_124m_shape_both_directions(tmp_path):
    from transformers import GPT2LMHeadModel

    config = GPTConfig.preset("gpt2")
    torch.manual_seed(0)
    ours = GPT(config).eval()
    save_pretrained(ours, tmp_path / "ours")
    hf = GPT2LMHeadModel.from_pretrained(tmp_path / "ours").eval()
    hf.save_pretrained(tmp_path / "theirs")
    back = load_pretrained(tmp_path / "theirs")
    idx, targets = random_tokens(config, batch=1, length=24)
    logits, loss = ours(idx, targets)
    hf_logits, hf_loss = logits_and_loss_hf(hf, idx, targets)
    assert (logits - hf_logits).abs().max() <= 1e-4 and abs(loss.item() - hf_loss.item()) <= 1e-5
    assert (back(idx)[0] - hf_logits).abs().max() <= 1e-4


@pytest.mark.parametrize(
    "switches",
    [
        dict(activation="relu"),
        dict(norm_placement="none"),
        dict(norm_placement="post", pos_encoding="sinusoidal"),
        dict(attn_normalization="none", bias=False, tie_embeddings=False),
    ],
)
@torch.no_grad()
def test_variants_hf_cannot_hold_use_gpt2lab_format(switches, tmp_path):
    config = GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=16, **switches)
    torch.manual_seed(0)
    model = GPT(config).eval()
    with pytest.raises(GPT2LabError, match="Hugging Face GPT-2 cannot hold this architecture"):
        save_pretrained(model, tmp_path, format="hf")
    assert not (tmp_path / "model.safetensors").exists()  # refused before writing anything
    assert save_pretrained(model, tmp_path) == "gpt2lab"
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "gpt2lab"
    loaded = load_pretrained(tmp_path)
    assert loaded.config == config
    idx, _ = random_tokens(config)
    assert torch.equal(loaded(idx)[0], model(idx)[0])


@torch.no_grad()
def test_pytorch_model_bin_and_a_saved_tied_head(tmp_path):
    config = SHAPES["odd-heads-small-vocab"]
    hf = hf_model_for(config)
    state = hf.state_dict()  # includes lm_head.weight, equal to wte (old checkpoints do this)
    torch.save(state, tmp_path / "pytorch_model.bin")
    hf.config.to_json_file(tmp_path / "config.json")
    loaded = load_pretrained(tmp_path)
    idx, _ = random_tokens(config)
    assert (loaded(idx)[0] - hf(idx).logits).abs().max() <= 1e-4


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("scale_attn_by_inverse_layer_idx", True, "unsupported GPT-2 option scale_attn_by_inverse"),
        ("reorder_and_upcast_attn", True, "unsupported GPT-2 option reorder_and_upcast_attn"),
        ("activation_function", "swish", "unsupported activation_function 'swish'"),
        ("model_type", "llama", "not a GPT-2 checkpoint"),
        ("n_head", 7, "must be divisible by n_head"),
    ],
)
def test_hf_options_that_cannot_be_reproduced_are_refused(key, value, message):
    with pytest.raises(GPT2LabError, match=message):
        config_from_hf({"n_embd": 64, "n_head": 4, key: value})


def test_old_config_keys_n_ctx_and_defaults():
    config = config_from_hf({"n_ctx": 512, "n_embd": 64, "n_head": 4, "n_layer": 2})
    assert config.block_size == 512 and config.activation == "gelu_tanh" and config.dropout == 0.1


# --- bad inputs ------------------------------------------------------------------------------


def saved_tiny(tmp_path):
    config = GPTConfig(vocab_size=50, block_size=16, n_layer=1, n_head=2, n_embd=16)
    save_pretrained(GPT(config), tmp_path)
    return config


def test_missing_directory(tmp_path):
    with pytest.raises(GPT2LabError, match="no such model directory"):
        load_pretrained(tmp_path / "nope")


def test_unknown_hub_name_offline():
    with pytest.raises(GPT2LabError, match="no local directory 'no-such-model-xyz'.*hub"):
        load_pretrained("no-such-model-xyz")


def test_corrupt_safetensors(tmp_path):
    saved_tiny(tmp_path)
    data = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(GPT2LabError, match="cannot read .*model.safetensors"):
        load_pretrained(tmp_path)


def test_shape_mismatch(tmp_path):
    saved_tiny(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["n_embd"] = 32
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(GPT2LabError, match="shape mismatch for wte.weight"):
        load_pretrained(tmp_path)


def test_missing_tensors(tmp_path):
    saved_tiny(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["n_layer"] = 2
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(GPT2LabError, match=r"missing \['h.1."):
        load_pretrained(tmp_path)


def test_directory_without_weights_or_config(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(GPT2LabError, match="not valid JSON"):
        load_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(GPT2LabError, match="has no model.safetensors"):
        load_pretrained(tmp_path)
    (tmp_path / "config.json").unlink()
    with pytest.raises(GPT2LabError, match="has no config.json"):
        load_pretrained(tmp_path)


def test_float64_weights_load_exactly(tmp_path):
    config = GPTConfig(vocab_size=50, block_size=16, n_layer=1, n_head=2, n_embd=16)
    model = GPT(config).double()
    with torch.no_grad():
        model.wte.weight += 1e-12  # below float32's resolution around 0.02
    save_pretrained(model, tmp_path)
    loaded = load_pretrained(tmp_path, dtype=torch.float64)
    assert torch.equal(loaded.wte.weight, model.wte.weight)
