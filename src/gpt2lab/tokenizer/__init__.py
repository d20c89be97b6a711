"""Tokenizers: GPT-2's byte-level BPE (two backends, one interface) and BPE training.

>>> tok = get_tokenizer("gpt2")
>>> tok.encode("hello world"), tok.eot_token, tok.n_vocab
([31373, 995], 50256, 50257)
>>> get_tokenizer("gpt2", backend="bpe").decode([31373, 995])
'hello world'

This package is a leaf: it imports nothing from gpt2lab but `gpt2lab.errors`, and never torch.
"""

from __future__ import annotations

from gpt2lab.errors import GPT2LabError
from gpt2lab.tokenizer.base import Tokenizer
from gpt2lab.tokenizer.train import train_bpe, train_tokenizer
from gpt2lab.tokenizer.vocab import ENDOFTEXT, Vocab, load_vocab

BACKENDS = ("tiktoken", "bpe")

_TOKENIZERS: dict[tuple[str, str], Tokenizer] = {}  # (vocab identity, backend) -> tokenizer

__all__ = [
    "BACKENDS",
    "ENDOFTEXT",
    "Tokenizer",
    "Vocab",
    "get_tokenizer",
    "train_bpe",
    "train_tokenizer",
]


def get_tokenizer(name_or_dir: str = "gpt2", backend: str = "tiktoken") -> Tokenizer:
    """A tokenizer for 'gpt2' (OpenAI's verified files) or a vocabulary directory.

    A directory holds encoder.json + vocab.bpe (as `gpt2lab tokenizer train` writes them) or
    Hugging Face's vocab.json + merges.txt. backend='tiktoken' is fast (Rust); backend='bpe' is
    the from-scratch Python implementation in `bpe.py`. Both give identical ids. Tokenizers
    are built once per vocabulary and backend, then shared.
    """
    if backend not in BACKENDS:
        raise GPT2LabError(f"unknown tokenizer backend {backend!r}; choose tiktoken or bpe")
    vocab = load_vocab(str(name_or_dir))
    key = (vocab.identity, backend)
    if key not in _TOKENIZERS:
        if backend == "bpe":
            from gpt2lab.tokenizer.bpe import BPETokenizer

            _TOKENIZERS[key] = BPETokenizer(vocab)
        else:
            from gpt2lab.tokenizer.fast import TiktokenTokenizer

            _TOKENIZERS[key] = TiktokenTokenizer(vocab)
    return _TOKENIZERS[key]
