"""Byte-level BPE, written out: GPT-2's tokenizer in about a hundred lines.

Encoding " Hello world!!" takes four steps:

1. Pre-tokenize with GPT-2's regex, so merges never cross a word boundary:
   " Hello world!!" -> [" Hello", " world", "!!"]. A word keeps its leading space.
2. Spell each piece's UTF-8 bytes in the byte-to-unicode alphabet (see `vocab.bytes_to_unicode`):
   " Hello" -> "ĠHello". Every byte is now one visible character, so any text is representable.
3. Merge: repeatedly join the adjacent pair with the best (lowest) rank in `vocab.bpe`, until no
   adjacent pair is a known merge: Ġ H e l l o -> Ġ H e ll o ('l l', rank 41) -> ĠH e ll o
   ('Ġ H', 111) -> ĠHe ll o (423) -> ĠHell o (5527) -> ĠHello (18179).
4. Look each resulting token up in `encoder.json`: "ĠHello" -> 18435.

Words repeat, so the result of step 3 is cached per word. This backend exists to be read and
checked; `tiktoken` gives the same ids much faster (the tests hold the two to that).
"""

from __future__ import annotations

from collections.abc import Iterable

from gpt2lab.errors import GPT2LabError
from gpt2lab.tokenizer.base import SpecialSet, Tokenizer
from gpt2lab.tokenizer.pretokenize import split
from gpt2lab.tokenizer.vocab import Vocab, bytes_to_unicode, to_unicode

NO_MERGE = float("inf")
"""The rank of a pair that no merge joins."""

CACHE_LIMIT = 1_000_000
"""Words kept in the merge cache before it is emptied (bounds memory on huge corpora)."""


def merge_word(symbols: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """Apply BPE merges to one pre-token, best rank first, until none applies.

    With GPT-2's ranks, ['Ġ', 'l', 'o', 'w', 'e', 'r'] becomes ['Ġlower'] in five rounds:
    'e r' (rank 7) -> 'Ġ l' (44) -> 'o w' (66) -> 'ow er' (533) -> 'Ġl ower' (2537).
    Each round merges every occurrence of the single best pair, left to right, exactly like
    GPT-2's encoder.py.
    """
    while len(symbols) > 1:
        pairs = zip(symbols, symbols[1:])
        best = min(pairs, key=lambda pair: ranks.get(pair, NO_MERGE))
        if best not in ranks:
            break
        first, second = best
        merged: list[str] = []
        i = 0
        while i < len(symbols):
            if i < len(symbols) - 1 and symbols[i] == first and symbols[i + 1] == second:
                merged.append(first + second)
                i += 2
            else:
                merged.append(symbols[i])
                i += 1
        symbols = merged
    return symbols


def repair_surrogates(text: str) -> str:
    """Text that UTF-8 can encode, mended the way tiktoken mends it.

    A Python str may hold lone surrogates ('\\ud800'), which have no UTF-8 form. Like tiktoken,
    pairs of surrogates are joined into the character they encode and lone ones become U+FFFD:
    'a\\ud83d\\ude00' -> 'a😀', 'a\\ud800b' -> 'a\\ufffdb'.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


class BPETokenizer(Tokenizer):
    """GPT-2's byte-level BPE in pure Python (the readable backend)."""

    backend = "bpe"

    def __init__(self, vocab: Vocab) -> None:
        super().__init__(vocab)
        # Merges and tokens spelled in the byte-to-unicode alphabet, as in GPT-2's files.
        self.ranks = {(to_unicode(a), to_unicode(b)): i for i, (a, b) in enumerate(vocab.merges)}
        self.encoder = {to_unicode(token): i for token, i in vocab.ranks.items()}
        self.decoder = {i: token for token, i in vocab.ranks.items()}
        self.decoder.update({i: text.encode("utf-8") for text, i in vocab.special.items()})
        # bytes -> alphabet in one C call: decode as latin-1 (byte b -> chr(b)), then translate.
        self.spell = dict(bytes_to_unicode())
        self.cache: dict[str, list[int]] = {}

    def encode_word(self, word: str) -> list[int]:
        """Ids of one spelled pre-token: 'Ġworld' -> [995]. Cached."""
        ids = self.cache.get(word)
        if ids is None:
            ids = [self.encoder[token] for token in merge_word(list(word), self.ranks)]
            if len(self.cache) >= CACHE_LIMIT:
                self.cache.clear()
            self.cache[word] = ids
        return ids

    def encode_chunk(self, text: str) -> list[int]:
        """Ids of text that holds no special token: pre-tokenize, spell, merge, look up."""
        ids: list[int] = []
        for piece in split(text):
            word = piece.encode("utf-8").decode("latin-1").translate(self.spell)
            ids.extend(self.encode_word(word))
        return ids

    def encode(
        self,
        text: str,
        *,
        allowed_special: SpecialSet = frozenset(),
        disallowed_special: SpecialSet = "all",
    ) -> list[int]:
        """Token ids; allowed special tokens split the text and map to their own ids.

        "hi<|endoftext|>" with allowed_special="all" -> ids("hi") + [50256].
        """
        text = repair_surrogates(text)
        allowed, disallowed = self.resolve_special(allowed_special, disallowed_special)
        self.check_special(text, disallowed)
        if not allowed:
            return self.encode_chunk(text)
        ids: list[int] = []
        start = 0
        for match in self._special_regex.finditer(text):
            if match.group() in allowed:
                ids.extend(self.encode_chunk(text[start : match.start()]))
                ids.append(self.vocab.special[match.group()])
                start = match.end()
        ids.extend(self.encode_chunk(text[start:]))
        return ids

    def token_bytes(self, token: int) -> bytes:
        try:
            return self.decoder[token]
        except KeyError:
            raise GPT2LabError(f"token id {token} is not in the vocabulary") from None

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        try:
            return b"".join([self.decoder[i] for i in ids])
        except KeyError as err:
            raise GPT2LabError(f"token id {err.args[0]} is not in the vocabulary") from None
