"""A real (tiny) suite end to end: runs, report numbers read back from the metrics files,
resume without rerunning finished runs, divergence recorded as an outcome; the --quick suite
of every claim through the CLI."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from gpt2lab.cli import main
from gpt2lab.experiments import BUDGETS, Budget, Suite, run_suite, suite_variants, write_report

STEPS = 3
TOKENS = 1024  # val tokens per length in the extrapolation check
BASE, SIN = "runs/baseline-lr0.002-s0", "runs/sinusoidal-lr0.002-s0"


def small_suite(data: str, out: Path, jobs: int) -> Suite:
    """baseline + sinusoidal, 1 seed, 1 lr, 3 steps of 2 × 128 tokens: seconds per run."""
    variants, _ = suite_variants("seed")
    budget = Budget(
        steps=STEPS, batch_size=2, lrs=(2e-3,), warmup_steps=1, eval_interval=1,
        eval_iters=2, log_interval=2, data=data,
    )  # fmt: skip
    chosen = [v for v in variants if v.name in ("baseline", "sinusoidal")]
    return Suite(chosen, seeds=1, budget=budget, out=str(out), jobs=jobs)


@pytest.fixture(scope="module")
def suite_dir(stories_data, tmp_path_factory):
    """The small suite trained in 2 parallel processes; the report written by the CLI."""
    out = tmp_path_factory.mktemp("ablate") / "suite"
    summary = run_suite(small_suite(stories_data, out, jobs=2), progress=False)
    assert (summary["ran"], summary["skipped"], summary["failed"]) == (2, 0, [])
    write_report(out, extrapolation_tokens=TOKENS)
    return out


def table_rows(markdown: str, header: str) -> dict[str, list[str]]:
    """The rows of the Markdown table whose header starts with `header`, keyed by 1st cell."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        rows[cells[0].strip("`")] = cells
    return rows


def last_eval(run_dir: Path) -> float:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in records if r["kind"] == "eval"][-1]["val_loss"]


def test_report_structure_and_numbers_come_from_the_metrics_files(suite_dir):
    report = (suite_dir / "report.md").read_text()
    for section in ("## Scale", "## Claims", "## The claims one by one", "## Results per variant",
                    "## Positional extrapolation", "## Samples"):  # fmt: skip
        assert section in report
    # the scale, from the run's own config.yaml
    import yaml

    cfg = yaml.safe_load((suite_dir / BASE / "config.yaml").read_text())
    tokens = cfg["max_steps"] * cfg["batch_size"] * 128
    assert (
        f"{cfg['max_steps']} steps × {cfg['batch_size']} sequences × 128 tokens = {tokens:,}"
        in report
    )
    assert cfg["lr"] == 2e-3 and cfg["min_lr"] == pytest.approx(2e-4) and cfg["step_log"]
    assert "runs finished at the best lr: 2 of 2" in report

    rows = table_rows(report, "| variant | change |")
    base, sin = last_eval(suite_dir / BASE), last_eval(suite_dir / SIN)
    assert rows["baseline"][2] == f"{base:.3f}"  # the sweep's only lr
    assert rows["sinusoidal"][2] == f"{sin:.3f}"
    assert rows["sinusoidal"][3] == "0.002"  # best lr
    assert rows["sinusoidal"][1] == "pos_encoding=sinusoidal, sinusoidal_scale=0.0282843"
    # the peak gradient norm is the max over every step (steps.jsonl), which the metrics
    # logged every 2 steps can miss
    steps = [
        json.loads(line) for line in (suite_dir / BASE / "steps.jsonl").read_text().splitlines()
    ]
    assert [r["step"] for r in steps] == [1, 2, 3]
    peak = max(r["grad_norm"] for r in steps)
    assert rows["baseline"][8] == f"{peak:.2f}"
    logged = [
        r["grad_norm"]
        for r in map(json.loads, (suite_dir / BASE / "metrics.jsonl").read_text().splitlines())
        if r["kind"] == "train"
    ]
    assert max(logged) <= peak and len(logged) < len(steps)

    claims = table_rows(report, "| claim |")
    claim = claims["learned positions converge faster than sinusoidal"]
    assert claim[1] == "`sinusoidal` vs `baseline`" and claim[-1] == "**inconclusive**"
    assert "no positional encoding" not in report.split("## Claims")[1].split("## The")[0]

    data = json.loads((suite_dir / "report.json").read_text())
    by_name = {v["name"]: v for v in data["arms"]}
    assert by_name["sinusoidal"]["val_loss"] == [sin]
    for png in ("loss", "lr", "stability", "extrapolation"):
        size = (suite_dir / f"{png}.png").stat().st_size
        assert 5_000 < size < 200_000, png
    samples = table_rows(report, "| variant | sample |")
    assert samples["sinusoidal"][1].startswith("Once upon a time")


def test_extrapolation_learned_refuses_sinusoidal_is_scored_independently(suite_dir, stories_data):
    from gpt2lab.data.loader import TokenLoader
    from gpt2lab.pretrained import load_pretrained

    rows = table_rows((suite_dir / "report.md").read_text(), "| variant | L = 128")
    assert rows["baseline"][2].startswith("cannot: sequence of 256 tokens is longer")
    # recompute sinusoidal's loss at 256 (2x the context) with the model's own loss
    ckpt = suite_dir / SIN / "checkpoints" / f"step_{STEPS:06d}"
    model = load_pretrained(ckpt)
    loader = TokenLoader(stories_data, "val", batch_size=4, block_size=256, mode="sequential")
    total, n = 0.0, 0
    with torch.no_grad():
        for _ in range(TOKENS // (4 * 256)):
            try:
                x, y = loader.next_batch()
            except StopIteration:
                break
            total += float(model(x, y)[1]) * x.numel()
            n += x.numel()
    assert rows["sinusoidal"][2].startswith(f"{total / n:.3f}")


def trajectory(metrics: str) -> list[tuple]:
    """Each record's step, kind and losses (not its timings)."""
    return [
        (r["step"], r["kind"], r.get("loss"), r.get("val_loss"))
        for r in map(json.loads, metrics.splitlines())
    ]


def test_rerun_skips_finished_runs_and_an_interrupted_run_continues(
    suite_dir, stories_data, capsys
):
    base_metrics = suite_dir / BASE / "metrics.jsonl"
    before = base_metrics.stat().st_mtime_ns, base_metrics.read_text()
    # the sinusoidal run loses its result.json: as if the suite stopped right after its
    # last checkpoint; it must continue from there, not start over
    (suite_dir / SIN / "result.json").unlink()
    sin_before = (suite_dir / SIN / "metrics.jsonl").read_text()
    summary = run_suite(small_suite(stories_data, suite_dir, jobs=1), progress=False)
    assert (summary["ran"], summary["skipped"]) == (1, 1)
    assert (base_metrics.stat().st_mtime_ns, base_metrics.read_text()) == before
    sin_after = (suite_dir / SIN / "metrics.jsonl").read_text()
    steps = [json.loads(line)["step"] for line in sin_after.splitlines()]
    assert [json.loads(line)["step"] for line in sin_before.splitlines()] == steps
    assert (suite_dir / SIN / "result.json").is_file()

    summary = run_suite(small_suite(stories_data, suite_dir, jobs=1), progress=False)
    assert (summary["ran"], summary["skipped"]) == (0, 2)

    # killed before its first checkpoint: nothing to continue from, so it starts again
    finished = (suite_dir / SIN / "metrics.jsonl").read_text()
    (suite_dir / SIN / "result.json").unlink()
    shutil.rmtree(suite_dir / SIN / "checkpoints")
    (suite_dir / SIN / "metrics.jsonl").write_text(finished.splitlines()[0] + "\n")
    summary = run_suite(small_suite(stories_data, suite_dir, jobs=1), progress=False)
    assert (summary["ran"], summary["skipped"]) == (1, 1)
    assert (suite_dir / SIN / "result.json").is_file()
    rerun = (suite_dir / SIN / "metrics.jsonl").read_text()
    assert [r[:2] for r in trajectory(rerun)] == [r[:2] for r in trajectory(finished)]
    again = [x for r in trajectory(rerun) for x in r[2:] if x is not None]
    first = [x for r in trajectory(finished) for x in r[2:] if x is not None]
    assert again == pytest.approx(first, rel=1e-6)  # the same run again, from step 1

    # the CLI on the same directory with another budget (tiny's, 3 steps) would mix
    # unequal runs: refused with one line, nothing rerun
    argv = ["ablate", "--only", "sinusoidal", "--seeds", "1", "--steps", str(STEPS),
            "--data", stories_data, "--out", str(suite_dir), "--no-progress"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "holds a suite with a different budget" in err and err.count("\n") == 1
    assert (base_metrics.stat().st_mtime_ns, base_metrics.read_text()) == before


def test_cli_report_only_rewrites_the_report(suite_dir, stories_data, tmp_path, capsys):
    argv = ["ablate", "--report-only", "--out", str(suite_dir), "--report", str(tmp_path)]
    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == f"report: {tmp_path / 'report.md'}"
    rows = table_rows((tmp_path / "report.md").read_text(), "| variant | change |")
    assert rows["baseline"][2] == f"{last_eval(suite_dir / BASE):.3f}"


def test_a_diverging_run_is_an_outcome_with_its_step_and_layer(stories_data, tmp_path):
    variants, _ = suite_variants("seed")
    budget = (
        BUDGETS["tiny"]
        .with_steps(10)
        .replace(data=stories_data, lrs=(1e4,), batch_size=2, eval_iters=1)
    )
    suite = Suite(variants[:1], seeds=1, budget=budget, out=str(tmp_path / "boom"))
    summary = run_suite(suite, progress=False)
    assert summary["failed"] == []
    result = json.loads((tmp_path / "boom/runs/baseline-lr10000-s0/result.json").read_text())
    assert result["stopped"] == "nonfinite"
    where = result["nonfinite"]["where"]
    report = write_report(suite.out, extrapolation_tokens=TOKENS).read_text()
    rows = table_rows(report, "| variant | lr | step | first non-finite at |")
    assert rows["baseline"][1:4] == ["10000", str(result["nonfinite"]["step"]), f"`{where}`"]


def test_the_quick_suite_judges_every_claim_through_the_cli(stories_data, tmp_path, capsys):
    from gpt2lab.experiments import CLAIMS

    out = tmp_path / "quick"
    argv = ["ablate", "--quick", "--seeds", "2", "--jobs", "1", "--data", stories_data,
            "--out", str(out), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    variants, _ = suite_variants("seed")
    assert len(list((out / "runs").iterdir())) == len(variants) * (2 + 1)  # 2 lrs + 1 seed
    assert f"report: {out / 'report.md'}" in capsys.readouterr().out
    report = (out / "report.md").read_text()
    claims = table_rows(report, "| claim |")
    assert set(claims) == {c.text for c in CLAIMS}
    for cells in claims.values():
        assert cells[-1].strip("*") in ("holds", "does not hold", "inconclusive")
    for png in ("lr", "warmup", "stability", "loss", "attention", "extrapolation"):
        assert (out / f"{png}.png").is_file(), png
    # seed 1 ran at the lr of seed 0's lowest final val loss, read from metrics.jsonl
    for v in variants:
        finals = {}
        for lr in (1e-3, 3e-2):
            run = out / "runs" / f"{v.name}-lr{lr:g}-s0"
            result = json.loads((run / "result.json").read_text())
            finals[lr] = last_eval(run) if result["stopped"] == "completed" else math.inf
        best = min(finals, key=lambda lr: (finals[lr], lr))
        assert (out / "runs" / f"{v.name}-lr{best:g}-s1" / "result.json").is_file(), v.name
