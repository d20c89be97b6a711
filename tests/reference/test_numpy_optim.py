"""NumPy AdamW and gradient clipping against torch.optim.AdamW and clip_grad_norm_, step for
step, with the trainer's two groups (2-D weights decay; biases and LayerNorm gains do not)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gpt2lab.config import GPTConfig
from gpt2lab.reference import numpy_gpt, numpy_optim

CONFIG = GPTConfig(vocab_size=17, block_size=8, n_layer=2, n_head=2, n_embd=8, bias=True)


def random_grads(params, rng):
    return {k: rng.standard_normal(v.shape) * 0.1 for k, v in params.items()}


@pytest.mark.parametrize("foreach", [False, True], ids=["for-loop", "foreach"])
def test_adamw_matches_torch_step_for_step(foreach):
    params = numpy_gpt.init_params(CONFIG, seed=0, dtype=np.float64)
    torch_params = {k: torch.nn.Parameter(torch.from_numpy(v.copy())) for k, v in params.items()}
    decay = [p for k, p in torch_params.items() if numpy_optim.decays(params[k])]
    no_decay = [p for k, p in torch_params.items() if not numpy_optim.decays(params[k])]
    assert decay and no_decay
    assert {k for k in params if numpy_optim.decays(params[k])} == {
        k
        for k in params
        if k.endswith(("wte", "wpe", "c_attn.weight", "c_proj.weight", "c_fc.weight"))
    }
    hyper = dict(betas=(0.9, 0.95), eps=1e-8)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=1e-3,
        foreach=foreach,
        **hyper,
    )
    state = numpy_optim.adamw_init(params)
    rng = np.random.default_rng(0)

    for step in range(10):
        lr = 1e-3 * (step + 1) / 10  # a warmup, so a changing lr is exercised too
        grads = random_grads(params, rng)
        for k, p in torch_params.items():
            p.grad = torch.from_numpy(grads[k].copy())
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.step()
        numpy_optim.adamw_step(params, grads, state, lr=lr, weight_decay=0.1, **hyper)

    diff = max(np.abs(params[k] - p.detach().numpy()).max() for k, p in torch_params.items())
    assert diff <= 1e-12
    assert state["step"] == 10


def test_adamw_keeps_float32():
    params = numpy_gpt.init_params(CONFIG, seed=0, dtype=np.float32)
    grads = {
        k: v.astype(np.float32) for k, v in random_grads(params, np.random.default_rng(0)).items()
    }
    state = numpy_optim.adamw_init(params)
    numpy_optim.adamw_step(params, grads, state, lr=1e-3)
    assert all(v.dtype == np.float32 for v in params.values())
    assert all(v.dtype == np.float32 for v in state["m"].values())


@pytest.mark.parametrize("max_norm", [0.5, 100.0], ids=["clips", "leaves-alone"])
def test_clip_grad_norm_matches_torch(max_norm):
    params = numpy_gpt.init_params(CONFIG, seed=0)
    grads = random_grads(params, np.random.default_rng(0))
    tensors = [
        torch.zeros(v.shape, dtype=torch.float64, requires_grad=True) for v in grads.values()
    ]
    for t, g in zip(tensors, grads.values()):
        t.grad = torch.from_numpy(g.copy())

    want_norm = torch.nn.utils.clip_grad_norm_(tensors, max_norm).item()
    norm = numpy_optim.clip_grad_norm(grads, max_norm)

    assert norm == pytest.approx(want_norm, rel=1e-12)
    for t, g in zip(tensors, grads.values()):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-12, atol=0)
