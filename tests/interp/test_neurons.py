"""MLP neurons, each quantity against an independent computation: activations against HF
transformers' GPT-2 (hooked at its own MLP activation) on the same weights; the streamed
top-k, mean and density against a brute-force NumPy sort of every activation; W_out·W_U
against a NumPy matmul on HF-layout weights; labels and per-layer counts on hand-made tables."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gpt2lab.errors import GPT2LabError
from gpt2lab.interp import neuron_labels as nl
from gpt2lab.interp import neurons as nr
from gpt2lab.interp.heads import TextSet
from gpt2lab.pretrained import save_pretrained

from .conftest import SMALL

LENGTHS = (9, 1, 20, 14)


@pytest.fixture(scope="module")
def model(small_model):
    return small_model(seed=3)


@pytest.fixture(scope="module")
def texts() -> TextSet:
    g = torch.Generator().manual_seed(5)
    tokens = [torch.randint(0, SMALL["vocab_size"], (n,), generator=g).tolist() for n in LENGTHS]
    return TextSet(tokens, [[f"<{t}>" for t in ids] for ids in tokens], source="random")


@pytest.fixture(scope="module")
def hf_activations(model, texts, tmp_path_factory):
    """Per text, (L, T, F) from HF's GPT2LMHeadModel: the output of `h[L].mlp.act`."""
    from transformers import GPT2LMHeadModel

    directory = tmp_path_factory.mktemp("hf")
    save_pretrained(model, directory, format="hf")
    hf = GPT2LMHeadModel.from_pretrained(directory).eval()
    seen = {}
    handles = [
        block.mlp.act.register_forward_hook(lambda mod, inp, out, i=i: seen.__setitem__(i, out[0]))
        for i, block in enumerate(hf.transformer.h)
    ]
    result = []
    with torch.no_grad():
        for ids in texts.tokens:
            hf(torch.tensor([ids]))
            result.append(torch.stack([seen[i] for i in range(len(handles))]).numpy())
    for handle in handles:
        handle.remove()
    return result


def test_activations_match_hf_mlp_activation(model, texts, hf_activations):
    for ids, expected in zip(texts.tokens, hf_activations):
        got = nr.neuron_activations(model, ids)
        assert got.shape == (SMALL["n_layer"], len(ids), 4 * SMALL["n_embd"])
        np.testing.assert_allclose(got.numpy(), expected, atol=1e-5)
    one = nr.neuron_activations(model, texts.tokens[0], layers=2)
    np.testing.assert_allclose(one.numpy()[0], hf_activations[0][2], atol=1e-5)


def brute_force_top(hf_activations, layer: int, neuron: int, k: int):
    """Every activation of the neuron, sorted by value (descending), then by (text, position)."""
    values, where = [], []
    for t, acts in enumerate(hf_activations):
        for p in range(acts.shape[1]):
            values.append(acts[layer, p, neuron])
            where.append((t, p))
    order = np.lexsort((np.arange(len(values)), -np.array(values)))[:k]
    return np.array(values)[order], [where[i] for i in order]


def test_streamed_top_k_mean_and_density_match_a_brute_force_sort(model, texts, hf_activations):
    scan = nr.scan_neurons(model, texts, k=7)
    assert scan.n_tokens == sum(LENGTHS) and scan.layers == [0, 1, 2]
    every = np.concatenate(hf_activations, axis=1)  # (L, N, F)
    np.testing.assert_allclose(scan.mean, every.mean(1), atol=1e-5)
    np.testing.assert_allclose(scan.density, (every > 0).mean(1), atol=1e-6)
    for layer, neuron in [(0, 0), (1, 17), (2, 127), (2, 64)]:
        values, where = brute_force_top(hf_activations, layer, neuron, 7)
        top = scan.top(layer, neuron)
        np.testing.assert_allclose([v for _, _, v in top], values, atol=1e-5)
        assert [(t, p) for t, p, _ in top] == where


def test_ties_go_to_the_earlier_token_as_a_relu_model_makes_many(small_model, texts):
    """A ReLU model writes exact zeros: the top-k of a rarely firing neuron is full of ties."""
    relu = small_model(seed=4, activation="relu")
    scan = nr.scan_neurons(relu, texts, k=12)
    acts = [nr.neuron_activations(relu, ids).numpy() for ids in texts.tokens]
    sparsest = int(np.argmin(scan.density[1]))
    values, where = brute_force_top(acts, 1, sparsest, 12)
    assert (values == 0).sum() >= 2  # the test needs ties
    assert [(t, p) for t, p, _ in scan.top(1, sparsest)] == where


def test_merge_top_k_keeps_the_largest_and_breaks_ties_by_index():
    values, index = torch.tensor([[3.0, 1.0]]), torch.tensor([[0, 1]])
    v, i = nr.merge_top_k(values, index, torch.tensor([[1.0, 5.0]]), torch.tensor([[2, 3]]))
    assert v.tolist() == [[5.0, 3.0]] and i.tolist() == [[3, 0]]
    v, i = nr.merge_top_k(values, index, torch.tensor([[3.0, 0.0]]), torch.tensor([[2, 3]]))
    assert v.tolist() == [[3.0, 3.0]] and i.tolist() == [[0, 2]]


def test_fewer_tokens_than_k_leaves_empty_slots():
    scan_texts = TextSet([[1, 2]], [["a", "b"]])
    from gpt2lab.config import GPTConfig
    from gpt2lab.model import GPT

    torch.manual_seed(0)
    tiny = GPT(GPTConfig(vocab_size=5, block_size=4, n_layer=1, n_head=1, n_embd=4)).eval()
    scan = nr.scan_neurons(tiny, scan_texts, k=5)
    assert len(scan.top(0, 3)) == 2 and np.isinf(scan.values[0, 3, 2:]).all()


def test_examples_contexts_and_token_strings(model, texts):
    scan = nr.scan_neurons(model, texts, k=3)
    examples = nr.top_examples(scan, texts, 1, 5)
    assert [(e.text, e.position, e.activation) for e in examples] == scan.top(1, 5)
    for e in examples:
        assert e.token == texts.strings[e.text][e.position]
        assert f"⟦{e.token}⟧" in e.context
    strings = nr.top_token_strings(scan, texts)
    assert strings[1][5] == [e.token for e in examples]
    assert nr.highlight(["The", " big", " dog", " ran", "."], 2, 1) == "… big⟦ dog⟧ ran…"
    assert nr.highlight(["a", "\n"], 1) == "a⟦↵⟧"


def test_neuron_values_and_histogram(model, texts, hf_activations):
    pairs = [(2, 9), (0, 3), (2, 100)]
    values = nr.neuron_values(model, texts, pairs)
    every = np.concatenate(hf_activations, axis=1)  # (L, N, F)
    expected = np.stack([every[layer, :, n] for layer, n in pairs], axis=1)
    np.testing.assert_allclose(values, expected, atol=1e-5)
    counts, edges = nr.activation_histogram(values[:, 0], bins=10)
    assert counts.sum() == sum(LENGTHS) and len(edges) == 11
    assert edges[0] == pytest.approx(expected[:, 0].min(), abs=1e-5)


def test_output_logits_match_numpy_on_hf_layout_weights(model, tmp_path):
    """HF stores c_proj as Conv1D (in=F, out=C): row n of its weight is neuron n's W_out."""
    from gpt2lab.pretrained import export_state_dict

    state = {k: v.double().numpy() for k, v in export_state_dict(model).items()}
    w_out = state["transformer.h.1.mlp.c_proj.weight"]  # (F, C)
    gamma = state["transformer.ln_f.weight"]  # (C,)
    W_U = state["transformer.wte.weight"]  # (V, C), tied
    for neuron in (0, 31, 127):
        w = w_out[neuron]
        expected = W_U @ (gamma * (w - w.mean()))
        got = nr.output_logits(model, 1, [neuron])[0].double().numpy()
        np.testing.assert_allclose(got, expected, atol=1e-5)
        out = nr.output_tokens(model, 1, neuron, k=4)
        assert [t for t, _ in out.top] == list(np.argsort(-expected)[:4])
        assert [t for t, _ in out.bottom] == list(np.argsort(expected)[:4])
        assert out.top[0][1] == pytest.approx(expected.max(), abs=1e-5)


def test_output_logits_without_a_final_norm_use_w_out_as_it_is(small_model):
    post = small_model(seed=1, norm_placement="post")
    w = post.blocks[0].mlp.c_proj.weight.detach().double().numpy()[:, 7]  # Linear: (C, F)
    expected = post.lm_head.weight.detach().double().numpy() @ w
    np.testing.assert_allclose(nr.output_logits(post, 0, [7])[0].numpy(), expected, atol=1e-5)


def test_neurons_of_a_token_are_the_largest_activations_there(model, texts, hf_activations):
    ids, acts = texts.tokens[2], hf_activations[2]  # (L, T, F)
    found = nr.neurons_of_token(model, ids, 11, k=6)
    flat = acts[:, 11].ravel()
    order = np.lexsort((np.arange(flat.size), -flat))[:6]
    F = acts.shape[-1]
    assert [(layer, n) for layer, n, _ in found] == [(i // F, i % F) for i in order]
    np.testing.assert_allclose([a for *_, a in found], flat[order], atol=1e-5)
    assert all(layer == 2 for layer, _, _ in nr.neurons_of_token(model, ids, 0, 3, layers=[2]))


def test_bad_layer_and_position_are_one_line_errors(model, texts):
    with pytest.raises(GPT2LabError, match="layer 3 is out of range"):
        nr.scan_neurons(model, texts, layers=3)
    with pytest.raises(GPT2LabError, match="position 9 is out of range"):
        nr.neurons_of_token(model, texts.tokens[0], 9)
    with pytest.raises(GPT2LabError, match="top-k must be at least 1"):
        nr.scan_neurons(model, texts, k=0)


# ---------------------------------------------------------------------------------------------
# Labels, on hand-made tables
# ---------------------------------------------------------------------------------------------

ANIMALS = [" dog", " cat", " ox", " pig", " cow", " fox", " hen", " owl", " bat", " ant"]
MIX = [" dog", " ran", ".", " the", " red", " she", " to", " and", " big", " happily"]


def hand_text() -> list[str]:
    """200 tokens, 10 of them (5%) animal nouns: the base rates of a small made-up corpus."""
    return ANIMALS + MIX[1:] * 21


def test_a_neuron_firing_on_animals_is_labelled_animal_and_a_mixed_one_is_not():
    rates = nl.base_rates(hand_text())
    assert rates[("meaning", "animal")] == pytest.approx(10 / 199)
    labels = nl.label_neuron(ANIMALS, rates)
    animal = next(lb for lb in labels if lb.category == "animal")
    assert (animal.group, animal.share, animal.words) == ("meaning", 1.0, 10)
    assert animal.lift == pytest.approx(1.0 / (10 / 199))
    assert {lb.category for lb in labels} >= {"noun", "animal", "singular"}
    assert nl.label_neuron(MIX, rates) == []


def test_the_share_and_lift_thresholds_each_hold_a_label_back():
    rates = nl.base_rates(hand_text())
    five = ANIMALS[:5] + MIX[1:6]  # share 0.5 < 0.6
    assert not any(lb.category == "animal" for lb in nl.label_neuron(five, rates))
    six = ANIMALS[:6] + MIX[1:5]  # share 0.6, lift 12: labelled
    assert any(lb.category == "animal" for lb in nl.label_neuron(six, rates))
    common = {("meaning", "animal"): 0.25}  # lift 0.6 / 0.25 = 2.4 < 3
    assert not any(lb.category == "animal" for lb in nl.label_neuron(six, common))
    assert nl.label_neuron(ANIMALS, {}) == []  # no base rate, no lift: no label


def test_token_identity_is_one_word_with_its_own_base_rate():
    text = [" the"] * 5 + [" dog"] * 5 + ["."] * 90
    rates = nl.base_rates(text)
    labels = nl.label_neuron([" the", "The", " the", " dog"], rates)
    token = [lb for lb in labels if lb.group == nl.TOKEN_GROUP]
    assert [(lb.category, lb.share, lb.words) for lb in token] == [("the", 0.75, 1)]
    assert labels[0].group == nl.TOKEN_GROUP  # the most concrete group first


def test_selectivity_by_layer_counts_neurons_once_per_group():
    def lb(group, category, words=1):
        return nl.CategoryLabel(group, category, 0.8, 5.0, words)

    labels = {
        (0, 1): [lb("token identity", "she"), lb("part of speech", "pronoun"), lb("gender", "female")],
        (0, 2): [lb("part of speech", "noun", 5), lb("meaning", "animal", 5), lb("meaning", "food", 3)],
        (1, 0): [lb("gender", "male", 4)],
    }  # fmt: skip
    layer0, layer1, layer2 = nl.selectivity_by_layer(labels, [0, 1, 2], n_neurons=4)
    assert layer0.selective == 2 and layer1.selective == 1 and layer2.selective == 0
    assert layer0.by_group == {
        "token identity": 1, "part of speech": 2, "gender": 1, "number": 0, "meaning": 1
    }  # fmt: skip
    assert layer0.beyond_word["part of speech"] == 1 and layer0.beyond_word["gender"] == 0
    assert layer1.beyond_word["gender"] == 1 and layer1.fraction("gender") == 0.25
    assert layer0.by_category["animal"] == 1 and layer0.by_category["food"] == 1
    labelled = nl.label_neurons([[MIX, ANIMALS]], [3], nl.base_rates(hand_text()))
    assert list(labelled) == [(3, 1)]
