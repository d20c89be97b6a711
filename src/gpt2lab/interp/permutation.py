"""Does shuffling the input shuffle the output? Exactly when nothing tells the model the order.

Self-attention treats its keys as a set: scores q_i·k_j, a softmax over j and a weighted sum of
v_j do not care in which order the j come. So an attention layer with no mask, fed no
positions, is *permutation-equivariant*: f(x[π]) = f(x)[π] for every permutation π, and so is
a whole stack of such layers (LayerNorm and the MLP work position by position). Two things
break that, and a GPT has both:

- positions (learned or sinusoidal): token t at place 3 enters as wte[t] + wpe[3];
- the causal mask: query i sees keys 0..i only, so *which* tokens precede it matters.

With `pos_encoding="none"` only the mask is left, and a weaker exact property survives in one
layer: the output at position i is a function of token i and the *set* of tokens 0..i, so
shuffling the tokens before the last one leaves the last output unchanged. With two layers
it no longer holds: layer 2 at the last position reads layer 1's outputs at the earlier
positions, and each of those saw a different prefix after the shuffle. (NoPE models learn
positional information from the mask alone this way; Haviv et al. 2022.)

`permutation_check(model, ids, perm)` measures all four cases as max |Δ| in float64:

    case                     compares                                        exact when
    attention, no mask       attn(x[π]) vs attn(x)[π], block 0's attention    no positions
    model, no mask           logits(ids[π]) vs logits(ids)[π], mask removed   no positions
    model, causal            logits(ids[π]) vs logits(ids)[π], as trained     never (in general)
    model, causal, last      logits(ids[π'])[-1] vs logits(ids)[-1]           no positions, 1 layer

where π' is π with the last token put back at the end (only the prefix is shuffled).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from gpt2lab.errors import GPT2LabError
from gpt2lab.files import atomic_write_text
from gpt2lab.interp.heads import check_fits

EXACT = 1e-9
"""max |Δ| at or below this counts as exactly equal (float64 rounding is ~1e-14 here)."""


@dataclass(frozen=True)
class PermutationCase:
    """One comparison: its name, what theory says, and the measured max |Δ|."""

    name: str
    compares: str
    expected_exact: bool
    max_abs_diff: float

    @property
    def exact(self) -> bool:
        return self.max_abs_diff <= EXACT

    def to_dict(self) -> dict:
        return {**self.__dict__, "exact": self.exact}


@dataclass(frozen=True)
class PermutationCheck:
    """The four cases of the module docstring for one model, text and permutation."""

    perm: list[int]
    prefix_perm: list[int]
    pos_encoding: str
    n_layer: int
    cases: list[PermutationCase]

    def case(self, name: str) -> PermutationCase:
        return next(c for c in self.cases if c.name == name)

    def to_dict(self) -> dict:
        return {
            "perm": self.perm,
            "prefix_perm": self.prefix_perm,
            "pos_encoding": self.pos_encoding,
            "n_layer": self.n_layer,
            "exact_threshold": EXACT,
            "cases": [c.to_dict() for c in self.cases],
        }


def random_permutation(n: int, seed: int) -> list[int]:
    """A seeded shuffle of range(n) that moves something (unless n < 2), e.g. [2, 0, 4, 1, 3].

    For n ≥ 3 the prefix shuffle `prefix_permutation` of the result moves something too.
    """
    g = torch.Generator().manual_seed(seed)
    while True:
        perm = torch.randperm(n, generator=g).tolist()
        moves = not _is_identity(perm) and (n < 3 or not _is_identity(prefix_permutation(perm)))
        if n < 2 or moves:
            return perm


def prefix_permutation(perm: Sequence[int]) -> list[int]:
    """`perm` with the last position put back at the end: [2, 3, 0, 1] -> [2, 0, 1, 3]."""
    last = len(perm) - 1
    return [p for p in perm if p != last] + [last]


def _is_identity(perm: Sequence[int]) -> bool:
    return list(perm) == list(range(len(perm)))


def model_input(model, idx: torch.Tensor) -> torch.Tensor:
    """What block 0 reads: token plus position embeddings, (B, T) -> (B, T, C)."""
    pos = torch.arange(idx.shape[1], device=idx.device)[None]  # (1, T)
    tok = model.wte(idx)  # (B, T, C)
    return tok + model.wpe(pos).to(tok.dtype)


@torch.no_grad()
def logits_with_mask(model, idx: torch.Tensor, causal: bool) -> torch.Tensor:
    """(B, T) ids -> (B, T, V) logits; causal=False removes the mask (every query sees all keys).

    The model's own forward spelled out (it always applies its causal mask): `model_input`,
    the blocks with a (T, T) all-True mask (or None: causal), ln_f, lm_head.
    """
    T = idx.shape[1]
    x = model_input(model, idx)  # (B, T, C)
    mask = None if causal else torch.ones(T, T, dtype=torch.bool, device=idx.device)
    for block in model.blocks:
        x = block(x, mask)
    return model.lm_head(model.ln_f(x))  # (B, T, V)


@torch.no_grad()
def attention_without_mask(model, idx: torch.Tensor) -> torch.Tensor:
    """Block 0's attention sublayer on ln_1 of the model's input, no mask: (B, T) -> (B, T, C)."""
    T = idx.shape[1]
    x = model_input(model, idx)  # (B, T, C)
    block = model.blocks[0]
    return block.attn(block.ln_1(x), torch.ones(T, T, dtype=torch.bool, device=idx.device))


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


@torch.no_grad()
def permutation_check(model, ids: Sequence[int], perm: Sequence[int]) -> PermutationCheck:
    """Measure the four cases of the module docstring for token ids `ids` shuffled by `perm`.

    Runs a float64 copy of the model on the CPU, in eval mode (exact equality shows as
    ~1e-15, a real difference as ~1e-1); the model itself is not touched.
    """
    T = len(ids)
    if T < 3:
        raise GPT2LabError(f"the permutation check needs at least 3 tokens, got {T}")
    if sorted(perm) != list(range(T)):
        raise GPT2LabError(f"perm must be a permutation of 0..{T - 1}, got {list(perm)}")
    check_fits(model, T)
    exact_model = copy.deepcopy(model).to("cpu", torch.float64).eval()
    idx = torch.tensor([list(ids)])  # (1, T)
    p = torch.tensor(list(perm), device=idx.device)  # (T,)
    prefix = prefix_permutation(perm)
    q = torch.tensor(prefix, device=idx.device)  # (T,)
    no_positions = model.config.pos_encoding == "none"

    attn, attn_shuffled = (attention_without_mask(exact_model, i) for i in (idx, idx[:, p]))
    full, full_shuffled = (logits_with_mask(exact_model, i, False) for i in (idx, idx[:, p]))
    causal, causal_shuffled = (logits_with_mask(exact_model, i, True) for i in (idx, idx[:, p]))
    causal_prefix = logits_with_mask(exact_model, idx[:, q], True)
    cases = [
        PermutationCase(
            "attention, no mask",
            "block 0's attention: f(x[π]) vs f(x)[π]",
            no_positions,
            _max_diff(attn_shuffled, attn[:, p]),
        ),
        PermutationCase(
            "model, no mask",
            "logits(ids[π]) vs logits(ids)[π], causal mask removed",
            no_positions,
            _max_diff(full_shuffled, full[:, p]),
        ),
        PermutationCase(
            "model, causal",
            "logits(ids[π]) vs logits(ids)[π], the model as trained",
            False,
            _max_diff(causal_shuffled, causal[:, p]),
        ),
        PermutationCase(
            "model, causal, last position",
            "logits at the last position, prefix shuffled (π')",
            no_positions and model.config.n_layer == 1,
            _max_diff(causal_prefix[:, -1], causal[:, -1]),
        ),
    ]
    return PermutationCheck(
        list(perm), prefix, model.config.pos_encoding, model.config.n_layer, cases
    )


def permutation_markdown(check: PermutationCheck, strings: Sequence[str] | None = None) -> str:
    """The check as a short Markdown section: the permutations and a table of the cases."""

    def shown(perm: Sequence[int]) -> str:
        return " ".join(repr(strings[i]) for i in perm) if strings else str(list(perm))

    lines = [
        "# Does shuffling the input shuffle the output?",
        "",
        f"Positions: `{check.pos_encoding}`, {check.n_layer} layer(s); computed in float64, "
        f"'exact' means max |Δ| ≤ {EXACT:g}.",
        "",
        f"- π (the shuffle): {shown(check.perm)}",
        f"- π' (π with the last token kept last): {shown(check.prefix_perm)}",
        "",
        "| case | compares | theory says exact | max abs diff | exact |",
        "|---|---|---|---:|---|",
    ]
    for c in check.cases:
        lines.append(
            f"| {c.name} | {c.compares} | {'yes' if c.expected_exact else 'no'} | "
            f"{c.max_abs_diff:.3g} | {'yes' if c.exact else 'no'} |"
        )
    lines += [
        "",
        "Attention without a mask treats its inputs as a set; positions and the causal mask "
        "are what tell a GPT the order. With no positions and one layer, the last output "
        "depends only on the last token and the set of tokens before it; with two or more "
        "layers even that is gone.",
    ]
    return "\n".join(lines) + "\n"


def write_permutation(check: PermutationCheck, out: Path, strings: Sequence[str] | None) -> Path:
    """permutation.md and permutation.json in `out` (atomically); returns the Markdown's path."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "permutation.json", json.dumps(check.to_dict(), indent=1) + "\n")
    return atomic_write_text(out / "permutation.md", permutation_markdown(check, strings))
