"""Variants: named GPTConfig overrides, in one declarative table, and how users add their own.

A variant is GPT-2 with one thing broken on purpose. The baseline is the preset itself;
every other variant changes a few `GPTConfig` fields and nothing else (data, tokens, steps
and the learning-rate schedule belong to the suite, so every variant trains on the same
budget):

>>> VARIANTS["no_layernorm"].overrides
{'norm_placement': 'none'}
>>> parse_variant("narrow_mlp:n_inner=256,activation=relu").overrides
{'n_inner': 256, 'activation': 'relu'}

A suite is a list of variants: a named one (`SUITES["seed"]`, the seed article's claims) or
a YAML file:

    preset: tiny            # optional: any `gpt2lab ablate` option as a default
    seeds: 3
    variants:
      - baseline                              # a table entry by name
      - no_layernorm
      - narrow_mlp:n_inner=256                # the --variant syntax
      - name: wide_heads                      # or a mapping
        overrides: {n_head: 2}
        description: two heads of width 64
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpt2lab.config import GPTConfig
from gpt2lab.errors import GPT2LabError
from gpt2lab.options import load_yaml
from gpt2lab.train.config import MODEL_TYPES, model_overrides

FIXED_FIELDS = frozenset({"vocab_size", "block_size", "extra"})
"""GPTConfig fields a variant may not change: the suite fixes them (tokenizer, context)."""


@dataclass(frozen=True)
class FewerHeads:
    """n_head divided by `factor` at equal width: 12 -> 4 for GPT-2, 4 -> 1 for tiny.

    Rounded down to the nearest head count that still divides n_embd (at least 1), so the
    same table entry means "a third of the heads" for every preset.
    """

    factor: int = 3

    def resolve(self, base: GPTConfig) -> int:
        wanted = max(1, base.n_head // self.factor)
        return max(h for h in range(1, wanted + 1) if base.n_embd % h == 0)

    def __str__(self) -> str:
        return f"n_head/{self.factor}"


@dataclass(frozen=True)
class Scaled:
    """A preset's integer field times `factor` (the deep variants: 3× the layers, ½ the width).

    >>> Scaled("n_layer", 3).resolve(GPTConfig.preset("tiny")), Scaled("n_embd", 0.5).resolve(GPTConfig.preset("tiny"))
    (12, 64)
    """

    field: str
    factor: float

    def resolve(self, base: GPTConfig) -> int:
        return max(1, round(getattr(base, self.field) * self.factor))

    def __str__(self) -> str:
        return f"{self.field}×{self.factor:g}"


@dataclass(frozen=True)
class Variant:
    name: str
    overrides: dict[str, Any] = field(default_factory=dict)
    """GPTConfig field -> value (a FewerHeads or Scaled is resolved against the preset)."""
    description: str = ""
    warmup: bool = True
    """False: the suite's schedule without its warmup steps (everything else equal)."""
    reference: str = "baseline"
    """The variant this one is compared with (the deep variants: `deep`)."""

    def model_overrides(self, base: GPTConfig) -> dict[str, Any]:
        """The overrides as plain values for this preset, checked by building the config.

        >>> VARIANTS["fewer_heads"].model_overrides(GPTConfig.preset("gpt2"))
        {'n_head': 4}
        """
        resolved = {
            key: value.resolve(base) if isinstance(value, (FewerHeads, Scaled)) else value
            for key, value in self.overrides.items()
        }
        try:
            base.replace(**resolved)
        except GPT2LabError as err:
            raise GPT2LabError(f"variant {self.name}: {err}") from None
        return resolved


BASELINE = "baseline"
DEEP = {"n_layer": Scaled("n_layer", 3), "n_embd": Scaled("n_embd", 0.5)}
"""The deep shape for the claims about depth: 3× the layers at half the width (tiny: 12 × 64)."""
SINUSOIDAL_AT_TOKEN_RMS = 0.02 * 2**0.5
"""sinusoidal_scale giving the table the RMS 0.02 of GPT-2's token embeddings at init."""


def deep(name: str, overrides: dict[str, Any], description: str, **rest: Any) -> Variant:
    """A variant of the deep shape, compared with `deep` (the deep baseline)."""
    return Variant(name, {**DEEP, **overrides}, description, reference="deep", **rest)


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(BASELINE, {}, "pre-norm, learned positions, GELU, scaled softmax, GPT-2 init"),
        Variant("no_attn_scale", {"attn_scale": False}, "scores q·k without the 1/sqrt(d)"),
        Variant("no_softmax", {"attn_normalization": "none"}, "raw masked scores weight values"),
        Variant("no_layernorm", {"norm_placement": "none"}, "no LayerNorm anywhere"),
        Variant("post_norm", {"norm_placement": "post"}, "LayerNorm after each residual add"),
        Variant("baseline_no_warmup", {}, "the baseline without lr warmup", warmup=False),
        Variant(
            "post_norm_no_warmup",
            {"norm_placement": "post"},
            "post-norm without lr warmup",
            warmup=False,
        ),
        Variant("no_pos", {"pos_encoding": "none"}, "no positional information at all"),
        Variant(
            "sinusoidal",
            {"pos_encoding": "sinusoidal", "sinusoidal_scale": SINUSOIDAL_AT_TOKEN_RMS},
            "fixed sin/cos positions at the token embeddings' RMS (0.02)",
        ),
        Variant(
            "sinusoidal_unscaled",
            {"pos_encoding": "sinusoidal"},
            "fixed sin/cos positions at their own RMS 0.71, 35× the token embeddings' 0.02: "
            "the position signal drowns the tokens (not in the seed suite)",
        ),
        Variant("relu", {"activation": "relu"}, "ReLU instead of GELU"),
        Variant("sigmoid", {"activation": "sigmoid"}, "sigmoid instead of GELU"),
        Variant("fewer_heads", {"n_head": FewerHeads(3)}, "a third of the heads, equal width"),
        Variant(
            "no_residual_scaling",
            {"init": "gpt2_unscaled"},
            "GPT-2 init without the 1/sqrt(2N) on the residual projections (only that)",
        ),
        Variant(
            "torch_default_init",
            {"init": "torch_default"},
            "PyTorch's default init everywhere (embeddings N(0, 1), no 1/sqrt(2N))",
        ),
        Variant("deep", DEEP, "the baseline at 3× the layers and half the width", reference=""),
        deep("deep_no_layernorm", {"norm_placement": "none"}, "deep, no LayerNorm anywhere"),
        deep("deep_post_norm", {"norm_placement": "post"}, "deep, post-norm"),
        deep(
            "deep_post_norm_no_warmup",
            {"norm_placement": "post"},
            "deep, post-norm without lr warmup",
            warmup=False,
        ),
        deep("deep_no_residual_scaling", {"init": "gpt2_unscaled"}, "deep, no 1/sqrt(2N)"),
        Variant("dropout", {"dropout": 0.1}, "dropout 0.1 (GPT-2's training value)"),
    )
}

SUITES: dict[str, tuple[str, ...]] = {
    # The seed article's claims; dropout is optional there and left out to keep the budget,
    # sinusoidal_unscaled is the known way to lose (kept to show why, with --variant).
    "seed": tuple(name for name in VARIANTS if name not in ("dropout", "sinusoidal_unscaled")),
}


def parse_variant(text: str) -> Variant:
    """'name:key=value,key=value' (or a table name alone) -> Variant, values typed.

    Keys are GPTConfig fields; values are typed like every option ('false' -> False,
    '2' -> 2; see gpt2lab.options).
    """
    name, sep, body = text.partition(":")
    name = name.strip()
    if not sep:
        if name in VARIANTS:
            return VARIANTS[name]
        raise GPT2LabError(
            f"unknown variant {name!r}: use one of {', '.join(VARIANTS)} or NAME:key=value,…"
        )
    check_name(name)
    overrides: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in body.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise GPT2LabError(f"variant {name}: expected key=value, got {item!r}")
        key = key.strip()
        overrides[key] = override_value(name, key, value.strip())
    if not overrides:
        raise GPT2LabError(f"variant {name}: no overrides after ':' (expected key=value,…)")
    return Variant(name, overrides, "custom")


def check_name(name: str) -> None:
    """Variant names become directory names: letters, digits, '_' and '-' only."""
    if not name or not all(c.isalnum() or c in "_-" for c in name):
        raise GPT2LabError(f"variant name must use letters, digits, _ or -, got {name!r}")


def override_value(variant: str, key: str, value: Any) -> Any:
    """A typed GPTConfig value, or one clear line naming the variant and the key."""
    if key in FIXED_FIELDS:
        raise GPT2LabError(f"variant {variant}: {key} is fixed by the suite (equal budget)")
    if key not in MODEL_TYPES:
        raise GPT2LabError(f"variant {variant}: unknown model field {key!r}")
    try:
        return model_overrides({key: value})[key]
    except GPT2LabError as err:
        raise GPT2LabError(f"variant {variant}: {str(err).removeprefix('model.')}") from None


def variant_from_yaml(item: Any) -> Variant:
    """One entry of a YAML suite's `variants:` list (a name, NAME:k=v text, or a mapping)."""
    if isinstance(item, str):
        return parse_variant(item)
    if not isinstance(item, dict) or "name" not in item:
        raise GPT2LabError(f"a suite variant must be a name or a mapping with name:, got {item!r}")
    unknown = sorted(set(item) - {"name", "overrides", "description"})
    if unknown:
        raise GPT2LabError(f"variant {item['name']}: unknown key {unknown[0]!r}")
    name = str(item["name"])
    check_name(name)
    raw = item.get("overrides") or {}
    if not isinstance(raw, dict):
        raise GPT2LabError(f"variant {name}: overrides must be a mapping")
    overrides = {str(k): override_value(name, str(k), v) for k, v in raw.items()}
    return Variant(name, overrides, str(item.get("description", "custom")))


def load_suite(path: str | Path) -> tuple[list[Variant], dict[str, Any]]:
    """A YAML suite: its variants and its option defaults (everything but `variants`)."""
    data = load_yaml(path)
    items = data.pop("variants", None)
    if not isinstance(items, list) or not items:
        raise GPT2LabError(f"{path} needs a non-empty `variants:` list")
    return [variant_from_yaml(item) for item in items], data


def suite_variants(suite: str, extra: list[str] = ()) -> tuple[list[Variant], dict[str, Any]]:
    """The variants of a named suite or YAML file, plus `--variant` ones, plus the reference
    of each (`deep` for the deep variants); baseline first.

    Returns (variants, option defaults from the YAML file). Names must be unique.
    """
    if suite in SUITES:
        variants, defaults = [VARIANTS[name] for name in SUITES[suite]], {}
    elif suite.endswith((".yaml", ".yml")) or Path(suite).is_file():
        variants, defaults = load_suite(suite)
    else:
        raise GPT2LabError(f"unknown suite {suite!r}: use {', '.join(SUITES)} or a YAML file")
    variants += [parse_variant(text) for text in extra]
    if BASELINE not in {v.name for v in variants}:
        variants.insert(0, VARIANTS[BASELINE])
    missing = {v.reference for v in variants} - {v.name for v in variants} - {""}
    variants += [VARIANTS[name] for name in sorted(missing) if name in VARIANTS]
    variants.sort(key=lambda v: v.name != BASELINE)  # stable: baseline first
    seen: set[str] = set()
    for v in variants:
        if v.name in seen:
            raise GPT2LabError(f"variant {v.name!r} appears twice in the suite")
        seen.add(v.name)
    return variants, defaults


def select_variants(
    variants: list[Variant], only: Sequence[str], added: Sequence[str] = ()
) -> list[Variant]:
    """The variants named in `only`, plus the baseline, the variants they are compared with,
    and every variant added on the command line (`added`: --variant specs; asking for one
    means running it), in suite order.

    >>> added = ["x:n_head=2"]
    >>> [v.name for v in select_variants(suite_variants("seed", added)[0], ["relu"], added)]
    ['baseline', 'relu', 'x']
    """
    wanted = {name.strip() for name in only} | {BASELINE}
    wanted |= {parse_variant(spec).name for spec in added}
    wanted |= {v.reference for v in variants if v.name in wanted and v.reference}
    missing = sorted(wanted - {v.name for v in variants})
    if missing:
        raise GPT2LabError(f"--only names variant {missing[0]!r}, which is not in the suite")
    return [v for v in variants if v.name in wanted]
