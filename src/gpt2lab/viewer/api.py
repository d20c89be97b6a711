"""What the explorer computes: tokens, next-token predictions, attention, head roles.

`Explorer` wraps one model and its tokenizer. Every model call goes through one lock: hooks
are global state on the model (see hooks.py), so two requests running forwards at once could
see each other's ablations. Each method returns plain JSON-able data for `server.py`.

The numbers come from the library, never recomputed here: attention patterns are read at
`blocks.{L}.attn.hook_pattern` with `run_with_cache`, ablations are
`interp.interventions.ablate_heads` hooks on `hook_z`, and head roles are
`interp.heads.compute_head_scores` + `classify_heads` on the `stories` probe texts.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gpt2lab.errors import GPT2LabError
from gpt2lab.interp.heads import ROLE_RULES, classify_heads, compute_head_scores, uniform_distance
from gpt2lab.interp.interventions import ablate_heads, check_head
from gpt2lab.interp.texts import probe_text_set
from gpt2lab.model import context_limit, device_of


class TooLong(GPT2LabError):
    """A text over the explorer's caps (the server answers 413)."""


@dataclass(frozen=True)
class Limits:
    """Caps that keep one request from tying up the server.

    max_tokens: longest text in tokens (also at most the model's context when positions are
        learned); max_chars: longest text before tokenising; max_top_k: predictions per
        position; thumb_size: side of the all-heads thumbnails (patterns are average-pooled
        down to it); probe_texts: stories texts the head roles are scored on.
    """

    max_tokens: int = 1024
    max_chars: int = 20_000
    max_top_k: int = 20
    thumb_size: int = 48
    probe_texts: int = 24


DEFAULT_LIMITS = Limits()
Head = tuple[int, int]
CONTEXT_TOKENS = 9  # tokens of text shown before a prediction
CONTINUATION_BYTES = frozenset(bytes([b]) for b in range(0x80, 0xC0))


class Explorer:
    """One model + tokenizer behind a lock; the JSON API's computations."""

    def __init__(
        self, model, tokenizer, *, name: str = "", limits: Limits = DEFAULT_LIMITS
    ) -> None:
        if tokenizer.n_vocab > model.config.vocab_size:
            raise GPT2LabError(
                f"the tokenizer has {tokenizer.n_vocab} tokens but the model only "
                f"{model.config.vocab_size}; pass the model's own tokenizer"
            )
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.limits = limits
        self.lock = threading.Lock()
        self._heads: dict | None = None

    # --- text -> tokens -------------------------------------------------------------------------

    @property
    def max_tokens(self) -> int:
        """The cap on tokens: the explorer's, and the context when positions are learned."""
        config = self.model.config
        limit = context_limit(config)
        return self.limits.max_tokens if limit is None else min(self.limits.max_tokens, limit)

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`; a typed `<|endoftext|>` is the special token."""
        if len(text) > self.limits.max_chars:
            raise TooLong(
                f"text is {len(text)} characters; the explorer takes at most "
                f"{self.limits.max_chars}"
            )
        ids = self.tokenizer.encode(text, allowed_special="all")
        if not ids:
            raise GPT2LabError("empty text: type something to look at")
        if len(ids) > self.max_tokens:
            raise TooLong(
                f"text is {len(ids)} tokens; the explorer takes at most {self.max_tokens}"
            )
        return ids

    def token_text(self, token: int) -> str:
        """The text of one token id (ids past the tokenizer's vocabulary show as <id>)."""
        if token >= self.tokenizer.n_vocab:
            return f"<{token}>"
        return self.tokenizer.decode([token])

    def tokens(self, ids: Sequence[int]) -> list[dict]:
        return [{"id": int(t), "text": self.token_text(t)} for t in ids]

    def context_start(self, ids: Sequence[int], i: int) -> int:
        """Where the context shown for position i starts: CONTEXT_TOKENS back, then further
        back while that token begins inside a character (a UTF-8 continuation byte)."""
        start = max(0, i + 1 - CONTEXT_TOKENS)
        while start > 0 and self.tokenizer.token_bytes(ids[start])[:1] in CONTINUATION_BYTES:
            start -= 1
        return start

    def check_heads(self, heads: Sequence[Head]) -> list[Head]:
        """The (layer, head) pairs, deduplicated; a GPT2LabError for one that does not exist."""
        unique = sorted(set(map(tuple, heads)))
        for layer, head in unique:
            check_head(self.model, layer, head)
        return unique

    # --- model calls ----------------------------------------------------------------------------

    def _device(self) -> torch.device:
        return device_of(self.model)

    @torch.no_grad()
    def _run(self, ids: list[int], ablate: list[Head], names=None):
        """One forward (under the lock) with `ablate` zeroed: (logits (T, V), cache)."""
        idx = torch.tensor([ids], device=self._device())  # (1, T)
        hooks = ablate_heads(self.model, ablate, "zero") if ablate else []
        with self.lock, self.model.hooks(hooks):
            logits, cache = self.model.run_with_cache(idx, names=names or [])
        return logits[0].float(), cache

    def info(self) -> dict:
        config = self.model.config
        return {
            "name": self.name,
            "n_layer": config.n_layer,
            "n_head": config.n_head,
            "n_embd": config.n_embd,
            "block_size": config.block_size,
            "vocab_size": config.vocab_size,
            "n_params": self.model.num_params(non_embedding=False),
            "max_tokens": self.max_tokens,
            "max_chars": self.limits.max_chars,
            "max_top_k": self.limits.max_top_k,
            "tokenizer": self.tokenizer.name,
        }

    def tokenize(self, text: str) -> dict:
        return {"tokens": self.tokens(self.encode(text))}

    def predict(self, text: str, k: int = 5, ablate: Sequence[Head] = ()) -> dict:
        """Top-k next tokens at every position, and with `ablate` zeroed, how they change.

        Each position's *target* is the text's next token, or, at the last position, the
        model's own top prediction; `delta` is Δ log p(target) = ablated − clean.
        """
        ids = self.encode(text)
        heads = self.check_heads(ablate)
        k = min(k, self.limits.max_top_k, self.model.config.vocab_size)
        clean_logits, _ = self._run(ids, [])
        targets = ids[1:] + [int(clean_logits[-1].argmax())]
        clean = next_token_view(clean_logits, targets, k)
        ablated = next_token_view(self._run(ids, heads)[0], targets, k) if heads else None
        positions = []
        for i, token in enumerate(ids):
            row = {
                "position": i,
                "token": self.tokens([token])[0],
                "target": self.tokens([targets[i]])[0],
                "target_is_prediction": i == len(ids) - 1,
                "top": self._top(clean, i),
                "context_start": (start := self.context_start(ids, i)),
                "context": self.tokenizer.decode(ids[start : i + 1]),
                "logprob": clean.logprob[i],
            }
            if ablated is not None:
                row["ablated_top"] = self._top(ablated, i)
                row["ablated_logprob"] = ablated.logprob[i]
                row["delta"] = ablated.logprob[i] - clean.logprob[i]
            positions.append(row)
        return {"ablated": [list(h) for h in heads], "positions": positions}

    def _top(self, view: NextTokenView, i: int) -> list[dict]:
        return [
            {"id": t, "text": self.token_text(t), "prob": p}
            for t, p in zip(view.top_ids[i], view.top_probs[i])
        ]

    def attention(self, text: str, layer: int, head: int, ablate: Sequence[Head] = ()) -> dict:
        """Head (layer, head)'s pattern (T, T) and thumbnails of every head of the layer."""
        check_head(self.model, layer, head)
        ids = self.encode(text)
        heads = self.check_heads(ablate)
        name = f"blocks.{layer}.attn.hook_pattern"
        _, cache = self._run(ids, heads, names=[name])
        patterns = cache[name][0].float().cpu()  # (nh, T, T)
        return {
            "layer": layer,
            "head": head,
            "tokens": self.tokens(ids),
            "pattern": rounded(patterns[head]),
            "thumbnails": rounded(pool_patterns(patterns, self.limits.thumb_size)),
        }

    # --- head roles -------------------------------------------------------------------------------

    def heads(self) -> dict:
        """Score grids and roles of every head, computed once on the stories probe texts.

        Once computed, the answer needs no lock (so it never waits behind model calls).
        """
        if self._heads is None:
            with self.lock:
                if self._heads is None:  # another request may have computed it meanwhile
                    self._heads = self._score_heads()
        return self._heads

    def _score_heads(self) -> dict:
        texts = probe_text_set(self.tokenizer, self.limits.probe_texts, max_tokens=self.max_tokens)
        scores = compute_head_scores(self.model, texts, progress=False)
        roles = classify_heads(scores, mean_uniform_distance=uniform_distance(texts))
        return {
            **scores.to_dict(),
            "roles": [
                {"layer": r.layer, "head": r.head, "role": r.role, "score": r.score} for r in roles
            ],
            "rules": [
                {
                    "role": r.role,
                    "score": r.score,
                    "threshold": r.threshold,
                    "description": r.description,
                }
                for r in ROLE_RULES
            ],
        }


# ---------------------------------------------------------------------------------------------
# Pure helpers
# ---------------------------------------------------------------------------------------------


@dataclass
class NextTokenView:
    """Per position: the top-k token ids and probabilities, and log p(target)."""

    top_ids: list[list[int]]
    top_probs: list[list[float]]
    logprob: list[float]


def next_token_view(logits: torch.Tensor, targets: Sequence[int], k: int) -> NextTokenView:
    """(T, V) logits -> top-k and log p(targets[i]) at each position i."""
    logp = F.log_softmax(logits.float(), dim=-1)  # (T, V)
    top = logp.topk(k, dim=-1)  # (T, k)
    target_logp = logp.gather(-1, torch.tensor(list(targets), device=logp.device)[:, None])
    return NextTokenView(
        top.indices.tolist(),
        [[round(p, 6) for p in row] for row in top.values.exp().tolist()],
        target_logp[:, 0].tolist(),
    )


def pool_patterns(patterns: torch.Tensor, size: int) -> torch.Tensor:
    """(nh, T, T) -> (nh, t, t) with t = min(T, size), by adaptive average pooling.

    Thumbnails stay small however long the text: T = 300 with size 48 gives 48 × 48 cells,
    each the mean of a ~6 × 6 block of the pattern.
    """
    T = patterns.shape[-1]
    if T <= size:
        return patterns
    return F.adaptive_avg_pool2d(patterns, (size, size))


def rounded(x: torch.Tensor, digits: int = 4) -> list:
    """A tensor as nested lists rounded to `digits` decimals (smaller JSON, same picture)."""
    return torch.round(x.double(), decimals=digits).tolist()
