"""Text generation with a preallocated KV cache.

One step of autoregressive decoding turns the logits of the last position into one new token:

    logits (B, V) ─repetition penalty─> ─÷ temperature─> ─top-k─> ─top-p─> softmax ─> sample

Each stage is a small pure function on a (B, V) tensor, tested on its own against
hand-computed distributions. Temperature 0 means greedy decoding (argmax), which is what
`transformers`' `generate(do_sample=False)` does and what the parity tests compare.

The KV cache makes a step cost one position instead of the whole sequence: the prompt is run
once ("prefill") and every later step feeds one token while the cache holds the keys and
values of everything before it. The cache is allocated once, for the longest sequence the call
can produce, so decoding allocates no new cache memory.

Batches of prompts of different lengths are left-padded: `attention_mask` (B, T) has 0 on the
padding, attention never looks at it and positions count real tokens only, so each row
generates exactly what it would have generated alone.

Context: with learned positions (GPT-2) a model cannot see more than `block_size` tokens. A
longer prompt is cropped to its last `block_size` tokens, and once the sequence outgrows the
context each new token is predicted from the last `block_size` tokens (a sliding window). The
learned position of a cached key cannot shift, so past the context each step recomputes its
window (as nanoGPT's `idx[:, -block_size:]` does); below it the cache is used.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gpt2lab.errors import GPT2LabError
from gpt2lab.model import GPT, KVCache, context_limit, eval_mode

# ---------------------------------------------------------------------------------------------
# 1. Sampling settings and the pure logits transforms
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SamplingConfig:
    """How the next token is chosen from the logits."""

    temperature: float = 1.0
    """Divides the logits; < 1 sharpens, > 1 flattens, 0 means greedy (argmax)."""
    top_k: int | None = None
    """Keep only the k most likely tokens (None: all)."""
    top_p: float | None = None
    """Nucleus sampling: keep the fewest most likely tokens whose probability sums to >= top_p."""
    repetition_penalty: float | None = None
    """CTRL's penalty (> 1 discourages tokens already in the sequence); None or 1: off."""

    def __post_init__(self) -> None:
        if not self.temperature >= 0:
            raise GPT2LabError(f"temperature must be >= 0 (0 = greedy), got {self.temperature}")
        if self.top_k is not None and self.top_k < 1:
            raise GPT2LabError(f"top_k must be a positive integer, got {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise GPT2LabError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.repetition_penalty is not None and not self.repetition_penalty > 0:
            raise GPT2LabError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


def apply_repetition_penalty(
    logits: torch.Tensor, seen: torch.Tensor, penalty: float
) -> torch.Tensor:
    """CTRL's repetition penalty (Keskar et al., 2019), as in `transformers`.

    logits (B, V); seen (B, V) bool, True for tokens already in the row. A seen token's logit
    is divided by `penalty` when positive and multiplied by it when negative, so with
    penalty 2 the logits [2, -1, 3] with tokens 0 and 1 seen become [1, -2, 3].
    """
    penalized = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(seen, penalized, logits)


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Set every logit below the k-th largest of its row to -inf (ties with it stay).

    [1, 3, 2, 0] with k=2 -> [-inf, 3, 2, -inf].
    """
    k = min(k, logits.size(-1))
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (B, 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filter (Holtzman et al., 2019): keep the most likely tokens, in order, until
    their probabilities sum to at least p; the most likely token always stays.

    Probabilities [0.5, 0.3, 0.2] with p=0.7 keep the first two (0.5 < 0.7 <= 0.8).
    A token is kept when the probability mass strictly before it is below p.
    """
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # (B, V)
    probs = sorted_logits.softmax(dim=-1)
    mass_before = F.pad(probs.cumsum(dim=-1)[..., :-1], (1, 0))  # (B, V), exclusive cumsum
    drop_sorted = mass_before >= p
    drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
    return logits.masked_fill(drop, float("-inf"))


def next_token_logits(
    logits: torch.Tensor, sampling: SamplingConfig, seen: torch.Tensor | None = None
) -> torch.Tensor:
    """The logits (B, V) that the next token is drawn from, after every enabled transform
    (in `transformers`' order: repetition penalty, temperature, top-k, top-p)."""
    if sampling.repetition_penalty not in (None, 1.0) and seen is not None:
        logits = apply_repetition_penalty(logits, seen, sampling.repetition_penalty)
    if sampling.greedy:
        return logits
    if sampling.temperature != 1.0:
        logits = logits / sampling.temperature
    if sampling.top_k is not None:
        logits = top_k_filter(logits, sampling.top_k)
    if sampling.top_p is not None and sampling.top_p < 1.0:
        logits = top_p_filter(logits, sampling.top_p)
    return logits


def choose_next(
    logits: torch.Tensor,
    sampling: SamplingConfig,
    generator: torch.Generator | None = None,
    seen: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B, V) logits -> (B, 1) token ids: argmax when greedy, else a draw from the softmax."""
    logits = next_token_logits(logits.float(), sampling, seen)
    if sampling.greedy:
        return logits.argmax(dim=-1, keepdim=True)
    return torch.multinomial(logits.softmax(dim=-1), 1, generator=generator)


# ---------------------------------------------------------------------------------------------
# 2. The decoding loop
# ---------------------------------------------------------------------------------------------


@contextmanager
def last_position_logits(model: GPT):
    """Within the block, the model's forward computes logits for the last position only.

    A prompt of T tokens needs the lm_head (C x V, the largest matmul) once, not T times; the
    final LayerNorm and the head are position-wise, so slicing the last block's output first
    gives exactly the same last-position logits. Done with a hook, so the model is unchanged.
    """
    last = f"blocks.{model.config.n_layer - 1}.hook_resid_post"
    with model.hooks([(last, lambda x, hook: x[:, -1:])]):  # (B, T, C) -> (B, 1, C)
        yield


def stop_ids(stop: int | Iterable[int] | None) -> list[int]:
    """`stop` as a list of token ids: None -> [], 50256 -> [50256], [13, 50256] stays."""
    if stop is None:
        return []
    return [int(stop)] if isinstance(stop, int) else [int(s) for s in stop]


class Decoder:
    """Incremental decoding state for one batch: the token buffer, its mask and the cache.

    The buffer `ids` (B, T + max_new_tokens) is filled in place, one column per step; the
    attention mask likewise. `logits()` returns the (B, V) logits for the next position,
    from the cache when the sequence fits the context, else by recomputing the window.
    """

    def __init__(
        self,
        model: GPT,
        idx: torch.Tensor,
        max_new_tokens: int,
        attention_mask: torch.Tensor | None,
        use_cache: bool,
    ) -> None:
        B, T = idx.shape
        device = idx.device
        self.model = model
        self.window = context_limit(model.config)
        self.ids = torch.empty(B, T + max_new_tokens, dtype=torch.long, device=device)
        self.ids[:, :T] = idx
        self.length = T
        self.padded = attention_mask is not None and not bool(attention_mask.all())
        self.mask = None
        if self.padded:
            self.mask = torch.ones(B, T + max_new_tokens, dtype=torch.long, device=device)
            self.mask[:, :T] = attention_mask
        self.cache = None
        if use_cache:
            size = (
                T + max_new_tokens if self.window is None else min(self.window, T + max_new_tokens)
            )
            dtype = model.wte.weight.dtype  # the stream's dtype (also with low-precision linears)
            self.cache = KVCache(model.config, B, size, device=device, dtype=dtype)

    def append(self, token: torch.Tensor) -> None:
        """Write the (B, 1) new tokens into the buffer."""
        self.ids[:, self.length : self.length + 1] = token
        self.length += 1

    def _mask(self, start: int, end: int) -> torch.Tensor | None:
        return self.mask[:, start:end] if self.padded else None

    def logits(self) -> torch.Tensor:
        """(B, V) logits for the token after the current sequence."""
        start = 0 if self.window is None else max(0, self.length - self.window)
        cache = self.cache
        if cache is not None and cache.length and self.length - 1 - start == cache.length:
            # The cache holds everything before the newest token: one step of one position.
            logits, _ = self.model(
                self.ids[:, self.length - 1 : self.length],
                cache=cache,
                attention_mask=self._mask(start, self.length),
            )
            return logits[:, -1]
        if cache is not None:
            cache.length = 0  # first call, or the window slid: (re)fill the cache
        with last_position_logits(self.model):
            logits, _ = self.model(
                self.ids[:, start : self.length],
                cache=cache,
                attention_mask=self._mask(start, self.length),
            )
        return logits[:, -1]

    def seen_tokens(self, vocab_size: int) -> torch.Tensor:
        """(B, V) bool: which tokens occur among the real (unpadded) tokens of each row."""
        seen = torch.zeros(self.ids.size(0), vocab_size, dtype=torch.bool, device=self.ids.device)
        ids = self.ids[:, : self.length]
        real = ids if not self.padded else ids.masked_fill(self.mask[:, : self.length] == 0, -1)
        rows, cols = (real >= 0).nonzero(as_tuple=True)
        seen[rows, real[rows, cols]] = True
        return seen


def check_generate_args(
    model: GPT, idx: torch.Tensor, max_new_tokens: int, attention_mask: torch.Tensor | None
) -> None:
    """One clear GPT2LabError for each way the arguments of `generate` can be wrong."""
    if idx.dim() != 2:
        raise GPT2LabError(f"idx must have shape (batch, time), got {tuple(idx.shape)}")
    if idx.size(1) == 0:
        raise GPT2LabError("the prompt is empty: give at least one token")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int):
        raise GPT2LabError(f"max_new_tokens must be an integer, got {max_new_tokens!r}")
    if max_new_tokens <= 0:
        raise GPT2LabError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    vocab = model.config.vocab_size
    if int(idx.min()) < 0 or int(idx.max()) >= vocab:
        raise GPT2LabError(f"prompt has token ids outside [0, {vocab})")
    if attention_mask is not None and attention_mask.shape != idx.shape:
        raise GPT2LabError(
            f"attention_mask has shape {tuple(attention_mask.shape)}, idx {tuple(idx.shape)}"
        )


def stream(
    model: GPT,
    idx: torch.Tensor,
    max_new_tokens: int,
    sampling: SamplingConfig | None = None,
    *,
    stop: int | Iterable[int] | None = None,
    seed: int | None = None,
    attention_mask: torch.Tensor | None = None,
    use_cache: bool = True,
) -> Iterator[torch.Tensor]:
    """Yield the (B,) new tokens of each step as soon as they are chosen.

    A row that produced a `stop` token is finished: it keeps yielding that row's stop token
    (as padding) while other rows go on, and the stream ends when every row is finished or
    after max_new_tokens steps. Breaking out of the loop early is fine. The arguments are
    checked here, before the first step.
    """
    sampling = sampling or SamplingConfig()
    check_generate_args(model, idx, max_new_tokens, attention_mask)
    generator = None
    if seed is not None and not sampling.greedy:
        generator = torch.Generator(device=idx.device).manual_seed(seed)
    stops = torch.tensor(stop_ids(stop), dtype=torch.long, device=idx.device)
    return _steps(model, idx, max_new_tokens, sampling, stops, generator, attention_mask, use_cache)


def _steps(model, idx, max_new_tokens, sampling, stops, generator, attention_mask, use_cache):
    """The decoding loop behind `stream` (arguments already checked).

    Inference mode is entered for each step's work and left before each yield, so the
    caller's code between steps runs in its own mode and gets ordinary tensors. The model
    stays in eval mode while the stream is open (its own mode comes back at the end).
    """
    penalize = sampling.repetition_penalty not in (None, 1.0)
    with eval_mode(model):
        with torch.inference_mode():
            state = Decoder(model, idx, max_new_tokens, attention_mask, use_cache)
            seen = state.seen_tokens(model.config.vocab_size) if penalize else None
            finished = torch.zeros(idx.size(0), 1, dtype=torch.bool, device=idx.device)
        for _ in range(max_new_tokens):
            with torch.inference_mode():
                token = choose_next(state.logits(), sampling, generator, seen)  # (B, 1)
                if stops.numel():
                    token = torch.where(finished, stops[0], token)
                    finished |= torch.isin(token, stops)
                if seen is not None:
                    seen.scatter_(1, token, True)
                state.append(token)
                done = stops.numel() and bool(finished.all())
            yield token[:, 0].clone()  # (B,), an ordinary tensor
            if done:
                return


def generate(
    model: GPT,
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    repetition_penalty: float | None = None,
    stop: int | Iterable[int] | None = None,
    seed: int | None = None,
    *,
    attention_mask: torch.Tensor | None = None,
    use_cache: bool = True,
) -> torch.Tensor:
    """Continue each prompt row of idx (B, T); return (B, T + n) with n <= max_new_tokens.

    temperature=0 is greedy decoding. `seed` makes sampling reproducible (same seed, same
    tokens). `attention_mask` (B, T) marks left padding with 0 for prompts of different
    lengths. n < max_new_tokens only when every row hit a `stop` token.
    """
    sampling = SamplingConfig(temperature, top_k, top_p, repetition_penalty)
    steps = stream(
        model,
        idx,
        max_new_tokens,
        sampling,
        stop=stop,
        seed=seed,
        attention_mask=attention_mask,
        use_cache=use_cache,
    )
    new = [token[:, None] for token in steps]
    return torch.cat([idx, *new], dim=1)


# ---------------------------------------------------------------------------------------------
# 3. Batches of text, streaming text, and which model/tokenizer to use
# ---------------------------------------------------------------------------------------------


def left_pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token lists of different lengths -> (idx (B, T), attention_mask (B, T)), padded left.

    [[5, 6, 7], [8]] with pad 0 -> idx [[5, 6, 7], [0, 0, 8]], mask [[1, 1, 1], [0, 0, 1]].
    """
    if not rows or any(len(r) == 0 for r in rows):
        raise GPT2LabError("the prompt is empty: give at least one token")
    T = max(len(r) for r in rows)
    idx = torch.full((len(rows), T), pad_id, dtype=torch.long)
    mask = torch.zeros(len(rows), T, dtype=torch.long)
    for i, row in enumerate(rows):
        idx[i, T - len(row) :] = torch.tensor(row, dtype=torch.long)
        mask[i, T - len(row) :] = 1
    return idx, mask


class TextStream:
    """Token ids in, printable text out, holding back the bytes of an unfinished character.

    A token may end in the middle of a multi-byte UTF-8 character ('é' is two bytes that
    GPT-2 can emit as two tokens); printing each token's bytes on their own would show U+FFFD.
    An incremental UTF-8 decoder keeps the partial bytes until the character is complete.
    """

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, token: int) -> str:
        return self.decoder.decode(self.tokenizer.token_bytes(int(token)))

    def flush(self) -> str:
        return self.decoder.decode(b"", final=True)
