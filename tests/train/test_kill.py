"""SIGKILL at random moments (checkpoints are written every step, so most kills land in or
near a write): the run always resumes, and ends with the uninterrupted run's losses."""

import random
import signal
import subprocess
import sys
import time

import pytest
from train_helpers import cli_env, config_flags, losses

from gpt2lab.train import train


def start(flags, cwd):
    return subprocess.Popen(
        [sys.executable, "-m", "gpt2lab", "train", *flags],
        cwd=cwd,
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill_during_a_checkpoint_write(proc, checkpoints, delay):
    """SIGKILL `delay` seconds after a checkpoint write starts (a .tmp-* dir appears)."""
    deadline = time.monotonic() + 240
    while not any(checkpoints.glob(".tmp-*")) and proc.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint write seen"
        time.sleep(0.001)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.mark.parametrize("kills", [2, pytest.param(8, marks=pytest.mark.slow)])
def test_sigkill_during_checkpoint_writes_never_breaks_resume(tiny_config, tmp_path, kills):
    rng = random.Random(kills)
    cfg = tiny_config(
        name="killed", max_steps=40, checkpoint_interval=1, keep_last=2, eval_interval=10
    )
    run = tmp_path / "runs" / "killed"
    flags = config_flags(cfg)
    for attempt in range(kills):
        proc = start([*flags, "--resume", str(run)] if attempt else flags, tmp_path)
        kill_during_a_checkpoint_write(proc, run / "checkpoints", rng.uniform(0.0, 0.05))
    final = start([*flags, "--resume", str(run)], tmp_path)
    _, err = final.communicate(timeout=300)
    assert final.returncode == 0, err[-2000:]

    reference = train(cfg.replace(name="reference"))
    assert losses(run) == losses(reference.run_dir)
    assert not list((run / "checkpoints").glob(".*"))  # no temporary leftovers
