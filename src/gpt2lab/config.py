"""GPTConfig: the shape of a GPT-2 and every architectural switch, with named presets.

Every field defaults to GPT-2's own value, so `GPTConfig()` is the 124M model. The switches
exist so the model can be broken on purpose (see the ablation lab); `model.py` resolves each
of them to real modules at construction, keeping `forward` free of architecture branches.

>>> GPTConfig.preset("tiny").num_params_estimate()
793344
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from gpt2lab.errors import GPT2LabError

POS_ENCODINGS = ("learned", "sinusoidal", "none")
NORM_PLACEMENTS = ("pre", "post", "none")
ACTIVATIONS = ("gelu_tanh", "gelu", "relu", "sigmoid")
ATTN_NORMALIZATIONS = ("softmax", "none")
INITS = ("gpt2", "gpt2_unscaled", "torch_default")


class ConfigError(GPT2LabError):
    """A GPTConfig that cannot be built."""


@dataclass
class GPTConfig:
    # --- shape -----------------------------------------------------------------------------
    vocab_size: int = 50257
    """Tokens in the vocabulary. GPT-2: 50257 (50,000 merges + 256 bytes + <|endoftext|>)."""
    block_size: int = 1024
    """Longest sequence the model sees (the positional table's length). GPT-2: 1024."""
    n_layer: int = 12
    """Transformer blocks. GPT-2 small: 12."""
    n_head: int = 12
    """Attention heads per block; must divide n_embd. GPT-2 small: 12."""
    n_embd: int = 768
    """Width of the residual stream. GPT-2 small: 768."""
    n_inner: int | None = None
    """Hidden width of the MLP; None means 4 * n_embd, as in GPT-2."""
    dropout: float = 0.0
    """Dropout on embeddings, attention weights and residual writes. GPT-2 trained with 0.1."""
    bias: bool = True
    """Biases in Linear layers and LayerNorms. GPT-2: True."""
    layer_norm_eps: float = 1e-5
    """LayerNorm epsilon. GPT-2: 1e-5."""

    # --- architecture switches (GPT-2's value first) --------------------------------------
    pos_encoding: str = "learned"
    """learned (GPT-2's table wpe) | sinusoidal (fixed, Vaswani et al.) | none."""
    sinusoidal_scale: float = 1.0
    """Factor on the sinusoidal table, whose RMS is 1/sqrt(2) ≈ 0.71; 0.02·sqrt(2) ≈ 0.028 gives
    it the RMS 0.02 of GPT-2's token embeddings (unused by other position encodings)."""
    norm_placement: str = "pre"
    """pre (GPT-2: LN before each sublayer, plus a final LN) | post (original Transformer) | none."""
    activation: str = "gelu_tanh"
    """gelu_tanh (GPT-2's approximation) | gelu (exact erf) | relu | sigmoid."""
    attn_scale: bool = True
    """Divide attention scores by sqrt(head_dim). GPT-2: True."""
    attn_normalization: str = "softmax"
    """softmax (GPT-2) | none: the causally masked raw scores weight the values directly."""
    init: str = "gpt2"
    """gpt2: N(0, 0.02), residual projections N(0, 0.02/sqrt(2*n_layer)) | gpt2_unscaled: the
    same without the 1/sqrt(2*n_layer) | torch_default: PyTorch's own init of each module."""
    tie_embeddings: bool = True
    """Share the token embedding with the output head. GPT-2: True."""

    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """Free-form notes kept with the config (e.g. the preset it came from); ignored by the model."""

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head != 0:
            raise ConfigError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if self.n_inner is not None and (not isinstance(self.n_inner, int) or self.n_inner <= 0):
            raise ConfigError(f"n_inner must be a positive integer or None, got {self.n_inner!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not 0.0 < float(self.sinusoidal_scale) < float("inf"):
            raise ConfigError(f"sinusoidal_scale must be > 0, got {self.sinusoidal_scale!r}")
        if not float(self.layer_norm_eps) > 0.0:
            raise ConfigError(f"layer_norm_eps must be > 0, got {self.layer_norm_eps!r}")
        for name, choices in (
            ("pos_encoding", POS_ENCODINGS),
            ("norm_placement", NORM_PLACEMENTS),
            ("activation", ACTIVATIONS),
            ("attn_normalization", ATTN_NORMALIZATIONS),
            ("init", INITS),
        ):
            if getattr(self, name) not in choices:
                raise ConfigError(
                    f"{name} must be one of {', '.join(choices)}; got {getattr(self, name)!r}"
                )

    # --- derived values ----------------------------------------------------------------------
    @property
    def head_dim(self) -> int:
        """Width of one head: n_embd // n_head (64 in every published GPT-2)."""
        return self.n_embd // self.n_head

    @property
    def mlp_dim(self) -> int:
        """Hidden width of the MLP (3072 in GPT-2 small)."""
        return self.n_inner if self.n_inner is not None else 4 * self.n_embd

    def hf_incompatibilities(self) -> list[str]:
        """Why Hugging Face's GPT2LMHeadModel cannot hold this architecture ([] when it can).

        GPT-2's own config expresses attention scaling (scale_attn_weights), untied heads
        (tie_word_embeddings) and both GELUs; everything else here is gpt2lab-only.
        """
        checks = [
            (self.pos_encoding == "learned", f"pos_encoding={self.pos_encoding}"),
            (self.norm_placement == "pre", f"norm_placement={self.norm_placement}"),
            (self.activation in ("gelu_tanh", "gelu"), f"activation={self.activation}"),
            (self.attn_normalization == "softmax", "attn_normalization=none"),
            (self.bias, "bias=False"),
        ]
        return [reason for ok, reason in checks if not ok]

    def param_counts(self) -> dict[str, int]:
        """Parameters per component, from the shape alone (no tensor is allocated).

        token embedding (wte), position embedding (wpe; 0 unless learned), attention (c_attn +
        c_proj, all layers), MLP (c_fc + c_proj, all layers), layer norm (two per block, plus
        ln_f with pre-norm), output head (lm_head; 0 when tied to wte: counted once). GPT-2
        small: attention 28,348,416 and MLP 56,669,184 of 124,439,808.
        """
        d, f, L = self.n_embd, self.mlp_dim, self.n_layer
        b = 1 if self.bias else 0
        ln = (2 * d if self.bias else d) if self.norm_placement != "none" else 0
        return {
            "token embedding": self.vocab_size * d,
            "position embedding": self.block_size * d if self.pos_encoding == "learned" else 0,
            "attention": L * (d * 3 * d + 3 * d * b + d * d + d * b),
            "MLP": L * (d * f + f * b + f * d + d * b),
            "layer norm": (2 * L + (self.norm_placement == "pre")) * ln,
            "output head": 0 if self.tie_embeddings else self.vocab_size * d,
        }

    def num_params_estimate(self, non_embedding: bool = True) -> int:
        """Parameter count from the shape alone (equals GPT.num_params for every switch);
        non_embedding drops the token and position embeddings and the output head."""
        counts = self.param_counts()
        if non_embedding:
            return counts["attention"] + counts["MLP"] + counts["layer norm"]
        return sum(counts.values())

    # --- (de)serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GPTConfig:
        """Build from a dict, refusing keys that are not fields (a typo must not pass silently)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown GPTConfig field(s): {', '.join(unknown)}")
        return cls(**data)

    def replace(self, **changes: Any) -> GPTConfig:
        """A copy with some fields changed (validated like a new config)."""
        return self.from_dict({**self.to_dict(), **changes})

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> GPTConfig:
        """A named shape ('gpt2', 'gpt2-medium', 'gpt2-large', 'gpt2-xl', 'tiny', 'stories',
        'mini')."""
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        data = {**PRESETS[name], **overrides}
        data.setdefault("extra", {}).setdefault("preset", name)
        return cls.from_dict(data)


PRESETS: dict[str, dict[str, Any]] = {
    # The published GPT-2 shapes (Radford et al., 2019; the released checkpoints).
    "gpt2": dict(n_layer=12, n_head=12, n_embd=768),  # 124M
    "gpt2-medium": dict(n_layer=24, n_head=16, n_embd=1024),  # 350M
    "gpt2-large": dict(n_layer=36, n_head=20, n_embd=1280),  # 774M
    "gpt2-xl": dict(n_layer=48, n_head=25, n_embd=1600),  # 1558M
    # Small shapes for CPU work; vocab_size is usually replaced by the tokenizer's.
    "tiny": dict(n_layer=4, n_head=4, n_embd=128, block_size=128),  # ~0.8M non-embedding
    # tiny with a 64-token context, `gpt2lab train`'s default: at the same cost per step a
    # batch holds twice the rows, and rows per step are what make heads form early
    # (docs/interpretability.md, round 6).
    "stories": dict(n_layer=4, n_head=4, n_embd=128, block_size=64),
    "mini": dict(n_layer=6, n_head=6, n_embd=384, block_size=256),  # ~10.6M non-embedding
}
