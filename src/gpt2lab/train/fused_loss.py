"""The output layer and the cross-entropy together: one (N, V) array instead of four.

The plain way materialises the (N, V) logits, their log-softmax, and in the backward the
(N, V) gradient of each: four arrays of N·V floats (a default training batch: 4096 tokens ×
4096 words = 64 MiB each; GPT-2 at B=4, T=256: 1024 × 50304 = 197 MiB each), each written
to fresh memory and read back, plus the fill of a zero gradient. Here there is one:
the logits are computed once, in the compute dtype, and turned into their own gradient in
place, `chunk` rows at a time (a chunk stays in cache while it is read and written):

    logits = h · Wᵀ                       (N, V), in the compute dtype (bf16 under autocast)
    per chunk of rows, in float32:
      lse    = logsumexp(logits_c)
      loss  += Σ (lse - logits_c[y])      valid targets only (-1 is ignored)
      g_c    = softmax(logits_c) - onehot(y), written over logits_c; ignored rows are 0
    dh = g · W                            (N, C)
    dW = gᵀ · h                           (V, C), float32

so the forward already holds the gradients and the backward only scales them by the
incoming gradient (the loss is Σ·scale, so that is one multiply). The numbers are those of
`lm_head` + `F.cross_entropy(reduction="sum")` up to float rounding (tests/train/
test_fused_loss.py checks loss and gradients against torch autograd).

>>> import torch.nn.functional as F
>>> h, w, y = torch.randn(6, 4), torch.randn(10, 4), torch.tensor([1, 2, -1, 3, 4, 5])
>>> fused = linear_cross_entropy(h, w, y, chunk=4)
>>> plain = F.cross_entropy(h @ w.T, y, ignore_index=-1, reduction="sum")
>>> bool(torch.allclose(fused, plain, atol=1e-5))
True
"""

from __future__ import annotations

import torch

SOFTMAX_ELEMENTS = 2**20
"""Logits whose softmax is taken at once (4 MiB in float32: they stay in cache between the
passes over them)."""


def chunk_rows(vocab_size: int, n_embd: int) -> tuple[int, int]:
    """(rows per matmul chunk, rows per softmax chunk) for a vocabulary and width.

    A matmul chunk adds its gᵀ·h to the (V, C) weight gradient, so it should hold several
    times C rows for that traffic not to dominate; the softmax chunk should fit in cache.
    The tiny shape (4096 words, C=128): (512, 256); GPT-2 (50304, 768): (3072, 20).
    """
    softmax = max(1, SOFTMAX_ELEMENTS // vocab_size)
    return max(4 * n_embd, softmax), softmax


class LinearCrossEntropy(torch.autograd.Function):
    """Σ cross-entropy of (h · Wᵀ) against y; the gradients are computed in the forward."""

    @staticmethod
    def forward(ctx, h, weight, y, compute_dtype, rows, want_grad):  # h (N, C), weight (V, C)
        acc = torch.promote_types(compute_dtype, torch.float32)  # softmax and dW: fp32 or wider
        w = weight.to(compute_dtype)  # (V, C), cast once for all chunks
        loss = torch.zeros((), dtype=acc, device=h.device)
        dh = torch.empty_like(h) if want_grad else None
        dw = None  # (V, C) in acc, started by the first chunk's product (no zero fill)
        matmul_rows, softmax_rows = rows
        for start in range(0, h.shape[0], matmul_rows):
            stop = start + matmul_rows
            h_c = h[start:stop].to(compute_dtype)  # (n, C)
            logits = h_c @ w.T  # (n, V), becomes the gradient in place
            for s in range(0, logits.shape[0], softmax_rows):
                part = logits[s : s + softmax_rows]
                z = part.to(acc)  # float32: a view when no cast is needed
                loss += softmax_gradient_(z, y[start + s : start + s + z.shape[0]], want_grad)
                if want_grad and z.dtype != part.dtype:
                    part.copy_(z)
            if want_grad:
                dh[start:stop] = logits @ w  # (n, C)
                if dw is None:
                    dw = (logits.T @ h_c).to(acc)  # (V, C)
                elif compute_dtype == acc:
                    dw.addmm_(logits.T, h_c)
                else:
                    dw += logits.T @ h_c
        if want_grad and dw is None:  # no rows at all
            dw = torch.zeros_like(weight, dtype=acc)
        ctx.save_for_backward(dh, dw)
        return loss

    @staticmethod
    def backward(ctx, grad_loss):  # grad_loss: () — d(objective)/d(loss)
        dh, dw = ctx.saved_tensors
        return dh * grad_loss, dw * grad_loss, None, None, None, None


def linear_cross_entropy(
    h: torch.Tensor,
    weight: torch.Tensor,
    y: torch.Tensor,
    *,
    compute_dtype: torch.dtype | None = None,
    chunk: int | None = None,
) -> torch.Tensor:
    """Σ over valid tokens of cross-entropy(h · weightᵀ, y): a float32 scalar (float64 for
    float64 inputs).

    h (..., C) features, weight (V, C) the output layer (GPT's lm_head, tied to wte), y (...)
    targets with -1 ignored. compute_dtype: the matmuls' dtype (default h's; bfloat16 under
    bf16 training, with float32 softmax and float32 weight gradient).
    """
    h2 = h.reshape(-1, h.shape[-1])  # (N, C)
    compute = compute_dtype or h.dtype
    rows = (chunk, chunk) if chunk else chunk_rows(*weight.shape)
    want_grad = torch.is_grad_enabled() and (h.requires_grad or weight.requires_grad)
    return LinearCrossEntropy.apply(h2, weight, y.reshape(-1), compute, rows, want_grad)


def softmax_gradient_(z: torch.Tensor, y: torch.Tensor, want_grad: bool) -> torch.Tensor:
    """Σ cross-entropy of logits z (n, V) against y (n,), -1 ignored; with want_grad, z is
    overwritten by the loss's gradient: softmax(z) - onehot(y), 0 on ignored rows.

    With want_grad the exponentials are taken once, in place, and serve both the loss
    (lse = m + log Σ exp(z - m), m the row max, as logsumexp computes it) and the gradient
    (exp(z - m) / Σ): five passes over z instead of logsumexp's four plus three more.
    """
    valid = y != -1
    target = y.clamp(min=0)[:, None]  # (n, 1)
    picked = z.gather(1, target)[:, 0]  # (n,)
    if want_grad:
        m = z.amax(dim=1, keepdim=True)  # (n, 1)
        z.sub_(m).exp_()  # exp(z - m), each in (0, 1]
        total = z.sum(dim=1)  # (n,)
        lse = m[:, 0] + total.log()
        keep = valid.to(z.dtype)  # (n,): 1 for a target, 0 for an ignored row
        z.mul_((keep / total)[:, None])  # softmax, 0 on ignored rows
        z.scatter_add_(1, target, -keep[:, None])  # - onehot(y) on the valid rows
    else:
        lse = torch.logsumexp(z, dim=1)  # (n,)
    return torch.where(valid, lse - picked, 0.0).sum()
