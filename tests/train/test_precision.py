"""`--dtype auto`: the probe's decision rule, its fallbacks, and what a run records."""

import pytest
import torch
import yaml
from train_helpers import records

from gpt2lab.train import Callback, precision, train
from gpt2lab.train.precision import MARGIN, choose_dtype, matmul_gflops
from gpt2lab.train.run import resume_config

CPU = torch.device("cpu")


def fake_probe(monkeypatch, fp32: float, bf16: float | Exception):
    """matmul_gflops answering fixed figures (or raising for bf16)."""

    def probe(device, dtype, width, **kwargs):
        if dtype == torch.float32:
            return fp32
        if isinstance(bf16, Exception):
            raise bf16
        return bf16

    monkeypatch.setattr(precision, "matmul_gflops", probe)


@pytest.mark.parametrize(
    "bf16, chosen",
    [(MARGIN * 100.0, "bfloat16"), (MARGIN * 100.0 - 1, "float32"), (60.0, "float32")],
)
def test_bfloat16_only_when_the_margin_is_met(monkeypatch, bf16, chosen):
    fake_probe(monkeypatch, 100.0, bf16)
    choice = choose_dtype(CPU, 64)
    assert choice.dtype == chosen
    assert f"{bf16 / 100:.1f}× float32" in choice.reason
    assert (choice.float32_gflops, choice.bfloat16_gflops) == (100.0, bf16)


def test_a_cpu_without_bf16_kernels_falls_back_and_says_why(monkeypatch):
    fake_probe(monkeypatch, 100.0, RuntimeError("bf16 not supported\nmore detail"))
    choice = choose_dtype(CPU, 64)
    assert choice.dtype == "float32"
    assert choice.reason == "bfloat16 matmul failed on this CPU: bf16 not supported"


def test_other_devices_are_not_probed():
    choice = choose_dtype(torch.device("mps"), 64)
    assert choice.dtype == "float32" and "not mps" in choice.reason


def test_the_probe_measures_a_positive_rate():
    """The real probe (a few milliseconds): float32 always works."""
    assert matmul_gflops(CPU, torch.float32, 32, rows=64, repeats=2) > 0


class StopAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer, record):
        if trainer.step == self.step:
            trainer.request_stop()


def test_a_run_records_its_choice_and_resumes_with_it(monkeypatch, tiny_config, capsys):
    """The chosen dtype goes into config.yaml (so --resume keeps it, whatever a new probe
    would say) and, with the figures, into metrics.jsonl; one line says why."""
    fake_probe(monkeypatch, 100.0, 50.0)
    result = train(tiny_config(dtype="auto", max_steps=4, checkpoint_interval=2), [StopAt(2)])
    assert "dtype auto: float32 (bfloat16 matmul only 0.5× float32" in capsys.readouterr().out
    saved = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    assert saved["dtype"] == "float32"
    [record] = records(result.run_dir, "dtype")
    assert record["dtype"] == "float32" and record["bfloat16_gflops"] == 50.0

    fake_probe(monkeypatch, 100.0, 1000.0)  # a new probe would choose bf16 now
    config = resume_config(result.run_dir, {"max_steps": 4})  # what `--resume RUN` reads
    assert config.dtype == "float32"
    resumed = train(config, resume=True)
    assert resumed.stopped == "completed" and "dtype auto" not in capsys.readouterr().out


def test_the_numpy_engine_takes_float32(tiny_config, capsys):
    result = train(tiny_config(engine="numpy", dtype="auto", max_steps=2))
    assert "dtype auto: float32 (the numpy engine computes in float32)" in capsys.readouterr().out
    assert yaml.safe_load((result.run_dir / "config.yaml").read_text())["dtype"] == "float32"
