"""`gpt2lab generate` and `gpt2lab eval` through the CLI: output, model resolution, errors."""

from __future__ import annotations

import io
import json
import time

import pytest
import torch
from generate_helpers import GPT2_VOCAB

from gpt2lab.cli import main
from gpt2lab.generate import TextStream, generate
from gpt2lab.pretrained import load_model_and_tokenizer, save_pretrained


def one_error_line(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"gpt2lab {command}: error: ")
    return err[0]


def test_generate_streams_what_generate_returns(small_dir, small, gpt2_tokenizer, monkeypatch):
    writes = []

    class Spy(io.StringIO):
        def write(self, s):
            writes.append(s)
            return super().write(s)

    spy = Spy()
    monkeypatch.setattr("sys.stdout", spy)
    args = ["--prompt", "Once upon a time", "--max-new-tokens", "16", "--seed", "5"]
    assert main(["generate", "--model", str(small_dir), *args, "--no-stop-at-eot"]) == 0
    prompt = torch.tensor([gpt2_tokenizer.encode("Once upon a time")])
    ids = generate(small, prompt, 16, temperature=0.8, seed=5)
    assert spy.getvalue() == gpt2_tokenizer.decode(ids[0].tolist()) + "\n"
    assert len([w for w in writes if w]) >= 10  # printed piece by piece, not at the end


def test_text_stream_holds_partial_utf8(gpt2_tokenizer):
    text = "naïve café 😀 ok"
    ids = gpt2_tokenizer.encode(text)
    assert len(ids) > len(text.split())  # the emoji spans several byte tokens
    out = TextStream(gpt2_tokenizer)
    pieces = [out.push(i) for i in ids] + [out.flush()]
    assert "".join(pieces) == text
    assert all("\ufffd" not in p for p in pieces)


def test_num_samples(small_dir, capsys):
    args = ["--prompt", "Hi", "--max-new-tokens", "3", "--num-samples", "2"]
    assert main(["generate", "--model", str(small_dir), *args]) == 0
    out = capsys.readouterr().out
    assert "--- sample 1 ---" in out and "--- sample 2 ---" in out


def make_run(tiny_gpt, root, name, seed):
    checkpoint = root / "runs" / name / "checkpoints" / "step_000010"
    save_pretrained(tiny_gpt("tiny", seed, vocab_size=GPT2_VOCAB), checkpoint, format="hf")
    return checkpoint


def test_no_model_uses_the_newest_run(tiny_gpt, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    make_run(tiny_gpt, tmp_path, "older", 1)
    time.sleep(0.05)
    newest = make_run(tiny_gpt, tmp_path, "newer", 2)
    (tmp_path / "runs" / "incomplete" / "checkpoints").mkdir(parents=True)  # no checkpoint yet
    model, _, description = load_model_and_tokenizer(None)
    assert "runs/newer" in description and "newest" in description
    expected = tiny_gpt("tiny", 2, vocab_size=GPT2_VOCAB)
    assert torch.equal(model.wte.weight, expected.wte.weight)
    assert newest.is_dir()
    assert main(["generate", "--prompt", "Hi", "--max-new-tokens", "2"]) == 0
    assert "using runs/newer (the newest local run)" in capsys.readouterr().err


def test_tokenizer_files_in_a_checkpoint_win(tiny_gpt, tmp_path, gpt2_tokenizer):
    """A model trained here with its own vocabulary carries encoder.json + vocab.bpe."""
    from gpt2lab.data.stories import generate_text
    from gpt2lab.tokenizer import train_tokenizer

    vocab_dir = tmp_path / "model"
    train_tokenizer([generate_text(20_000)], 300, vocab_dir)
    save_pretrained(tiny_gpt("tiny", 0, vocab_size=300), vocab_dir, format="hf")
    _, tokenizer, _ = load_model_and_tokenizer(str(vocab_dir))
    assert tokenizer.n_vocab <= 300 and tokenizer.identity != gpt2_tokenizer.identity


def test_no_model_and_no_run_says_how_to_make_one(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["generate", "--prompt", "Hi"]) == 2
    assert "gpt2lab train" in one_error_line(capsys, "generate")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--prompt", ""], "prompt is empty"),
        (["--prompt", "x", "--max-new-tokens", "0"], "--max-new-tokens must be at least 1"),
        (["--prompt", "x", "--top-p", "0"], "top_p must be in (0, 1]"),
        (["--prompt", "x", "--top-p", "1.5"], "top_p must be in (0, 1]"),
        (["--prompt", "x", "--temperature", "-1"], "temperature must be >= 0"),
        (["--prompt", "x", "--num-samples", "0"], "--num-samples must be at least 1"),
    ],
)
def test_generate_bad_inputs(small_dir, capsys, args, message):
    assert main(["generate", "--model", str(small_dir), *args]) == 2
    assert message in one_error_line(capsys, "generate")


@pytest.mark.parametrize("name", ["./no/such/dir", "surely-not-a-hub-model-xyz"])
def test_unknown_model(capsys, name):
    assert main(["generate", "--model", name, "--prompt", "x"]) == 2
    line = one_error_line(capsys, "generate")
    assert name in line


def test_eval_prints_a_table_and_writes_json(small_dir, small, gpt2_tokenizer, tmp_path, capsys):
    from gpt2lab.evaluate import load_eval_tokens, perplexity

    text = tmp_path / "text.txt"
    text.write_text("The quick brown fox jumps over the lazy dog. " * 20)
    lambada = tmp_path / "lw.jsonl"
    lambada.write_text("\n".join(json.dumps({"text": t}) for t in ["a b c", "the cat sat"]))
    out = tmp_path / "res" / "eval.json"
    args = ["--data", str(text), "--stride", "32", "--last-word", str(lambada), "--cloze"]
    assert main(["eval", "--model", str(small_dir), *args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| perplexity |" in printed and "| bits per byte |" in printed
    results = json.loads(out.read_text())
    expected = perplexity(small, load_eval_tokens(text, gpt2_tokenizer), stride=32)
    assert results["perplexity"]["perplexity"] == pytest.approx(expected.perplexity, rel=1e-9)
    assert results["last_word"]["examples"] == 2
    assert results["cloze"]["examples"] > 0


@pytest.mark.parametrize("content, message", [("", "has no text"), ("  \n\n ", "has no text")])
def test_eval_file_without_text(small_dir, tmp_path, capsys, content, message):
    empty = tmp_path / "empty.txt"
    empty.write_text(content)
    assert main(["eval", "--model", str(small_dir), "--data", str(empty)]) == 2
    assert message in one_error_line(capsys, "eval")


def test_eval_bad_inputs(small_dir, tmp_path, capsys):
    assert main(["eval", "--model", str(small_dir)]) == 2
    assert "nothing to evaluate" in one_error_line(capsys, "eval")
    assert main(["eval", "--model", str(small_dir), "--data", str(tmp_path / "missing")]) == 2
    assert "no such file" in one_error_line(capsys, "eval")
    text = tmp_path / "t.txt"
    text.write_text("some words here " * 10)
    assert main(["eval", "--model", str(small_dir), "--data", str(text), "--stride", "0"]) == 2
    assert "stride" in one_error_line(capsys, "eval")


def test_help_texts(capsys):
    for command in ("generate", "eval"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "--model" in capsys.readouterr().out
