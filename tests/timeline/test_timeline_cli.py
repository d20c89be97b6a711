"""`gpt2lab timeline` end to end on the tiny run (in-process)."""

import json
import shutil

from gpt2lab.cli import main


def test_timeline_command_writes_its_three_files(tiny_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)  # the default --out is inside the run
    assert main(["timeline", str(run), "--probes", "10", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert f"3 checkpoints of {run} (steps 10–30); wrote {run}/timeline/timeline.md" in out
    assert "slope change(s) of the train loss" in out
    data = json.loads((run / "timeline" / "timeline.json").read_text())
    assert [c["step"] for c in data["checkpoints"]] == [10, 20, 30]
    assert data["settings"]["seed"] == 3 and data["settings"]["probes"] == 10
    assert (run / "timeline" / "timeline.png").is_file()


def test_out_and_log_step(tiny_run, tmp_path, capsys):
    out = tmp_path / "elsewhere"
    code = main(["timeline", str(tiny_run), "--out", str(out), "--probes", "10", "--log-step"])
    assert code == 0
    assert json.loads((out / "timeline.json").read_text())["settings"]["log_step"] is True
    assert "ln(step) on the x axis" in (out / "timeline.md").read_text()
