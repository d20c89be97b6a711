"""The NumPy GPT-2 against Hugging Face's GPT2LMHeadModel, a reference nobody here wrote:
logits and loss of the forward pass (fp32 and fp64), and every parameter's gradient against
torch autograd in fp64, for the switches HF can express (activation, attn_scale, tying)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from reference_helpers import hf_model, rel_err, to_contract

from gpt2lab.config import GPTConfig
from gpt2lab.reference import numpy_gpt

SHAPES = {
    "odd-heads": dict(vocab_size=37, block_size=16, n_layer=2, n_head=3, n_embd=48),
    "n_inner": dict(vocab_size=11, block_size=12, n_layer=3, n_head=4, n_embd=32, n_inner=40),
    "one-head": dict(vocab_size=50, block_size=8, n_layer=1, n_head=1, n_embd=16),
}
TOLERANCE = {torch.float32: 1e-4, torch.float64: 1e-10}


def batch(config: GPTConfig, B: int, T: int, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, config.vocab_size, (B, T), generator=g)
    targets = torch.randint(0, config.vocab_size, (B, T), generator=g)
    targets[0, 1] = -1  # an ignored position, as in padded batches
    return idx, targets


def hf_logits_loss(model, idx, targets):
    """HF's logits, and torch's mean cross-entropy on them (HF's own `labels=` loss shifts the
    targets by one, which the contract does not)."""
    logits = model(idx).logits
    V = logits.size(-1)
    loss = F.cross_entropy(logits.view(-1, V), targets.view(-1), ignore_index=-1)
    return logits, loss


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["fp32", "fp64"])
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_matches_hf(shape, dtype):
    config = GPTConfig(**SHAPES[shape])
    model = hf_model(config, dtype=dtype)
    params = to_contract(model, transpose_linear=False)
    assert {k: v.shape for k, v in params.items()} == numpy_gpt.param_shapes(config)
    idx, targets = batch(config, B=3, T=config.block_size - 1)
    with torch.no_grad():
        logits, loss = hf_logits_loss(model, idx, targets)

    np_logits, np_loss, _ = numpy_gpt.forward(params, idx.numpy(), config, targets.numpy())

    assert np_logits.dtype == params["wte"].dtype
    assert np.abs(np_logits - logits.numpy()).max() <= TOLERANCE[dtype]
    assert abs(float(np_loss) - loss.item()) <= TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["fp32", "fp64"])
@pytest.mark.parametrize(
    "switches",
    [
        dict(activation="gelu"),
        dict(activation="relu", attn_scale=False),
        dict(activation="sigmoid", tie_embeddings=False),
    ],
    ids=["gelu-exact", "relu-unscaled", "sigmoid-untied"],
)
def test_forward_matches_hf_switches(switches, dtype):
    config = GPTConfig(**SHAPES["odd-heads"], **switches)
    model = hf_model(config, dtype=dtype)
    params = to_contract(model, transpose_linear=False)
    idx, _ = batch(config, B=2, T=9)
    with torch.no_grad():
        logits = model(idx).logits.numpy()

    np_logits, _, _ = numpy_gpt.forward(params, idx.numpy(), config)

    assert np.abs(np_logits - logits).max() <= TOLERANCE[dtype]


def test_forward_matches_hf_gpt2_124m_shape():
    """The full GPT-2 small shape (12 x 768, 50257 tokens), fp32, 16 tokens."""
    config = GPTConfig()
    model = hf_model(config, dtype=torch.float32)
    params = to_contract(model, transpose_linear=False)
    idx, targets = batch(config, B=1, T=16)
    with torch.no_grad():
        logits, loss = hf_logits_loss(model, idx, targets)

    np_logits, np_loss, _ = numpy_gpt.forward(params, idx.numpy(), config, targets.numpy())

    assert np.abs(np_logits - logits.numpy()).max() <= 1e-4
    assert abs(float(np_loss) - loss.item()) <= 1e-4


@pytest.mark.parametrize(
    "switches",
    [
        dict(),
        dict(activation="gelu", attn_scale=False),
        dict(activation="relu", tie_embeddings=False),
        dict(activation="sigmoid", n_inner=20),
    ],
    ids=["gpt2", "gelu-exact-unscaled", "relu-untied", "sigmoid-n_inner"],
)
def test_gradients_match_hf_autograd_fp64(switches):
    config = GPTConfig(**SHAPES["odd-heads"], **switches)
    model = hf_model(config, dtype=torch.float64)
    params = to_contract(model, transpose_linear=False)
    idx, targets = batch(config, B=2, T=11)
    _, loss = hf_logits_loss(model, idx, targets)
    loss.backward()
    want = to_contract(model, transpose_linear=False, grads=True)

    _, _, cache = numpy_gpt.forward(params, idx.numpy(), config, targets.numpy())
    grads = numpy_gpt.backward(params, cache, config)

    assert grads.keys() == want.keys()
    errors = {name: rel_err(grads[name], want[name]) for name in want}
    assert max(errors.values()) <= 1e-6, errors
