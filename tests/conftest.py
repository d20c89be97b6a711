"""What every test shares: no network, and the one factory of small random GPTs.

HF_HUB_OFFLINE is set here, once, when pytest starts: huggingface_hub reads it when it is
first imported, and subprocesses (the CLI tests, notebook kernels) inherit it. A test that
reaches for the hub then fails loudly instead of downloading.

`tiny_gpt(preset="tiny", seed=0, **overrides)` is a seeded random-init GPT of
`GPTConfig.preset(preset, **overrides)` in eval mode; test folders keep only the shapes they
need (e.g. tests/interp's SMALL), not their own builders.
"""

from __future__ import annotations

import os

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


def make_gpt(preset: str = "tiny", seed: int = 0, **overrides):
    """A seeded random-init GPT of a preset shape (fields overridden), in eval mode."""
    import torch

    from gpt2lab.config import GPTConfig
    from gpt2lab.model import GPT

    torch.manual_seed(seed)
    return GPT(GPTConfig.preset(preset, **overrides)).eval()


@pytest.fixture(scope="session")
def tiny_gpt():
    """The factory of small random GPTs (see the module docstring)."""
    return make_gpt
