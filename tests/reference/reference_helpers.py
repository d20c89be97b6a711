"""Helpers shared by the NumPy reference tests: weights in the contract's layout from Hugging
Face's GPT2LMHeadModel and from gpt2lab's own torch GPT, and a robust relative error."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from gpt2lab.config import GPTConfig

HF_ACTIVATION = {"gelu_tanh": "gelu_new", "gelu": "gelu", "relu": "relu", "sigmoid": "sigmoid"}


def rel_err(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| / max |want| (guarded against an all-zero reference)."""
    want = np.asarray(want, dtype=np.float64)
    scale = max(float(np.abs(want).max()), 1e-30)
    return float(np.abs(np.asarray(got, dtype=np.float64) - want).max()) / scale


def contract_name(name: str) -> str:
    """A torch parameter name in the weight contract: 'transformer.h.0.ln_1.weight' (HF) or
    'blocks.0.ln_1.weight' (gpt2lab) -> 'h.0.ln_1.weight'; 'wte.weight' -> 'wte'."""
    name = name.removeprefix("transformer.")
    if name.startswith("blocks."):
        name = "h." + name.removeprefix("blocks.")
    if name in ("wte.weight", "wpe.weight"):
        name = name.removesuffix(".weight")
    return name


def to_contract(model: nn.Module, *, transpose_linear: bool, grads: bool = False):
    """The model's parameters (or their .grad) as a contract dict of NumPy arrays.

    gpt2lab's nn.Linear stores weights as [out, in], so with transpose_linear those are
    transposed to the contract's [in, out]; lm_head keeps [V, C]. HF's Conv1D is already
    [in, out]. named_parameters() lists a tied matrix once, under wte."""
    linear = {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    out = {}
    for name, p in model.named_parameters():
        t = (p.grad if grads else p).detach()
        if transpose_linear and name in linear and not name.endswith("lm_head.weight"):
            t = t.T
        out[contract_name(name)] = t.numpy()
    return out


def hf_model(config: GPTConfig, seed: int = 0, dtype: torch.dtype = torch.float64):
    """An HF GPT2LMHeadModel holding `config`, in eval mode, with random weights.

    It is built on the meta device and filled here (HF's own init takes ~10 s at 124M): matmul
    weights and embeddings ~ N(0, 0.02), biases ~ N(0, 0.05), LayerNorm gains ~ 1 + N(0, 0.1),
    so no bias is 0 and no gain is 1 (those values would hide mistakes)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    hf_config = GPT2Config(
        vocab_size=config.vocab_size,
        n_positions=config.block_size,
        n_embd=config.n_embd,
        n_layer=config.n_layer,
        n_head=config.n_head,
        n_inner=config.n_inner,
        activation_function=HF_ACTIVATION[config.activation],
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        layer_norm_epsilon=config.layer_norm_eps,
        scale_attn_weights=config.attn_scale,
        tie_word_embeddings=config.tie_embeddings,
        bos_token_id=0,
        eos_token_id=0,
        attn_implementation="eager",
    )
    with torch.device("meta"):
        model = GPT2LMHeadModel(hf_config)
    model = model.to(dtype).to_empty(device="cpu")
    model.tie_weights()
    assert not list(model.buffers()), "to_empty leaves buffers uninitialised"
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".ln_" in name and name.endswith(".weight"):
                p.normal_(1.0, 0.1, generator=generator)
            else:
                p.normal_(0.0, 0.02 if p.dim() == 2 else 0.05, generator=generator)
    return model.eval()


def perturb(model: nn.Module, seed: int = 0, scale: float = 0.05) -> None:
    """Nudge every parameter off its init (biases 0 and gains 1 would hide mistakes)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=generator, dtype=p.dtype))
