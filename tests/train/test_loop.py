"""Whole runs on a tiny model: exact resume, Hugging Face checkpoints, the non-finite guard,
monitoring records, samples and plots."""

import json
import math

import pytest
import torch
from train_helpers import losses, records, without_timing

from gpt2lab.pretrained import load_pretrained
from gpt2lab.tokenizer import get_tokenizer
from gpt2lab.train import Callback, train
from gpt2lab.train.checkpoint import read_state, recover
from gpt2lab.train.metrics import read_metrics, write_plots


class StopAt(Callback):
    """Ask the trainer to stop after `step` (as SIGINT would)."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer, record):
        if trainer.step == self.step:
            trainer.request_stop()


@pytest.mark.parametrize("repeat_rows", [0.0, 0.5])
def test_resume_is_bit_identical(tiny_config, repeat_rows):
    """Stopped at step 5 and resumed, every later loss equals the uninterrupted run's
    exactly (fp32 CPU), with dropout on so the RNG state matters too; with repeat rows in
    the batches as well."""
    model = {"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 32, "dropout": 0.1}
    run = dict(model=model, grad_accum=2, repeat_rows=repeat_rows)
    full = train(tiny_config(name="full", **run))
    assert full.stopped == "completed" and full.step == 12

    part = train(tiny_config(name="part", **run), [StopAt(5)])
    assert part.stopped == "callback" and part.step == 5
    assert part.checkpoint.name == "step_000005"
    resumed = train(tiny_config(name="part", **run), resume=True)
    assert resumed.step == 12

    a, b = losses(full.run_dir), losses(part.run_dir)
    assert sorted(b) == list(range(1, 13))  # the log continues where it stopped, no repeats
    assert [a[s] for s in range(1, 13)] == [b[s] for s in range(1, 13)]
    assert full.val_loss == resumed.val_loss
    sd_full = load_pretrained(full.run_dir / "checkpoints" / "step_000012").state_dict()
    sd_part = load_pretrained(part.run_dir / "checkpoints" / "step_000012").state_dict()
    assert all(torch.equal(sd_full[k], sd_part[k]) for k in sd_full)


@pytest.mark.parametrize("schedule", [dict(decay_steps=12), dict(decay="constant")])
def test_a_run_with_a_fixed_decay_extends_on_resume_as_if_it_had_run_on(tiny_config, schedule):
    """With --decay-steps set or a constant lr, the lr schedule does not depend on max_steps,
    so a finished 6-step run resumed with --max-steps 12 takes the very steps of a 12-step
    run."""
    run = dict(schedule, repeat_rows=0.25)
    full = train(tiny_config(name="full", max_steps=12, **run))
    short = train(tiny_config(name="short", max_steps=6, **run))
    assert short.stopped == "completed" and short.step == 6
    longer = train(tiny_config(name="short", max_steps=12, **run), resume=True)
    assert longer.step == 12
    a, b = losses(full.run_dir), losses(short.run_dir)
    assert [a[s] for s in range(1, 13)] == [b[s] for s in range(1, 13)]


def test_checkpoint_is_a_hugging_face_model_with_its_tokenizer(tiny_config, stories_dir):
    transformers = pytest.importorskip("transformers")
    result = train(tiny_config(keep_last=1))
    ckpt = result.run_dir / "checkpoints"
    assert sorted(p.name for p in ckpt.iterdir()) == ["best", "step_000012"]  # keep_last=1
    hf = transformers.GPT2LMHeadModel.from_pretrained(ckpt / "step_000012").eval()
    ours = load_pretrained(result.run_dir)  # the run dir resolves to checkpoints/best
    assert read_state(ckpt / "best")["step"] == 12  # the last eval was the best one
    x = torch.randint(0, ours.config.vocab_size, (2, 16))
    with torch.no_grad():
        torch.testing.assert_close(hf(x).logits, ours(x)[0], rtol=1e-4, atol=1e-4)

    data_tok = get_tokenizer(str(stories_dir / "tokenizer"))
    ckpt_tok = get_tokenizer(str(ckpt / "step_000012"))
    assert ckpt_tok.identity == data_tok.identity
    state = read_state(ckpt / "step_000012")
    assert state["step"] == 12 and state["config"]["name"] == "run"
    saved = torch.load(ckpt / "step_000012" / "optimizer.pt", weights_only=True)
    assert len(saved["optimizer"]["state"]) > 0


def test_nonfinite_steps_are_skipped_logged_and_stop_the_run(tiny_config):
    """A poisoned weight after step 6: the steps are skipped and logged with the layer, the
    run stops after max_nonfinite in a row naming the first one, and the step-6 checkpoint
    stays the last, although a checkpoint was due every step and keep_last=1."""

    class Poison(Callback):
        def on_step_end(self, trainer, record):
            if trainer.step == 6:
                with torch.no_grad():
                    trainer.raw_model.blocks[1].mlp.c_fc.bias[0] = float("inf")

    cfg = tiny_config(max_nonfinite=3, checkpoint_interval=1, keep_last=1)
    result = train(cfg, [Poison()])
    assert result.stopped == "nonfinite"
    assert result.nonfinite == {
        "step": 7,
        "where": "blocks.1.mlp.c_fc.bias",
        "layer": "block1",
        "consecutive": 3,
    }
    bad = records(result.run_dir, "nonfinite")
    assert [r["step"] for r in bad] == [7, 8, 9] and [r["consecutive"] for r in bad] == [1, 2, 3]
    assert all(r["layer"] == "block1" for r in bad)
    assert result.checkpoint.name == "step_000006"
    assert sorted(p.name for p in result.checkpoint.parent.iterdir()) == ["best", "step_000006"]
    model = load_pretrained(result.checkpoint)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_weights_gone_bad_before_the_loss_are_never_checkpointed(tiny_config):
    """An update that leaves an infinite weight while its step's loss is still finite (what a
    huge lr does): that step's checkpoint is not written, the one before stays the last good
    one, is finite, predates the first non-finite step, and keep_last did not prune it."""

    class BadUpdate(Callback):
        def on_before_optimizer_step(self, trainer):
            if trainer.step + 1 == 6:  # the gradient of step 6, before its update
                trainer.raw_model.wte.weight.grad[0, 0] = float("inf")

    cfg = tiny_config(max_nonfinite=2, checkpoint_interval=1, keep_last=0, grad_clip=0.0)
    result = train(cfg, [BadUpdate()])
    assert result.stopped == "nonfinite" and result.nonfinite["step"] == 7
    assert result.nonfinite["where"] == "wte.weight" and result.nonfinite["layer"] == "embed"
    assert records(result.run_dir, "train")[-1]["step"] == 6  # step 6 itself looked fine
    assert result.checkpoint.name == "step_000005"
    assert read_state(result.checkpoint)["step"] < result.nonfinite["step"]
    model = load_pretrained(result.checkpoint)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert [p.name for p in sorted(result.checkpoint.parent.iterdir())] == ["step_000005"]


def test_monitoring_records_every_layer(tiny_config):
    result = train(tiny_config(monitor_interval=4, max_steps=8))
    mon = records(result.run_dir, "monitor")
    assert [r["step"] for r in mon] == [4, 8]
    layers = {"embed", "block0", "block1", "final"}
    assert set(mon[0]["grad_norm"]) == layers and set(mon[0]["update_ratio"]) == layers
    assert set(mon[0]["act"]) == {"embed", "block0", "block1"}
    assert set(mon[0]["act"]["block1"]) == {"mean", "std", "rms", "max_abs"}
    assert all(len(h) == 2 and all(0 <= v <= 1 for v in h) for h in mon[0]["attn_entropy"].values())
    assert all(0 <= v <= 1 for v in mon[0]["dead_frac"].values())
    assert all(0 < r < 1 for r in mon[0]["update_ratio"].values())
    # monitoring does not change the trajectory
    plain = train(tiny_config(name="plain", max_steps=8))
    assert losses(result.run_dir) == losses(plain.run_dir)

    paths = write_plots([result.run_dir, plain.run_dir])
    names = {p.name for p in paths}
    assert {
        "loss.png",
        "lr.png",
        "grad_norm-run.png",
        "act-run.png",
        "attn_entropy-run.png",
    } <= names
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)


def test_result_metrics_and_samples(tiny_config):
    result = train(tiny_config(sample_interval=6, sample_tokens=10))
    evals = records(result.run_dir, "eval")
    assert [r["step"] for r in evals] == [6, 12]
    assert result.val_loss == evals[-1]["val_loss"]
    assert result.val_ppl == pytest.approx(math.exp(result.val_loss))
    assert result.best_val_loss == min(r["val_loss"] for r in evals)
    assert evals[-1]["val_loss"] < math.log(300)  # below the uniform guess over the vocab
    text = (result.run_dir / "samples.txt").read_text()
    assert text.count("=== step") == 2 and "Once upon a time" in text
    assert result.sample.startswith("Once upon a time")
    json.dumps(result.to_dict())


def test_recover_after_a_kill_between_renames(tmp_path):
    ckpt = tmp_path / "checkpoints"
    (ckpt / ".tmp-step_000009-123").mkdir(parents=True)
    (ckpt / ".old-best-123").mkdir()
    (ckpt / ".old-best-123" / "config.json").write_text("{}")
    (ckpt / "step_000008").mkdir()
    (ckpt / ".old-step_000008-7").mkdir()
    recover(ckpt)
    assert sorted(p.name for p in ckpt.iterdir()) == ["best", "step_000008"]
    assert (ckpt / "best" / "config.json").is_file()


def test_keep_last_0_keeps_the_latest_and_best_and_resumes_exactly(tiny_config):
    """keep_last=0 keeps best/ and the newest step checkpoint: the printed checkpoint exists
    and a resume continues from it (never from step 0)."""
    full = train(tiny_config(name="full"))
    cfg = tiny_config(keep_last=0, checkpoint_interval=3)
    part = train(cfg, [StopAt(7)])
    assert part.checkpoint.is_dir() and part.checkpoint.name == "step_000007"
    assert sorted(p.name for p in part.checkpoint.parent.iterdir()) == ["best", "step_000007"]
    resumed = train(cfg, resume=True)
    assert resumed.checkpoint.is_dir() and resumed.checkpoint.name == "step_000012"
    assert without_timing(part.run_dir) == without_timing(full.run_dir)


def test_resume_skips_a_half_written_metrics_line(tiny_config):
    full = train(tiny_config(name="full"))
    cfg = tiny_config()
    part = train(cfg, [StopAt(8)])
    with open(part.run_dir / "metrics.jsonl", "a") as f:
        f.write('{"step": 9, "kind": "tr')  # the kill came mid-line
    assert read_metrics(part.run_dir)[-1]["step"] == 8
    train(cfg, resume=True)
    assert without_timing(part.run_dir) == without_timing(full.run_dir)
