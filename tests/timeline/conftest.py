"""A tiny real training run with a checkpoint every 10 steps, made once per session."""

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every test here runs on one torch thread (tests/conftest.py's `one_thread`)."""


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, checkpointed_run) -> Path:
    """30 steps of a 2-layer, 32-wide model on a 300-token stories vocabulary; --keep-every 10
    with keep_last 1 keeps steps 10, 20, 30; an evaluation and a sample every 10 steps."""
    return checkpointed_run(tmp_path_factory.mktemp("timeline"), steps=30, every=10, tokens=120_000)
