"""`gpt2lab train` / `gpt2lab plot` from the command line, and every bad input: one line on
stderr, exit code 2, nothing in the run directory lost."""

import hashlib
import shutil
from pathlib import Path

import pytest
import torch
from train_helpers import config_flags

from gpt2lab.cli import main
from gpt2lab.data.prepared import prepare_stories
from gpt2lab.pretrained import load_pretrained
from gpt2lab.train import train
from gpt2lab.train.checkpoint import read_state


def snapshot(directory):
    """{relative path: sha256} of every file under a directory."""
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def fails(args, capsys, *words):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("gpt2lab "), err
    for word in words:
        assert word in err, err
    return err


def test_help_texts(capsys):
    for command in (["train", "--help"], ["plot", "--help"]):
        with pytest.raises(SystemExit) as exit_:
            main(command)
        assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--resume" in out and "--model.n_layer" in out and "--init_from" in out
    assert "peak learning rate" in out and "PNG" in out


def test_cli_run_then_plot(tiny_config, capsys, tmp_path):
    cfg = tiny_config(monitor_interval=6, progress=True)
    assert main(["train", *config_flags(cfg), "--no-progress"]) == 0  # as ablate/data spell it
    out = capsys.readouterr().out
    assert "val loss:" in out and "checkpoint:" in out and "sample:" in out
    run = tmp_path / "runs" / "run"
    assert {p.name for p in (run / "plots").iterdir()} >= {"loss.png", "lr.png", "grad_norm.png"}
    assert (run / "config.yaml").read_text().count("max_steps: 12") == 1
    assert "progress: false" in (run / "config.yaml").read_text()
    assert main(["plot", str(run), "--out", str(tmp_path / "figs")]) == 0
    assert (tmp_path / "figs" / "act.png").is_file()


def test_bad_inputs(tiny_config, capsys, tmp_path, stories_dir):
    flags = config_flags(tiny_config(name="bad"))
    fails(["train", *flags, "--data", str(tmp_path / "nowhere")], capsys, "no prepared data")
    fails(["train", *flags, "--model.vocab-size", "100"], capsys, "300 tokens", "vocab_size is 100")
    fails(["train", *flags, "--block-size", "64"], capsys, "block_size 64", "32")
    fails(["train", *flags, "--batch-size", "100000000"], capsys, "GiB", "--grad-accum")
    fails(["train", *flags, "--config", str(tmp_path / "none.yaml")], capsys, "no such config")
    fails(["train", *flags, "--lr", "fast"], capsys, "lr must be float")
    fails(["plot", str(tmp_path)], capsys, "no training run")
    fails(["train", "--resume", str(tmp_path / "nothing")], capsys, "no training run")
    assert not (tmp_path / "runs" / "bad").exists()


def test_existing_run_resume_mismatch_and_corrupt_checkpoint(tiny_config, capsys, tmp_path):
    cfg = tiny_config(max_steps=6, checkpoint_interval=3)
    run = train(cfg).run_dir
    before = snapshot(run)
    flags = config_flags(cfg)
    fails(["train", *flags], capsys, "already exists", "--resume")
    fails(["train", "--resume", str(run), "--lr", "0.5"], capsys, "different config", "lr")
    # the schedule decays over max_steps here, so a longer run would be another trajectory
    fails(["train", "--resume", str(run), "--max-steps", "9"], capsys, "different", "max_steps")
    (run / "checkpoints" / "step_000006" / "model.safetensors").write_bytes(b"garbage")
    damaged = snapshot(run)
    fails(["train", "--resume", str(run)], capsys, "step_000006", "model.safetensors")
    (run / "checkpoints" / "step_000006" / "optimizer.pt").write_bytes(b"garbage")
    (run / "checkpoints" / "step_000006" / "model.safetensors").write_bytes(
        (run / "checkpoints" / "best" / "model.safetensors").read_bytes()
    )
    fails(["train", "--resume", str(run)], capsys, "optimizer.pt", "corrupt")
    assert set(snapshot(run)) == set(damaged) == set(before)  # nothing deleted


def test_init_from_needs_the_same_tokenizer(tiny_config, capsys, tmp_path):
    base = train(tiny_config(max_steps=3, checkpoint_interval=3)).run_dir
    other = tmp_path / "other-data"
    prepare_stories(other, vocab_size=280, tokens=40_000)
    flags = config_flags(tiny_config(name="tuned", model={}))  # the weights fix the model
    fails(["train", *flags, "--init-from", str(base), "--data", str(other)], capsys, "tokenizer")
    fails(
        ["train", *flags, "--init-from", str(base), "--model.n-layer", "3"], capsys, "model.n_layer"
    )
    assert main(["train", *flags, "--init-from", str(base), "--max-steps", "2"]) == 0


def test_divergence_is_a_one_line_error_naming_step_and_layer(tiny_config, capsys):
    """lr=1e30 without norms: step 1 is finite, step 2 is not. With a checkpoint due every
    step and keep_last 0, the named checkpoint is still step 1's: it exists, is finite and
    predates the first non-finite step."""
    cfg = tiny_config(
        name="diverge",
        lr=1e30,
        min_lr=0.0,
        warmup_steps=0,
        grad_clip=0.0,
        max_nonfinite=2,
        checkpoint_interval=1,
        keep_last=0,
        model={"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 32, "norm_placement": "none"},
    )
    err = fails(["train", *config_flags(cfg)], capsys, "diverged", "from step 2", "(layer block")
    named = Path(err.split("last good checkpoint: ")[1])
    assert read_state(named)["step"] == 1
    assert all(torch.isfinite(p).all() for p in load_pretrained(named).parameters())


@pytest.mark.parametrize(
    "flag, value, words",
    [
        ("--lr", "inf", "lr must be a finite number"),
        ("--lr", "nan", "lr must be a finite number"),
        ("--lr", "1e40", "lr <= 3.4e+38"),
        ("--lr", "-0.1", "0 < lr"),
        ("--min-lr", "inf", "min_lr must be a finite number"),
        ("--weight-decay", "nan", "weight_decay must be a finite number"),
        ("--grad-clip", "-1", "grad_clip must be >= 0"),
        ("--beta2", "1", "betas"),
        ("--max-steps", "-5", "max_steps must be >= 1"),
        ("--batch-size", "-1", "batch_size must be >= 1"),
        ("--keep-last", "-1", "keep_last must be >= 0"),
        ("--checkpoint-interval", "-3", "checkpoint_interval must be >= 0"),
    ],
)
def test_bad_numbers_are_refused_before_a_run_dir_exists(
    tiny_config, capsys, tmp_path, flag, value, words
):
    flags = config_flags(tiny_config(name="bad"))
    fails(["train", *flags, flag, value], capsys, words)
    assert not (tmp_path / "runs").exists()


def test_resume_refusals_leave_the_run_untouched(tiny_config, capsys, tmp_path):
    """No checkpoint, an empty / non-mapping / non-UTF-8 config.yaml, a non-UTF-8
    metrics.jsonl: one line each, and nothing in the run changed."""
    cfg = tiny_config(max_steps=6, checkpoint_interval=3, sample_interval=3)
    run = train(cfg).run_dir
    config = (run / "config.yaml").read_bytes()

    def refused(*words):
        before = snapshot(run)
        fails(["train", "--resume", str(run)], capsys, *words)
        assert snapshot(run) == before
        assert not (tmp_path / "data").exists()  # the default corpus was not prepared here

    (run / "config.yaml").write_text("")
    refused("config.yaml is empty")
    (run / "config.yaml").write_text("- 1\n")
    refused("mapping")
    (run / "config.yaml").write_bytes(b"lr: \xff\n")
    refused("config.yaml is not UTF-8")
    (run / "config.yaml").write_text("lr: 0.1\n")  # the rest would be the defaults
    refused("another config", "data")
    (run / "config.yaml").write_bytes(config)
    metrics = (run / "metrics.jsonl").read_bytes()
    (run / "metrics.jsonl").write_bytes(metrics + b"\xff\xfe\n")
    refused("metrics.jsonl is not UTF-8")
    (run / "metrics.jsonl").write_bytes(metrics)
    for checkpoint in (run / "checkpoints").iterdir():
        if checkpoint.name.startswith("step_"):
            shutil.rmtree(checkpoint)
    refused("no complete checkpoint")
