"""Shuffling the input: exact equivariance without mask and positions, and what the mask leaves.

The properties are asserted directly (shuffled-then-run vs run-then-shuffled, float64), and the
two spelled-out forwards are checked against independent computations: the causal one against
the model's own forward, the unmasked attention against NumPy.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gpt2lab.cli import main
from gpt2lab.config import GPTConfig
from gpt2lab.errors import GPT2LabError
from gpt2lab.interp.permutation import (
    attention_without_mask,
    logits_with_mask,
    permutation_check,
    prefix_permutation,
    random_permutation,
)
from gpt2lab.model import GPT
from gpt2lab.pretrained import save_pretrained

from .conftest import random_ids


def ids_and_perm(T: int = 12, seed: int = 0):
    return random_ids(1, T, seed=seed)[0].tolist(), random_permutation(T, seed)


@pytest.mark.parametrize("n_layer", [1, 2, 3])
def test_no_positions_no_mask_is_exactly_equivariant(small_model, n_layer):
    """(a) without positions, an attention layer and the whole unmasked stack commute with π."""
    model = small_model(n_layer=n_layer, pos_encoding="none")
    ids, perm = ids_and_perm(seed=n_layer)
    check = permutation_check(model, ids, perm)
    assert check.case("attention, no mask").max_abs_diff <= 1e-12
    assert check.case("model, no mask").max_abs_diff <= 1e-12
    # the same by hand, at the model's own float32: shuffled in, shuffled out
    idx, p = torch.tensor([ids]), torch.tensor(perm)
    out, shuffled = logits_with_mask(model, idx, False), logits_with_mask(model, idx[:, p], False)
    torch.testing.assert_close(shuffled, out[:, p], atol=1e-5, rtol=0)


def test_causal_without_positions_one_layer_keeps_the_last_output(small_model):
    """(b) the causal mask breaks equivariance; with one layer, the last output still depends
    only on the last token and the set before it; with two layers it does not."""
    ids, perm = ids_and_perm(seed=5)
    one = permutation_check(small_model(n_layer=1, pos_encoding="none"), ids, perm)
    assert one.case("model, causal").max_abs_diff > 1e-2
    assert one.case("model, causal, last position").max_abs_diff <= 1e-12
    two = permutation_check(small_model(n_layer=2, pos_encoding="none"), ids, perm)
    assert two.case("model, causal").max_abs_diff > 1e-2
    assert two.case("model, causal, last position").max_abs_diff > 1e-3
    for check in (one, two):
        assert all(c.exact == c.expected_exact for c in check.cases)


@pytest.mark.parametrize("pos_encoding", ["learned", "sinusoidal"])
def test_with_positions_nothing_holds(small_model, pos_encoding):
    """(c) positions tell the model the order: no case is exact, whatever the depth."""
    for n_layer in (1, 2):
        check = permutation_check(
            small_model(n_layer=n_layer, pos_encoding=pos_encoding), *ids_and_perm(seed=7)
        )
        assert all(c.max_abs_diff > 1e-3 for c in check.cases), check.to_dict()
        assert not any(c.expected_exact for c in check.cases)


def test_spelled_out_forward_is_the_models_forward(small_model):
    model = small_model(pos_encoding="learned")
    idx = random_ids(2, 10, seed=3)
    torch.testing.assert_close(logits_with_mask(model, idx, True), model(idx)[0])


def test_unmasked_attention_against_numpy(small_model):
    """Block 0's attention with every key visible: softmax(q kᵀ / √hs) v per head, then c_proj."""
    model = small_model(pos_encoding="none").double()
    idx = random_ids(1, 6, seed=4)
    got = attention_without_mask(model, idx)[0].numpy()  # (T, C)
    x = model.blocks[0].ln_1(model.wte(idx))[0].detach().numpy()  # (T, C)
    attn = model.blocks[0].attn
    W, b = attn.c_attn.weight.detach().numpy(), attn.c_attn.bias.detach().numpy()
    q, k, v = np.split(x @ W.T + b, 3, axis=1)  # 3 × (T, C)
    nh, hs = attn.n_head, x.shape[1] // attn.n_head
    heads = []
    for h in range(nh):
        cols = slice(h * hs, (h + 1) * hs)
        scores = q[:, cols] @ k[:, cols].T / np.sqrt(hs)  # (T, T), no mask
        weights = np.exp(scores - scores.max(1, keepdims=True))
        heads.append(weights / weights.sum(1, keepdims=True) @ v[:, cols])
    expected = np.concatenate(heads, 1) @ attn.c_proj.weight.detach().numpy().T
    np.testing.assert_allclose(got, expected + attn.c_proj.bias.detach().numpy(), atol=1e-12)


def test_permutations_are_seeded_and_move_something():
    assert random_permutation(9, 3) == random_permutation(9, 3)
    assert random_permutation(9, 3) != random_permutation(9, 4)
    for seed in range(20):
        perm = random_permutation(3, seed)
        assert sorted(perm) == [0, 1, 2] and perm != [0, 1, 2]
        assert prefix_permutation(perm) != [0, 1, 2]
    assert prefix_permutation([2, 3, 0, 1]) == [2, 0, 1, 3]


def test_bad_permutations_are_refused(small_model):
    model = small_model()
    with pytest.raises(GPT2LabError, match="at least 3 tokens"):
        permutation_check(model, [1, 2], [1, 0])
    with pytest.raises(GPT2LabError, match="permutation of 0..3"):
        permutation_check(model, [1, 2, 3, 4], [0, 1, 1, 2])


def test_inspect_shuffle_writes_the_table(tmp_path, capsys):
    torch.manual_seed(0)
    config = GPTConfig(
        vocab_size=50257, block_size=32, n_layer=1, n_head=2, n_embd=16, pos_encoding="none"
    )
    save_pretrained(GPT(config), tmp_path / "model")
    out = tmp_path / "inspect"
    argv = ["inspect", "--model", str(tmp_path / "model"), "--text", "The cat sat on the mat."]
    assert main([*argv, "--shuffle", "1", "--out", str(out)]) == 0
    data = json.loads((out / "permutation.json").read_text())
    exact = {c["name"]: c["exact"] for c in data["cases"]}
    assert exact == {
        "attention, no mask": True,
        "model, no mask": True,
        "model, causal": False,
        "model, causal, last position": True,
    }
    assert "| model, causal |" in (out / "permutation.md").read_text()
    assert "model, causal, last position" in capsys.readouterr().out
    assert main([*argv[:3], "--text", "Hi", "--shuffle", "0", "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())
