"""`gpt2lab train` / `gpt2lab plot` from the command line, and every bad input: one line on
stderr, exit code 2, nothing in the run directory lost."""

import hashlib

import pytest
from train_helpers import config_flags

from gpt2lab.cli import main
from gpt2lab.data.prepared import prepare_stories
from gpt2lab.train import train


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
    fails(["train", *flags, "--batch-size", "100000000"], capsys, "GiB", "--grad_accum")
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
    cfg = tiny_config(
        name="diverge",
        lr=1e30,
        min_lr=0.0,
        warmup_steps=0,
        grad_clip=0.0,
        max_nonfinite=2,
        model={"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 32, "norm_placement": "none"},
    )
    err = fails(["train", *config_flags(cfg)], capsys, "non-finite", "at step", "layer")
    assert "last good checkpoint" in err
