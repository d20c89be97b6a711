"""Synthetic token tasks that each reward one attention circuit, for training tiny models in
seconds (the interp proofs, notebook 5). Every sampler is a function of a torch.Generator.

- `repeated_segments`: random segments, each immediately repeated (`a b c d a b c d e f g e f
  g …`): the second copy is predictable only by finding the current token earlier and
  copying what followed it, the job of an induction circuit.
- `spans_said_twice`: the same idea as language-model text: segments of random lengths and
  any tokens, each said twice, back to back (what `--repeat-rows` mixes into training batches).
- `TrigramLanguage`: a second-order Markov chain, each token one of two successors of the
  pair before it: predictable only from the previous token *and* the current one, the job of
  a previous-token head (attention is the only way a position learns its neighbour).

>>> x, y = repeated_segments(2, 12, 64, (3, 3))(torch.Generator().manual_seed(0))
>>> bool((x[0, :3] == x[0, 3:6]).all()), y[0, :3].tolist(), bool(y[0, 3] == x[0, 4])
(True, [-1, -1, -1], True)
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from gpt2lab.errors import GPT2LabError

Batch = Callable[[torch.Generator], tuple[torch.Tensor, torch.Tensor]]
"""g -> (x, y), each (B, T) token ids; targets of −1 are ignored by the model's loss."""


def repeated_segments(batch: int, length: int, vocab: int, lengths: tuple[int, int]) -> Batch:
    """Rows of random segments, each repeated once; only the second copy is a target.

    Segment lengths vary per row in [lengths[0], lengths[1]], so no fixed offset finds the
    copy. Tokens within a row are distinct (so "the earlier copy" is unambiguous), which needs
    vocab ≥ length + 1. Targets are −1 except inside a second copy after its first token
    (the first token of a copy cannot be predicted).
    """
    if vocab < length + 1:
        raise GPT2LabError(f"vocab {vocab} is too small for {length + 1} distinct tokens per row")
    if not 1 <= lengths[0] <= lengths[1]:
        raise GPT2LabError(f"segment lengths must satisfy 1 <= min <= max, got {lengths}")

    def sample(g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        L = torch.randint(lengths[0], lengths[1] + 1, (batch, 1), generator=g)  # (B, 1)
        pos = torch.arange(length + 1)
        source = (pos // (2 * L)) * L + pos % L  # (B, T+1): which fresh token goes where
        fresh = torch.rand(batch, vocab, generator=g).argsort(1)[:, : length + 1]
        tokens = fresh.gather(1, source)
        in_second_copy = (pos % (2 * L)) > L
        targets = torch.where(in_second_copy, tokens, -1)
        return tokens[:, :-1], targets[:, 1:]

    return sample


def spans_said_twice(batch: int, length: int, vocab: int, lengths: tuple[int, int]) -> Batch:
    """Rows of random segments, each said twice: `a b c a b c d e f g d e f g …`.

    Every segment has its own length in [lengths[0], lengths[1]] and uniform random tokens in
    [0, vocab), so neither a fixed offset nor the row's period finds the earlier copy, only the
    token that came before it. Only the predictable tokens are targets, as in
    `repeated_segments`: the second copy after its first token (−1 elsewhere). Scoring the
    random first copies too keeps a model on its plateau far longer (docs/interpretability.md).
    """
    if not 1 <= lengths[0] <= lengths[1]:
        raise GPT2LabError(f"segment lengths must satisfy 1 <= min <= max, got {lengths}")
    n = length + 1
    segments = n // (2 * lengths[0]) + 1  # enough to fill a row even at the shortest length

    def sample(g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        L = torch.randint(lengths[0], lengths[1] + 1, (batch, segments), generator=g)  # (B, S)
        ends = (2 * L).cumsum(1)  # (B, S): where each segment's second copy ends
        pos = torch.arange(n).repeat(batch, 1)  # (B, T+1)
        seg = torch.searchsorted(ends, pos, right=True)  # (B, T+1): the segment of each position
        seg_len = L.gather(1, seg)
        offset = pos - (ends.gather(1, seg) - 2 * seg_len)  # (B, T+1): index in the pair, 0..2L−1
        first = (L.cumsum(1) - L).gather(1, seg)  # (B, T+1): the segment's first fresh token
        fresh = torch.randint(vocab, (batch, int(L.sum(1).max())), generator=g)
        tokens = fresh.gather(1, first + offset % seg_len)
        targets = torch.where(offset > seg_len, tokens, -1)  # second copy, after its first token
        return tokens[:, :-1], targets[:, 1:]

    return sample


class TrigramLanguage:
    """t_{i+1} is drawn uniformly from successors[t_{i−1}, t_i], two tokens fixed by `seed`.

    Given only the current token, the next one is spread over up to 2·vocab successors;
    given the pair, over 2: the best loss is at most ln 2 ≈ 0.69 nats (less where both
    successors coincide), against ≈ ln(2·vocab) for a model that ignores t_{i−1}.
    """

    def __init__(self, vocab: int, seed: int = 0) -> None:
        if vocab < 2:
            raise GPT2LabError(f"a trigram language needs at least 2 tokens, got {vocab}")
        self.vocab = vocab
        g = torch.Generator().manual_seed(seed)
        self.successors = torch.randint(0, vocab, (vocab, vocab, 2), generator=g)  # (V, V, 2)

    def sample(self, n: int, length: int, g: torch.Generator) -> torch.Tensor:
        """(n, length) sequences: two uniform tokens, then the chain."""
        seq = torch.empty(n, length, dtype=torch.long)
        seq[:, :2] = torch.randint(0, self.vocab, (n, min(2, length)), generator=g)
        for i in range(2, length):
            pick = torch.randint(0, 2, (n,), generator=g)
            seq[:, i] = self.successors[seq[:, i - 2], seq[:, i - 1], pick]
        return seq

    def batches(self, batch: int, length: int) -> Batch:
        """Next-token batches (x, y), each (batch, length)."""

        def sample(g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
            seq = self.sample(batch, length + 1, g)
            return seq[:, :-1], seq[:, 1:]

        return sample
