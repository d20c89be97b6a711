"""The fast backend: tiktoken's Rust BPE, built from the same verified local files.

tiktoken wants `mergeable_ranks` keyed by raw bytes ({b'!': 0, ..., b' the': 262, ...}), which is
exactly `Vocab.ranks`; no file is fetched. The wrapper adds no work per call beyond the
special-token check tiktoken itself would do.
"""

from __future__ import annotations

from collections.abc import Iterable

import tiktoken

from gpt2lab.errors import GPT2LabError
from gpt2lab.tokenizer.base import SpecialSet, Tokenizer
from gpt2lab.tokenizer.pretokenize import FAST_PATTERN
from gpt2lab.tokenizer.vocab import Vocab


class TiktokenTokenizer(Tokenizer):
    """tiktoken.Encoding over a gpt2lab vocabulary."""

    backend = "tiktoken"

    def __init__(self, vocab: Vocab) -> None:
        super().__init__(vocab)
        self.encoding = tiktoken.Encoding(
            name=vocab.name,
            pat_str=FAST_PATTERN,
            mergeable_ranks=vocab.ranks,
            special_tokens=vocab.special,
            explicit_n_vocab=vocab.n_vocab,
        )

    def encode(
        self,
        text: str,
        *,
        allowed_special: SpecialSet = frozenset(),
        disallowed_special: SpecialSet = "all",
    ) -> list[int]:
        allowed, disallowed = self.resolve_special(allowed_special, disallowed_special)
        self.check_special(text, disallowed)
        return self.encoding.encode(text, allowed_special=allowed, disallowed_special=())

    def encode_ordinary(self, text: str) -> list[int]:
        return self.encoding.encode_ordinary(text)

    def encode_batch(
        self,
        texts: Iterable[str],
        *,
        allowed_special: SpecialSet = frozenset(),
        disallowed_special: SpecialSet = "all",
    ) -> list[list[int]]:
        """Encode many texts on tiktoken's thread pool."""
        texts = list(texts)
        allowed, disallowed = self.resolve_special(allowed_special, disallowed_special)
        for text in texts:
            self.check_special(text, disallowed)
        return self.encoding.encode_batch(texts, allowed_special=allowed, disallowed_special=())

    def token_bytes(self, token: int) -> bytes:
        try:
            return self.encoding.decode_single_token_bytes(token)
        except KeyError:
            raise GPT2LabError(f"token id {token} is not in the vocabulary") from None

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        try:
            return self.encoding.decode_bytes(list(ids))
        except KeyError as err:
            raise GPT2LabError(f"token id {err.args[0]} is not in the vocabulary") from None

    def decode(self, ids: Iterable[int]) -> str:
        return self.decode_bytes(ids).decode("utf-8", errors="replace")
