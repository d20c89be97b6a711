"""What every test shares: no network, and the one factory of small random GPTs.

HF_HUB_OFFLINE is set here, once, when pytest starts: huggingface_hub reads it when it is
first imported, and subprocesses (the CLI tests, notebook kernels) inherit it. A test that
reaches for the hub then fails loudly instead of downloading.

`tiny_gpt(preset="tiny", seed=0, **overrides)` is a seeded random-init GPT of
`GPTConfig.preset(preset, **overrides)` in eval mode; test folders keep only the shapes they
need (e.g. tests/interp's SMALL), not their own builders. `train_checkpointed_run` is the one
builder of a real (tiny) training run with kept checkpoints, for the timeline and the viewer.
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


def train_checkpointed_run(root, *, steps: int, every: int, tokens: int, name: str = "tiny"):
    """A real training run of a 2-layer, 32-wide model on a 300-token stories vocabulary,
    one thread: an evaluation and a sample every `every` steps, and `--keep-every every` with
    keep_last 1 keeps steps every, 2·every, ... Returns the run directory (a few seconds)."""
    import torch

    from gpt2lab.data.prepared import prepare_stories
    from gpt2lab.train import TrainConfig, train

    prepare_stories(root / "data", vocab_size=300, tokens=tokens)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    config = TrainConfig(
        data=str(root / "data"),
        preset="tiny",
        model={"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 64},
        out_dir=str(root / "runs"),
        name=name,
        batch_size=4,
        max_steps=steps,
        warmup_steps=3,
        lr=1e-2,
        min_lr=1e-3,
        log_interval=1,
        eval_interval=every,
        eval_iters=3,
        sample_interval=every,
        sample_tokens=12,
        monitor_interval=0,
        checkpoint_interval=0,
        keep_last=1,
        keep_every=every,
        threads=1,
        progress=False,
        tensorboard=False,
    )
    try:
        return train(config).run_dir
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def one_thread():
    """One torch thread for the test: small models on a shared 2-core CPU run far faster than
    with two. Folders of small-model tests use it for every test (an autouse fixture)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def checkpointed_run():
    """The builder of tiny real training runs with kept checkpoints (see the module
    docstring): checkpointed_run(root, steps=, every=, tokens=) -> run directory."""
    return train_checkpointed_run


@pytest.fixture(scope="session")
def tiny_gpt():
    """The factory of small random GPTs (see the module docstring)."""
    return make_gpt
