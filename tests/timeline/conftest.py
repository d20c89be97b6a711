"""A tiny real training run with a checkpoint every 10 steps, made once per session."""

from pathlib import Path

import pytest
import torch

from gpt2lab.data.prepared import prepare_stories
from gpt2lab.train import TrainConfig, train

TINY_MODEL = {"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 64}


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """30 steps of a 2-layer, 32-wide model on a 300-token stories vocabulary; --keep-every 10
    with keep_last 1 keeps steps 10, 20, 30; an evaluation and a sample every 10 steps."""
    root = tmp_path_factory.mktemp("timeline")
    data = root / "data"
    prepare_stories(data, vocab_size=300, tokens=120_000)
    torch.set_num_threads(1)
    config = TrainConfig(
        data=str(data),
        preset="tiny",
        model=dict(TINY_MODEL),
        out_dir=str(root / "runs"),
        name="tiny",
        batch_size=4,
        max_steps=30,
        warmup_steps=3,
        lr=1e-2,
        min_lr=1e-3,
        log_interval=1,
        eval_interval=10,
        eval_iters=3,
        sample_interval=10,
        sample_tokens=12,
        monitor_interval=0,
        checkpoint_interval=0,
        keep_last=1,
        keep_every=10,
        threads=1,
        progress=False,
        tensorboard=False,
    )
    return train(config).run_dir
