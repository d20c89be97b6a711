"""GPTConfig: presets, validation with one-line messages, round trips."""

from __future__ import annotations

import pytest

from gpt2lab.config import PRESETS, ConfigError, GPTConfig


def test_default_is_gpt2_small():
    c = GPTConfig()
    assert (c.vocab_size, c.block_size, c.n_layer, c.n_head, c.n_embd) == (50257, 1024, 12, 12, 768)
    assert c.head_dim == 64 and c.mlp_dim == 3072 and not c.hf_incompatibilities()


@pytest.mark.parametrize(
    "name,shape",
    [
        ("gpt2", (12, 12, 768)),
        ("gpt2-medium", (24, 16, 1024)),
        ("gpt2-large", (36, 20, 1280)),
        ("gpt2-xl", (48, 25, 1600)),
    ],
)
def test_published_shapes(name, shape):
    c = GPTConfig.preset(name)
    assert (c.n_layer, c.n_head, c.n_embd) == shape


def test_small_presets_are_about_1m_and_10m():
    assert 0.7e6 < GPTConfig.preset("tiny").num_params_estimate() < 1.3e6
    assert 9e6 < GPTConfig.preset("mini").num_params_estimate() < 12e6
    assert set(PRESETS) >= {"tiny", "mini"}


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(n_embd=100, n_head=12), "must be divisible by n_head"),
        (dict(n_layer=0), "n_layer must be a positive integer"),
        (dict(vocab_size=-3), "vocab_size must be a positive integer"),
        (dict(dropout=1.0), "dropout must be in"),
        (dict(activation="swish"), "activation must be one of"),
        (dict(pos_encoding="rope"), "pos_encoding must be one of"),
        (dict(norm_placement="sandwich"), "norm_placement must be one of"),
        (dict(attn_normalization="sparsemax"), "attn_normalization must be one of"),
        (dict(init="xavier"), "init must be one of"),
        (dict(layer_norm_eps=0), "layer_norm_eps must be > 0"),
    ],
)
def test_impossible_configs_fail_at_construction(kwargs, message):
    with pytest.raises(ConfigError, match=message) as err:
        GPTConfig(**kwargs)
    assert "\n" not in str(err.value)


def test_unknown_preset_and_fields():
    with pytest.raises(ConfigError, match="unknown preset 'gpt5'"):
        GPTConfig.preset("gpt5")
    with pytest.raises(ConfigError, match="unknown GPTConfig field"):
        GPTConfig.from_dict({"n_layers": 3})


def test_round_trip_and_replace():
    c = GPTConfig.preset("tiny", vocab_size=4096, activation="relu")
    assert GPTConfig.from_dict(c.to_dict()) == c
    assert c.replace(n_head=8).n_head == 8 and c.n_head == 4
    assert c.hf_incompatibilities() == ["activation=relu"]
