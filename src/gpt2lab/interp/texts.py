"""Text sets to score heads on: the `stories` probes (with ground truth), or any text file.

Both end as a `heads.TextSet`. Short texts can be packed into sequences near the model's
context (`pack`), which is how a model sees text in training and keeps the first-row effect
of the pattern scores small (a perfect previous-token head scores (T − 1) / T on T tokens).
"""

from __future__ import annotations

from pathlib import Path

from gpt2lab.errors import GPT2LabError
from gpt2lab.interp.heads import TextSet


def token_strings(tokenizer, ids: list[int]) -> list[str]:
    return [tokenizer.decode([t]) for t in ids]


def probe_text_set(
    tokenizer, n: int = 200, seed: int = 0, max_tokens: int | None = None
) -> TextSet:
    """`n` stories probe examples (half coreference, half agreement) as a TextSet.

    Sentence ends come from the annotations; each coreference example adds one
    (pronoun token, antecedent token) pair, and its candidate antecedents for the nearest-name
    baseline are the two names it mentions (the antecedent and the distractor, which the
    probes always place nearer to the pronoun). Texts longer than `max_tokens` are left out.
    """
    from gpt2lab.data.stories import probe_examples

    texts = TextSet([], [], boundaries=[], source=f"stories probes (n={n}, seed={seed})")
    for record in probe_examples(n, seed=seed, tokenizer=tokenizer):
        ids = record["ids"]
        if max_tokens is not None and len(ids) > max_tokens:
            continue
        pairs, candidates = [], []
        if record["kind"] == "coreference":
            antecedent = record["antecedent"]["token"]
            pairs = [(record["pronoun"]["token"], antecedent)]
            candidates = sorted({antecedent, record["distractor"]["token"]})
        texts.append(
            ids,
            token_strings(tokenizer, ids),
            boundaries=[s["end_token"] for s in record["sentences"]],
            pronouns=pairs,
            candidates=candidates,
        )
    texts.check()
    return texts


def packed_probe_text_set(tokenizer, n: int, seed: int, max_tokens: int) -> TextSet:
    """`probe_text_set` packed into sequences of at most `max_tokens`, a blank line ("\\n\\n")
    between texts: what `gpt2lab heads` and `gpt2lab timeline` score heads on."""
    texts = probe_text_set(tokenizer, n, seed, max_tokens=max_tokens)
    separator = tokenizer.encode("\n\n")
    return pack(texts, max_tokens, separator, token_strings(tokenizer, separator))


def file_text_set(tokenizer, path: str | Path, max_tokens: int) -> TextSet:
    """A text file split on blank lines into paragraphs, each cut into ≤ max_tokens windows."""
    path = Path(path)
    if not path.is_file():
        raise GPT2LabError(f"text file not found: {path}")
    raw = path.read_text(encoding="utf-8", errors="replace")
    return windowed_text_set(tokenizer, raw.split("\n\n"), max_tokens, source=str(path))


def windowed_text_set(tokenizer, documents, max_tokens: int, source: str) -> TextSet:
    """Each document (stripped; empty ones skipped) cut into consecutive windows of at most
    `max_tokens` tokens, every token in exactly one window."""
    texts = TextSet([], [], boundaries=None, source=source)
    for document in (d.strip() for d in documents):
        ids = tokenizer.encode(document, disallowed_special=()) if document else []
        for start in range(0, len(ids), max_tokens):
            window = ids[start : start + max_tokens]
            texts.append(window, token_strings(tokenizer, window))
    texts.check()
    return texts


def pack(texts: TextSet, max_tokens: int, separator: list[int], sep_strings: list[str]) -> TextSet:
    """Join consecutive texts, `separator` tokens between them (their texts `sep_strings`),
    into sequences of at most `max_tokens`; every annotation moves with its text. A text
    that alone is longer stays as it is."""
    packed = TextSet([], [], boundaries=[], source=f"{texts.source}, packed to ≤{max_tokens}")
    current = None
    for k in range(len(texts)):
        part = texts.item(k)
        if (
            current is not None
            and len(current["tokens"]) + len(separator) + len(part["tokens"]) <= max_tokens
        ):
            offset = len(current["tokens"]) + len(separator)
            current["tokens"] += separator + part["tokens"]
            current["strings"] += sep_strings + part["strings"]
            current["boundaries"] += [b + offset for b in part["boundaries"]]
            current["pronouns"] += [(p + offset, a + offset) for p, a in part["pronouns"]]
            current["candidates"] += [c + offset for c in part["candidates"]]
            continue
        if current is not None:
            packed.append(**current)
        current = part
    if current is not None:
        packed.append(**current)
    packed.check()
    return packed


def load_text_set(
    tokenizer, context: int, path: str | Path | None = None, probes: int = 200, seed: int = 0
) -> TextSet:
    """The text set of the `heads` and `neurons` commands: the file at `path` (paragraphs cut
    into ≤ context windows), or else `probes` stories probe examples packed to ≤ context."""
    if path:
        return file_text_set(tokenizer, path, context)
    return packed_probe_text_set(tokenizer, probes, seed, context)
