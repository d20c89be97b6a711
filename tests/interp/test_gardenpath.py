"""Garden paths: the item set is well-formed, and the numbers match an independent computation.

The reference is transformers' GPT2LMHeadModel loaded from our exported model directory: its
attention weights (eager attention) give the entropy by hand in NumPy, its hidden states give
the logit lens (LayerNorm and unembedding in NumPy), its logits the final surprisal.
"""

from __future__ import annotations

import difflib
import json

import numpy as np
import pytest
import torch

from gpt2lab.cli import main
from gpt2lab.config import GPTConfig
from gpt2lab.data.gardenpath import GARDEN_PATHS, Sentence
from gpt2lab.errors import GPT2LabError
from gpt2lab.interp.gardenpath import (
    analyse_garden_paths,
    bootstrap_ci,
    locate_word,
    measure_item,
    start_tokens,
)
from gpt2lab.model import GPT
from gpt2lab.pretrained import save_pretrained
from gpt2lab.tokenizer import get_tokenizer


@pytest.fixture(scope="module")
def gpt2_tokenizer():
    return get_tokenizer("gpt2")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A random 2-layer model with GPT-2's vocabulary, saved in Hugging Face layout."""
    torch.manual_seed(0)
    config = GPTConfig(
        vocab_size=50257, block_size=48, n_layer=2, n_head=2, n_embd=16, init="torch_default"
    )
    directory = tmp_path_factory.mktemp("gardenpath-model")
    assert save_pretrained(GPT(config).eval(), directory, format="hf") == "hf"
    return directory


# --- the item set -----------------------------------------------------------------------------


def test_the_set_is_classic_and_large_enough():
    assert len(GARDEN_PATHS) >= 12
    assert len({item.name for item in GARDEN_PATHS}) == len(GARDEN_PATHS)
    texts = {item.garden.text for item in GARDEN_PATHS}
    assert "The horse raced past the barn fell." in texts and "The old man the boat." in texts


@pytest.mark.parametrize("item", GARDEN_PATHS, ids=lambda item: item.name)
def test_each_control_differs_minimally(item):
    g, c = item.garden, item.control
    assert g.word == c.word and g.word.isalpha()
    for s in (g, c):  # the span is a whole word
        assert s.start == 0 or s.text[s.start - 1] == " "
        assert not s.text[s.end : s.end + 1].isalpha()
    assert g.text[g.end :] == c.text[c.end :]  # nothing differs after the word
    before_g, before_c = g.text[: g.start].split(), c.text[: c.start].split()
    changes = difflib.SequenceMatcher(a=before_g, b=before_c).get_opcodes()
    changed = sum(max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in changes if tag != "equal")
    assert 1 <= changed <= 2, (before_g, before_c)
    assert item.kind and item.note


def test_sentence_markup():
    s = Sentence.parse("The old man [the] boat.")
    assert (s.text, s.start, s.end, s.word) == ("The old man the boat.", 12, 15, "the")
    with pytest.raises(GPT2LabError, match="exactly one word"):
        Sentence.parse("The old man the boat.")


@pytest.mark.parametrize("item", GARDEN_PATHS, ids=lambda item: item.name)
def test_the_word_is_found_in_both_with_the_same_tokens(item, gpt2_tokenizer):
    prefix = start_tokens(gpt2_tokenizer)
    assert prefix == [50256]
    found = [locate_word(gpt2_tokenizer, s, prefix) for s in (item.garden, item.control)]
    for (ids, positions), sentence in zip(found, (item.garden, item.control)):
        assert gpt2_tokenizer.decode(ids[1:]) == sentence.text
        assert gpt2_tokenizer.decode([ids[p] for p in positions]).strip() == sentence.word
        assert positions == list(range(positions[0], positions[-1] + 1))
    (g_ids, g_pos), (c_ids, c_pos) = found
    assert [g_ids[p] for p in g_pos] == [c_ids[p] for p in c_pos]


# --- the numbers against transformers -----------------------------------------------------------


def hf_reference(directory, ids, positions):
    """(entropy (L, nh) at positions[0], surprisal in bits per stage) from transformers."""
    from transformers import GPT2LMHeadModel

    hf = GPT2LMHeadModel.from_pretrained(directory, attn_implementation="eager").eval()
    with torch.no_grad():
        out = hf(torch.tensor([ids]), output_attentions=True, output_hidden_states=True)
    q = positions[0]
    entropies = []
    for attentions in out.attentions:  # (1, nh, T, T) per layer
        row = attentions[0, :, q, : q + 1].double().numpy()  # (nh, q + 1)
        entropies.append(-(row * np.log(row)).sum(-1) / np.log(q + 1))
    ln = hf.transformer.ln_f
    gamma, beta = ln.weight.detach().double().numpy(), ln.bias.detach().double().numpy()
    W_U = hf.lm_head.weight.detach().double().numpy()  # (V, C)

    def log_softmax(z):
        z = z - z.max(-1, keepdims=True)
        return z - np.log(np.exp(z).sum(-1, keepdims=True))

    stages = []
    for s, hidden in enumerate(out.hidden_states):  # embed, after block 0, ..., final (normed)
        h = hidden[0].double().numpy()  # (T, C)
        if s < len(out.hidden_states) - 1:  # the last one already went through ln_f
            h = (h - h.mean(-1, keepdims=True)) / np.sqrt(h.var(-1, keepdims=True) + ln.eps)
            h = h * gamma + beta
        logp = log_softmax(h @ W_U.T)
        stages.append(-sum(logp[p - 1, ids[p]] for p in positions) / np.log(2))
    final = log_softmax(out.logits[0].double().numpy())
    assert stages[-1] == pytest.approx(-sum(final[p - 1, ids[p]] for p in positions) / np.log(2))
    return np.stack(entropies), np.array(stages)


@pytest.mark.parametrize("name", ["horse", "cotton", "old man"])
def test_entropy_and_surprisal_match_transformers(model_dir, gpt2_tokenizer, name):
    from gpt2lab.pretrained import load_model_and_tokenizer

    model, tokenizer, _ = load_model_and_tokenizer(str(model_dir))
    item = next(i for i in GARDEN_PATHS if i.name == name)
    result = measure_item(model, tokenizer, item)
    for sentence, measured in ((item.garden, result.garden), (item.control, result.control)):
        ids, positions = locate_word(gpt2_tokenizer, sentence, [50256])
        entropy, surprisal = hf_reference(model_dir, ids, positions)
        assert measured.positions == positions
        np.testing.assert_allclose(measured.entropy, entropy, atol=1e-5)
        np.testing.assert_allclose(measured.surprisal, surprisal, rtol=1e-5, atol=1e-4)
    assert result.delta_surprisal.shape == (3,) and result.delta_entropy.shape == (2, 2)
    assert np.abs(result.delta_entropy).max() > 1e-4  # the two sentences really differ


def test_stage_profiles_draw_what_they_are_given():
    from gpt2lab.plots.gardenpath import Panel, stage_profiles

    mean, lo, hi = np.array([0.5, -0.2, 1.0]), np.array([0.1, -0.6, 0.4]), np.array([0.9, 0.1, 1.5])
    fig = stage_profiles(
        ["embed", "L0", "L1"],
        [
            Panel("a", "bits", {"garden": ([3.0, 2.0, 1.0], None, None)}),
            Panel("b", "Δ bits", {"Δ": (mean, lo, hi)}),
        ],
    )
    left, right = fig.axes
    np.testing.assert_array_equal(left.lines[0].get_ydata(), [3.0, 2.0, 1.0])
    assert len(left.lines) == 1 and not left.collections  # all above 0, no band: no zero line
    np.testing.assert_array_equal(right.lines[0].get_ydata(), mean)
    assert len(right.collections) == 1 and right.lines[-1].get_ydata()[0] == 0.0  # band, zero
    assert [t.get_text() for t in right.get_xticklabels()] == ["embed", "L0", "L1"]


# --- summaries -------------------------------------------------------------------------------


def test_bootstrap_interval_matches_scipy():
    from scipy.stats import bootstrap

    values = np.random.default_rng(3).normal(1.0, 2.0, size=(17, 2))
    lo, hi = bootstrap_ci(values, n_boot=20000, seed=0)
    for k in range(2):
        ref = bootstrap(
            (values[:, k],), np.mean, n_resamples=20000, method="percentile", random_state=1
        ).confidence_interval
        assert lo[k] == pytest.approx(ref.low, abs=0.05)
        assert hi[k] == pytest.approx(ref.high, abs=0.05)
        assert lo[k] < values[:, k].mean() < hi[k]
    again = bootstrap_ci(values, n_boot=20000, seed=0)
    np.testing.assert_array_equal(lo, again[0])


def test_summary_over_items(model_dir):
    from gpt2lab.pretrained import load_model_and_tokenizer

    model, tokenizer, _ = load_model_and_tokenizer(str(model_dir))
    items = GARDEN_PATHS[:4]
    report = analyse_garden_paths(model, tokenizer, items, n_boot=200, progress=False)
    per_item = np.stack([r.delta_surprisal for r in report.items])
    np.testing.assert_allclose(report.delta_surprisal.mean, per_item.mean(0))
    np.testing.assert_allclose(report.delta_surprisal.std, per_item.std(0, ddof=1))
    heads = np.stack([r.delta_entropy for r in report.items])
    np.testing.assert_allclose(report.delta_entropy_layer.mean, heads.mean((0, 2)))
    assert report.stages == ["embed", "L0", "L1"]
    for layer, head in report.diffuse_heads():
        assert report.delta_entropy.lo[layer, head] > 0
    with pytest.raises(GPT2LabError, match="no garden-path items"):
        analyse_garden_paths(model, tokenizer, [], progress=False)


def test_cli_writes_report_json_and_pictures(model_dir, tmp_path, capsys):
    out = tmp_path / "gp"
    argv = ["gardenpath", "--model", str(model_dir), "--bootstrap", "100", "--out", str(out)]
    assert main(argv) == 0
    assert {p.name for p in out.iterdir()} == {
        "gardenpath.md",
        "gardenpath.json",
        "delta_entropy.png",
        "delta_entropy_layers.png",
        "delta_surprisal.png",
    }
    data = json.loads((out / "gardenpath.json").read_text())
    assert data["n_items"] == len(GARDEN_PATHS) and len(data["stages"]) == 3
    assert len(data["delta_entropy"]["mean"]) == 2
    md = (out / "gardenpath.md").read_text()
    assert "| horse |" in md and "![Δ entropy](delta_entropy.png)" in md
    assert "bits more surprising" in capsys.readouterr().out
