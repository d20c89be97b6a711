"""Fixtures for the interp tests: small random models with sharp (non-uniform) attention."""

from __future__ import annotations

import pytest
import torch

from gpt2lab.config import GPTConfig
from gpt2lab.model import GPT

SMALL = dict(vocab_size=61, block_size=32, n_layer=3, n_head=4, n_embd=32)


def small_model(seed: int = 0, **switches) -> GPT:
    """A random GPT whose torch-default init gives weights large enough for peaked attention."""
    torch.manual_seed(seed)
    return GPT(GPTConfig(**{**SMALL, "init": "torch_default", **switches})).eval()


def random_ids(
    n: int, length: int, vocab: int = SMALL["vocab_size"], seed: int = 0
) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (n, length), generator=g)


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
