"""The NumPy GPT-2 against gpt2lab's torch GPT for every architecture switch: gradients of
every parameter against torch autograd in fp64, and logits in fp32.

The switch sets cover every value of every switch at least once:
pos_encoding learned/sinusoidal/none, norm_placement pre/post/none, activation
gelu_tanh/gelu/relu/sigmoid, attn_scale on/off, attn_normalization softmax/none,
tie_embeddings on/off, bias on/off.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from reference_helpers import perturb, rel_err, to_contract

from gpt2lab.config import GPTConfig
from gpt2lab.model import GPT
from gpt2lab.pretrained import reference_params
from gpt2lab.reference import numpy_gpt

SHAPE = dict(vocab_size=29, block_size=16, n_layer=2, n_head=3, n_embd=24)
SWITCH_SETS = {
    "gpt2": dict(),
    "sinusoidal-post-relu-untied": dict(
        pos_encoding="sinusoidal", norm_placement="post", activation="relu", tie_embeddings=False
    ),
    "nopos-nonorm-sigmoid-unscaled-rawattn": dict(
        pos_encoding="none",
        norm_placement="none",
        activation="sigmoid",
        attn_scale=False,
        attn_normalization="none",
    ),
    "nobias-gelu-post-rawattn": dict(
        bias=False, activation="gelu", norm_placement="post", attn_normalization="none"
    ),
    "nobias-nopos-pre-untied": dict(bias=False, pos_encoding="none", tie_embeddings=False),
    "nonorm-unscaled-n_inner": dict(norm_placement="none", attn_scale=False, n_inner=40),
    "sinusoidal-nobias-nonorm-gelu": dict(
        pos_encoding="sinusoidal", bias=False, norm_placement="none", activation="gelu"
    ),
}


def torch_gpt(config: GPTConfig, dtype: torch.dtype) -> GPT:
    torch.manual_seed(0)
    model = GPT(config).to(dtype).eval()
    perturb(model)
    return model


def batch(config: GPTConfig, B: int = 2, T: int = 11):
    g = torch.Generator().manual_seed(1)
    idx = torch.randint(0, config.vocab_size, (B, T), generator=g)
    targets = torch.randint(0, config.vocab_size, (B, T), generator=g)
    targets[1, 4] = -1
    return idx, targets


@pytest.mark.parametrize("switches", SWITCH_SETS.values(), ids=SWITCH_SETS.keys())
def test_gradients_match_torch_gpt_fp64(switches):
    config = GPTConfig(**SHAPE, **switches)
    model = torch_gpt(config, torch.float64)
    params = reference_params(model, dtype=np.float64)  # the project's own mapping
    assert {k: v.shape for k, v in params.items()} == numpy_gpt.param_shapes(config)
    mine = to_contract(model, transpose_linear=True)  # the mapping the gradients go through
    assert all(np.array_equal(mine[k], params[k]) for k in params) and mine.keys() == params.keys()
    idx, targets = batch(config)
    logits, _ = model(idx)
    # The loss is taken here in fp64: GPT.forward computes its loss on logits.float().
    loss = F.cross_entropy(logits.view(-1, config.vocab_size), targets.view(-1), ignore_index=-1)
    loss.backward()
    want = to_contract(model, transpose_linear=True, grads=True)

    np_logits, np_loss, cache = numpy_gpt.forward(params, idx.numpy(), config, targets.numpy())
    grads = numpy_gpt.backward(params, cache, config)

    assert rel_err(np_logits, logits.detach().numpy()) <= 1e-6
    assert abs(float(np_loss) - loss.item()) <= 1e-6
    assert grads.keys() == want.keys()
    errors = {name: rel_err(grads[name], want[name]) for name in want}
    assert max(errors.values()) <= 1e-6, errors


@pytest.mark.parametrize("switches", SWITCH_SETS.values(), ids=SWITCH_SETS.keys())
def test_forward_matches_torch_gpt_fp32(switches):
    config = GPTConfig(**SHAPE, **switches)
    model = torch_gpt(config, torch.float32)
    params = reference_params(model, dtype=np.float32)
    idx, _ = batch(config)
    with torch.no_grad():
        logits, _ = model(idx)

    np_logits, _, _ = numpy_gpt.forward(params, idx.numpy(), config)

    assert np_logits.dtype == np.float32
    assert np.abs(np_logits - logits.numpy()).max() <= 1e-4
