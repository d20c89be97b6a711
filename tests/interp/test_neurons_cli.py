"""`gpt2lab neurons` on a tiny saved model: the files exist and agree with each other and with
the neurons recomputed from the model."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import torch

from gpt2lab.cli import main
from gpt2lab.config import GPTConfig
from gpt2lab.interp.neurons import neuron_activations
from gpt2lab.interp.texts import load_text_set
from gpt2lab.model import GPT
from gpt2lab.pretrained import load_model_and_tokenizer, save_pretrained

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A random 2-layer model with GPT-2's vocabulary (so GPT-2's tokenizer applies)."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50257, block_size=64, n_layer=2, n_head=2, n_embd=16))
    directory = tmp_path_factory.mktemp("tiny")
    save_pretrained(model, directory)
    return str(directory)


def test_neurons_writes_a_report_whose_numbers_agree(model_dir, tmp_path, capsys):
    out = tmp_path / "neurons"
    argv = ["neurons", "--model", model_dir, "--probes", "12", "--top", "8", "--show", "2"]
    assert main([*argv, "--out", str(out)]) == 0
    assert "layer 1:" in capsys.readouterr().out
    for name in ("selectivity.png", "categories.png", "histograms_layer0.png"):
        assert (out / name).read_bytes()[:8] == PNG
    data = json.loads((out / "neurons.json").read_text())
    report = (out / "report.md").read_text()
    assert data["layers"] == [0, 1] and data["n_neurons"] == 64 and data["top_k"] == 8

    per_layer = Counter(label["layer"] for label in {(x["layer"], x["neuron"]): x for x in data["labels"]}.values())  # fmt: skip
    for row in data["selectivity"]:
        assert row["selective"] == per_layer[row["layer"]]
        assert f"| {row['layer']} | 64 | {row['selective']} (" in report

    model, tokenizer, _ = load_model_and_tokenizer(model_dir)
    texts = load_text_set(tokenizer, 64, probes=12)
    for ids, strings in zip(texts.tokens, texts.strings):  # packed: separators too
        assert strings == [tokenizer.decode([t]) for t in ids]
    assert len(data["neurons"]) == 4
    for neuron in data["neurons"]:
        layer, n = neuron["layer"], neuron["neuron"]
        assert neuron["max"] == pytest.approx(data["stats"]["max"][layer][n], abs=1e-4)
        assert sum(neuron["histogram"]["counts"]) == data["n_tokens"]
        assert f"### Layer {layer}, neuron {n}" in report
        best = neuron["examples"][0]
        assert best["activation"] == pytest.approx(neuron["max"])
        assert f"⟦{best['token']}⟧" in best["context"]
        # every example, recomputed on the same text set as the command builds it
        for e in neuron["examples"]:
            acts = neuron_activations(model, texts.tokens[e["text"]], layer)[0, :, n]
            assert float(acts[e["position"]]) == pytest.approx(e["activation"], abs=1e-4)
            assert texts.strings[e["text"]][e["position"]] == e["token"]


def test_one_layer_only(model_dir, tmp_path):
    out = tmp_path / "one"
    argv = ["neurons", "--model", model_dir, "--probes", "4", "--layer", "1", "--show", "1"]
    assert main([*argv, "--out", str(out)]) == 0
    data = json.loads((out / "neurons.json").read_text())
    assert data["layers"] == [1] and [n["layer"] for n in data["neurons"]] == [1]
    assert not (out / "histograms_layer0.png").exists()
