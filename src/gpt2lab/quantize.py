"""Low-precision weights for CPU decoding: bfloat16, int8 weight-only and int8 dynamic layers.

Decoding one token at a time reads every weight matrix once per token, so its speed is bounded
by bytes read, not by arithmetic. Storing the matrices in fewer bytes lowers that bound (how
close torch's CPU kernels come to it is measured in docs/evaluation.md#speed):

    float32   4 bytes per weight   the model as trained
    bfloat16  2 bytes per weight   the float32 value rounded to 8 significant bits
    int8      1 byte per weight    w ≈ q · s, q an integer in [-127, 127], one scale s per
                                   output row (per-output-channel symmetric quantisation)
    int8-dynamic  1 byte per weight  the same int8 weights, and each layer's input rounded to
                                   7-bit integers with one scale per call ("dynamic")

For bfloat16 and int8 only the weights change ("weight-only"): each linear layer rounds its
input to bfloat16, multiplies by the stored matrix, and returns float32. int8-dynamic also
quantises the layer's input, so that the product runs in integer arithmetic (fbgemm's
kernel, `torch.ops.quantized.linear_dynamic`): the fastest of the three on the x86 CPUs
measured (docs/evaluation.md#speed), and the least exact.
In all three the residual stream, LayerNorms, attention and the KV cache stay float32.

What is converted: every `nn.Linear` of the blocks (c_attn, c_proj, c_fc, mlp c_proj) and the
LM head (C x V, a third of GPT-2 small's weights). The input embeddings (wte, wpe) stay
float32: decoding reads one row of each per token, not the whole matrix. A tied LM head gets
its own low-precision copy; wte keeps the float32 original.

    model = to_decoding_dtype(model, "int8")   # in place; returns the model
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gpt2lab.errors import GPT2LabError
from gpt2lab.generate import generate
from gpt2lab.model import GPT, eval_mode

DECODING_DTYPES = ("float32", "bfloat16", "int8", "int8-dynamic")
"""The weight formats `to_decoding_dtype` accepts (float32 leaves the model as it is)."""


def quantize_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(out, in) float weight -> (q (out, in) int8, scale (out,) float32), w ≈ q · scale.

    Each output row gets scale = max |w| / 127, so its largest weight maps to ±127 and
    every weight is off by at most scale / 2 after rounding. Row [0.5, -1.27, 0.01]:
    scale 0.01, q [50, -127, 1]. An all-zero row gets scale 1 (q all 0, exact).
    """
    w = weight.detach().float()
    scale = w.abs().amax(dim=1) / 127.0  # (out,)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8)  # (out, in)
    return q.contiguous(), scale


def dequantize_int8(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The float32 matrix (out, in) that int8 weights q with row scales stand for."""
    return q.float() * scale[:, None]


class BFloat16Linear(nn.Module):
    """y = x Wᵀ + b with W and b stored in bfloat16; x and y float32 (..., in) -> (..., out).

    One input row (batch-1 decoding) goes through `torch.mv`: on CPU (torch 2.13) its
    bfloat16 matrix-vector kernel streams the weights 1.2-1.5x faster than `F.linear`'s
    (benchmarks/generate_speed.py measures the result); more rows go through `F.linear`.
    """

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features = linear.in_features
        self.register_buffer("weight", linear.weight.detach().to(torch.bfloat16).contiguous())
        bias = linear.bias.detach().to(torch.bfloat16) if linear.bias is not None else None
        self.register_buffer("bias", bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(torch.bfloat16)
        if x.numel() != x.size(-1):
            return F.linear(x, self.weight, self.bias).float()
        y = torch.mv(self.weight, x.reshape(-1))  # (out,)
        if self.bias is not None:
            y = y + self.bias
        return y.view(*x.shape[:-1], -1).float()


class Int8Linear(nn.Module):
    """y = x (q · s)ᵀ + b with int8 q (out, in) and float row scales s; x, y float32.

    The product runs in torch's int8 weight-only kernel (`aten._weight_int8pack_mm`), which
    reads the int8 matrix and applies the scales to the bfloat16 input's products.
    """

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features = linear.in_features
        q, scale = quantize_int8(linear.weight)
        self.register_buffer("q", q)  # (out, in) int8
        self.register_buffer("scale", scale.to(torch.bfloat16))  # (out,)
        bias = linear.bias.detach().float() if linear.bias is not None else None
        self.register_buffer("bias", bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.size(-1)).to(torch.bfloat16)  # (N, in)
        y = torch.ops.aten._weight_int8pack_mm(flat, self.q, self.scale).float()  # (N, out)
        if self.bias is not None:
            y = y + self.bias
        return y.view(*x.shape[:-1], y.size(-1))


class Int8DynamicLinear(nn.Module):
    """y ≈ x Wᵀ + b with int8 W (per output row, as `quantize_int8`) and x quantised per call.

    fbgemm's dynamic kernel rounds the float32 input (N, in) to 7-bit unsigned integers with
    one scale and zero point for the whole call, multiplies in integer arithmetic and returns
    float32 (N, out). Seven bits, not eight (`reduce_range`): the x86 kernel adds pairs of
    8-bit products in 16 bits, which 8-bit inputs could overflow.
    """

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        q, scale = quantize_int8(linear.weight)
        zero = torch.zeros(q.size(0), dtype=torch.long)
        with warnings.catch_warnings():  # torch 2.13 marks quantised tensors as deprecated
            warnings.simplefilter("ignore")
            weight = torch._make_per_channel_quantized_tensor(q, scale.double(), zero, 0)
            bias = linear.bias.detach().float() if linear.bias is not None else None
            self.packed = torch.ops.quantized.linear_prepack(weight, bias)
        self.out_features, self.in_features = q.shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.size(-1)).float().contiguous()  # (N, in)
        y = torch.ops.quantized.linear_dynamic(flat, self.packed, True)  # (N, out)
        return y.view(*x.shape[:-1], self.out_features)


LOW_PRECISION = {"bfloat16": BFloat16Linear, "int8": Int8Linear, "int8-dynamic": Int8DynamicLinear}


def check_decoding_dtype(dtype: str) -> str:
    """The dtype name if it is one of DECODING_DTYPES, else one clear GPT2LabError."""
    if dtype not in DECODING_DTYPES:
        raise GPT2LabError(f"dtype must be one of {', '.join(DECODING_DTYPES)}, got {dtype!r}")
    if dtype == "int8" and not hasattr(torch.ops.aten, "_weight_int8pack_mm"):
        raise GPT2LabError(f"int8 decoding needs torch >= 2.3, this is torch {torch.__version__}")
    if dtype == "int8-dynamic" and torch.backends.quantized.engine == "none":
        raise GPT2LabError("int8-dynamic decoding needs a quantised engine; this torch has none")
    return dtype


def to_decoding_dtype(model: GPT, dtype: str) -> GPT:
    """Replace the model's linear layers (blocks and LM head) by `dtype` copies, in place.

    "float32" returns the model unchanged. The model is meant for inference afterwards
    (the low-precision layers hold buffers, not trainable parameters). Returns the model.
    """
    check_decoding_dtype(dtype)
    if dtype == "float32":
        return model
    make = LOW_PRECISION[dtype]
    with torch.no_grad():
        for block in model.blocks:
            for parent in (block.attn, block.mlp):
                for name, child in list(parent.named_children()):
                    if isinstance(child, nn.Linear):
                        setattr(parent, name, make(child))
        model.lm_head = make(model.lm_head)
    return model


@dataclass(frozen=True)
class Agreement:
    """How often a low-precision model picks the reference model's greedy token."""

    free_running: float
    """Identical tokens, position by position, when each model continues on its own text.
    After a first difference the texts differ, so later positions mostly differ too."""
    teacher_forced: float
    """Identical argmax at each position of the reference's own continuation: the
    per-step agreement, with no cascade after a difference."""
    n_tokens: int
    """Prompts × new tokens compared."""


def batch_one_greedy(model: GPT, prompts: torch.Tensor, new_tokens: int) -> torch.Tensor:
    """Greedy continuations (N, T + M) of prompts (N, T), one prompt at a time: batch-1
    decoding, so the matrix-vector kernels are the ones `gpt2lab generate` uses."""
    return torch.cat([generate(model, row[None], new_tokens, temperature=0) for row in prompts])


@torch.inference_mode()
def greedy_agreement(
    reference: GPT, candidate: GPT, prompts: torch.Tensor, new_tokens: int
) -> Agreement:
    """Greedy agreement of `candidate` with `reference` over prompts (N, T) × new_tokens.

    Example: if 2 prompts × 4 tokens give reference [[5, 6, 7, 8], [1, 2, 3, 4]] and
    candidate [[5, 6, 9, 9], [1, 2, 3, 4]], free_running = 6 / 8 = 0.75.
    """
    T = prompts.size(1)
    ours = batch_one_greedy(reference, prompts, new_tokens)  # (N, T + M)
    theirs = batch_one_greedy(candidate, prompts, new_tokens)
    free = (ours[:, T:] == theirs[:, T:]).float().mean()
    with eval_mode(candidate):
        logits, _ = candidate(ours[:, :-1])  # (N, T + M - 1, V)
    forced = (logits[:, T - 1 :].argmax(-1) == ours[:, T:]).float().mean()
    return Agreement(float(free), float(forced), ours[:, T:].numel())
