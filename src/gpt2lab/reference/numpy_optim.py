"""AdamW and global-norm gradient clipping in NumPy, step for step like torch.

Works on the flat `dict[str, np.ndarray]` of `numpy_gpt`. Like torch, both functions update
their arguments in place. Weight decay goes to the 2-D weights only (matmul weights and
embeddings); biases and LayerNorm gains are not decayed, as in the torch trainer's groups.

>>> params = {"w": np.ones((2, 2)), "b": np.ones(2)}
>>> grads = {"w": np.full((2, 2), 0.5), "b": np.full(2, -0.5)}
>>> state = adamw_init(params)
>>> adamw_step(params, grads, state, lr=0.1, weight_decay=0.5)
>>> round(float(params["w"][0, 0]), 6), round(float(params["b"][0]), 6)  # first step: +-lr
(0.85, 1.1)
"""

from __future__ import annotations

import math

import numpy as np

Params = dict[str, np.ndarray]


def decays(param: np.ndarray) -> bool:
    """Whether weight decay applies: matrices (matmul weights, embeddings) yes; vectors
    (biases, LayerNorm gains) no. Shrinking a gain or a shift towards 0 has no regularising
    sense, while shrinking a weight matrix limits how sharply it can respond."""
    return param.ndim >= 2


def adamw_init(params: Params) -> dict:
    """Zero first and second moments for every parameter, and a step count of 0."""
    return {
        "step": 0,
        "m": {name: np.zeros_like(p) for name, p in params.items()},
        "v": {name: np.zeros_like(p) for name, p in params.items()},
    }


def adamw_step(
    params: Params,
    grads: Params,
    state: dict,
    lr: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.01,
) -> None:
    """One AdamW update of every parameter, in place (defaults are torch.optim.AdamW's).

    Decoupled weight decay (Loshchilov & Hutter) shrinks the weight directly, outside the
    adaptive update, so it is not rescaled by 1 / sqrt(v):

        p <- p * (1 - lr * wd)                        (2-D weights only)
        m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2
        p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)

    The bias corrections undo the pull of the zero-initialised moments towards 0 early on.
    In the first step m / sqrt(v) = g / |g|, so every weight moves by about lr (w: 1 decays to
    0.95, then steps to 0.85 in the example above).
    """
    beta1, beta2 = betas
    state["step"] += 1
    t = state["step"]
    step_size = lr / (1.0 - beta1**t)
    bias_correction2_sqrt = math.sqrt(1.0 - beta2**t)
    for name, p in params.items():
        g, m, v = grads[name], state["m"][name], state["v"][name]
        if decays(p):
            p *= 1.0 - lr * weight_decay
        m += (1.0 - beta1) * (g - m)  # = b1 m + (1 - b1) g, torch's lerp
        v *= beta2
        v += (1.0 - beta2) * (g * g)
        p -= step_size * (m / (np.sqrt(v) / bias_correction2_sqrt + eps))


def clip_grad_norm(grads: Params, max_norm: float) -> float:
    """Scale all gradients together, in place, so their global L2 norm is at most max_norm
    (torch.nn.utils.clip_grad_norm_: factor min(1, max_norm / (norm + 1e-6))). Returns the
    norm before clipping, the number worth logging: spikes in it flag unstable training."""
    total = math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads.values()))
    factor = min(1.0, max_norm / (total + 1e-6))
    for g in grads.values():
        g *= factor
    return total
