"""GPT-2 in pure NumPy: the forward pass and its backward pass, one concept per function.

This file is the reference the torch model is checked against, and a teaching piece: every
matmul is written out, every layer has a `*_forward` that returns `(output, cache)` and, right
below it, a `*_backward` that turns the gradient of the output into the gradients of the
inputs and parameters using only what the cache kept. Shapes use B (batch), T (time), C
(n_embd), V (vocab), F (MLP width), nh (heads) and hd (head_dim = C // nh).

Weights are a flat dict with Hugging Face GPT-2 names (without the `transformer.` prefix) in
HF's Conv1D layout, so a linear layer is `y = x @ W + b` with W of shape [n_in, n_out]:

    wte [V, C]   wpe [block_size, C]   h.0.attn.c_attn.weight [C, 3C]   ln_f.weight [C]  ...

The architecture switches are read from any config object by duck typing (`config.n_head`,
`config.norm_placement`, ...), so this module imports NumPy and the standard library only.
The dtype follows the params: float64 for gradient checks, float32 to match the torch model.
Forward and backward of every layer sit side by side in this one file (about 590 lines) so
that each backward is read next to the forward whose cache it uses.

>>> import types
>>> cfg = types.SimpleNamespace(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8,
...     mlp_dim=32, bias=True, layer_norm_eps=1e-5, pos_encoding="learned",
...     norm_placement="pre", activation="gelu_tanh", attn_scale=True,
...     attn_normalization="softmax", tie_embeddings=True)
>>> params = init_params(cfg, seed=0)
>>> idx = np.array([[1, 2, 3, 4]])
>>> logits, loss, cache = forward(params, idx, cfg, targets=np.array([[2, 3, 4, 5]]))
>>> logits.shape, round(float(loss), 1)  # log(11) = 2.4: a fresh model guesses uniformly
((1, 4, 11), 2.4)
>>> grads = backward(params, cache, cfg)
>>> sorted(grads) == sorted(params)
True
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

Params = dict[str, np.ndarray]


# ------------------------------------------------------------------------------------------
# Parameters
# ------------------------------------------------------------------------------------------


def init_params(config: Any, seed: int = 0, dtype: Any = np.float64) -> Params:
    """GPT-2's initialisation, in the weight contract's names and layouts.

    Matmul weights and embeddings ~ N(0, 0.02); the two projections that write into the
    residual stream (attn.c_proj, mlp.c_proj) ~ N(0, 0.02 / sqrt(2 * n_layer)), so the
    stream's variance does not grow with depth; biases 0, LayerNorm gains 1. This is the
    init whatever `config.init` says: torch's default init is a property of torch modules.
    """
    rng = np.random.default_rng(seed)
    std, resid_std = 0.02, 0.02 / math.sqrt(2 * config.n_layer)
    params: Params = {}
    for name, shape in param_shapes(config).items():
        if name.endswith(("attn.c_proj.weight", "mlp.c_proj.weight")):
            value = rng.normal(0.0, resid_std, shape)
        elif len(shape) == 2:
            value = rng.normal(0.0, std, shape)
        elif "ln_" in name and name.endswith(".weight"):
            value = np.ones(shape)
        else:
            value = np.zeros(shape)
        params[name] = value.astype(dtype)
    return params


def param_shapes(config: Any) -> dict[str, tuple[int, ...]]:
    """Every parameter's name and shape for this config (the weight contract, spelled out)."""
    C, F, V = config.n_embd, config.mlp_dim, config.vocab_size
    has_norm = config.norm_placement != "none"

    def linear(name: str, n_in: int, n_out: int) -> dict[str, tuple[int, ...]]:
        out: dict[str, tuple[int, ...]] = {f"{name}.weight": (n_in, n_out)}
        if config.bias:
            out[f"{name}.bias"] = (n_out,)
        return out

    def norm(name: str) -> dict[str, tuple[int, ...]]:
        if not has_norm:
            return {}
        out: dict[str, tuple[int, ...]] = {f"{name}.weight": (C,)}
        if config.bias:
            out[f"{name}.bias"] = (C,)
        return out

    shapes: dict[str, tuple[int, ...]] = {"wte": (V, C)}
    if config.pos_encoding == "learned":
        shapes["wpe"] = (config.block_size, C)
    for i in range(config.n_layer):
        shapes |= norm(f"h.{i}.ln_1")
        shapes |= linear(f"h.{i}.attn.c_attn", C, 3 * C)
        shapes |= linear(f"h.{i}.attn.c_proj", C, C)
        shapes |= norm(f"h.{i}.ln_2")
        shapes |= linear(f"h.{i}.mlp.c_fc", C, F)
        shapes |= linear(f"h.{i}.mlp.c_proj", F, C)
    if config.norm_placement == "pre":
        shapes |= norm("ln_f")
    if not config.tie_embeddings:
        shapes["lm_head.weight"] = (V, C)
    return shapes


def subdict(params: Params, prefix: str) -> Params:
    """The entries under `prefix`, renamed relative to it: ("h.0.", {"h.0.ln_1.weight": w})
    -> {"ln_1.weight": w}. Blocks and sublayers see only their own weights this way."""
    return {k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)}


def _add_prefixed(grads: Params, prefix: str, sub_grads: Params) -> None:
    for name, g in sub_grads.items():
        grads[prefix + name] = g


# ------------------------------------------------------------------------------------------
# Embeddings
# ------------------------------------------------------------------------------------------


def sinusoidal_positions(n_pos: int, n_embd: int, dtype: Any) -> np.ndarray:  # -> [n_pos, C]
    """The fixed table of Vaswani et al., interleaved: column 2i is sin, column 2i+1 is cos,
    both of pos / 10000^(2i/C). Row 0 is [0, 1, 0, 1, ...]; low columns turn fastest."""
    pos = np.arange(n_pos, dtype=np.float64)[:, None]  # [n_pos, 1]
    two_i = 2 * (np.arange(n_embd) // 2)  # [C]: 0, 0, 2, 2, 4, 4, ...
    angle = pos / 10000.0 ** (two_i / n_embd)  # [n_pos, C]
    table = np.where(np.arange(n_embd) % 2 == 0, np.sin(angle), np.cos(angle))
    return table.astype(dtype)


def positions(params: Params, T: int, config: Any):  # -> [T, C] | None
    """The position rows added to the first T tokens: learned (wpe), sinusoidal, or None
    when the model has no positional signal."""
    if config.pos_encoding == "learned":
        return params["wpe"][:T]  # [T, C]
    if config.pos_encoding == "sinusoidal":
        table = config.sinusoidal_scale * sinusoidal_positions(T, config.n_embd, np.float64)
        return table.astype(params["wte"].dtype)  # [T, C]
    return None


def embedding_forward(idx, wte, pos):  # [B, T] -> [B, T, C]
    """Look up each token's row of wte and add its position's row of `pos` ([T, C], or None
    when the model has no positional signal)."""
    x = wte[idx]  # [B, T, C]
    if pos is not None:
        x = x + pos  # [T, C] broadcasts over the batch
    return x, (idx, wte.shape)


def embedding_backward(dx, cache):  # [B, T, C] -> dwte [V, C], dpos [T, C]
    """A lookup copies rows, so its gradient scatters them back: each token's row of dwte
    sums dx over every place that token occurred (np.add.at accumulates repeated indices,
    where `dwte[idx] += dx` would keep only the last). The position rows are shared by the
    whole batch, so dpos sums over B (the caller drops it when there was no `pos`)."""
    idx, wte_shape = cache
    dwte = np.zeros(wte_shape, dtype=dx.dtype)  # [V, C]
    np.add.at(dwte, idx.reshape(-1), dx.reshape(-1, wte_shape[1]))  # [B*T] rows of [B*T, C]
    dpos = dx.sum(axis=0)  # [T, C]
    return dwte, dpos


# ------------------------------------------------------------------------------------------
# Layer norm
# ------------------------------------------------------------------------------------------


def layer_norm_forward(x, w, b, eps):  # [B, T, C] -> [B, T, C]
    """Normalise each position's vector to mean 0 and (biased) variance 1, then scale by w
    and shift by b (b is None in a bias-free model)."""
    mean = x.mean(axis=-1, keepdims=True)  # [B, T, 1]
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)  # [B, T, 1]
    rstd = 1.0 / np.sqrt(var + eps)  # [B, T, 1]
    xhat = (x - mean) * rstd  # [B, T, C]
    y = xhat * w
    if b is not None:
        y = y + b
    return y, (xhat, rstd, w, b is not None)


def layer_norm_backward(dy, cache):  # [B, T, C] -> dx [B, T, C], dw [C], db [C] | None
    """With dxhat = dy * w, and means taken over C:

        dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))

    The two subtracted terms are the paths through the mean and through the variance: moving
    one input moves every output of its row, so the gradient is projected onto the directions
    that keep mean 0 and variance 1.
    """
    xhat, rstd, w, has_bias = cache
    C = xhat.shape[-1]
    dw = (dy * xhat).reshape(-1, C).sum(axis=0)  # [C]
    db = dy.reshape(-1, C).sum(axis=0) if has_bias else None  # [C]
    dxhat = dy * w  # [B, T, C]
    dx = rstd * (
        dxhat
        - dxhat.mean(axis=-1, keepdims=True)
        - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True)
    )
    return dx, dw, db


def norm_forward(x, p, name, config):  # [B, T, C] -> [B, T, C]
    """The LayerNorm called `name` in `p`, or the identity when the model has no norms."""
    if config.norm_placement == "none":
        return x, None
    return layer_norm_forward(x, p[f"{name}.weight"], p.get(f"{name}.bias"), config.layer_norm_eps)


def norm_backward(dy, cache, name):  # [B, T, C] -> dx [B, T, C], grads
    if cache is None:
        return dy, {}
    dx, dw, db = layer_norm_backward(dy, cache)
    grads = {f"{name}.weight": dw}
    if db is not None:
        grads[f"{name}.bias"] = db
    return dx, grads


# ------------------------------------------------------------------------------------------
# Linear layer (HF Conv1D layout: W is [n_in, n_out])
# ------------------------------------------------------------------------------------------


def linear_forward(x, w, b):  # [..., n_in] -> [..., n_out]
    y = x @ w  # [..., n_out]
    if b is not None:
        y = y + b
    return y, (x, w, b is not None)


def linear_backward(dy, cache):  # [..., n_out] -> dx [..., n_in], dw [n_in, n_out], db
    """y = x @ W + b gives dx = dy @ W^T, dW = x^T @ dy (summed over every leading position,
    hence the flattening to rows) and db = dy summed over the same rows."""
    x, w, has_bias = cache
    n_in, n_out = w.shape
    dx = dy @ w.T  # [..., n_in]
    dw = x.reshape(-1, n_in).T @ dy.reshape(-1, n_out)  # [n_in, N] @ [N, n_out]
    db = dy.reshape(-1, n_out).sum(axis=0) if has_bias else None  # [n_out]
    return dx, dw, db


def named_linear_forward(x, p, name):  # [..., n_in] -> [..., n_out]
    """The linear layer called `name` in `p` (its bias may be absent)."""
    return linear_forward(x, p[f"{name}.weight"], p.get(f"{name}.bias"))


def named_linear_backward(dy, cache, name):  # [..., n_out] -> dx [..., n_in], grads
    dx, dw, db = linear_backward(dy, cache)
    grads = {f"{name}.weight": dw}
    if db is not None:
        grads[f"{name}.bias"] = db
    return dx, grads


# ------------------------------------------------------------------------------------------
# Activations (elementwise: [..] -> [..]; each backward multiplies by the local derivative)
# ------------------------------------------------------------------------------------------

_GELU_C = math.sqrt(2.0 / math.pi)
_erf = np.frompyfunc(math.erf, 1, 1)  # NumPy has no erf; math.erf is exact to double precision


def gelu_tanh_forward(x):
    """GPT-2's GELU: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    t = np.tanh(_GELU_C * (x + 0.044715 * x**3))
    return 0.5 * x * (1.0 + t), (x, t)


def gelu_tanh_backward(dy, cache):
    """d/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)."""
    x, t = cache
    dudx = _GELU_C * (1.0 + 3.0 * 0.044715 * x**2)
    return dy * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t**2) * dudx)


def gelu_forward(x):
    """The exact GELU: x * Phi(x), with Phi the standard normal CDF 0.5 (1 + erf(x / sqrt 2))."""
    cdf = (0.5 * (1.0 + _erf(x / math.sqrt(2.0)))).astype(x.dtype)
    return x * cdf, (x, cdf)


def gelu_backward(dy, cache):
    """d/dx [x Phi(x)] = Phi(x) + x phi(x), with phi(x) = exp(-x^2 / 2) / sqrt(2 pi)."""
    x, cdf = cache
    pdf = np.exp(-0.5 * x**2) / math.sqrt(2.0 * math.pi)
    return dy * (cdf + x * pdf)


def relu_forward(x):
    return np.maximum(x, 0.0), x


def relu_backward(dy, cache):
    """The slope is 1 where x > 0 and 0 elsewhere (0 at x == 0 too, as torch does)."""
    return dy * (cache > 0)


def sigmoid_forward(x):
    """1 / (1 + e^-x), written as 0.5 (1 + tanh(x / 2)), which never overflows."""
    s = 0.5 * (1.0 + np.tanh(0.5 * x))
    return s, s


def sigmoid_backward(dy, cache):
    """d/dx sigmoid = s (1 - s)."""
    s = cache
    return dy * s * (1.0 - s)


ACTIVATIONS = {
    "gelu_tanh": (gelu_tanh_forward, gelu_tanh_backward),
    "gelu": (gelu_forward, gelu_backward),
    "relu": (relu_forward, relu_backward),
    "sigmoid": (sigmoid_forward, sigmoid_backward),
}


# ------------------------------------------------------------------------------------------
# Attention
# ------------------------------------------------------------------------------------------


def split_heads(x, n_head):  # [B, T, C] -> [B, nh, T, hd]
    """Head h owns the contiguous columns h*hd:(h+1)*hd, as in HF GPT-2."""
    B, T, C = x.shape
    return x.reshape(B, T, n_head, C // n_head).transpose(0, 2, 1, 3)  # [B, nh, T, hd]


def merge_heads(x):  # [B, nh, T, hd] -> [B, T, C]
    B, nh, T, hd = x.shape
    return x.transpose(0, 2, 1, 3).reshape(B, T, nh * hd)  # [B, T, C]


def causal_mask(T):  # -> [T, T] bool
    """True where query t may look at key s, i.e. s <= t (lower triangle, diagonal included)."""
    return np.tril(np.ones((T, T), dtype=bool))


def causal_softmax_forward(scores):  # [B, nh, T, T] -> [B, nh, T, T]
    """Set the future (s > t) to -inf, then softmax each row: e^(x - max) / sum e^(x - max).
    Subtracting the row max changes nothing mathematically and keeps exp from overflowing;
    exp(-inf) = 0 gives the future exactly zero weight."""
    masked = np.where(causal_mask(scores.shape[-1]), scores, -np.inf)  # [B, nh, T, T]
    e = np.exp(masked - masked.max(axis=-1, keepdims=True))
    att = e / e.sum(axis=-1, keepdims=True)  # [B, nh, T, T], rows sum to 1
    return att, att


def causal_softmax_backward(datt, cache):  # [B, nh, T, T] -> [B, nh, T, T]
    """For one row a = softmax(x): da_i/dx_j = a_i (delta_ij - a_j), so

        dx = a * (da - sum_j(da_j * a_j))

    Masked entries have a = 0, so no gradient reaches the scores of the future.
    """
    att = cache
    return att * (datt - (datt * att).sum(axis=-1, keepdims=True))


def causal_raw_forward(scores):  # [B, nh, T, T] -> [B, nh, T, T]
    """No normalisation: the scores themselves weight the values, with the future zeroed."""
    mask = causal_mask(scores.shape[-1])  # [T, T]
    return scores * mask, mask


def causal_raw_backward(datt, cache):  # [B, nh, T, T] -> [B, nh, T, T]
    return datt * cache


ATTENTION_NORMALIZATIONS = {
    "softmax": (causal_softmax_forward, causal_softmax_backward),
    "none": (causal_raw_forward, causal_raw_backward),
}


def attention_forward(x, p, config):  # [B, T, C] -> [B, T, C]
    """Causal multi-head self-attention with weights p["c_attn.weight"] [C, 3C] (q, k, v
    side by side) and p["c_proj.weight"] [C, C]:

        q, k, v = split(x @ W_attn + b_attn)          each [B, nh, T, hd]
        att = normalise(q @ k^T * scale)               [B, nh, T, T]
        out = merge(att @ v) @ W_proj + b_proj         [B, T, C]
    """
    n_head = config.n_head
    scale = 1.0 / math.sqrt(config.n_embd // n_head) if config.attn_scale else 1.0
    normalise, _ = ATTENTION_NORMALIZATIONS[config.attn_normalization]
    qkv, c_attn = named_linear_forward(x, p, "c_attn")  # [B, T, 3C]
    q, k, v = (split_heads(t, n_head) for t in np.split(qkv, 3, axis=-1))  # [B, nh, T, hd]
    scores = (q @ k.transpose(0, 1, 3, 2)) * scale  # [B, nh, T, hd] @ [B, nh, hd, T]
    att, norm = normalise(scores)  # [B, nh, T, T]
    y = merge_heads(att @ v)  # [B, nh, T, hd] -> [B, T, C]
    out, c_proj = named_linear_forward(y, p, "c_proj")  # [B, T, C]
    return out, (c_attn, q, k, v, scale, att, norm, c_proj)


def attention_backward(dout, cache, config):  # [B, T, C] -> dx [B, T, C], grads
    """Each matmul C = A @ B sends dA = dC @ B^T and dB = A^T @ dC back; the head split and
    merge are reshapes, so their backwards are the opposite reshapes."""
    c_attn, q, k, v, scale, att, norm, c_proj = cache
    _, normalise_backward = ATTENTION_NORMALIZATIONS[config.attn_normalization]
    dy, grads = named_linear_backward(dout, c_proj, "c_proj")  # [B, T, C]
    dy = split_heads(dy, config.n_head)  # [B, nh, T, hd]
    datt = dy @ v.transpose(0, 1, 3, 2)  # [B, nh, T, T]
    dv = att.transpose(0, 1, 3, 2) @ dy  # [B, nh, T, hd]
    dscores = normalise_backward(datt, norm) * scale  # [B, nh, T, T]
    dq = dscores @ k  # [B, nh, T, hd]
    dk = dscores.transpose(0, 1, 3, 2) @ q  # [B, nh, T, hd]
    dqkv = np.concatenate([merge_heads(t) for t in (dq, dk, dv)], axis=-1)  # [B, T, 3C]
    dx, attn_grads = named_linear_backward(dqkv, c_attn, "c_attn")  # [B, T, C]
    return dx, grads | attn_grads


# ------------------------------------------------------------------------------------------
# MLP
# ------------------------------------------------------------------------------------------


def mlp_forward(x, p, config):  # [B, T, C] -> [B, T, C]
    """x @ W_fc [C, F] -> activation -> @ W_proj [F, C]."""
    act_forward, _ = ACTIVATIONS[config.activation]
    h, c_fc = named_linear_forward(x, p, "c_fc")  # [B, T, F]
    a, act = act_forward(h)  # [B, T, F]
    out, c_proj = named_linear_forward(a, p, "c_proj")  # [B, T, C]
    return out, (c_fc, act, c_proj)


def mlp_backward(dout, cache, config):  # [B, T, C] -> dx [B, T, C], grads
    c_fc, act, c_proj = cache
    _, act_backward = ACTIVATIONS[config.activation]
    da, grads = named_linear_backward(dout, c_proj, "c_proj")  # [B, T, F]
    dh = act_backward(da, act)  # [B, T, F]
    dx, fc_grads = named_linear_backward(dh, c_fc, "c_fc")  # [B, T, C]
    return dx, grads | fc_grads


# ------------------------------------------------------------------------------------------
# Transformer block
# ------------------------------------------------------------------------------------------


def block_forward(x, p, config):  # [B, T, C] -> [B, T, C]
    """One block, with p holding its weights under block-relative names ("ln_1.weight", ...).

    pre (GPT-2):   x = x + attn(ln_1(x));   x = x + mlp(ln_2(x))
    post:          x = ln_1(x + attn(x));   x = ln_2(x + mlp(x))
    none:          x = x + attn(x);         x = x + mlp(x)   (the pre form with identity norms)
    """
    attn_p, mlp_p = subdict(p, "attn."), subdict(p, "mlp.")
    if config.norm_placement == "post":
        a, attn = attention_forward(x, attn_p, config)
        x, ln_1 = norm_forward(x + a, p, "ln_1", config)
        m, mlp = mlp_forward(x, mlp_p, config)
        x, ln_2 = norm_forward(x + m, p, "ln_2", config)
    else:
        h, ln_1 = norm_forward(x, p, "ln_1", config)
        a, attn = attention_forward(h, attn_p, config)
        x = x + a
        h, ln_2 = norm_forward(x, p, "ln_2", config)
        m, mlp = mlp_forward(h, mlp_p, config)
        x = x + m
    return x, (ln_1, attn, ln_2, mlp)


def block_backward(dout, cache, config):  # [B, T, C] -> dx [B, T, C], grads
    """A residual connection x + f(x) passes the gradient straight through and adds f's:
    dx = dout + df(x)/dx^T dout. That unobstructed path is why deep pre-norm stacks train."""
    ln_1, attn, ln_2, mlp = cache
    if config.norm_placement == "post":
        dr, ln_2_grads = norm_backward(dout, ln_2, "ln_2")  # through x = ln_2(x + m)
        dm, mlp_grads = mlp_backward(dr, mlp, config)
        dx = dr + dm
        dr, ln_1_grads = norm_backward(dx, ln_1, "ln_1")  # through x = ln_1(x + a)
        da, attn_grads = attention_backward(dr, attn, config)
        dx = dr + da
    else:
        dh, mlp_grads = mlp_backward(dout, mlp, config)  # through x = x + mlp(ln_2(x))
        dh, ln_2_grads = norm_backward(dh, ln_2, "ln_2")
        dx = dout + dh
        dh, attn_grads = attention_backward(dx, attn, config)  # through x = x + attn(ln_1(x))
        dh, ln_1_grads = norm_backward(dh, ln_1, "ln_1")
        dx = dx + dh
    grads = ln_1_grads | ln_2_grads
    _add_prefixed(grads, "attn.", attn_grads)
    _add_prefixed(grads, "mlp.", mlp_grads)
    return dx, grads


# ------------------------------------------------------------------------------------------
# Output head and loss
# ------------------------------------------------------------------------------------------


def lm_head_forward(x, w):  # [B, T, C] -> [B, T, V]
    """Logits are dot products with each vocabulary row of w [V, C] (wte itself when tied)."""
    return x @ w.T, (x, w)


def lm_head_backward(dlogits, cache):  # [B, T, V] -> dx [B, T, C], dw [V, C]
    x, w = cache
    V, C = w.shape
    dx = dlogits @ w  # [B, T, C]
    dw = dlogits.reshape(-1, V).T @ x.reshape(-1, C)  # [V, N] @ [N, C]
    return dx, dw


def cross_entropy_forward(logits, targets):  # [B, T, V], [B, T] -> scalar
    """Mean of -log softmax(logits)[target] over the positions whose target is not -1
    (torch's F.cross_entropy(..., ignore_index=-1)). log softmax = z - logsumexp(z), with
    the row max taken out of the exponent for stability."""
    V = logits.shape[-1]
    z = logits.reshape(-1, V)  # [N, V], N = B * T
    t = targets.reshape(-1)  # [N]
    valid = t != -1  # [N]
    t = np.where(valid, t, 0)  # any in-range index; these rows are weighted 0 below
    z_max = z.max(axis=-1, keepdims=True)  # [N, 1]
    lse = z_max[:, 0] + np.log(np.exp(z - z_max).sum(axis=-1))  # [N]
    nll = lse - z[np.arange(len(t)), t]  # [N]
    n_valid = int(valid.sum())
    loss = (nll * valid).sum() / n_valid
    probs = np.exp(z - lse[:, None])  # [N, V]
    return loss, (probs, t, valid, n_valid, logits.shape)


def cross_entropy_backward(dloss, cache):  # scalar -> [B, T, V]
    """d(-log p_t)/dz = softmax(z) - onehot(t): push the target's logit up, every other
    logit down in proportion to its probability. Each counted row carries 1 / n_valid."""
    probs, t, valid, n_valid, shape = cache
    dz = probs.copy()  # [N, V]
    dz[np.arange(len(t)), t] -= 1.0
    weight = (valid * (dloss / n_valid)).astype(dz.dtype)  # [N]: 0 for ignored rows
    return (dz * weight[:, None]).reshape(shape)  # [B, T, V]


# ------------------------------------------------------------------------------------------
# The model
# ------------------------------------------------------------------------------------------


def forward(params: Params, idx, config: Any, targets=None):  # [B, T] -> [B, T, V]
    """Logits for token ids idx [B, T], the mean cross-entropy against targets [B, T] (None
    when no targets are given), and the cache `backward` needs."""
    B, T = idx.shape
    wte = params["wte"]
    if T > config.block_size:
        raise ValueError(f"sequence length {T} exceeds block_size {config.block_size}")
    x, embedding = embedding_forward(idx, wte, positions(params, T, config))  # [B, T, C]
    blocks = []
    for i in range(config.n_layer):
        x, block = block_forward(x, subdict(params, f"h.{i}."), config)  # [B, T, C]
        blocks.append(block)
    ln_f = None
    if config.norm_placement == "pre":
        x, ln_f = norm_forward(x, params, "ln_f", config)  # [B, T, C]
    head = wte if config.tie_embeddings else params["lm_head.weight"]  # [V, C]
    logits, lm_head = lm_head_forward(x, head)  # [B, T, V]
    loss, ce = (None, None) if targets is None else cross_entropy_forward(logits, targets)
    cache = dict(embedding=embedding, blocks=blocks, ln_f=ln_f, lm_head=lm_head, ce=ce)
    return logits, loss, cache


def backward(params: Params, cache: dict, config: Any) -> Params:
    """Gradients of the loss of the `forward` call that made `cache`, one per parameter
    (same names, shapes and dtype as params). The tied wte gets two contributions: one from
    the output head, one from the embedding lookup."""
    if cache["ce"] is None:
        raise ValueError("backward needs a forward pass that was given targets")
    grads: Params = {}
    dlogits = cross_entropy_backward(1.0, cache["ce"])  # [B, T, V]
    dx, dhead = lm_head_backward(dlogits, cache["lm_head"])  # [B, T, C], [V, C]
    if config.norm_placement == "pre":
        dx, ln_f_grads = norm_backward(dx, cache["ln_f"], "ln_f")
        grads |= ln_f_grads
    for i in reversed(range(config.n_layer)):
        dx, block_grads = block_backward(dx, cache["blocks"][i], config)  # [B, T, C]
        _add_prefixed(grads, f"h.{i}.", block_grads)
    dwte, dpos = embedding_backward(dx, cache["embedding"])  # [V, C], [T, C]
    if config.tie_embeddings:
        grads["wte"] = dwte + dhead
    else:
        grads["wte"] = dwte
        grads["lm_head.weight"] = dhead
    if config.pos_encoding == "learned":
        dwpe = np.zeros_like(params["wpe"])  # [block_size, C]: rows past T get no gradient
        dwpe[: dpos.shape[0]] = dpos
        grads["wpe"] = dwpe
    return {name: grads[name] for name in params}
