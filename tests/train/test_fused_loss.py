"""The fused output layer + cross-entropy against torch autograd, and the training step's
numerics across its paths: fused vs logits, bf16 vs float32, compiled vs eager."""

import pytest
import torch
import torch.nn.functional as F

from gpt2lab.config import GPTConfig
from gpt2lab.model import GPT
from gpt2lab.train.engine import accumulate_gradients, fast_attention_path, fused_head
from gpt2lab.train.fused_loss import chunk_rows, linear_cross_entropy

CPU = torch.device("cpu")


def autograd_reference(h, w, y):
    """Loss and gradients of F.linear + F.cross_entropy(sum) by torch autograd."""
    h, w = h.detach().requires_grad_(), w.detach().requires_grad_()
    loss = F.cross_entropy(F.linear(h, w), y, ignore_index=-1, reduction="sum")
    loss.backward()
    return loss.detach(), h.grad, w.grad


@pytest.mark.parametrize("chunk", [None, 1, 5, 64])
def test_loss_and_gradients_equal_autograd_in_float64(chunk):
    """Any chunking (one that does not divide N too), ignored targets, a scaled objective:
    the same loss and gradients as autograd to float64 rounding."""
    gen = torch.Generator().manual_seed(0)
    h = torch.randn(23, 8, dtype=torch.float64, generator=gen, requires_grad=True)
    w = torch.randn(17, 8, dtype=torch.float64, generator=gen, requires_grad=True)
    y = torch.randint(0, 17, (23,), generator=gen)
    y[[0, 7, 22]] = -1
    loss = linear_cross_entropy(h, w, y, chunk=chunk)
    (loss * 0.3).backward()
    ref_loss, ref_dh, ref_dw = autograd_reference(h, w, y)
    torch.testing.assert_close(loss.detach(), ref_loss, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h.grad, 0.3 * ref_dh, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(w.grad, 0.3 * ref_dw, rtol=1e-10, atol=1e-12)
    assert h.grad[[0, 7, 22]].abs().max() == 0  # ignored tokens get no gradient


def test_bfloat16_matmuls_stay_close_to_float32():
    """bf16 matmuls (float32 softmax and weight gradient): within bf16 rounding of the
    float32 autograd result."""
    gen = torch.Generator().manual_seed(1)
    h = torch.randn(64, 32, generator=gen, requires_grad=True)
    w = (0.1 * torch.randn(50, 32, generator=gen)).requires_grad_()
    y = torch.randint(0, 50, (64,), generator=gen)
    loss = linear_cross_entropy(h, w, y, compute_dtype=torch.bfloat16, chunk=16)
    loss.backward()
    assert loss.dtype == torch.float32 and w.grad.dtype == torch.float32
    ref_loss, ref_dh, ref_dw = autograd_reference(h, w, y)
    torch.testing.assert_close(loss.detach(), ref_loss, rtol=5e-3, atol=0)
    torch.testing.assert_close(h.grad, ref_dh, rtol=0, atol=3e-2 * ref_dh.abs().max())
    torch.testing.assert_close(w.grad, ref_dw, rtol=0, atol=3e-2 * ref_dw.abs().max())


def test_no_grad_computes_the_loss_only():
    gen = torch.Generator().manual_seed(2)
    h, w = torch.randn(10, 4, generator=gen), torch.randn(7, 4, generator=gen)
    w.requires_grad_()
    y = torch.randint(0, 7, (10,), generator=gen)
    with torch.no_grad():
        loss = linear_cross_entropy(h, w, y)
    assert not loss.requires_grad
    torch.testing.assert_close(loss, autograd_reference(h, w, y)[0])


def test_chunk_rows():
    assert chunk_rows(4096, 128) == (512, 256)
    assert chunk_rows(50304, 768) == (3072, 20)


# --- the training step ------------------------------------------------------------------------


def tiny_gpt(dtype=torch.float32) -> GPT:
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=97, block_size=16, n_layer=2, n_head=2, n_embd=32)
    return GPT(config).to(dtype)


def batch(seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 97, (4, 16), generator=gen)
    y = torch.randint(0, 97, (4, 16), generator=gen)
    y[0, :3] = -1
    return x, y


def step_gradients(model, dtype="float32"):
    """Σ loss and the gradients of one accumulate_gradients step (two micro-batches)."""
    batches = [batch(0), batch(1)]
    n = sum(int((y != -1).sum()) for _, y in batches)
    total = accumulate_gradients(model, batches, scale=1 / n, device=CPU, dtype=dtype)
    grads = {k.removeprefix("_orig_mod."): p.grad.clone() for k, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    return float(total) / n, grads


def test_fused_step_equals_the_logits_step_in_float64():
    """A hook on the logits sends the step through lm_head + F.cross_entropy (the plain
    path): the fused step's loss and every gradient agree with it to float64 rounding."""
    model = tiny_gpt(torch.float64)
    assert fused_head(model, "float64") is model.lm_head.weight
    fused_loss, fused = step_gradients(model, "float64")
    model.hook_logits.register_forward_hook(lambda module, args, out: out)
    assert fused_head(model, "float64") is None
    plain_loss, plain = step_gradients(model, "float64")
    assert fused_loss == pytest.approx(plain_loss, rel=1e-13)
    for name in plain:
        torch.testing.assert_close(fused[name], plain[name], rtol=1e-9, atol=1e-13)


def cosine(a, b) -> float:
    return float(F.cosine_similarity(a.flatten(), b.flatten(), dim=0))


def test_bfloat16_step_agrees_with_float32():
    """The bf16 step (autocast, explicit attention, fused loss in bf16 matmuls) against the
    float32 one on the same weights: loss within 1%, every gradient within 2° (cos > 0.999)
    and its norm within 3%."""
    model = tiny_gpt()
    loss32, g32 = step_gradients(model, "float32")
    fast_attention_path(model, CPU, "bfloat16")
    loss16, g16 = step_gradients(model, "bfloat16")
    assert loss16 == pytest.approx(loss32, rel=1e-2)
    for name in g32:
        assert cosine(g16[name], g32[name]) > 0.999, name
        assert g16[name].norm().item() == pytest.approx(g32[name].norm().item(), rel=3e-2), name


@pytest.mark.slow
def test_compiled_step_agrees_with_eager():
    """torch.compile of the model (inductor, ~30 s cold): loss and gradients of the eager
    float32 step to float32 rounding, and the bf16 compiled step close to the bf16 eager."""
    eager = tiny_gpt()
    loss_e, g_e = step_gradients(eager)
    compiled = torch.compile(tiny_gpt())
    loss_c, g_c = step_gradients(compiled)
    assert loss_c == pytest.approx(loss_e, rel=1e-5)
    for name in g_e:
        torch.testing.assert_close(g_c[name], g_e[name], rtol=1e-3, atol=1e-5)
    bf16 = tiny_gpt()
    fast_attention_path(bf16, CPU, "bfloat16")
    loss_b, g_b = step_gradients(torch.compile(bf16), "bfloat16")
    assert loss_b == pytest.approx(loss_e, rel=1e-2)
    for name in g_e:
        assert cosine(g_b[name], g_e[name]) > 0.999, name
