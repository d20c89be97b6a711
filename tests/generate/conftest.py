"""Shared fixtures: small random-init GPT-2s saved to disk and loaded back by `transformers`."""

from __future__ import annotations

import pytest
import torch
from generate_helpers import GPT2_VOCAB

from gpt2lab.pretrained import save_pretrained


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: these models are small, and on a shared 2-core machine a second
    thread spends more time waiting for the core than computing (10x slower measured)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def small_dir(tiny_gpt, tmp_path_factory):
    """A 4-layer, 128-wide GPT-2 with GPT-2's vocabulary, saved in Hugging Face layout."""
    directory = tmp_path_factory.mktemp("small")
    save_pretrained(tiny_gpt("tiny", 0, vocab_size=GPT2_VOCAB), directory, format="hf")
    return directory


@pytest.fixture(scope="session")
def small(small_dir):
    from gpt2lab.pretrained import load_pretrained

    return load_pretrained(small_dir)


@pytest.fixture(scope="session")
def small_hf(small_dir):
    from transformers import GPT2LMHeadModel

    return GPT2LMHeadModel.from_pretrained(small_dir).eval()


@pytest.fixture(scope="session")
def gpt2_tokenizer():
    from gpt2lab.tokenizer import get_tokenizer

    return get_tokenizer("gpt2")
