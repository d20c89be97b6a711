"""Fixtures for the training tests: one small prepared stories corpus, tiny configs."""

from pathlib import Path

import pytest

from gpt2lab.data.prepared import prepare_stories
from gpt2lab.train import TrainConfig

TINY_MODEL = {"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 32}


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every test here runs on one torch thread (tests/conftest.py's `one_thread`)."""


@pytest.fixture(scope="session")
def stories_dir(tmp_path_factory) -> Path:
    """A 120k-token stories corpus with a 300-token BPE vocabulary (about two seconds)."""
    directory = tmp_path_factory.mktemp("data") / "stories"
    prepare_stories(directory, vocab_size=300, tokens=120_000)
    return directory


@pytest.fixture
def tiny_config(stories_dir, tmp_path):
    """A factory of TrainConfigs for a 2-layer, 32-wide model that trains in a second."""

    def make(**overrides) -> TrainConfig:
        base = dict(
            data=str(stories_dir),
            preset="tiny",
            model=dict(TINY_MODEL),
            out_dir=str(tmp_path / "runs"),
            name="run",
            batch_size=4,
            max_steps=12,
            warmup_steps=2,
            lr=3e-3,
            min_lr=3e-4,
            log_interval=1,
            eval_interval=6,
            eval_iters=2,
            sample_interval=0,
            sample_tokens=8,
            checkpoint_interval=6,
            threads=1,
            progress=False,
            tensorboard=False,
        )
        return TrainConfig(**{**base, **overrides})

    return make
