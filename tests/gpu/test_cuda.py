"""The CUDA path: forward parity with the CPU, training steps (float32 and bf16), generation
and exact resume. Marked `gpu` and skipped without a CUDA device: `pytest -m gpu tests/gpu`.

Each test compares against the CPU float32 computation of the same seeded model, the
independent reference here."""

import json

import pytest
import torch

from gpt2lab.config import GPTConfig
from gpt2lab.data.prepared import prepare_stories
from gpt2lab.generate import generate
from gpt2lab.model import GPT
from gpt2lab.train import Callback, TrainConfig, train

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

CUDA = torch.device("cuda")


def tiny_gpt() -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=211, block_size=32, n_layer=2, n_head=2, n_embd=64)).eval()


@pytest.fixture(scope="module")
def stories_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("data") / "stories"
    prepare_stories(directory, vocab_size=300, tokens=120_000)
    return directory


def config(stories_dir, tmp_path, **overrides) -> TrainConfig:
    base = dict(
        data=str(stories_dir),
        model={"n_layer": 2, "n_head": 2, "n_embd": 64, "block_size": 32},
        out_dir=str(tmp_path / "runs"),
        name="run",
        batch_size=8,
        max_steps=8,
        warmup_steps=2,
        log_interval=1,
        eval_interval=4,
        eval_iters=2,
        sample_interval=0,
        sample_tokens=8,
        checkpoint_interval=4,
        progress=False,
        tensorboard=False,
    )
    return TrainConfig(**{**base, **overrides})


def losses(run_dir) -> list[float]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r["loss"] for r in map(json.loads, lines) if r["kind"] == "train"]


def test_forward_matches_the_cpu():
    model = tiny_gpt()
    idx = torch.randint(0, 211, (3, 32), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        cpu, _ = model(idx)
        gpu, _ = model.to(CUDA)(idx.to(CUDA))
        with torch.autocast("cuda", dtype=torch.bfloat16):
            bf16, _ = model(idx.to(CUDA))
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(bf16.float().cpu(), cpu, rtol=0, atol=5e-2 * cpu.abs().max())


def test_training_steps_match_the_cpu(stories_dir, tmp_path):
    """float32 on CUDA follows the CPU run's losses; bf16 (what --dtype auto picks on a GPU
    with bf16) stays within 2% of them."""
    cpu = train(config(stories_dir, tmp_path, name="cpu", device="cpu"))
    gpu = train(config(stories_dir, tmp_path, name="gpu", device="cuda"))
    auto = train(config(stories_dir, tmp_path, name="auto", device="cuda", dtype="auto"))
    assert gpu.stopped == auto.stopped == "completed"
    assert losses(gpu.run_dir) == pytest.approx(losses(cpu.run_dir), rel=1e-3)
    assert "dtype: bfloat16" in (auto.run_dir / "config.yaml").read_text()
    assert losses(auto.run_dir) == pytest.approx(losses(cpu.run_dir), rel=2e-2)


def test_greedy_generation_matches_the_cpu():
    model = tiny_gpt()
    prompt = torch.tensor([[1, 2, 3, 4]])
    cpu = generate(model, prompt, 16, temperature=0.0)
    gpu = generate(model.to(CUDA), prompt.to(CUDA), 16, temperature=0.0)
    assert gpu.cpu().tolist() == cpu.tolist()


class StopAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer, record):
        if trainer.step == self.step:
            trainer.request_stop()


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_resume_continues_the_run(stories_dir, tmp_path, dtype):
    """Stopped at step 4 and resumed on the GPU: the later losses are the uninterrupted
    run's (to the last bits a GPU kernel may reorder)."""
    full = train(config(stories_dir, tmp_path, name="full", device="cuda", dtype=dtype))
    part = train(
        config(stories_dir, tmp_path, name="part", device="cuda", dtype=dtype), [StopAt(4)]
    )
    assert part.step == 4
    resumed = train(
        config(stories_dir, tmp_path, name="part", device="cuda", dtype=dtype), resume=True
    )
    assert resumed.step == 8
    assert losses(part.run_dir) == pytest.approx(losses(full.run_dir), rel=1e-5)
