"""Fixtures for the interp tests: small random models with sharp (non-uniform) attention."""

from __future__ import annotations

import pytest
import torch

SMALL = dict(vocab_size=61, block_size=32, n_layer=3, n_head=4, n_embd=32)


@pytest.fixture(scope="session")
def small_model(tiny_gpt):
    """small_model(seed=0, **switches): a random GPT of SMALL's shape whose torch-default init
    gives weights large enough for peaked attention."""

    def make(seed: int = 0, **switches):
        return tiny_gpt(seed=seed, **{**SMALL, "init": "torch_default", **switches})

    return make


def random_ids(
    n: int, length: int, vocab: int = SMALL["vocab_size"], seed: int = 0
) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (n, length), generator=g)
