"""`gpt2lab inspect` and `gpt2lab heads` on a tiny saved model; bad inputs are one line, exit 2."""

from __future__ import annotations

import json

import pytest
import torch

from gpt2lab.cli import main
from gpt2lab.config import GPTConfig
from gpt2lab.model import GPT
from gpt2lab.pretrained import save_pretrained

TEXT = "The cat sat on the mat because it was comfortable."


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A random 2-layer model with GPT-2's vocabulary (so GPT-2's tokenizer applies)."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50257, block_size=48, n_layer=2, n_head=2, n_embd=16))
    directory = tmp_path_factory.mktemp("tiny")
    save_pretrained(model, directory)
    return str(directory)


def test_inspect_writes_pictures_head_view_lens_and_top_heads(model_dir, tmp_path, capsys):
    out = tmp_path / "inspect"
    assert (
        main(
            [
                "inspect",
                "--model",
                model_dir,
                "--text",
                TEXT,
                "--layer",
                "1",
                "--head",
                "0",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    files = {p.name for p in out.iterdir()}
    assert {
        "layer1_heads.png",
        "layer1_head0.png",
        "logit_lens.png",
        "head_view.html",
        "inspect.md",
        "inspect.json",
    } <= files
    data = json.loads((out / "inspect.json").read_text())
    assert [t["text"] for t in data["tokens"]][:3] == ["The", " cat", " sat"]
    assert len(data["top_heads"]) == 11 and len(data["logit_lens"]["stages"]) == 3
    md = (out / "inspect.md").read_text()
    assert "| after |" in md and "top heads (DLA)" in md
    assert "11 tokens" in capsys.readouterr().out
    # without --layer: every layer's grid
    assert (
        main(["inspect", "--model", model_dir, "--text", "Hi.", "--out", str(tmp_path / "b")]) == 0
    )
    assert (tmp_path / "b" / "layer0_heads.png").is_file()


def test_heads_writes_report_with_grids_roles_and_examples(model_dir, tmp_path, capsys):
    out = tmp_path / "heads"
    assert main(["heads", "--model", model_dir, "--probes", "6", "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    for section in (
        "## Classified heads",
        "## Pronoun → antecedent",
        "## Ablation (zero)",
        "## Score grids",
        "## Top examples of each role",
    ):
        assert section in report
    assert (out / "grid_previous_token.png").is_file() and (out / "ablation_zero.png").is_file()
    scores = json.loads((out / "scores.json").read_text())
    assert set(scores["scores"]["grids"]) >= {"previous_token", "induction", "antecedent_accuracy"}
    assert len(scores["ablation"]["delta_loss"]) == 2
    # the previous-token role's behaviour is measured on held-out stories, not on the probes
    source = scores["behaviours"]["bigram_source"]
    assert source.endswith(" held-out stories (seed 12345)")
    assert 200 <= scores["behaviours"]["n_bigram_targets"] < 260
    assert f"non-initial word piece in {source} |" in report
    text_file = tmp_path / "t.txt"
    text_file.write_text("One. Two!\n\nThree? Four.", encoding="utf-8")
    assert (
        main(
            [
                "heads",
                "--model",
                model_dir,
                "--texts",
                str(text_file),
                "--ablation",
                "none",
                "--out",
                str(tmp_path / "h2"),
            ]
        )
        == 0
    )
    assert "## Ablation" not in (tmp_path / "h2" / "report.md").read_text()


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["inspect", "--text", TEXT, "--layer", "2"],
            "layer 2 is out of range: the model has layers 0..1",
        ),
        (["inspect", "--text", TEXT, "--layer", "0", "--head", "5"], "head 5 is out of range"),
        (["inspect", "--text", TEXT, "--head", "0"], "--head needs --layer"),
        (["inspect", "--text", "   "], "empty --text"),
        (["inspect", "--text", TEXT * 6], "longer than the model's context (48 tokens)"),
        (["heads", "--texts", "/nonexistent/file.txt"], "text file not found"),
    ],
)
def test_bad_inputs_are_one_clear_line(model_dir, tmp_path, capsys, args, message):
    assert main([*args, "--model", model_dir, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_unknown_model_is_one_line(tmp_path, capsys):
    assert main(["inspect", "--model", str(tmp_path / "nope"), "--text", TEXT]) == 2
    err = capsys.readouterr().err
    assert "no such model directory" in err and err.count("\n") == 1


def test_help_texts(capsys):
    for command in ("inspect", "heads"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "--model" in capsys.readouterr().out
