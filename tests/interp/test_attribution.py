"""Attribution: DLA adds up to the model's own logits, ablation effects equal weight edits,
the logit lens ends at the model's prediction, padded batches lose nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gpt2lab.errors import GPT2LabError
from gpt2lab.interp.attribution import (
    ablation_logprob_delta,
    direct_logit_attribution,
    head_ablation_effects,
    logit_lens,
    padded_batch,
    top_heads_per_position,
    top_predictions,
)
from gpt2lab.interp.interventions import head_means, mean_ablate_head

from .conftest import random_ids


@pytest.mark.parametrize(
    "norm, positions", [("pre", "learned"), ("none", "learned"), ("pre", "none")]
)
def test_dla_components_add_up_to_the_logits(small_model, norm, positions):
    model = small_model(norm_placement=norm, pos_encoding=positions)
    tokens = random_ids(1, 10, seed=1)[0].tolist()
    targets = random_ids(1, 10, seed=2)[0].tolist()
    logits, _ = model(torch.tensor([tokens]))
    logits = logits[0]
    rows = torch.arange(len(tokens))
    raw = direct_logit_attribution(model, tokens, targets, contrast="none")
    torch.testing.assert_close(raw.values.sum(0), logits[rows, targets], atol=1e-4, rtol=1e-4)
    centred = direct_logit_attribution(model, tokens, targets)  # against the vocabulary mean
    torch.testing.assert_close(
        centred.values.sum(0), logits[rows, targets] - logits.mean(-1), atol=1e-4, rtol=1e-4
    )
    contrast = random_ids(1, 10, seed=3)[0].tolist()
    diff = direct_logit_attribution(model, tokens, targets, contrast=contrast)
    torch.testing.assert_close(
        diff.values.sum(0), logits[rows, targets] - logits[rows, contrast], atol=1e-4, rtol=1e-4
    )
    n_components = 2 + model.config.n_layer * (model.config.n_head + 2) + (norm == "pre")
    assert len(raw.names) == n_components and raw.names[2] == "L0H0"
    json.dumps(raw.to_dict())


def test_dla_of_one_head_by_hand(small_model):
    """The direct effect of a head by hand: its write through c_proj, the frozen final-LN
    scale, and the unembedding (computed from weights, not from the attribution code)."""
    model = small_model()
    tokens = random_ids(1, 8, seed=4)[0].tolist()
    target = [5] * 8
    _, cache = model.run_with_cache(torch.tensor([tokens]))
    torch.set_grad_enabled(False)
    layer, head, hs = 1, 2, model.config.head_dim
    z = cache[f"blocks.{layer}.attn.hook_z"][0, head]  # (T, hs)
    W = model.blocks[layer].attn.c_proj.weight[:, head * hs : (head + 1) * hs]  # (C, hs)
    write = z @ W.T  # (T, C)
    final = cache[f"blocks.{model.config.n_layer - 1}.hook_resid_post"][0]
    sigma = (final.var(-1, unbiased=False, keepdim=True) + model.ln_f.eps).sqrt()
    by_hand = (
        (write - write.mean(-1, keepdim=True)) / sigma * model.ln_f.weight
    ) @ model.lm_head.weight[5]
    torch.set_grad_enabled(True)
    got = direct_logit_attribution(model, tokens, target, contrast="none")
    torch.testing.assert_close(
        got.head_grid(3, 3, 4)[layer, head], float(by_hand[3]), atol=1e-5, rtol=1e-4
    )


def test_dla_refuses_post_norm_and_bad_targets(small_model):
    with pytest.raises(GPT2LabError, match="post-norm"):
        direct_logit_attribution(small_model(norm_placement="post"), [1, 2], [3, 4])
    with pytest.raises(GPT2LabError, match="2 targets for 3 positions"):
        direct_logit_attribution(small_model(), [1, 2, 3], [3, 4])


def test_padded_batch_loss_equals_per_text_losses(small_model):
    model = small_model()
    texts = [random_ids(1, n, seed=n)[0].tolist() for n in (5, 9, 12)]
    idx, mask, targets = padded_batch(texts)
    _, loss = model(idx, targets, attention_mask=mask)
    total, count = 0.0, 0
    for t in texts:
        logits, _ = model(torch.tensor([t[:-1]]))
        total += F.cross_entropy(logits[0], torch.tensor(t[1:]), reduction="sum").item()
        count += len(t) - 1
    assert float(loss) == pytest.approx(total / count, rel=1e-5)


def test_head_ablation_effects_equal_weight_edits(small_model):
    model = small_model()
    texts = random_ids(4, 12, seed=9).tolist()
    effects = head_ablation_effects(model, texts, progress=False)
    assert effects.delta.shape == (3, 4)
    layer, head, hs = 2, 1, model.config.head_dim
    batch = padded_batch(texts)
    with torch.no_grad():
        model.blocks[layer].attn.c_proj.weight[:, head * hs : (head + 1) * hs] = 0.0
        _, edited = model(batch[0], batch[2], attention_mask=batch[1])
    assert effects.delta[layer, head] == pytest.approx(float(edited) - effects.clean_loss, abs=1e-5)
    assert np.abs(effects.delta).max() > 1e-4
    json.dumps(effects.to_dict())


def test_mean_ablation_effects_and_logprob_deltas(small_model):
    model = small_model()
    texts = random_ids(3, 10, seed=11).tolist()
    means = head_means(model, texts)
    effects = head_ablation_effects(model, texts, "mean", means, progress=False)
    batch = padded_batch(texts)
    with torch.no_grad(), model.hooks(mean_ablate_head(model, 0, 3, means)):
        _, hooked = model(batch[0], batch[2], attention_mask=batch[1])
    assert effects.delta[0, 3] == pytest.approx(float(hooked) - effects.clean_loss, abs=1e-5)

    tokens = texts[0]
    deltas = ablation_logprob_delta(model, tokens, 1, 1)
    clean, _ = model(torch.tensor([tokens]))
    hs = model.config.head_dim
    with torch.no_grad():
        model.blocks[1].attn.c_proj.weight[:, hs : 2 * hs] = 0.0
        edited, _ = model(torch.tensor([tokens]))
    pick = torch.tensor(tokens[1:])[:, None]
    expected = edited[0, :-1].log_softmax(-1).gather(-1, pick) - clean[0, :-1].log_softmax(
        -1
    ).gather(-1, pick)
    np.testing.assert_allclose(deltas, expected[:, 0].detach().numpy(), atol=1e-5)


def test_logit_lens_and_predictions(small_model):
    model = small_model()
    tokens = random_ids(1, 7, seed=12)[0].tolist()
    lens = logit_lens(model, tokens, k=3)
    assert lens.stages == ["embed", "L0", "L1", "L2"]
    assert lens.top_ids.shape == (4, 7, 3)
    logits, _ = model(torch.tensor([tokens]))
    top = logits[0].softmax(-1).topk(3, -1)
    assert torch.equal(lens.top_ids[-1], top.indices)  # the last stage is the real prediction
    torch.testing.assert_close(lens.top_probs[-1], top.values.detach())
    assert not torch.equal(lens.top_ids[0], lens.top_ids[-1])
    data = lens.to_dict(decode=lambda ids: f"<{ids[0]}>")
    assert data["top_tokens"][-1][0][0] == f"<{int(top.indices[0, 0])}>"
    preds = top_predictions(model, tokens, 2)
    assert [p["id"] for p in preds[0]] == top.indices[0, :2].tolist()
    json.dumps(data)


def test_top_heads_per_position(small_model):
    model = small_model()
    tokens = random_ids(1, 6, seed=13)[0].tolist()
    rows = top_heads_per_position(model, tokens, k=2)
    assert [r["position"] for r in rows] == list(range(6))
    assert rows[0]["next"] == str(tokens[1]) and rows[-1]["predicted"]
    attribution = direct_logit_attribution(model, tokens, tokens[1:] + [0])
    grid = attribution.head_grid(2, 3, 4)
    best = np.unravel_index(np.argmax(grid), grid.shape)
    assert (rows[2]["heads"][0]["layer"], rows[2]["heads"][0]["head"]) == tuple(map(int, best))
    assert rows[2]["heads"][0]["dla"] >= rows[2]["heads"][1]["dla"]
    with pytest.raises(GPT2LabError, match="empty text"):
        top_heads_per_position(model, [], k=2)
