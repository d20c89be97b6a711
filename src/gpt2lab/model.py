"""GPT-2, top to bottom.

    tokens ──wte──┐
                  + ──drop──> [Block × n_layer] ──ln_f──> lm_head ──> logits
    positions─wpe─┘

    Block (pre-norm, GPT-2):   x = x + attn(ln_1(x));   x = x + mlp(ln_2(x))

Shapes: B batch, T new positions, S key positions (T, or more with a KV cache), C n_embd,
nh heads, hs head size (C // nh), F the MLP width (4C), V vocab.

Every architecture switch of `GPTConfig` is resolved here, in `__init__`, to a real module
or `nn.Identity()`, so `forward` reads the same whatever was switched off. Named `HookPoint`s
(see hooks.py) mark every activation worth looking at; they cost nothing when unused.

One file on purpose (about 470 lines): the model reads top to bottom like the paper, from
LayerNorm to GPT, then the three small rules its users need (context limit, device, mode).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from gpt2lab.config import GPTConfig
from gpt2lab.errors import GPT2LabError
from gpt2lab.hooks import HookedModule, HookPoint

# ---------------------------------------------------------------------------------------------
# 1. Normalisation and positions
# ---------------------------------------------------------------------------------------------


class LayerNorm(nn.Module):
    """LayerNorm with an optional bias: (x - mean) / sqrt(var + eps) * weight + bias."""

    def __init__(self, n_embd: int, bias: bool, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n_embd))
        self.bias = nn.Parameter(torch.zeros(n_embd)) if bias else None
        self.eps = eps
        self.hook_normalized = HookPoint()  # (B, T, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x, self.weight.shape, self.weight, self.bias, self.eps)
        return self.hook_normalized(y)


def make_norm(config: GPTConfig, present: bool) -> nn.Module:
    return (
        LayerNorm(config.n_embd, config.bias, config.layer_norm_eps) if present else nn.Identity()
    )


class SinusoidalPositions(nn.Module):
    """The fixed table of Vaswani et al., computed for any position (no length limit).

    PE[p, 2i] = sin(p / 10000^(2i/C)),  PE[p, 2i+1] = cos(p / 10000^(2i/C)).
    At p = 0 the row is [0, 1, 0, 1, ...]; low columns turn fast, high columns slowly.
    Computed in float64 (the caller casts), so a float64 model gets exact positions.
    """

    def __init__(self, n_embd: int, scale: float = 1.0) -> None:
        super().__init__()
        self.n_embd = n_embd
        self.scale = scale  # the table's RMS is 1/sqrt(2) times this

    def forward(self, pos: torch.Tensor) -> torch.Tensor:  # (B|1, T) -> (B|1, T, C)
        exact = torch.float32 if pos.device.type == "mps" else torch.float64  # mps has no float64
        column = torch.arange(self.n_embd, device=pos.device)  # (C,)
        inv_freq = 10000.0 ** (-(column // 2 * 2).to(exact) / self.n_embd)  # 2i for cols 2i, 2i+1
        angle = pos.unsqueeze(-1).to(exact) * inv_freq  # (B|1, T, C)
        return self.scale * torch.where(column % 2 == 1, torch.cos(angle), torch.sin(angle))


class NoPositions(nn.Module):
    """No positional information at all: the model sees a bag of tokens (plus causality)."""

    def forward(self, pos: torch.Tensor) -> torch.Tensor:  # (B|1, T) -> scalar 0
        return pos.new_zeros((), dtype=torch.float32)


def make_positions(config: GPTConfig) -> nn.Module:
    if config.pos_encoding == "learned":
        return nn.Embedding(config.block_size, config.n_embd)
    if config.pos_encoding == "sinusoidal":
        return SinusoidalPositions(config.n_embd, config.sinusoidal_scale)
    return NoPositions()


# ---------------------------------------------------------------------------------------------
# 2. Attention
# ---------------------------------------------------------------------------------------------


class KVCache:
    """Preallocated keys and values for incremental decoding.

    k, v: (n_layer, B, nh, max_len, hs). `length` positions are filled; each forward writes
    its T new positions at [length, length + T) in every layer, then advances `length`.
    """

    def __init__(
        self,
        config: GPTConfig,
        batch_size: int,
        max_len: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        shape = (config.n_layer, batch_size, config.n_head, max_len, config.head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.length = 0

    @property
    def max_len(self) -> int:
        return self.k.size(3)

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        """Store this layer's new (B, nh, T, hs) keys/values; return all (B, nh, S, hs) so far."""
        end = self.length + k.size(2)
        self.k[layer, :, :, self.length : end] = k
        self.v[layer, :, :, self.length : end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]


def causal_mask(T: int, S: int, device: torch.device) -> torch.Tensor:
    """(T, S) booleans, True where query i (absolute position S - T + i) may see key j."""
    return torch.ones(T, S, dtype=torch.bool, device=device).tril(S - T)


class MaskedSoftmax(nn.Module):
    """GPT-2's normalisation: masked keys get -inf, then each row sums to one."""

    def forward(self, scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)


class MaskedRaw(nn.Module):
    """'Attention without softmax': the raw scores weight the values; masked keys weigh 0."""

    def forward(self, scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return scores.masked_fill(~mask, 0.0)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with two paths that give the same result.

    explicit: scores = q·kᵀ · scale, mask, softmax, ·v — the teaching path, which exposes the
              scores and the pattern through hook points;
    fused:    F.scaled_dot_product_attention — used when nothing asks for the pattern and
              the normalisation is a softmax.
    """

    def __init__(self, config: GPTConfig, layer_idx: int) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.scale = 1.0 / math.sqrt(config.head_dim) if config.attn_scale else 1.0
        self.dropout = config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.normalize = MaskedSoftmax() if config.attn_normalization == "softmax" else MaskedRaw()
        self.fusable = config.attn_normalization == "softmax"
        self.force_explicit = False  # set by GPT.set_attention_path("explicit")

        self.hook_q = HookPoint()  # (B, nh, T, hs)
        self.hook_k = HookPoint()  # (B, nh, S, hs)
        self.hook_v = HookPoint()  # (B, nh, S, hs)
        self.hook_attn_scores = HookPoint()  # (B, nh, T, S), before masking
        self.hook_pattern = HookPoint()  # (B, nh, T, S), the attention weights
        self.hook_z = HookPoint()  # (B, nh, T, hs), each head's output before c_proj

    def use_fused(self) -> bool:
        wants_pattern = self.hook_attn_scores.active or self.hook_pattern.active
        return self.fusable and not self.force_explicit and not wants_pattern

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)  # 3 × (B, T, C)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        if cache is not None:
            k, v = cache.update(self.layer_idx, k, v)  # (B, nh, S, hs)
        q, k, v = self.hook_q(q), self.hook_k(k), self.hook_v(v)

        if self.use_fused():
            y = F.scaled_dot_product_attention(
                q,
                k,
                v,
                attn_mask=mask,
                dropout_p=self.dropout if self.training else 0.0,
                is_causal=mask is None and T > 1,  # one query: all its keys are in its past
                scale=self.scale,
            )  # (B, nh, T, hs)
        else:
            if mask is None:
                mask = causal_mask(T, k.size(2), x.device)  # (T, S)
            att = (q @ k.transpose(-2, -1)) * self.scale  # (B, nh, T, S)
            att = self.hook_attn_scores(att)
            att = self.hook_pattern(self.normalize(att, mask))
            y = self.attn_dropout(att) @ v  # (B, nh, T, hs)
        y = self.hook_z(y)

        y = y.transpose(1, 2).contiguous().view(B, T, C)  # heads side by side: (B, T, C)
        return self.resid_dropout(self.c_proj(y))


# ---------------------------------------------------------------------------------------------
# 3. MLP and the block
# ---------------------------------------------------------------------------------------------

ACTIVATIONS = {
    "gelu_tanh": partial(nn.GELU, approximate="tanh"),  # GPT-2's "gelu_new"
    "gelu": nn.GELU,
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
}


class MLP(nn.Module):
    """Position-wise feed-forward: C -> F -> activation -> C."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, config.mlp_dim, bias=config.bias)
        self.act = ACTIVATIONS[config.activation]()
        self.c_proj = nn.Linear(config.mlp_dim, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)
        self.hook_pre = HookPoint()  # (B, T, F), before the activation
        self.hook_post = HookPoint()  # (B, T, F), after it

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C) -> (B, T, C)
        h = self.hook_post(self.act(self.hook_pre(self.c_fc(x))))
        return self.dropout(self.c_proj(h))


class Block(nn.Module):
    """Pre-norm block (GPT-2): each sublayer reads a normalised copy and adds to the stream."""

    def __init__(self, config: GPTConfig, layer_idx: int) -> None:
        super().__init__()
        has_norm = config.norm_placement != "none"
        self.ln_1 = make_norm(config, has_norm)
        self.attn = CausalSelfAttention(config, layer_idx)
        self.ln_2 = make_norm(config, has_norm)
        self.mlp = MLP(config)
        self.hook_resid_pre = HookPoint()  # (B, T, C)
        self.hook_attn_out = HookPoint()  # (B, T, C)
        self.hook_resid_mid = HookPoint()  # (B, T, C)
        self.hook_mlp_out = HookPoint()  # (B, T, C)
        self.hook_resid_post = HookPoint()  # (B, T, C)

    def forward(self, x, mask=None, cache=None):  # (B, T, C) -> (B, T, C)
        x = self.hook_resid_pre(x)
        x = self.hook_resid_mid(x + self.hook_attn_out(self.attn(self.ln_1(x), mask, cache)))
        x = self.hook_resid_post(x + self.hook_mlp_out(self.mlp(self.ln_2(x))))
        return x


class PostNormBlock(Block):
    """Post-norm block (the original Transformer): normalise after adding each sublayer."""

    def forward(self, x, mask=None, cache=None):  # (B, T, C) -> (B, T, C)
        x = self.hook_resid_pre(x)
        x = self.hook_resid_mid(self.ln_1(x + self.hook_attn_out(self.attn(x, mask, cache))))
        x = self.hook_resid_post(self.ln_2(x + self.hook_mlp_out(self.mlp(x))))
        return x


# ---------------------------------------------------------------------------------------------
# 4. The model
# ---------------------------------------------------------------------------------------------


class GPT(HookedModule):
    """GPT-2: `model(idx, targets=None) -> (logits (B, T, V), loss or None)`."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = make_positions(config)
        self.drop = nn.Dropout(config.dropout)
        block = PostNormBlock if config.norm_placement == "post" else Block
        self.blocks = nn.ModuleList(block(config, i) for i in range(config.n_layer))
        # Pre-norm needs a final LayerNorm; post-norm blocks already end normalised.
        self.ln_f = make_norm(config, config.norm_placement == "pre")
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.wte.weight  # one matrix reads tokens in and writes them out

        self.hook_embed = HookPoint()  # (B, T, C) token embeddings
        self.hook_pos_embed = HookPoint()  # (B|1, T, C) position embeddings
        self.hook_logits = HookPoint()  # (B, T, V)
        self.setup_hooks()
        if config.init in ("gpt2", "gpt2_unscaled"):
            self._init_gpt2(scaled=config.init == "gpt2")

    def _init_gpt2(self, scaled: bool = True) -> None:
        """N(0, 0.02) everywhere; residual projections N(0, 0.02 / sqrt(2 · n_layer)).

        Each block adds two writes (attention, MLP) to the residual stream, so its variance
        grows with 2 · n_layer; the scaled init keeps the sum's size independent of depth.
        `scaled=False` leaves the projections at N(0, 0.02) and every other weight exactly as
        the scaled init draws it (the rescaling is the last draw). Biases start at 0 and
        LayerNorm gains at 1 (their constructors already do that).
        """
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        if not scaled:
            return
        for block in self.blocks:
            for proj in (block.attn.c_proj, block.mlp.c_proj):
                nn.init.normal_(
                    proj.weight, mean=0.0, std=0.02 / math.sqrt(2 * self.config.n_layer)
                )

    # --- forward ------------------------------------------------------------------------------

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        *,
        cache: KVCache | None = None,
        attention_mask: torch.Tensor | None = None,
        features_only: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx (B, T) token ids -> logits (B, T, V) and the mean cross-entropy against targets.

        cache: a KVCache to read past keys/values from and append this call's to.
        attention_mask: (B, S) with 1 for real tokens and 0 for (left) padding, covering the
            cached positions and the new ones; positions then count real tokens only.
        features_only: return the final-norm output (B, T, C) instead of the logits (and no
            loss): the trainer's fused loss (gpt2lab.train.fused_loss) applies lm_head itself,
            a chunk of tokens at a time, and never holds the (B, T, V) logits.
        Targets of -1 are ignored in the loss.
        """
        B, T = idx.shape
        past = cache.length if cache is not None else 0
        self._check_inputs(idx, past + T, cache)

        pos, mask = self._positions_and_mask(T, past, attention_mask, idx.device)
        tok = self.hook_embed(self.wte(idx))  # (B, T, C)
        x = tok + self.hook_pos_embed(self.wpe(pos).to(tok.dtype))  # (B, T, C)
        x = self.drop(x)
        for block in self.blocks:
            x = block(x, mask, cache)
        if cache is not None:
            cache.length += T
        x = self.ln_f(x)  # (B, T, C)
        if features_only:
            return x, None
        logits = self.hook_logits(self.lm_head(x))  # (B, T, V)

        loss = None
        if targets is not None:
            loss = F.cross_entropy(
                # at least float32 for the loss, also under bf16/fp16 autocast
                logits.view(-1, logits.size(-1)).to(
                    torch.promote_types(logits.dtype, torch.float32)
                ),
                targets.reshape(-1),
                ignore_index=-1,
            )
        return logits, loss

    def _positions_and_mask(self, T, past, attention_mask, device):
        """Positions (1|B, T) of the new tokens, and the (B|1, 1, T, S) boolean mask or None.

        Without padding the mask is None when it would be plain causal: no cache, or one new
        token (the decoding step: it sees every cached key and itself). With padding, a query
        sees the real keys up to itself; it always sees itself, so a padding row never
        becomes all -inf (which would turn into NaN).
        """
        S = past + T
        if attention_mask is None:
            pos = torch.arange(past, S, device=device).unsqueeze(0)  # (1, T)
            mask = None if past == 0 or T == 1 else causal_mask(T, S, device)[None, None]
            return pos, mask
        keep = attention_mask.to(device=device, dtype=torch.bool)  # (B, S)
        if keep.shape[1] != S:
            raise GPT2LabError(f"attention_mask covers {keep.shape[1]} positions, expected {S}")
        pos = (keep.long().cumsum(-1) - 1).clamp(min=0)[:, past:]  # (B, T)
        mask = causal_mask(T, S, device)[None, None] & keep[:, None, None, :]  # (B, 1, T, S)
        itself = torch.arange(S, device=device) == torch.arange(past, S, device=device)[:, None]
        mask = mask | itself[None, None]  # (T, S) diagonal of the new positions
        return pos, mask

    def _check_inputs(self, idx: torch.Tensor, length: int, cache: KVCache | None) -> None:
        if idx.dim() != 2:
            raise GPT2LabError(f"idx must have shape (batch, time), got {tuple(idx.shape)}")
        limit = context_limit(self.config)
        if limit is not None and length > limit:
            raise GPT2LabError(
                f"sequence of {length} tokens is longer than the model's context "
                f"(block_size={self.config.block_size}, learned positions)"
            )
        if cache is not None and length > cache.max_len:
            raise GPT2LabError(f"KV cache holds {cache.max_len} positions, {length} needed")
        if idx.numel() and not torch.compiler.is_compiling():
            lo, hi = torch.stack(torch.aminmax(idx)).tolist()  # one host sync, not two
            if lo < 0 or hi >= self.config.vocab_size:
                bad = hi if hi >= self.config.vocab_size else lo
                raise GPT2LabError(
                    f"token id {bad} is out of range for vocab_size={self.config.vocab_size}"
                )

    # --- conveniences -------------------------------------------------------------------------

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameters (a tied matrix counted once); non_embedding drops wte, wpe, lm_head."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            embeddings = {self.wte.weight, self.lm_head.weight}
            if isinstance(self.wpe, nn.Embedding):
                embeddings.add(self.wpe.weight)
            n -= sum(p.numel() for p in embeddings)
        return n

    def set_attention_path(self, path: str) -> None:
        """'auto' (fused unless the pattern is hooked or the switches forbid it) or 'explicit'."""
        if path not in ("auto", "explicit"):
            raise GPT2LabError(f"attention path must be 'auto' or 'explicit', got {path!r}")
        for block in self.blocks:
            block.attn.force_explicit = path == "explicit"

    def use_inference_layout(self) -> GPT:
        """Store every Linear weight transposed in memory: same shapes, same values.

        F.linear(x, W) multiplies x by W.t(); with W column-major, W.t() is a contiguous
        (in, out) matrix (the layout of HF's Conv1D), which CPU matrix-vector products stream
        faster: decoding one token at a time reads every weight once per token, so this is
        the layout for generation on CPU (benchmarks/generate_speed.py). Training works on
        either layout. Returns the model.
        """
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, nn.Linear):
                    module.weight.data = module.weight.data.t().contiguous().t()  # (out, in)
        return self


# ---------------------------------------------------------------------------------------------
# Small rules every user of a model needs, each written once
# ---------------------------------------------------------------------------------------------


def context_limit(config: GPTConfig) -> int | None:
    """How many tokens the model can attend to: learned positions cap the context at
    block_size (wpe has no row beyond it); sinusoidal or no positions leave it open (None)."""
    return config.block_size if config.pos_encoding == "learned" else None


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """'auto' -> cuda:LOCAL_RANK when a GPU is there, else mps, else cpu."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise GPT2LabError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GPT2LabError(f"device {name} asked for, but CUDA is not available here")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    return device


def device_of(model: nn.Module) -> torch.device:
    """The device a model's weights live on (its first parameter's)."""
    return next(model.parameters()).device


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Dropout off for the duration, then the model's own mode again (even on error)."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
