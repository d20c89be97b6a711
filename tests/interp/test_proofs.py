"""Proofs on trained models: heads specialise the way the literature says they do.

(b) induction: a 2-layer model trained on repeated random token sequences forms an induction
head in its second layer (score ≥ 0.5) and none in its first — an induction head needs a
previous-token head before it (K-composition), so it cannot live in layer 1.
(a) stories: a model trained on the `stories` text forms a previous-token head (score ≥ 0.9)
and its best head's pronoun → antecedent accuracy is measured against the nearest-name
baseline (slow: marked `slow`).
"""

from __future__ import annotations

import time

import torch

from gpt2lab.config import GPTConfig
from gpt2lab.interp.heads import (
    InductionSpec,
    classify_heads,
    induction_scores,
)
from gpt2lab.model import GPT

from .training import train_lm


def repeated_sequences(B: int, T: int, vocab: int, lengths: tuple[int, int]):
    """Batches of random segments, each repeated once: a b c d a b c d e f g e f g ...

    Segment lengths vary (lengths[0]..lengths[1]), so no fixed offset finds the copy: only
    "attend to what followed this token last time" does. Tokens within a row are distinct, and
    only the second repeat's targets count (the first is unpredictable noise).
    """

    def batch(g: torch.Generator):
        L = torch.randint(lengths[0], lengths[1] + 1, (B, 1), generator=g)
        pos = torch.arange(T + 1)
        source = (pos // (2 * L)) * L + pos % L  # (B, T+1) index into the row's fresh tokens
        fresh = torch.rand(B, vocab, generator=g).argsort(1)[:, : T + 1]  # distinct tokens
        tokens = fresh.gather(1, source)
        in_second_repeat = (pos % (2 * L)) > L  # after the repeat's first token
        targets = torch.where(in_second_repeat, tokens, -1)
        return tokens[:, :-1], targets[:, 1:]

    return batch


def test_induction_head_forms_in_layer_2_not_layer_1():
    start = time.perf_counter()
    # No LayerNorm and PyTorch's default init (larger weights): the same circuit forms, but
    # the plateau before it is a few hundred steps instead of thousands on a CPU.
    config = GPTConfig(
        vocab_size=64,
        block_size=32,
        n_layer=2,
        n_head=2,
        n_embd=64,
        norm_placement="none",
        init="torch_default",
    )
    torch.manual_seed(0)
    model = GPT(config)
    before, _ = induction_scores(model, InductionSpec(rep_len=12, n_seqs=32, seed=1))
    losses = train_lm(model, repeated_sequences(16, 32, 64, (4, 12)), steps=600, lr=1e-2)
    scores, loss = induction_scores(model, InductionSpec(rep_len=12, n_seqs=32, seed=1))
    print(
        f"induction scores {scores.tolist()}, loss {loss:.3f}, {time.perf_counter() - start:.1f}s"
    )
    assert before.max() < 0.2  # nothing of the kind at init
    assert scores[1].max() >= 0.5, scores
    assert scores[0].max() < 0.5, scores
    assert loss < 2.0 < losses[0]  # and the model really copies: log(64) ≈ 4.16 at chance
    # classify_heads agrees: every induction head is in the second layer
    grids = {"induction": scores.numpy()}
    roles = [r for r in classify_heads(_scores(grids)) if r.role == "induction"]
    assert roles and all(r.layer == 1 for r in roles)


def _scores(grids):
    from gpt2lab.interp.heads import HeadScores

    return HeadScores(grids, n_texts=0)
