"""Evaluation: perplexity and bits-per-byte, last-word accuracy, and a cloze score.

Perplexity with a strided sliding window
    A model with a context of L tokens cannot score a long text in one pass. Cutting the text
    into disjoint L-token chunks scores the first tokens of each chunk with almost no context,
    which inflates the perplexity. The strided method (as in Hugging Face's perplexity guide)
    moves a window of L tokens forward by `stride` tokens and scores only the tokens that are
    new in each window, so every token is scored exactly once, with at least L - stride
    tokens of context (except near the start). stride = L - 1 is the fast, almost disjoint
    variant (windows share one token, the context of their first target); stride = 1 gives
    every token its full context and costs one forward per token.

        tokens 0 .. 9, L = 4, stride = 2:
        window [0, 4)  scores targets 1, 2, 3
        window [2, 6)  scores targets 4, 5        (context: tokens 2, 3 at least)
        window [4, 8)  scores targets 6, 7
        window [6, 10) scores targets 8, 9

Bits per byte
    Perplexity depends on the tokenizer (fewer, longer tokens give a higher perplexity for the
    same text). Bits per byte does not: the total negative log-likelihood in bits divided by
    the UTF-8 bytes of the text those tokens spell. Special tokens (<|endoftext|>) spell no
    text and count zero bytes.

Continuation scores
    `score_continuations` gives log p(continuation | context) and whether greedy decoding
    would produce exactly the continuation; last-word accuracy (LAMBADA), the cloze score on
    the `stories` probes and the lm-evaluation-harness adapter are built on it.

All of it rests on one per-position loss (`token_losses`), hence one file (about 480 lines)
rather than a package of small ones that would import each other.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gpt2lab.errors import GPT2LabError
from gpt2lab.files import read_text
from gpt2lab.model import GPT, context_limit, device_of, eval_mode

# ---------------------------------------------------------------------------------------------
# 1. Per-token negative log-likelihood with a strided sliding window
# ---------------------------------------------------------------------------------------------


def window_spans(n_tokens: int, context: int, stride: int) -> list[tuple[int, int, int]]:
    """The windows (begin, end, first_target) that score tokens 1 .. n_tokens - 1 once each.

    A window feeds tokens [begin, end) and scores the targets [first_target, end), each
    predicted from the tokens before it inside the window.
    window_spans(10, 4, 2) -> [(0, 4, 1), (2, 6, 4), (4, 8, 6), (6, 10, 8)].
    The stride is at most context - 1: a window's first new target needs a token before it.
    """
    if context < 2:
        raise GPT2LabError(f"the context must be at least 2 tokens, got {context}")
    if not 1 <= stride <= context - 1:
        raise GPT2LabError(
            f"stride must be between 1 and context - 1 ({context - 1}), got {stride}"
        )
    spans, scored_until = [], 1  # token 0 has nothing before it
    for begin in range(0, max(n_tokens - 1, 1), stride):
        end = min(begin + context, n_tokens)
        if end > scored_until:
            spans.append((begin, end, scored_until))
            scored_until = end
        if end == n_tokens:
            break
    return spans


def window_settings(model: GPT, context: int | None, stride: int | None) -> tuple[int, int]:
    """(context, stride): the model's block_size and half of it unless asked otherwise."""
    limit = model.config.block_size
    context = limit if context is None else context
    if context_limit(model.config) is not None and context > limit:
        raise GPT2LabError(f"the context {context} exceeds the model's block_size ({limit})")
    return context, max(1, context // 2) if stride is None else stride


def token_losses(model: GPT, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of every position (nats, computed in float32): x (B, L) ->
    loss[b, p] = -log p(y[b, p] | x[b, :p + 1]), shape (B, L). The one per-position loss that
    perplexity, windows and the position curves of the ablation report are built on."""
    logits, _ = model(x)  # (B, L, V)
    return F.cross_entropy(logits.float().transpose(1, 2), y, reduction="none")  # (B, L)


@torch.inference_mode()
def position_losses(
    model: GPT, data: str | Path, length: int, tokens: int, batch_size: int = 4
) -> tuple[torch.Tensor, int]:
    """Summed val loss per position (L,) of a prepared data dir, over up to `tokens` tokens
    of consecutive length-L sequences, and the number of sequences summed. A model with
    learned positions refuses L > block_size (GPT2LabError): positional extrapolation has no
    rows to look up.
    """
    from gpt2lab.data.loader import TokenLoader

    loader = TokenLoader(data, "val", batch_size=batch_size, block_size=length, mode="sequential")
    sums = torch.zeros(length, dtype=torch.float64)  # (L,)
    count = 0
    with eval_mode(model):
        for _ in range(max(1, tokens // (batch_size * length))):
            try:
                x, y = loader.next_batch()  # (B, L) each
            except StopIteration:
                break
            sums += token_losses(model, x, y).double().sum(0)
            count += x.size(0)
    return sums, count


@torch.inference_mode()
def token_nll(
    model: GPT,
    ids: torch.Tensor,
    context: int | None = None,
    stride: int | None = None,
    batch_size: int = 4,
    progress: bool = False,
) -> torch.Tensor:
    """nll[j - 1] = -log p(ids[j] | the window's tokens before j), for j = 1 .. N - 1 (nats).

    ids (N,) one token stream. context defaults to block_size, stride to half the context.
    Windows of equal length are run `batch_size` at a time.
    """
    from tqdm.auto import tqdm

    context, stride = window_settings(model, context, stride)
    ids = ids.to(device_of(model), torch.long)
    nll = torch.empty(max(ids.numel() - 1, 0), dtype=torch.float64)
    spans = window_spans(ids.numel(), context, stride)
    with (
        eval_mode(model),
        tqdm(total=len(spans), desc="windows", unit="win", disable=not progress) as bar,
    ):
        for group in _equal_length_batches(spans, batch_size):
            x = torch.stack([ids[b:e] for b, e, _ in group])  # (b, W)
            losses = token_losses(model, x[:, :-1], x[:, 1:])  # (b, W - 1)
            for row, (begin, end, first) in enumerate(group):
                nll[first - 1 : end - 1] = losses[row, first - begin - 1 :].double().cpu()
            bar.update(len(group))
    return nll


def _equal_length_batches(spans, batch_size: int):
    """Consecutive spans grouped by window length, at most batch_size per group."""
    group: list[tuple[int, int, int]] = []
    for span in spans:
        if group and (len(group) == batch_size or span[1] - span[0] != group[0][1] - group[0][0]):
            yield group
            group = []
        group.append(span)
    if group:
        yield group


# ---------------------------------------------------------------------------------------------
# 2. Perplexity and bits per byte of a text file or a token-shard directory
# ---------------------------------------------------------------------------------------------


@dataclass
class EvalTokens:
    """A token stream to score: ids[0] is context only; ids[1:] are scored."""

    ids: np.ndarray
    n_bytes: int
    """UTF-8 bytes spelled by ids[1:] (special tokens count 0)."""
    source: str


@dataclass
class PerplexityResult:
    source: str
    tokens: int
    """Tokens scored (the stream's length minus its first token)."""
    bytes: int
    nll_nats: float
    """Total negative log-likelihood of the scored tokens."""
    context: int
    stride: int

    @property
    def loss(self) -> float:
        """Mean cross-entropy per token, in nats (what training reports)."""
        return self.nll_nats / self.tokens

    @property
    def perplexity(self) -> float:
        return math.exp(self.loss)

    @property
    def bits_per_byte(self) -> float:
        return self.nll_nats / math.log(2) / self.bytes if self.bytes else float("nan")

    def to_dict(self) -> dict:
        return asdict(self) | {
            "loss": self.loss,
            "perplexity": self.perplexity,
            "bits_per_byte": self.bits_per_byte,
        }


def byte_lengths(tokenizer) -> np.ndarray:
    """(V,) UTF-8 bytes each token spells; special tokens spell no text and count 0."""
    special = {tokenizer.encode(s, allowed_special="all")[0] for s in tokenizer.special_tokens_set}
    return np.array(
        [0 if t in special else len(tokenizer.token_bytes(t)) for t in range(tokenizer.n_vocab)],
        dtype=np.int64,
    )


def read_documents(path: Path, jsonl: bool | None = None) -> list[str]:
    """A text file is one document; a .jsonl file holds one {"text": ...} per line.

    jsonl=None decides by the suffix; True reads JSON Lines whatever the name. The bytes are
    decoded as they are (no newline translation), so bits per byte counts a CRLF as 2 bytes.
    """
    if not path.is_file():
        raise GPT2LabError(f"no such file: {path}")
    raw = read_text(path)
    if not (jsonl if jsonl is not None else path.suffix == ".jsonl"):
        documents = [raw]
    else:
        documents = []
        for number, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                documents.append(str(json.loads(line)["text"]))
            except (json.JSONDecodeError, KeyError, TypeError):
                raise GPT2LabError(f'{path}:{number}: expected a JSON object with "text"') from None
    documents = [d for d in documents if d.strip()]
    if not documents:
        raise GPT2LabError(f"{path} has no text to evaluate")
    return documents


def tokens_of_text(path: Path, tokenizer) -> EvalTokens:
    """Each document as <|endoftext|> + its tokens, so its first token is scored too."""
    ids: list[int] = []
    n_bytes = 0
    for document in read_documents(path):
        ids += [tokenizer.eot_token, *tokenizer.encode_ordinary(document)]
        n_bytes += len(document.encode("utf-8"))
    return EvalTokens(np.array(ids, dtype=np.int64), n_bytes, str(path))


def tokens_of_shards(directory: Path, tokenizer, split: str) -> EvalTokens:
    """A prepared token directory's split, refused if another tokenizer wrote it."""
    from gpt2lab.data.loader import open_split

    shards, meta = open_split(directory, split)
    made_by = (meta or {}).get("tokenizer", {}).get("identity")
    if made_by and made_by != tokenizer.identity:
        raise GPT2LabError(
            f"{directory} was tokenized with {made_by}, but the model's tokenizer is "
            f"{tokenizer.identity}"
        )
    ids = np.concatenate([np.asarray(s, dtype=np.int64) for s in shards]) if shards else []
    if len(ids) and ids.max() >= tokenizer.n_vocab:
        raise GPT2LabError(
            f"{directory} holds token id {ids.max()}, past the model's vocabulary of "
            f"{tokenizer.n_vocab}: it was prepared with another tokenizer"
        )
    if len(ids) < 2:
        raise GPT2LabError(f"{directory} split {split!r} has fewer than 2 tokens to evaluate")
    n_bytes = int(byte_lengths(tokenizer)[ids[1:]].sum())
    return EvalTokens(ids, n_bytes, f"{directory} ({split})")


def load_eval_tokens(path: str | Path, tokenizer, split: str = "val") -> EvalTokens:
    """Tokens of a text/.jsonl FILE, a prepared shard DIR, or a single shard .bin file."""
    path = Path(path)
    if not path.exists():
        raise GPT2LabError(f"no such file or directory: {path}")
    if path.is_dir() or path.suffix == ".bin":
        return tokens_of_shards(path, tokenizer, split)
    return tokens_of_text(path, tokenizer)


def truncate(tokens: EvalTokens, max_tokens: int | None, tokenizer) -> EvalTokens:
    """The first max_tokens tokens (None: all), with the byte count to match."""
    if max_tokens is None or max_tokens >= len(tokens.ids):
        return tokens
    if max_tokens < 2:
        raise GPT2LabError(f"--max-tokens must be at least 2, got {max_tokens}")
    ids = tokens.ids[:max_tokens]
    n_bytes = int(byte_lengths(tokenizer)[ids[1:]].sum())
    return EvalTokens(ids, n_bytes, tokens.source)


def perplexity(
    model: GPT,
    tokens: EvalTokens,
    context: int | None = None,
    stride: int | None = None,
    batch_size: int = 4,
    progress: bool = False,
) -> PerplexityResult:
    """Perplexity and bits per byte of a token stream (strided sliding window)."""
    context, stride = window_settings(model, context, stride)
    nll = token_nll(model, torch.from_numpy(tokens.ids), context, stride, batch_size, progress)
    return PerplexityResult(
        tokens.source, nll.numel(), tokens.n_bytes, float(nll.sum()), context, stride
    )


# ---------------------------------------------------------------------------------------------
# 3. Continuations: log-likelihood and greedy match
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContinuationScore:
    logprob: float
    """log p(continuation | context), summed over the continuation's tokens (nats)."""
    greedy: bool
    """True when each continuation token is the argmax given everything before it."""
    n_tokens: int


@torch.inference_mode()
def score_continuations(
    model: GPT,
    pairs: list[tuple[list[int], list[int]]],
    batch_size: int = 8,
) -> list[ContinuationScore]:
    """Score (context ids, continuation ids) pairs, in the order given.

    Context + continuation is cut to the model's last block_size + 1 tokens (the context loses
    its oldest tokens first, as in lm-evaluation-harness). Rows of a batch are padded on the
    right, which a causal model never looks at.
    """
    limit = model.config.block_size + 1
    device = device_of(model)
    for context, continuation in pairs:
        if not continuation:
            raise GPT2LabError("a continuation must have at least one token")
        if not context:
            raise GPT2LabError("a context must have at least one token (e.g. <|endoftext|>)")
        if len(continuation) >= limit:
            raise GPT2LabError(
                f"a continuation of {len(continuation)} tokens does not fit the context of "
                f"{model.config.block_size}"
            )
    order = sorted(range(len(pairs)), key=lambda i: -len(pairs[i][0]) - len(pairs[i][1]))
    scores: dict[int, ContinuationScore] = {}
    with eval_mode(model):
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            rows = [(pairs[i][0] + pairs[i][1])[-limit:] for i in chunk]
            width = max(len(r) for r in rows) - 1
            x = torch.zeros(len(rows), width, dtype=torch.long)
            for r, row in enumerate(rows):
                x[r, : len(row) - 1] = torch.tensor(row[:-1])
            logprobs = model(x.to(device))[0].float().log_softmax(-1)  # (b, W, V)
            for r, i in enumerate(chunk):
                n = len(pairs[i][1])
                end = len(rows[r]) - 1
                target = torch.tensor(pairs[i][1], device=device)  # (n,)
                lp = logprobs[r, end - n : end]  # (n, V)
                scores[i] = ContinuationScore(
                    float(lp.gather(-1, target[:, None]).sum()),
                    bool((lp.argmax(-1) == target).all()),
                    n,
                )
    return [scores[i] for i in range(len(pairs))]


def split_context(text: str, start: int) -> tuple[str, str]:
    """Text before a word and the separating space moved to the word's side, as GPT-2 tokens
    carry their leading space: ("Lily ate an apple", 13) -> ("Lily ate an", " apple")."""
    before = text[:start]
    stripped = before.rstrip(" ")
    return stripped, before[len(stripped) :]


def last_word_accuracy(model: GPT, tokenizer, texts: list[str], batch_size: int = 8) -> dict:
    """LAMBADA-style: predict each text's last word from the rest (lm-eval's lambada_openai).

    The context is the text up to the last space, the target " " + the last word. Accuracy:
    greedy decoding yields the whole target; perplexity: exp(-mean log p(target)).
    """
    pairs = []
    for text in texts:
        text = text.strip()
        if " " not in text:
            raise GPT2LabError(f"a last-word example needs at least two words: {text[:40]!r}")
        context, _, word = text.rpartition(" ")
        pairs.append((tokenizer.encode_ordinary(context), tokenizer.encode_ordinary(" " + word)))
    scores = score_continuations(model, pairs, batch_size)
    return {
        "examples": len(scores),
        "accuracy": sum(s.greedy for s in scores) / len(scores),
        "perplexity": math.exp(-sum(s.logprob for s in scores) / len(scores)),
    }


# ---------------------------------------------------------------------------------------------
# 4. Cloze on the `stories` probes
# ---------------------------------------------------------------------------------------------

SWAPS = {"was": "were", "were": "was", "her": "him", "him": "her"}


def cloze_items(records: list[dict]) -> list[dict]:
    """Two-choice cloze items from `stories` probe records (see data/stories.py).

    agreement:   "The dogs near the old barn ___ happy."  " were" vs " was" (the subject's
                 number decides; the attractor between them may pull the other way);
    coreference, object form: "... He gave ___ a kite"  " her" vs " him" (the giver and the
                 receiver are the two people of the story, of different genders).
    Subject-form coreference records have no predictable word and are skipped.
    """
    items = []
    for record in records:
        word = record.get("verb") if record["kind"] == "agreement" else record.get("pronoun")
        if record["kind"] == "coreference" and record.get("form") != "object":
            continue
        if not word or word["text"] not in SWAPS:
            continue
        context, space = split_context(record["text"], word["char"][0])
        kind = record["kind"]
        if kind == "agreement":
            kind += "/" + ("same" if record["number"] == record["attractor_number"] else "mixed")
        items.append(
            {
                "kind": kind,
                "context": context,
                "right": space + word["text"],
                "wrong": space + SWAPS[word["text"]],
            }
        )
    return items


def cloze_score(model: GPT, tokenizer, records: list[dict], batch_size: int = 8) -> dict:
    """Accuracy of log p(right word) > log p(wrong word), overall and per kind."""
    items = cloze_items(records)
    if not items:
        raise GPT2LabError("the probe file has no agreement or object-pronoun examples")
    pairs = []
    for item in items:
        context = tokenizer.encode_ordinary(item["context"])
        pairs.append((context, tokenizer.encode_ordinary(item["right"])))
        pairs.append((context, tokenizer.encode_ordinary(item["wrong"])))
    scores = score_continuations(model, pairs, batch_size)
    correct = [scores[2 * i].logprob > scores[2 * i + 1].logprob for i in range(len(items))]
    by_kind: dict[str, list[bool]] = {}
    for item, ok in zip(items, correct):
        by_kind.setdefault(item["kind"], []).append(ok)
    return {
        "examples": len(items),
        "accuracy": sum(correct) / len(correct),
        "by_kind": {
            k: {"examples": len(v), "accuracy": sum(v) / len(v)} for k, v in by_kind.items()
        },
    }


def read_probe_records(path: str | Path | None, n: int = 200, seed: int = 0) -> list[dict]:
    """Probe records from a JSONL file (`write_probes`), or `n` fresh ones for this seed."""
    if path is None:
        from gpt2lab.data.stories import probe_examples

        return probe_examples(n, seed, tokenizer=None)
    path = Path(path)
    if not path.is_file():
        raise GPT2LabError(f"no such probe file: {path}")
    try:
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except json.JSONDecodeError as err:
        raise GPT2LabError(f"{path} is not JSON Lines: {err}") from None
    if not records:
        raise GPT2LabError(f"{path} has no probe records")
    return records
