"""Each `*_backward` of the NumPy GPT-2 against central finite differences of its `*_forward`
(float64), the whole model's gradient on a few entries per parameter kind (a witness that
does not depend on torch), float32 against float64, and the module's own promises: NumPy
only, dtype preserved, GPT-2 init, ignore_index, the sinusoidal table."""

from __future__ import annotations

import ast
import doctest
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from gpt2lab.config import GPTConfig
from gpt2lab.reference import numpy_gpt, numpy_optim

RNG_SEED = 1234


def numerical_grad(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences (f(x + h e_i) - f(x - h e_i)) / 2h for every entry of x."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        up = f()
        x[i] = old - h
        down = f()
        x[i] = old
        grad[i] = (up - down) / (2 * h)
    return grad


def assert_close(got, want, tol=1e-7):
    scale = max(1.0, float(np.abs(want).max()))
    assert np.abs(got - want).max() <= tol * scale


def tiny_config(**switches) -> types.SimpleNamespace:
    """A config object that is not a GPTConfig: the reference reads attributes only."""
    fields = dict(
        vocab_size=13,
        block_size=8,
        n_layer=2,
        n_head=2,
        n_embd=8,
        mlp_dim=12,
        bias=True,
        layer_norm_eps=1e-5,
        pos_encoding="learned",
        sinusoidal_scale=1.0,
        norm_placement="pre",
        activation="gelu_tanh",
        attn_scale=True,
        attn_normalization="softmax",
        tie_embeddings=True,
    )
    return types.SimpleNamespace(**{**fields, **switches})


def perturbed_params(config, seed=0, dtype=np.float64):
    """init_params, then every entry nudged so that no bias is 0 and no gain is 1."""
    rng = np.random.default_rng(seed)
    params = numpy_gpt.init_params(config, seed=seed, dtype=np.float64)
    return {k: (v + 0.1 * rng.standard_normal(v.shape)).astype(dtype) for k, v in params.items()}


# --- layer by layer: backward against finite differences of forward ------------------------


def check_layer(forward, backward, inputs: dict) -> dict:
    """Contract the layer's output with a fixed random R, loss = sum(out * R), so that the
    backward given dout = R must return the gradient of that loss. Returns, for every float
    array among the inputs, (backward's gradient, the finite-difference gradient)."""
    out, cache = forward(**inputs)
    R = np.random.default_rng(0).standard_normal(out.shape)
    analytic = backward(R, cache)

    def loss():
        return float(np.sum(forward(**inputs)[0] * R))

    arrays = {k: v for k, v in inputs.items() if isinstance(v, np.ndarray) and v.dtype.kind == "f"}
    return {name: (analytic[name], numerical_grad(loss, x)) for name, x in arrays.items()}


@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no-bias"])
def test_layer_norm_backward(with_bias):
    rng = np.random.default_rng(RNG_SEED)
    x, w = rng.standard_normal((2, 3, 5)), rng.standard_normal(5)
    b = rng.standard_normal(5) if with_bias else None

    def forward(x, w, b):
        return numpy_gpt.layer_norm_forward(x, w, b, 1e-5)

    def backward(dy, cache):
        dx, dw, db = numpy_gpt.layer_norm_backward(dy, cache)
        return {"x": dx, "w": dw, "b": db} if with_bias else {"x": dx, "w": dw}

    for got, want in check_layer(forward, backward, dict(x=x, w=w, b=b)).values():
        assert_close(got, want)


def test_linear_backward():
    rng = np.random.default_rng(RNG_SEED)
    inputs = dict(x=rng.standard_normal((2, 3, 4)), w=rng.standard_normal((4, 5)))
    inputs["b"] = rng.standard_normal(5)

    def backward(dy, cache):
        return dict(zip("xwb", numpy_gpt.linear_backward(dy, cache)))

    for got, want in check_layer(numpy_gpt.linear_forward, backward, inputs).values():
        assert_close(got, want)


@pytest.mark.parametrize("name", numpy_gpt.ACTIVATIONS)
def test_activation_backward(name):
    forward, backward = numpy_gpt.ACTIVATIONS[name]
    x = np.random.default_rng(RNG_SEED).standard_normal((3, 7)) * 2
    x[np.abs(x) < 1e-3] = 0.5  # keep relu's kink away from the finite-difference step
    checks = check_layer(forward, lambda dy, c: {"x": backward(dy, c)}, dict(x=x))
    assert_close(*checks["x"])


def test_gelu_exact_values():
    """x * Phi(x) at known points: Phi(1) = 0.841344746..., Phi(-2) = 0.022750131..."""
    y, _ = numpy_gpt.gelu_forward(np.array([0.0, 1.0, -2.0]))
    np.testing.assert_allclose(y, [0.0, 0.8413447460685429, -0.0455002638963584], rtol=1e-15)


@pytest.mark.parametrize("normalization", numpy_gpt.ATTENTION_NORMALIZATIONS)
def test_attention_normalization_backward(normalization):
    forward, backward = numpy_gpt.ATTENTION_NORMALIZATIONS[normalization]
    scores = np.random.default_rng(RNG_SEED).standard_normal((2, 2, 4, 4))
    att, _ = forward(scores)
    assert np.all(att[..., np.triu_indices(4, k=1)[0], np.triu_indices(4, k=1)[1]] == 0)
    checks = check_layer(forward, lambda d, c: {"scores": backward(d, c)}, dict(scores=scores))
    assert_close(*checks["scores"])


@pytest.mark.parametrize(
    "switches",
    [dict(), dict(attn_scale=False, attn_normalization="none"), dict(bias=False)],
    ids=["gpt2", "unscaled-raw", "no-bias"],
)
def test_attention_backward(switches):
    config = tiny_config(n_head=2, **switches)
    p = numpy_gpt.subdict(perturbed_params(config), "h.0.attn.")
    x = np.random.default_rng(RNG_SEED).standard_normal((2, 5, config.n_embd))

    def forward(x, **p):
        return numpy_gpt.attention_forward(x, p, config)

    def backward(dout, cache):
        dx, grads = numpy_gpt.attention_backward(dout, cache, config)
        return {"x": dx, **grads}

    for got, want in check_layer(forward, backward, dict(x=x, **p)).values():
        assert_close(got, want)


@pytest.mark.parametrize("activation", ["gelu", "sigmoid"])
def test_mlp_backward(activation):
    config = tiny_config(activation=activation)
    p = numpy_gpt.subdict(perturbed_params(config), "h.1.mlp.")
    x = np.random.default_rng(RNG_SEED).standard_normal((2, 3, config.n_embd))

    def forward(x, **p):
        return numpy_gpt.mlp_forward(x, p, config)

    def backward(dout, cache):
        dx, grads = numpy_gpt.mlp_backward(dout, cache, config)
        return {"x": dx, **grads}

    for got, want in check_layer(forward, backward, dict(x=x, **p)).values():
        assert_close(got, want)


@pytest.mark.parametrize("placement", ["pre", "post", "none"])
def test_block_backward(placement):
    config = tiny_config(norm_placement=placement)
    p = numpy_gpt.subdict(perturbed_params(config), "h.0.")
    x = np.random.default_rng(RNG_SEED).standard_normal((1, 4, config.n_embd))

    def forward(x, **p):
        return numpy_gpt.block_forward(x, p, config)

    def backward(dout, cache):
        dx, grads = numpy_gpt.block_backward(dout, cache, config)
        return {"x": dx, **grads}

    for got, want in check_layer(forward, backward, dict(x=x, **p)).values():
        assert_close(got, want)


def test_embedding_backward_accumulates_repeated_tokens():
    rng = np.random.default_rng(RNG_SEED)
    idx = np.array([[1, 3, 1], [0, 1, 3]])  # token 1 three times
    wte, pos = rng.standard_normal((5, 4)), rng.standard_normal((3, 4))

    def forward(wte, pos):
        return numpy_gpt.embedding_forward(idx, wte, pos)

    def backward(dx, cache):
        return dict(zip(("wte", "pos"), numpy_gpt.embedding_backward(dx, cache)))

    for got, want in check_layer(forward, backward, dict(wte=wte, pos=pos)).values():
        assert_close(got, want)


def test_lm_head_and_cross_entropy_backward():
    rng = np.random.default_rng(RNG_SEED)
    x, w = rng.standard_normal((2, 3, 4)), rng.standard_normal((6, 4))
    targets = np.array([[1, -1, 5], [0, 2, -1]])

    def loss():
        logits, _ = numpy_gpt.lm_head_forward(x, w)
        return float(numpy_gpt.cross_entropy_forward(logits, targets)[0])

    logits, head = numpy_gpt.lm_head_forward(x, w)
    _, ce = numpy_gpt.cross_entropy_forward(logits, targets)
    dx, dw = numpy_gpt.lm_head_backward(numpy_gpt.cross_entropy_backward(1.0, ce), head)
    assert_close(dx, numerical_grad(loss, x))
    assert_close(dw, numerical_grad(loss, w))


def test_cross_entropy_ignores_minus_one():
    """The mean runs over the counted positions only, like F.cross_entropy(ignore_index=-1)."""
    logits = np.random.default_rng(RNG_SEED).standard_normal((1, 4, 5))
    targets = np.array([[2, -1, 0, -1]])
    loss, _ = numpy_gpt.cross_entropy_forward(logits, targets)
    log_probs = logits[0] - np.log(np.exp(logits[0]).sum(-1, keepdims=True))
    assert loss == pytest.approx(-(log_probs[0, 2] + log_probs[2, 0]) / 2, rel=1e-14)


# --- the whole model ------------------------------------------------------------------------


FD_SWITCH_SETS = {
    "gpt2-untied": dict(tie_embeddings=False),
    "sinusoidal-post-relu-raw": dict(
        pos_encoding="sinusoidal", norm_placement="post", activation="relu",
        attn_normalization="none",
    ),
    "nopos-nonorm-sigmoid-nobias-unscaled": dict(
        pos_encoding="none", norm_placement="none", activation="sigmoid", bias=False,
        attn_scale=False,
    ),
}  # fmt: skip


@pytest.mark.parametrize("switches", FD_SWITCH_SETS.values(), ids=FD_SWITCH_SETS.keys())
def test_model_gradient_finite_differences(switches):
    """Three entries of every parameter of the first block, of the embeddings and of the head,
    against central differences of the whole model's loss."""
    config = tiny_config(**switches)
    params = perturbed_params(config)
    rng = np.random.default_rng(RNG_SEED)
    idx = rng.integers(0, config.vocab_size, (2, 6))
    targets = rng.integers(0, config.vocab_size, (2, 6))
    targets[0, 2] = -1
    _, _, cache = numpy_gpt.forward(params, idx, config, targets)
    grads = numpy_gpt.backward(params, cache, config)
    h = 1e-6

    for name, p in params.items():
        if name.startswith("h.1."):
            continue
        for flat in rng.choice(p.size, size=min(3, p.size), replace=False):
            i = np.unravel_index(flat, p.shape)
            if name == "wte":
                i = (idx[0, 0],) + i[1:]  # a row that is used
            old = p[i]
            p[i] = old + h
            up = float(numpy_gpt.forward(params, idx, config, targets)[1])
            p[i] = old - h
            down = float(numpy_gpt.forward(params, idx, config, targets)[1])
            p[i] = old
            assert grads[name][i] == pytest.approx((up - down) / (2 * h), abs=1e-8, rel=1e-6)


def test_float32_backward_runs_and_matches_float64():
    config = GPTConfig(vocab_size=23, block_size=8, n_layer=2, n_head=2, n_embd=16)
    params64 = perturbed_params(config)
    params32 = {k: v.astype(np.float32) for k, v in params64.items()}
    rng = np.random.default_rng(RNG_SEED)
    idx = rng.integers(0, config.vocab_size, (2, 8))
    targets = rng.integers(0, config.vocab_size, (2, 8))

    _, loss64, cache64 = numpy_gpt.forward(params64, idx, config, targets)
    _, loss32, cache32 = numpy_gpt.forward(params32, idx, config, targets)
    grads64 = numpy_gpt.backward(params64, cache64, config)
    grads32 = numpy_gpt.backward(params32, cache32, config)

    assert loss32.dtype == np.float32 and float(loss32) == pytest.approx(float(loss64), rel=1e-5)
    for name in params64:
        assert grads32[name].dtype == np.float32, name
        scale = np.abs(grads64[name]).max()
        assert np.abs(grads32[name] - grads64[name]).max() <= 1e-4 * scale, name


# --- parameters, positions, the module's promises ------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_init_params_follows_the_contract_and_gpt2_init(dtype):
    config = GPTConfig(vocab_size=300, block_size=32, n_layer=4, n_head=4, n_embd=64)
    params = numpy_gpt.init_params(config, seed=0, dtype=dtype)

    assert {k: v.shape for k, v in params.items()} == numpy_gpt.param_shapes(config)
    assert all(v.dtype == dtype for v in params.values())
    assert params["wte"].std() == pytest.approx(0.02, rel=0.05)
    resid_std = 0.02 / np.sqrt(2 * config.n_layer)
    assert params["h.0.mlp.c_proj.weight"].std() == pytest.approx(resid_std, rel=0.05)
    assert params["h.0.attn.c_proj.weight"].std() == pytest.approx(resid_std, rel=0.05)
    assert np.all(params["h.2.ln_1.weight"] == 1) and np.all(params["h.2.ln_1.bias"] == 0)
    assert np.all(params["h.3.attn.c_attn.bias"] == 0)
    again = numpy_gpt.init_params(config, seed=0, dtype=dtype)
    assert all(np.array_equal(params[k], again[k]) for k in params)


@pytest.mark.parametrize(
    "switches, absent, present",
    [
        (dict(), {"lm_head.weight"}, {"wpe", "ln_f.weight", "ln_f.bias"}),
        (dict(norm_placement="post"), {"ln_f.weight"}, {"h.0.ln_1.weight", "h.0.ln_2.bias"}),
        (dict(norm_placement="none", bias=False), {"h.0.ln_1.weight", "h.0.mlp.c_fc.bias"}, set()),
        (dict(pos_encoding="sinusoidal", tie_embeddings=False), {"wpe"}, {"lm_head.weight"}),
    ],
)
def test_param_shapes_follow_the_switches(switches, absent, present):
    names = set(numpy_gpt.param_shapes(tiny_config(**switches)))
    assert not absent & names and present <= names


def test_sinusoidal_positions():
    """PE[pos, 2i] = sin(pos / 10000^(2i/C)), PE[pos, 2i+1] = cos(same angle)."""
    table = numpy_gpt.sinusoidal_positions(50, 10, np.float64)
    np.testing.assert_array_equal(table[0], [0, 1] * 5)
    pos, i = 37, 3
    angle = pos / 10000 ** (2 * i / 10)
    assert table[pos, 2 * i] == pytest.approx(np.sin(angle), abs=1e-15)
    assert table[pos, 2 * i + 1] == pytest.approx(np.cos(angle), abs=1e-15)
    assert numpy_gpt.sinusoidal_positions(4, 7, np.float32).dtype == np.float32


def test_forward_refuses_sequences_longer_than_block_size():
    config = tiny_config()
    with pytest.raises(ValueError, match="block_size"):
        numpy_gpt.forward(perturbed_params(config), np.zeros((1, 9), dtype=int), config)


def test_backward_needs_targets():
    config = tiny_config()
    params = perturbed_params(config)
    _, loss, cache = numpy_gpt.forward(params, np.zeros((1, 3), dtype=int), config)
    assert loss is None
    with pytest.raises(ValueError, match="targets"):
        numpy_gpt.backward(params, cache, config)


REFERENCE_FILES = [Path(m.__file__) for m in (numpy_gpt, numpy_optim)]


@pytest.mark.parametrize("path", REFERENCE_FILES, ids=lambda p: p.name)
def test_reference_imports_numpy_and_stdlib_only(path):
    tree = ast.parse(path.read_text())
    roots = {
        a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    roots |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert roots <= {"__future__", "math", "typing", "numpy"}, roots


def test_loading_the_reference_does_not_import_torch():
    """Load the files on their own (not through gpt2lab/__init__) in a fresh interpreter."""
    code = (
        "import importlib.util, sys\n"
        f"for path in {[str(p) for p in REFERENCE_FILES]!r}:\n"
        "    spec = importlib.util.spec_from_file_location('m', path)\n"
        "    spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("module", [numpy_gpt, numpy_optim], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    assert doctest.testmod(module).failed == 0
