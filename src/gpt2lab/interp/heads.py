"""Head-role scores: what each attention head looks at, as one number per (layer, head).

One file (about 600 lines) on purpose: every score, its detection pattern, the role rules that
read them and the one forward pass that computes them all share the definitions below.

Conventions follow the field (TransformerLens `head_detector.py`; see shared HEAD_METRICS.md).
`A` is one head's attention pattern on one text, shape (..., T, T): `A[i, j]` is the weight
query position i gives key position j; rows sum to 1 and `A` is lower-triangular. Every score
function accepts leading dimensions (a batch, or the (layer, head) grid) and reduces only the
last two, so `previous_token_score(patterns)` on (L, nh, T, T) gives an (L, nh) grid.

A *detection pattern* `P` is a 0/1 matrix of the same shape saying where a head of some role
should attend; `pattern_score(A, P)` measures how much of `A` falls on it:

    "mul" (the TransformerLens default, used throughout gpt2lab):  Σ(A ⊙ P) / Σ A
    "abs":                                                         1 − mean_i Σ_j |A_ij − P_ij|

Example, T = 3, a perfect previous-token head (row 0 can only attend to itself):

    A = [[1, 0, 0],      P = [[0, 0, 0],     mul = (0 + 1 + 1) / 3 = 0.667
         [1, 0, 0],           [1, 0, 0],     (row 0 has no previous token, so the best
         [0, 1, 0]]           [0, 1, 0]]      possible score on T tokens is (T − 1) / T)

The model-level part (`compute_head_scores`) runs a model over a `TextSet`, averages each
score over the texts, and `classify_heads` turns the grids into named roles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from gpt2lab.errors import GPT2LabError
from gpt2lab.model import context_limit, device_of, eval_mode

BOUNDARY_CHARS = ".?!"
MEASURES = ("mul", "abs")

# ---------------------------------------------------------------------------------------------
# 1. Detection patterns: (T, T) float 0/1 matrices, lower-triangular
# ---------------------------------------------------------------------------------------------


def previous_token_pattern(T: int) -> torch.Tensor:
    """P[i, j] = 1 iff j = i − 1. T = 3 -> [[0,0,0],[1,0,0],[0,1,0]]."""
    return torch.ones(T - 1).diag(-1) if T > 1 else torch.zeros(T, T)


def self_pattern(T: int) -> torch.Tensor:
    """P[i, j] = 1 iff j = i (the head attends to the current token)."""
    return torch.eye(T)


def duplicate_token_pattern(tokens: torch.Tensor) -> torch.Tensor:
    """P[i, j] = 1 iff t_i = t_j and j < i. tokens [5, 7, 5] -> only P[2, 0] = 1."""
    same = tokens[:, None] == tokens[None, :]  # (T, T)
    return same.tril(-1).float()


def induction_pattern(tokens: torch.Tensor) -> torch.Tensor:
    """P[i, j] = 1 iff 1 ≤ j ≤ i and t_{j−1} = t_i: attend to what followed t_i last time.

    The duplicate pattern shifted one key to the right. tokens [5, 7, 5] -> P[2, 1] = 1
    (token 5 at position 2 looks at 7, which followed the earlier 5).
    """
    T = tokens.numel()
    P = torch.zeros(T, T)
    P[:, 1:] = (tokens[:, None] == tokens[None, :-1]).float()  # t_i = t_{j-1}
    return P.tril()


def boundary_pattern(is_boundary: torch.Tensor) -> torch.Tensor:
    """P[i, j] = 1 iff j is the most recent sentence end (`.`, `?`, `!`) strictly before i.

    is_boundary [F, T, F, T, F] (ends at 1 and 3) -> rows 2, 3 mark key 1; row 4 marks key 3;
    rows 0 and 1 have no earlier boundary and stay all zero.
    """
    T = is_boundary.numel()
    positions = torch.arange(T)
    last = torch.where(is_boundary, positions, torch.full_like(positions, -1)).cummax(0).values
    before = torch.cat([torch.tensor([-1]), last[:-1]])  # most recent boundary at j < i
    P = torch.zeros(T, T)
    rows = positions[before >= 0]
    P[rows, before[before >= 0]] = 1.0
    return P


# ---------------------------------------------------------------------------------------------
# 2. Scores of a pattern (..., T, T) -> (...)
# ---------------------------------------------------------------------------------------------


def pattern_score(
    A: torch.Tensor,
    P: torch.Tensor,
    *,
    measure: str = "mul",
    exclude_bos: bool = False,
    exclude_current: bool = False,
) -> torch.Tensor:
    """How well attention `A` (..., T, T) matches detection pattern `P` (T, T); returns (...).

    mul: Σ(A ⊙ P) / Σ A, after optionally zeroing column 0 of A (exclude_bos: attention to the
         first token does not count against the head) and/or its diagonal (exclude_current).
    abs: 1 − mean_i Σ_j |A_ij − P_ij|, in −1..1; 1 only when A equals P.
    """
    if measure not in MEASURES:
        raise GPT2LabError(f"unknown score measure {measure!r}; choose mul or abs")
    A = A.float()
    P = P.to(A.device, A.dtype)
    if measure == "abs":
        return 1.0 - (A - P).abs().sum(dim=(-2, -1)) / A.shape[-1]
    if exclude_bos:
        A = A.clone()
        A[..., :, 0] = 0.0
    if exclude_current:
        A = A * (1.0 - torch.eye(A.shape[-1], device=A.device))
    return (A * P).sum(dim=(-2, -1)) / A.sum(dim=(-2, -1)).clamp_min(1e-12)


def first_token_score(A: torch.Tensor) -> torch.Tensor:
    """Attention sink: mean_{i ≥ 1} A[i, 0], the share of attention parked on the first token.

    Row 0 is left out: it can only attend to position 0, so it says nothing about the head.
    """
    if A.shape[-1] < 2:
        return A.new_zeros(A.shape[:-2])
    return A[..., 1:, 0].float().mean(-1)


def induction_stripe_score(A: torch.Tensor, rep_len: int, start: int = 0) -> torch.Tensor:
    """Induction on a sequence whose tokens [start, start + L) repeat at [start + L, start + 2L).

    A query q in the second repeat holds the token last seen at q − L; the token that followed
    it sits at q − L + 1, so score = mean_{q in second repeat} A[q, q − (L − 1)], the stripe
    `A.diagonal(offset = 1 − L)`. A perfect induction head scores 1.
    """
    L = rep_len
    q = torch.arange(start + L, start + 2 * L, device=A.device)
    if q.numel() == 0 or int(q[-1]) >= A.shape[-1]:
        raise GPT2LabError(f"pattern of {A.shape[-1]} positions has no second repeat of {L}")
    return A[..., q, q - L + 1].float().mean(-1)


def mean_attention_distance(A: torch.Tensor) -> torch.Tensor:
    """MAD = mean_i Σ_j A_ij (i − j): how many tokens back a head looks on average.

    A previous-token head has MAD (T − 1) / T ≈ 1; a head that always attends to the first
    token has MAD = mean_i i = (T − 1) / 2.
    """
    T = A.shape[-1]
    distance = (torch.arange(T)[:, None] - torch.arange(T)[None, :]).clamp_min(0)  # (T, T)
    return (A.float() * distance.to(A.device)).sum(-1).mean(-1)


def row_entropy(A: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """Entropy of every query row, H_i = −Σ_j A_ij log A_ij (0 log 0 = 0): (..., T, T) -> (..., T).

    A causal row i sees i + 1 keys, so its largest entropy is log(i + 1). With normalize, each
    row is divided by that: 0 = attends to one token, 1 = uniform over everything it can see.
    Row 0 sees one key and is 0 either way. Example: the row [0.5, 0.5, 0] (query 1) has
    H = log 2 = 0.693 nats, normalised 0.693 / log 2 = 1.
    """
    A = A.float()
    H = -(A * A.clamp_min(1e-30).log()).sum(-1)  # (..., T)
    if not normalize:
        return H
    max_entropy = torch.arange(1, A.shape[-1] + 1, device=A.device, dtype=A.dtype).log()  # (T,)
    return torch.where(max_entropy > 0, H / max_entropy.clamp_min(1e-30), 0.0)  # row 0 -> 0


def attention_entropy(A: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """Mean over query rows of `row_entropy`: (..., T, T) -> (...).

    With normalize, row 0 (which has nothing to choose from) is left out of the mean.
    """
    if not normalize:
        return row_entropy(A, normalize=False).mean(-1)
    if A.shape[-1] < 2:
        return A.new_zeros(A.shape[:-2]).float()
    return row_entropy(A)[..., 1:].mean(-1)


def antecedent_attention(
    A: torch.Tensor, pairs: Sequence[tuple[int, int]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pronoun→antecedent: for annotated (pronoun p, antecedent a) pairs of one text.

    Returns (Σ_pairs A[p, a], Σ_pairs [argmax_j A[p, j] = a]), each of shape (...): sums, so
    they can be pooled over texts and divided by the total number of pairs (the mean
    attention and the accuracy).
    """
    if not pairs:
        zero = A.new_zeros(A.shape[:-2])
        return zero, zero
    p = torch.tensor([pair[0] for pair in pairs], device=A.device)
    a = torch.tensor([pair[1] for pair in pairs], device=A.device)
    rows = A[..., p, :].float()  # (..., n_pairs, T)
    mass = rows[..., torch.arange(len(pairs)), a].sum(-1)
    hits = (rows.argmax(-1) == a).float().sum(-1)
    return mass, hits


def nearest_candidate_hits(pairs: Sequence[tuple[int, int]], candidates: Sequence[int]) -> int:
    """Baseline for pronoun→antecedent: guess the nearest candidate (noun) before the pronoun.

    pairs [(6, 1)], candidates [1, 4] -> guesses 4 for the pronoun at 6 -> 0 hits.
    """
    hits = 0
    for p, a in pairs:
        before = [c for c in candidates if c < p]
        hits += int(bool(before) and max(before) == a)
    return hits


def boundary_positions(token_strings: Sequence[str]) -> list[int]:
    """Positions of the sentence-ending tokens (see `boundary_mask`)."""
    return boundary_mask(token_strings).nonzero().flatten().tolist()


def boundary_mask(token_strings: Sequence[str]) -> torch.Tensor:
    """True where a token ends a sentence: its text, stripped of spaces and closing quotes,
    ends in `.`, `?` or `!`. ["Hi", ".", " It", '!"'] -> [F, T, F, T]."""
    ends = [s.strip().rstrip("\"'”’)").endswith(tuple(BOUNDARY_CHARS)) for s in token_strings]
    return torch.tensor(ends, dtype=torch.bool).reshape(-1)


# ---------------------------------------------------------------------------------------------
# 3. Texts to score on, and the model-level computation
# ---------------------------------------------------------------------------------------------


@dataclass
class TextSet:
    """Tokenised texts to score heads on, with optional ground truth per text.

    tokens: token ids of each text (each at most the model's context).
    strings: the text of each token, for pictures and examples.
    boundaries: positions of sentence-ending tokens; derived from `strings` when None.
    pronouns: (pronoun position, antecedent position) pairs; empty when not annotated.
    candidates: positions of candidate antecedents (nouns), for the nearest-noun baseline.
    """

    tokens: list[list[int]]
    strings: list[list[str]]
    boundaries: list[list[int]] | None = None
    pronouns: list[list[tuple[int, int]]] = field(default_factory=list)
    candidates: list[list[int]] = field(default_factory=list)
    source: str = ""

    def __post_init__(self) -> None:
        if self.boundaries is None:
            self.boundaries = [boundary_positions(s) for s in self.strings]
        self.pronouns = list(self.pronouns) + [[] for _ in self.tokens[len(self.pronouns) :]]
        self.candidates = list(self.candidates) + [[] for _ in self.tokens[len(self.candidates) :]]

    def check(self) -> TextSet:
        """The set itself, or a GPT2LabError when it holds no token at all."""
        if not any(self.tokens):
            where = f" in {self.source}" if self.source else ""
            raise GPT2LabError(f"no text to score{where}")
        return self

    def append(
        self,
        tokens: list[int],
        strings: list[str],
        boundaries: list[int] | None = None,
        pronouns: list[tuple[int, int]] = (),
        candidates: list[int] = (),
    ) -> None:
        """Add one text; sentence ends are found from `strings` when not given."""
        self.tokens.append(list(tokens))
        self.strings.append(list(strings))
        self.boundaries.append(
            list(boundaries) if boundaries is not None else boundary_positions(strings)
        )
        self.pronouns.append(list(pronouns))
        self.candidates.append(list(candidates))

    def item(self, k: int) -> dict:
        """Text k with its annotations, as copies (the keyword arguments of `append`)."""
        return {
            "tokens": list(self.tokens[k]),
            "strings": list(self.strings[k]),
            "boundaries": list(self.boundaries[k]),
            "pronouns": list(self.pronouns[k]),
            "candidates": list(self.candidates[k]),
        }

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def n_pairs(self) -> int:
        return sum(len(p) for p in self.pronouns)

    def baseline_accuracy(self) -> float | None:
        """Fraction of pronouns whose nearest preceding candidate is the antecedent."""
        if not self.n_pairs or not self.candidates:
            return None
        hits = sum(nearest_candidate_hits(p, c) for p, c in zip(self.pronouns, self.candidates))
        return hits / self.n_pairs


@dataclass
class InductionSpec:
    """Repeated random token sequences for the induction score: `rep_len` random tokens
    (drawn from [low, vocab_size)) followed by the same tokens again; `n_seqs` of them."""

    rep_len: int = 20
    n_seqs: int = 16
    seed: int = 0
    low: int = 0

    def sequences(self, vocab_size: int) -> torch.Tensor:
        """(n_seqs, 2 · rep_len) token ids."""
        g = torch.Generator().manual_seed(self.seed)
        half = torch.randint(self.low, vocab_size, (self.n_seqs, self.rep_len), generator=g)
        return torch.cat([half, half], dim=1)


def default_induction(block_size: int) -> InductionSpec:
    """The induction sequences of the heads report: 20 random tokens twice, or fewer when the
    context is shorter than 40 (block_size 32 -> 16 tokens twice)."""
    return InductionSpec(rep_len=min(20, block_size // 2))


SCORE_NAMES = (
    "previous_token",
    "first_token",
    "self",
    "duplicate_token",
    "induction",
    "sentence_boundary",
    "mean_distance",
    "entropy",
    "antecedent_attention",
    "antecedent_accuracy",
)
"""Every grid `compute_head_scores` fills (the antecedent ones only with annotated pronouns)."""


@dataclass
class HeadScores:
    """One (n_layer, n_head) grid per score, and how they were measured."""

    grids: dict[str, np.ndarray]
    n_texts: int
    measure: str = "mul"
    induction_loss: float | None = None
    baseline_accuracy: float | None = None
    n_pronouns: int = 0
    source: str = ""

    @property
    def shape(self) -> tuple[int, int]:
        return next(iter(self.grids.values())).shape

    def to_dict(self) -> dict:
        """Plain JSON-able data: {'grids': {name: [[...], ...]}, ...}."""
        return {
            "grids": {k: np.round(v, 6).tolist() for k, v in self.grids.items()},
            "n_texts": self.n_texts,
            "measure": self.measure,
            "induction_loss": self.induction_loss,
            "baseline_accuracy": self.baseline_accuracy,
            "n_pronouns": self.n_pronouns,
            "source": self.source,
        }


def is_pattern_hook(name: str) -> bool:
    return name.endswith("attn.hook_pattern")


@torch.no_grad()
def attention_patterns(model, idx: torch.Tensor) -> torch.Tensor:
    """(B, T) token ids -> every head's pattern, (B, n_layer, n_head, T, T)."""
    _, cache = model.run_with_cache(idx, names=is_pattern_hook)
    return torch.stack(
        [cache[f"blocks.{i}.attn.hook_pattern"] for i in range(len(model.blocks))], 1
    )


def text_scores(
    patterns: torch.Tensor, tokens: Sequence[int], boundaries: Sequence[int], measure: str
) -> dict[str, torch.Tensor]:
    """The per-text scores of one text's patterns (L, nh, T, T): {name: (L, nh)}."""
    T = patterns.shape[-1]
    ids = torch.as_tensor(list(tokens))
    is_boundary = torch.zeros(T, dtype=torch.bool)
    is_boundary[list(boundaries)] = True
    return {
        "previous_token": pattern_score(patterns, previous_token_pattern(T), measure=measure),
        "first_token": first_token_score(patterns),
        "self": pattern_score(patterns, self_pattern(T), measure=measure),
        "duplicate_token": pattern_score(patterns, duplicate_token_pattern(ids), measure=measure),
        "sentence_boundary": pattern_score(
            patterns, boundary_pattern(is_boundary), measure=measure
        ),
        "mean_distance": mean_attention_distance(patterns),
        "entropy": attention_entropy(patterns),
    }


@torch.no_grad()
def induction_scores(model, spec: InductionSpec) -> tuple[torch.Tensor, float]:
    """Induction score grid (L, nh) on repeated random tokens, and the induction loss.

    Induction loss: mean cross-entropy of predicting the tokens of the second repeat (after
    its first token, which cannot be predicted); a model that copies has loss near 0.
    """
    if 2 * spec.rep_len > model.config.block_size:
        raise GPT2LabError(
            f"induction sequences of 2 × {spec.rep_len} tokens do not fit the context "
            f"(block_size={model.config.block_size})"
        )
    idx = spec.sequences(model.config.vocab_size).to(device_of(model))
    _, cache = model.run_with_cache(idx, names=lambda n: is_pattern_hook(n) or n == "hook_logits")
    patterns = torch.stack(
        [cache[f"blocks.{i}.attn.hook_pattern"] for i in range(len(model.blocks))], 1
    )  # (B, L, nh, T, T)
    scores = induction_stripe_score(patterns, spec.rep_len).mean(0).cpu()  # (L, nh)
    _, loss = half_losses(cache["hook_logits"], idx, spec.rep_len)
    return scores, loss


def half_losses(logits: torch.Tensor, idx: torch.Tensor, rep_len: int) -> tuple[float, float]:
    """Mean cross-entropy on each half of sequences that repeat: (first, repeated).

    idx (B, 2L) holds L random tokens and then the same L again; logits (B, 2L, V) are the
    model's predictions on it. first: predicting tokens 1 .. L−1 (nothing to copy yet, so
    about log V for a model that knows no better); repeated: tokens L+1 .. 2L−1, each seen
    L positions earlier. Token 0 and token L (the second repeat's first) are unpredictable
    from what precedes them, so neither half counts them. L = 3, idx [a b c a b c]: first
    scores b, c; repeated scores b, c again, this time after their first appearance.
    """
    L = rep_len
    losses = torch.nn.functional.cross_entropy(
        logits[:, :-1].transpose(1, 2).float(), idx[:, 1:], reduction="none"
    )  # (B, 2L − 1): column t is the loss of predicting token t + 1
    return float(losses[:, : L - 1].mean()), float(losses[:, L:].mean())


def compute_head_scores(
    model,
    texts: TextSet,
    *,
    measure: str = "mul",
    induction: InductionSpec | None = None,
    progress: bool = True,
) -> HeadScores:
    """Every score of `SCORE_NAMES` for every head, averaged over `texts` (one forward each).

    Per-text scores are averaged with equal weight per text (as TransformerLens does); the
    antecedent scores pool all annotated pronouns instead (mean attention, accuracy).
    """
    texts.check()
    with eval_mode(model):  # dropout off, and the caller's mode back afterwards
        n_layer, n_head = model.config.n_layer, model.config.n_head
        sums: dict[str, torch.Tensor] = {}
        mass = torch.zeros(n_layer, n_head)
        hits = torch.zeros(n_layer, n_head)
        device = device_of(model)
        for k in tqdm(range(len(texts)), desc="head scores", disable=not progress, leave=False):
            tokens = texts.tokens[k]
            if not tokens:
                continue
            check_fits(model, len(tokens))
            patterns = attention_patterns(model, torch.tensor([tokens], device=device))[0].cpu()
            for name, grid in text_scores(patterns, tokens, texts.boundaries[k], measure).items():
                sums[name] = sums.get(name, 0) + grid
            if k < len(texts.pronouns) and texts.pronouns[k]:
                m, h = antecedent_attention(patterns, texts.pronouns[k])
                mass, hits = mass + m, hits + h
        n_texts = sum(1 for t in texts.tokens if t)
        grids = {name: (total / n_texts).numpy() for name, total in sums.items()}
        spec = induction or default_induction(model.config.block_size)
        induction_grid, induction_loss = induction_scores(model, spec)
        grids["induction"] = induction_grid.numpy()
        if texts.n_pairs:
            grids["antecedent_attention"] = (mass / texts.n_pairs).numpy()
            grids["antecedent_accuracy"] = (hits / texts.n_pairs).numpy()
        ordered = {name: grids[name] for name in SCORE_NAMES if name in grids}
        return HeadScores(
            grids=ordered,
            n_texts=n_texts,
            measure=measure,
            induction_loss=induction_loss,
            baseline_accuracy=texts.baseline_accuracy(),
            n_pronouns=texts.n_pairs,
            source=texts.source,
        )


def check_fits(model, length: int) -> None:
    """A GPT2LabError when `length` tokens do not fit the model's learned positions."""
    limit = context_limit(model.config)
    if limit is not None and length > limit:
        raise GPT2LabError(
            f"text of {length} tokens is longer than the model's context "
            f"({model.config.block_size} tokens)"
        )


# ---------------------------------------------------------------------------------------------
# 4. Roles
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoleRule:
    """A head has `role` when its grid `score` is ≥ `threshold`."""

    role: str
    score: str
    threshold: float
    description: str


ROLE_RULES = (
    RoleRule("previous-token", "previous_token", 0.5, "at least half its attention on t−1"),
    RoleRule("induction", "induction", 0.4, "≥ 0.4 of its attention on the induction stripe"),
    RoleRule(
        "sentence-boundary", "sentence_boundary", 0.3, "≥ 0.3 on the last `.?!` before the query"
    ),
    RoleRule(
        "coreference",
        "antecedent_accuracy",
        0.5,
        "argmax on the annotated antecedent for at least half of the pronouns",
    ),
    RoleRule(
        "long-range",
        "relative_distance",
        1.3,
        "looks ≥ 1.3× as far back as uniform attention would, without being a sink",
    ),
    RoleRule("sink", "first_token", 0.5, "at least half its attention on the first token"),
)
"""The documented thresholds of `classify_heads`. `relative_distance` is the mean attention
distance divided by that of uniform causal attention (mean_i i/2 over the texts); a sink head
also looks far back, so long-range excludes heads already labelled sink."""


@dataclass(frozen=True)
class HeadRole:
    layer: int
    head: int
    role: str
    score: float

    def __str__(self) -> str:
        return f"layer {self.layer}, head {self.head}: {self.role} ({self.score:.2f})"


def relative_distance(scores: HeadScores, mean_uniform_distance: float) -> np.ndarray:
    """MAD grid divided by the MAD of uniform causal attention on the same texts."""
    return scores.grids["mean_distance"] / max(mean_uniform_distance, 1e-12)


def classify_heads(
    scores: HeadScores,
    rules: Sequence[RoleRule] = ROLE_RULES,
    mean_uniform_distance: float | None = None,
) -> list[HeadRole]:
    """Label every head whose score passes its rule's threshold; sorted by layer, head, role.

    A head may hold several roles. `mean_uniform_distance` enables the long-range rule
    (see `uniform_distance`); the coreference rule needs annotated pronouns.
    """
    grids = dict(scores.grids)
    if mean_uniform_distance is not None and "mean_distance" in grids:
        grids["relative_distance"] = relative_distance(scores, mean_uniform_distance)
    roles: list[HeadRole] = []
    sinks = set()
    for rule in rules:
        if rule.score not in grids:
            continue
        grid = grids[rule.score]
        for layer, head in zip(*np.nonzero(grid >= rule.threshold)):
            key = (int(layer), int(head))
            if rule.role == "sink":
                sinks.add(key)
            roles.append(HeadRole(*key, rule.role, float(grid[layer, head])))
    roles = [r for r in roles if not (r.role == "long-range" and (r.layer, r.head) in sinks)]
    return sorted(roles, key=lambda r: (r.layer, r.head, r.role))


def uniform_distance(texts: TextSet) -> float:
    """Mean attention distance of uniform causal attention, averaged over the texts.

    Row i of a uniform head spreads 1/(i+1) over keys 0..i, so its distance is i/2; the
    text's MAD is mean_i i/2 = (T − 1)/4.
    """
    lengths = [len(t) for t in texts.tokens if t]
    return float(np.mean([(T - 1) / 4 for T in lengths]))
