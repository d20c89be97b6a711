"""Train a byte-level BPE vocabulary the way GPT-2's was made, small enough for a CPU.

Training repeats one step: find the most frequent adjacent pair of tokens in the corpus and
make it a new token. On "low lower lowest" the first merges are ('l','o') then ('lo','w')...

Pre-tokenization (GPT-2's regex) happens first, so pairs never cross a word boundary and the
corpus shrinks to a table of distinct words with counts: " the" x 41,203, " cat" x 977, ...
Counting pairs then costs one pass over that table, not over the text. After each merge only
the words that contain the merged pair change, so an index pair -> words lets us update the
pair counts of those words alone, and a heap finds the next best pair without a full scan.

Ties are broken deterministically: the highest count wins, then the lexicographically smallest
(left bytes, right bytes). The same corpus and size always give the same merges.
"""

from __future__ import annotations

import heapq
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

from gpt2lab.errors import GPT2LabError
from gpt2lab.tokenizer.bpe import repair_surrogates
from gpt2lab.tokenizer.pretokenize import split
from gpt2lab.tokenizer.vocab import ENDOFTEXT, write_vocab

Pair = tuple[int, int]


def count_words(texts: Iterable[str]) -> Counter[bytes]:
    """Distinct pre-tokens (as UTF-8 bytes) and how often each occurs.

    ["the cat", "the dog"] -> {b'the': 2, b' cat': 1, b' dog': 1}. "<|endoftext|>" in the text
    only separates documents and is not counted.
    """
    counts: Counter[str] = Counter()
    for text in texts:
        for document in text.split(ENDOFTEXT):
            counts.update(split(repair_surrogates(document)))
    words: Counter[bytes] = Counter()
    for word, n in counts.items():
        words[word.encode("utf-8")] += n
    return words


def pair_counts(symbols: list[int]) -> Counter[Pair]:
    """Adjacent pairs of one word: [1, 2, 1, 2] -> {(1, 2): 2, (2, 1): 1}."""
    return Counter(zip(symbols, symbols[1:]))


def apply_merge(symbols: list[int], pair: Pair, new: int) -> list[int]:
    """Replace each occurrence of `pair`, left to right: [1, 2, 1, 2], (1, 2), 9 -> [9, 9]."""
    out: list[int] = []
    i = 0
    while i < len(symbols):
        if i < len(symbols) - 1 and symbols[i] == pair[0] and symbols[i + 1] == pair[1]:
            out.append(new)
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return out


def learn_merges(
    words: Counter[bytes],
    n_merges: int,
    progress: Callable[[int], None] | None = None,
) -> list[tuple[bytes, bytes]]:
    """The first `n_merges` BPE merges of a word table, as (left bytes, right bytes) pairs.

    Token ids during training: byte b is b, merge i creates 256 + i. `progress(i)` is called
    after each merge. Raises GPT2LabError if the corpus runs out of pairs before n_merges.
    """
    vocab: list[bytes] = [bytes([b]) for b in range(256)]
    word_symbols = [list(word) for word in words]  # each word as a list of token ids
    word_counts = list(words.values())

    counts: Counter[Pair] = Counter()
    where: defaultdict[Pair, set[int]] = defaultdict(set)  # pair -> indices of words holding it
    for index, symbols in enumerate(word_symbols):
        for pair, n in pair_counts(symbols).items():
            counts[pair] += n * word_counts[index]
            where[pair].add(index)

    # Max-heap by count, then smallest bytes; stale entries are skipped when popped.
    def entry(pair: Pair) -> tuple[int, bytes, bytes, Pair]:
        return (-counts[pair], vocab[pair[0]], vocab[pair[1]], pair)

    heap = [entry(pair) for pair in counts]
    heapq.heapify(heap)

    merges: list[tuple[bytes, bytes]] = []
    while len(merges) < n_merges:
        while heap and -heap[0][0] != counts.get(heap[0][3], 0):
            heapq.heappop(heap)
        if not heap or -heap[0][0] <= 0:
            raise GPT2LabError(
                f"the input has only enough distinct pairs for {len(merges)} merges; "
                f"ask for a vocabulary of at most {256 + len(merges) + 1} or give more text"
            )
        pair = heapq.heappop(heap)[3]
        new = len(vocab)
        vocab.append(vocab[pair[0]] + vocab[pair[1]])
        merges.append((vocab[pair[0]], vocab[pair[1]]))

        changed: set[Pair] = set()
        for index in sorted(where.pop(pair)):
            old = word_symbols[index]
            merged = apply_merge(old, pair, new)
            if len(merged) == len(old):
                continue  # the index was stale: an earlier merge already consumed this pair
            word_symbols[index] = merged
            delta = pair_counts(merged)
            delta.subtract(pair_counts(old))
            for other, d in delta.items():
                if d:
                    counts[other] += d * word_counts[index]
                    changed.add(other)
                    if d > 0:
                        where[other].add(index)
        counts.pop(pair, None)
        changed.discard(pair)
        for other in changed:
            if counts[other] > 0:
                heapq.heappush(heap, entry(other))
            else:
                del counts[other]
        if progress is not None:
            progress(len(merges))
    return merges


def train_bpe(
    texts: Iterable[str],
    vocab_size: int,
    progress: Callable[[int], None] | None = None,
) -> list[tuple[bytes, bytes]]:
    """Merges for a vocabulary of `vocab_size` ids: 256 bytes + merges + <|endoftext|>.

    So vocab_size=4096 learns 4096 - 257 = 3839 merges (GPT-2: 50257 -> 50000 merges).
    """
    if vocab_size < 257:
        raise GPT2LabError(
            f"vocab size must be at least 257 (256 bytes + <|endoftext|>), got {vocab_size}"
        )
    words = count_words(texts)
    if not words:
        raise GPT2LabError("no text to train a tokenizer on")
    return learn_merges(words, vocab_size - 257, progress)


def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int,
    out: str | Path,
    progress: Callable[[int], None] | None = None,
    source: str = "",
) -> Path:
    """Train and save encoder.json + vocab.bpe (+ tokenizer.json, a note of how) in `out`.

    `get_tokenizer(out)` then loads it with either backend.
    """
    out = Path(out)
    merges = train_bpe(texts, vocab_size, progress)
    write_vocab(out, merges)
    note = {"vocab_size": vocab_size, "merges": len(merges), "source": source}
    (out / "tokenizer.json").write_text(json.dumps(note, indent=2) + "\n", encoding="utf-8")
    return out
