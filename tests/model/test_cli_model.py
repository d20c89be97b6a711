"""`gpt2lab verify` and `gpt2lab convert` from the command line, including bad input."""

from __future__ import annotations

import pytest
import torch

from gpt2lab.cli import main
from gpt2lab.config import GPTConfig
from gpt2lab.model import GPT
from gpt2lab.pretrained import load_pretrained, save_pretrained


def one_line_error(capsys, needle):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err and "Traceback" not in err
    return err


def test_help_texts(capsys):
    for command in ("verify", "convert"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        assert "usage: gpt2lab " + command in capsys.readouterr().out


def test_verify_random_tiny_passes_every_check(capsys):
    assert main(["verify", "--preset", "tiny", "--seq-len", "16"]) == 0
    out = capsys.readouterr().out
    for check in (
        "explicit vs fused",
        "numpy reference",
        "transformers loads gpt2lab",
        "gpt2lab loads transformers",
    ):
        assert check in out
    assert "5 passed, 0 failed" in out


def test_verify_non_hf_variant_skips_transformers(tmp_path, capsys):
    config = GPTConfig(
        vocab_size=64, block_size=16, n_layer=2, n_head=2, n_embd=16, norm_placement="post"
    )
    save_pretrained(GPT(config), tmp_path)
    assert main(["verify", "--model", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "save/load (gpt2lab format)" in out and "transformers" not in out and "3 passed" in out


def test_verify_detects_a_broken_model(tmp_path, capsys, monkeypatch):
    """A check that cannot fail is worthless: corrupt the model between runs and see FAIL."""
    import gpt2lab.verify as verify

    original = verify.reference_params

    def corrupted(model, dtype):
        params = original(model, dtype)
        params["h.0.mlp.c_fc.bias"] = params["h.0.mlp.c_fc.bias"] + 0.1
        return params

    monkeypatch.setattr(verify, "reference_params", corrupted)
    assert main(["verify", "--preset", "tiny", "--seq-len", "8"]) == 1
    assert "FAIL" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["verify", "--preset", "gpt5"], "unknown preset 'gpt5'"),
        (["verify", "--model", "./missing-dir"], "no such model directory"),
        (["verify", "--seq-len", "0"], "--seq-len and --batch-size must be at least 1"),
        (["convert", "./missing-dir", "--out", "x"], "no such model directory"),
    ],
)
def test_bad_inputs_are_one_line_exit_2(argv, needle, capsys):
    assert main(argv) == 2
    one_line_error(capsys, needle)


def test_convert_both_ways(tmp_path, capsys):
    from transformers import GPT2LMHeadModel

    config = GPTConfig(vocab_size=64, block_size=16, n_layer=2, n_head=2, n_embd=16)
    torch.manual_seed(0)
    model = GPT(config).eval()
    save_pretrained(model, tmp_path / "lab", format="gpt2lab")
    assert (
        main(["convert", str(tmp_path / "lab"), "--out", str(tmp_path / "hf"), "--to", "hf"]) == 0
    )
    hf = GPT2LMHeadModel.from_pretrained(tmp_path / "hf").eval()
    idx = torch.randint(0, 64, (1, 10))
    with torch.no_grad():
        assert (hf(idx).logits - model(idx)[0]).abs().max() <= 1e-5
    assert (
        main(["convert", str(tmp_path / "hf"), "--out", str(tmp_path / "back"), "--to", "gpt2lab"])
        == 0
    )
    assert load_pretrained(tmp_path / "back").config == config
    assert "wrote" in capsys.readouterr().out


def test_convert_refuses_hf_for_relu(tmp_path, capsys):
    config = GPTConfig(
        vocab_size=64, block_size=16, n_layer=1, n_head=2, n_embd=16, activation="relu"
    )
    save_pretrained(GPT(config), tmp_path / "lab")
    assert (
        main(["convert", str(tmp_path / "lab"), "--out", str(tmp_path / "hf"), "--to", "hf"]) == 2
    )
    one_line_error(capsys, "Hugging Face GPT-2 cannot hold this architecture (activation=relu)")
    assert not (tmp_path / "hf" / "model.safetensors").exists()


def test_convert_carries_the_tokenizer_for_both_readers(tmp_path, capsys):
    from transformers import GPT2Tokenizer

    from gpt2lab.tokenizer import get_tokenizer
    from gpt2lab.tokenizer.train import train_tokenizer

    vocab_dir = train_tokenizer(
        ["the cat sat on the mat. " * 50, "a dog ran. " * 50], 270, tmp_path / "tok"
    )
    config = GPTConfig(vocab_size=270, block_size=16, n_layer=1, n_head=2, n_embd=16)
    save_pretrained(GPT(config), tmp_path / "lab")
    for name in ("encoder.json", "vocab.bpe"):
        (tmp_path / "lab" / name).write_bytes((vocab_dir / name).read_bytes())
    assert main(["convert", str(tmp_path / "lab"), "--out", str(tmp_path / "hf")]) == 0
    assert "with its tokenizer" in capsys.readouterr().out
    ours = get_tokenizer(str(vocab_dir))
    text = "the cat ran on the mat."
    assert get_tokenizer(str(tmp_path / "hf")).encode(text) == ours.encode(text)
    hf_tok = GPT2Tokenizer.from_pretrained(tmp_path / "hf")
    assert hf_tok(text)["input_ids"] == ours.encode(text)
