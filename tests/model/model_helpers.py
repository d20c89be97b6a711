"""Helpers for the model tests: random-init Hugging Face GPT-2s built locally (no network)."""

from __future__ import annotations

import torch

from gpt2lab.config import GPTConfig
from gpt2lab.pretrained import config_to_hf


def hf_model_for(config: GPTConfig, seed: int = 0):
    """A random-init transformers.GPT2LMHeadModel of the same architecture, in eval mode."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    hf_config = {k: v for k, v in config_to_hf(config).items() if k != "architectures"}
    return GPT2LMHeadModel(GPT2Config(**hf_config)).eval()


def random_tokens(config: GPTConfig, batch: int = 2, length: int = 16, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(
        0, config.vocab_size, (batch, min(length, config.block_size) + 1), generator=g
    )
    return tokens[:, :-1], tokens[:, 1:]
