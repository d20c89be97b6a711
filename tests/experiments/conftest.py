"""A small prepared stories dataset for the ablation tests (256-merge BPE, 120k tokens)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def stories_data(tmp_path_factory):
    from gpt2lab.data.prepared import prepare_stories

    path = tmp_path_factory.mktemp("ablation-data") / "stories-512"
    prepare_stories(path, vocab_size=512, tokens=120_000, seed=0)
    return str(path)
