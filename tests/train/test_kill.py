"""Killed at any moment, a run resumes to the files of a run never killed: SIGKILL right
after a checkpoint, right before one, between two, and at random moments during checkpoint
writes; SIGINT/SIGTERM save a checkpoint, say so, and exit 130/143."""

import json
import random
import signal
import subprocess
import sys
import time

import pytest
from train_helpers import cli_env, config_flags, losses, records, without_timing

from gpt2lab.train import train
from gpt2lab.train.checkpoint import read_state

KILLER = """
import json, os, signal, sys
from gpt2lab.train import Callback, TrainConfig, train

hook, step = sys.argv[2], int(sys.argv[3])

class Kill(Callback):
    def kill(self, trainer):
        if trainer.step == step:
            os.kill(os.getpid(), signal.SIGKILL)

setattr(Kill, hook, lambda self, trainer, *_: self.kill(trainer))
train(TrainConfig(**json.loads(sys.argv[1])), [Kill()])
"""


def identical_runs(run, reference):
    """metrics.jsonl (timing fields aside), its eval records and samples.txt are equal."""
    assert without_timing(run) == without_timing(reference)
    assert records(run, "eval") == records(reference, "eval")
    assert (run / "samples.txt").read_text() == (reference / "samples.txt").read_text()


@pytest.mark.parametrize(
    "hook, step, resumes_at",
    [
        ("on_step_end", 6, 6),  # right after the step-6 checkpoint (it runs after Checkpoints)
        ("on_eval_end", 6, 3),  # the step-6 evaluation written, its checkpoint not yet
        ("on_step_end", 8, 6),  # between two checkpoints
    ],
)
def test_sigkill_then_resume_writes_what_an_uninterrupted_run_writes(
    tiny_config, tmp_path, hook, step, resumes_at
):
    cfg = tiny_config(
        name="killed", checkpoint_interval=3, sample_interval=3, monitor_interval=4, keep_last=1
    )
    killed = subprocess.run(
        [sys.executable, "-c", KILLER, json.dumps(cfg.to_dict()), hook, str(step)],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    run = tmp_path / "runs" / "killed"
    assert read_state(run / "checkpoints" / f"step_{resumes_at:06d}")["step"] == resumes_at

    resumed = train(cfg, resume=True)
    reference = train(cfg.replace(name="reference"))
    assert resumed.val_loss == reference.val_loss
    identical_runs(run, reference.run_dir)
    assert [r["step"] for r in records(run, "eval")] == [6, 12]


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
    """SIGKILL `delay` seconds after this process starts a checkpoint write (its
    .tmp-*-PID dir appears), once one checkpoint is complete (a run without one is not
    resumable: test_cli checks that it is refused)."""

    def writing():
        return any(checkpoints.glob(f".tmp-*-{proc.pid}")) and any(checkpoints.glob("step_*"))

    deadline = time.monotonic() + 240
    while not writing() and proc.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint write seen"
        time.sleep(0.001)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.mark.parametrize("kills", [2, pytest.param(8, marks=pytest.mark.slow)])
def test_sigkill_during_checkpoint_writes_never_breaks_resume(tiny_config, tmp_path, kills):
    """Checkpoints every step, so most kills land in or near a write."""
    rng = random.Random(kills)
    cfg = tiny_config(
        name="killed",
        max_steps=40,
        checkpoint_interval=1,
        keep_last=2,
        eval_interval=10,
        sample_interval=5,
    )
    run = tmp_path / "runs" / "killed"
    flags = config_flags(cfg)
    for attempt in range(kills):
        proc = start([*flags, "--resume", str(run)] if attempt else flags, tmp_path)
        kill_during_a_checkpoint_write(proc, run / "checkpoints", rng.uniform(0.0, 0.05))
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read()[-2000:]
    final = start([*flags, "--resume", str(run)], tmp_path)
    _, err = final.communicate(timeout=300)
    assert final.returncode == 0, err[-2000:]

    reference = train(cfg.replace(name="reference"))
    assert losses(run) == losses(reference.run_dir)
    identical_runs(run, reference.run_dir)
    assert not list((run / "checkpoints").glob(".*"))  # no temporary leftovers


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_sigint_and_sigterm_save_a_checkpoint_and_exit_128_plus_the_signal(
    tiny_config, tmp_path, signum, code
):
    cfg = tiny_config(name="stopped", max_steps=100_000, checkpoint_interval=0, eval_interval=0)
    run = tmp_path / "runs" / "stopped"
    proc = start(config_flags(cfg), tmp_path)
    deadline = time.monotonic() + 240
    while len(records_so_far(run)) < 3:  # training (and its signal handler) under way
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()[-2000:]
        time.sleep(0.01)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err[-2000:]
    line = err.strip()
    assert "\n" not in line and "Traceback" not in line, err
    name = signal.Signals(signum).name
    assert line.startswith(f"gpt2lab train: stopped by {name} at step "), line
    step = int(line.split(" at step ")[1].split(";")[0])
    saved = run / "checkpoints" / f"step_{step:06d}"
    assert f"checkpoint saved: {saved};" in line and "--resume" in line
    assert read_state(saved)["step"] == step


def records_so_far(run):
    path = run / "metrics.jsonl"
    return path.read_text().splitlines() if path.is_file() else []
