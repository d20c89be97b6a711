"""bf16 / int8 weight-only and int8-dynamic decoding: the quantiser against NumPy, each
low-precision layer against a NumPy product of the weights it stores, greedy agreement on a
trained model, and `gpt2lab generate --dtype`. No timings: speed is the benchmark's business."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from gpt2lab.cli import main
from gpt2lab.config import GPTConfig
from gpt2lab.data.stories import generate_text
from gpt2lab.generate import generate
from gpt2lab.model import GPT
from gpt2lab.quantize import (
    BFloat16Linear,
    Int8DynamicLinear,
    Int8Linear,
    dequantize_int8,
    greedy_agreement,
    quantize_int8,
    to_decoding_dtype,
)


def bf16(a: np.ndarray) -> np.ndarray:
    """float32 -> nearest bfloat16 (round half to even), in NumPy: keep the top 16 bits."""
    bits = a.astype(np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16 << 16
    return rounded.astype(np.uint32).view(np.float32)


def test_quantize_int8_matches_numpy_and_error_is_at_most_half_a_scale():
    w = torch.randn(24, 40, generator=torch.Generator().manual_seed(0))
    w[3] = 0.0  # an all-zero row
    q, scale = quantize_int8(w)

    wn = w.numpy()
    ref_scale = np.abs(wn).max(axis=1) / 127.0
    ref_scale[ref_scale == 0] = 1.0
    ref_q = np.clip(np.round(wn / ref_scale[:, None]), -127, 127).astype(np.int8)
    assert q.dtype == torch.int8 and q.shape == w.shape
    np.testing.assert_allclose(scale.numpy(), ref_scale, rtol=1e-6)
    np.testing.assert_array_equal(q.numpy(), ref_q)
    assert (q.abs().amax(dim=1)[torch.arange(24) != 3] == 127).all()  # each row's max is ±127
    error = (dequantize_int8(q, scale) - w).abs()  # (24, 40)
    assert (error <= scale[:, None] / 2 * (1 + 1e-5)).all()
    assert (dequantize_int8(q, scale)[3] == 0).all()


@pytest.fixture
def linear_and_input():
    torch.manual_seed(1)
    linear = nn.Linear(48, 20)
    x = torch.randn(2, 3, 48)  # (B, T, in)
    return linear, x


def test_int8_linear_is_the_product_of_its_stored_weights(linear_and_input):
    linear, x = linear_and_input
    layer = Int8Linear(linear)
    y = layer(x)  # (2, 3, 20)
    assert y.shape == (2, 3, 20) and y.dtype == torch.float32

    q, scale = quantize_int8(linear.weight)
    w = q.numpy().astype(np.float64) * bf16(scale.numpy())[:, None]  # the kernel's bf16 scales
    ref = bf16(x.numpy()).astype(np.float64) @ w.T + linear.bias.detach().numpy()
    np.testing.assert_allclose(y.numpy(), ref, rtol=2e-2, atol=2e-2)  # bf16 output rounding
    # and close to the float32 layer: each weight is off by at most scale / 2
    exact = linear(x).detach()
    bound = (x.abs() @ (scale / 2)[None, :].expand(48, -1)).detach() + 0.05 * exact.abs() + 0.05
    assert ((y - exact).abs() <= bound).all()


def test_int8_dynamic_linear_stores_quantize_int8_and_stays_within_both_roundings(
    linear_and_input,
):
    """The packed matrix is `quantize_int8`'s; the output is off from the float32 layer by
    at most what rounding each weight (scale / 2) and each 7-bit input (step / 2) allows."""
    linear, x = linear_and_input
    layer = Int8DynamicLinear(linear)
    y = layer(x)  # (2, 3, 20)
    assert y.shape == (2, 3, 20) and y.dtype == torch.float32

    q, scale = quantize_int8(linear.weight)
    packed, bias = torch.ops.quantized.linear_unpack(layer.packed)
    np.testing.assert_array_equal(packed.int_repr().numpy(), q.numpy())
    np.testing.assert_allclose(packed.q_per_channel_scales().numpy(), scale.numpy(), rtol=1e-6)
    torch.testing.assert_close(bias, linear.bias.detach())

    xn = x.numpy().astype(np.float64)
    step = (max(xn.max(), 0) - min(xn.min(), 0)) / 127  # one 7-bit step over the input's range
    w = linear.weight.detach().numpy().astype(np.float64)  # (20, 48)
    exact = xn @ w.T + linear.bias.detach().numpy()
    s = scale.numpy()  # (20,): each weight of row o is off by at most s[o] / 2
    # x̂ŵ − xw = x·(ŵ − w) + (x̂ − x)·ŵ, with |ŵ| ≤ |w| + s / 2
    bound = np.abs(xn).sum(-1, keepdims=True) * s / 2 + step / 2 * (np.abs(w) + s[:, None] / 2).sum(
        1
    )
    assert (np.abs(y.numpy() - exact) <= bound * 1.01 + 1e-5).all()
    assert np.abs(y.numpy() - exact).max() > 0  # it did quantise


def test_bfloat16_linear_is_the_product_of_its_bf16_weights(linear_and_input):
    linear, x = linear_and_input
    y = BFloat16Linear(linear)(x)
    assert y.dtype == torch.float32
    w = bf16(linear.weight.detach().numpy()).astype(np.float64)
    b = bf16(linear.bias.detach().numpy())
    ref = bf16(x.numpy()).astype(np.float64) @ w.T + b
    np.testing.assert_allclose(y.numpy(), ref, rtol=2e-2, atol=2e-2)


def test_to_decoding_dtype_converts_blocks_and_head_keeps_embeddings(tiny_gpt):
    model = tiny_gpt("tiny", 0)
    assert to_decoding_dtype(model, "float32") is model
    low = to_decoding_dtype(copy.deepcopy(model), "int8")
    assert isinstance(low.lm_head, Int8Linear)
    assert isinstance(low.blocks[0].attn.c_attn, Int8Linear)
    assert isinstance(low.blocks[-1].mlp.c_proj, Int8Linear)
    assert not any(isinstance(m, nn.Linear) for m in low.modules())
    assert low.wte.weight.dtype == torch.float32
    torch.testing.assert_close(low.wte.weight, model.wte.weight)


def test_agreement_of_a_model_with_itself_is_one(tiny_gpt):
    model = tiny_gpt("tiny", 0)
    prompts = torch.randint(0, model.config.vocab_size, (2, 5))
    agreement = greedy_agreement(model, model, prompts, 6)
    assert (agreement.free_running, agreement.teacher_forced, agreement.n_tokens) == (1, 1, 12)


@pytest.fixture(scope="module")
def trained():
    """A 2-layer, 64-wide byte-level model trained 200 steps on the stories corpus (~3 s),
    and 16 prompts of 24 bytes from text it did not train on."""
    data = torch.tensor(list(generate_text(30_000, seed=0).encode()), dtype=torch.long)
    held_out = torch.tensor(list(generate_text(3_000, seed=1).encode()), dtype=torch.long)
    config = GPTConfig(vocab_size=256, block_size=64, n_layer=2, n_head=2, n_embd=64)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = GPT(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        starts = torch.randint(0, data.numel() - 65, (16,), generator=g)
        chunk = torch.stack([data[s : s + 65] for s in starts.tolist()])  # (16, 65)
        _, loss = model(chunk[:, :-1], chunk[:, 1:])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    torch.set_num_threads(threads)
    model.eval()
    starts = torch.arange(16) * 150
    prompts = torch.stack([held_out[s : s + 24] for s in starts.tolist()])  # (16, 24)
    counts = torch.bincount(data, minlength=256).double()
    p = counts[counts > 0] / counts.sum()
    unigram = float(-(p * p.log()).sum())  # nats per byte of a model that ignores context
    return model, prompts, float(loss.detach()), unigram


@pytest.mark.parametrize(
    "dtype, teacher_forced, free_running",
    [("bfloat16", 0.95, 0.8), ("int8", 0.95, 0.8), ("int8-dynamic", 0.95, 0.8)],
)
def test_low_precision_greedy_agrees_with_float32(trained, dtype, teacher_forced, free_running):
    """Stated fractions: each greedy step (teacher-forced) picks fp32's token >= 95% of the
    time, and free-running continuations of 32 bytes share >= 80% of fp32's tokens
    (measured: 0.99 teacher-forced; 0.97 bf16, 0.92 int8, 0.94 int8-dynamic free-running)."""
    model, prompts, loss, unigram = trained
    assert loss < unigram - 0.3  # trained: it uses the context, beyond byte frequencies
    low = to_decoding_dtype(copy.deepcopy(model), dtype)
    agreement = greedy_agreement(model, low, prompts, 32)
    assert agreement.teacher_forced >= teacher_forced, agreement
    assert agreement.free_running >= free_running, agreement


def test_cli_generate_dtype_int8_prints_the_low_precision_greedy_text(
    small_dir, gpt2_tokenizer, capsys
):
    from gpt2lab.pretrained import load_model_and_tokenizer

    args = ["--prompt", "Once upon a time", "--max-new-tokens", "8", "--temperature", "0"]
    assert main(["generate", "--model", str(small_dir), *args, "--dtype", "int8"]) == 0
    model, _, _ = load_model_and_tokenizer(str(small_dir), "cpu")
    low = to_decoding_dtype(model, "int8")
    prompt = torch.tensor([gpt2_tokenizer.encode("Once upon a time")])
    ids = generate(low, prompt, 8, temperature=0, stop=gpt2_tokenizer.eot_token)
    expected = gpt2_tokenizer.decode([t for t in ids[0].tolist() if t != gpt2_tokenizer.eot_token])
    assert capsys.readouterr().out == expected + "\n"


def test_bfloat16_linear_one_row_path_matches_many_rows(linear_and_input):
    """A single row (torch.mv) and a batch of rows (F.linear) give the same products."""
    linear, x = linear_and_input
    layer = BFloat16Linear(linear)
    one = torch.cat([layer(x[b : b + 1, t : t + 1]) for b in range(2) for t in range(3)])
    torch.testing.assert_close(one.view(2, 3, -1), layer(x), rtol=1e-2, atol=2e-2)
