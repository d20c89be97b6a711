"""The interface both tokenizer backends share, and tiktoken's rules for special tokens.

A special token such as <|endoftext|> is a control signal, not text. If a user's text happens
to contain the characters "<|endoftext|>", silently turning them into the control token would
let text forge document boundaries, so (as in tiktoken) `encode` refuses such text unless told:

- `allowed_special={"<|endoftext|>"}` or `"all"`: the characters become the special token;
- `disallowed_special=()`: the characters are encoded as ordinary text, like any other;
- by default every special token that is not allowed is disallowed, and finding one raises.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable
from typing import Literal

import regex

from gpt2lab.errors import GPT2LabError
from gpt2lab.tokenizer.vocab import Vocab

SpecialSet = Literal["all"] | Collection[str]


class Tokenizer(ABC):
    """Text <-> token ids for one vocabulary. A backend implements `encode` and `token_bytes`."""

    backend: str = ""

    def __init__(self, vocab: Vocab) -> None:
        self.vocab = vocab
        self.name = vocab.name
        self.identity = vocab.identity
        """Content fingerprint of the vocabulary (backend-independent), e.g. 'bpe50257-b8b1…'."""
        self.n_vocab = vocab.n_vocab
        self.eot_token = vocab.eot_token
        self.special_tokens_set = frozenset(vocab.special)
        self._special_regex = regex.compile("|".join(map(regex.escape, vocab.special)))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} n_vocab={self.n_vocab} {self.identity}>"

    def resolve_special(
        self, allowed_special: SpecialSet, disallowed_special: SpecialSet
    ) -> tuple[frozenset[str], frozenset[str]]:
        """tiktoken's two arguments as (allowed, disallowed) sets.

        With GPT-2: ("all", "all") -> ({'<|endoftext|>'}, {}); (set(), "all") -> ({}, {'<|endoftext|>'});
        (set(), ()) -> ({}, {}), which encodes "<|endoftext|>" as the 7 text tokens <, |, end, ...
        """
        allowed = (
            self.special_tokens_set if allowed_special == "all" else frozenset(allowed_special)
        )
        if disallowed_special == "all":
            return allowed, self.special_tokens_set - allowed
        return allowed, frozenset(disallowed_special)

    def check_special(self, text: str, disallowed: frozenset[str]) -> None:
        """Raise if `text` spells a disallowed special token."""
        if not disallowed:
            return
        for match in self._special_regex.finditer(text):
            if match.group() in disallowed:
                raise GPT2LabError(
                    f"text contains the special token {match.group()!r} at character "
                    f"{match.start()}; pass allowed_special={{{match.group()!r}}} (or 'all') "
                    "to encode it as a special token, or disallowed_special=() to encode "
                    "it as text"
                )

    @abstractmethod
    def encode(
        self,
        text: str,
        *,
        allowed_special: SpecialSet = frozenset(),
        disallowed_special: SpecialSet = "all",
    ) -> list[int]:
        """Token ids of `text`. "hello world" -> [31373, 995] with GPT-2's vocabulary."""

    def encode_ordinary(self, text: str) -> list[int]:
        """Token ids of `text`, treating special-token text as plain text."""
        return self.encode(text, disallowed_special=())

    def encode_batch(
        self,
        texts: Iterable[str],
        *,
        allowed_special: SpecialSet = frozenset(),
        disallowed_special: SpecialSet = "all",
    ) -> list[list[int]]:
        """`encode` of each text."""
        return [
            self.encode(
                text, allowed_special=allowed_special, disallowed_special=disallowed_special
            )
            for text in texts
        ]

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The raw bytes the ids stand for (may end inside a multi-byte character)."""
        return b"".join(self.token_bytes(i) for i in ids)

    def decode(self, ids: Iterable[int]) -> str:
        """Text of the ids; bytes that are not valid UTF-8 become U+FFFD, as in tiktoken."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    @abstractmethod
    def token_bytes(self, token: int) -> bytes:
        """The bytes of one token: 262 -> b' the'; special tokens give their text."""
