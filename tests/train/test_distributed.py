"""torchrun on CPU (gloo): 2 processes × 1 micro-batch give the loss sequence of 1 process ×
2 micro-batches on the same global batches — with DDP, and with FSDP."""

import json
import shutil
import subprocess
import sys

import pytest
from train_helpers import cli_env, config_flags, losses

from gpt2lab.train import train


def torchrun(cfg, cwd, extra=()) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "gpt2lab",
            "train",
            *config_flags(cfg),
            *extra,
        ],
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.parametrize(
    "fsdp", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["ddp", "fsdp"]
)
def test_two_ranks_equal_one_rank_with_accumulation(tiny_config, tmp_path, fsdp):
    steps = dict(max_steps=6, eval_interval=3, checkpoint_interval=3, step_log=True)
    single = train(tiny_config(name="single", grad_accum=2, **steps))
    cfg = tiny_config(name="multi", grad_accum=1, fsdp=fsdp, **steps)
    proc = torchrun(cfg, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    multi_dir = tmp_path / "runs" / "multi"
    a, b = losses(single.run_dir), losses(multi_dir)
    assert sorted(a) == sorted(b) == list(range(1, 7))
    for step in a:
        assert abs(a[step] - b[step]) <= 1e-5, (step, a[step], b[step])
    assert (multi_dir / "checkpoints" / "step_000006" / "model.safetensors").is_file()
    assert proc.stdout.count("val loss:") == 1  # rank 0 alone reports
    # --step-log: the max over the two ranks' batches is the max over the two micro-batches
    one, two = (
        [json.loads(line) for line in (d / "steps.jsonl").read_text().splitlines()]
        for d in (single.run_dir, multi_dir)
    )
    assert [r["step"] for r in one] == [r["step"] for r in two] == list(range(1, 7))
    for x, y in zip(one, two):
        assert x["attn_logit_max"] == pytest.approx(y["attn_logit_max"], rel=1e-5)
        assert x["grad_norm"] == pytest.approx(y["grad_norm"], rel=1e-4)


@pytest.mark.slow
def test_two_rank_run_resumes_exactly(tiny_config, tmp_path):
    """Rolled back to its step-3 checkpoint, a 2-rank run resumed with 2 ranks logs the
    same losses again (each rank's RNG and loader position are in the checkpoint)."""
    cfg = tiny_config(name="multi", max_steps=6, eval_interval=3, checkpoint_interval=3)
    assert torchrun(cfg, tmp_path).returncode == 0
    run = tmp_path / "runs" / "multi"
    full = losses(run)
    shutil.rmtree(run / "checkpoints" / "step_000006")
    shutil.rmtree(run / "checkpoints" / "best")
    proc = torchrun(cfg, tmp_path, ["--resume", str(run)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert losses(run) == full
