"""Independent references for the tokenizer tests, all built offline from local files.

- `reference_gpt2`: tiktoken's own `get_encoding("gpt2")`. tiktoken would download OpenAI's two
  files; we place the verified copies in a private cache under the names tiktoken looks for
  (sha1 of the URL), so tiktoken's loader, regex and hash checks are the ones that run.
- `hf_gpt2_fast` / `hf_gpt2_slow`: Hugging Face's GPT2TokenizerFast / GPT2Tokenizer from the same
  vocabulary (transformers 5 wants `vocab=dict, merges=list`; file paths build an empty one).
- `real_text`: ~4.5 MB of varied text already on the machine (licences, copyright files, vim's
  multilingual tutors, CJK test files, vim docs, Python's stdlib source), plus 0.6 MB of stories.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import sysconfig
from pathlib import Path

import pytest

from gpt2lab.tokenizer.vocab import gpt2_files

OPENAI_URLS = {
    "encoder.json": "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json",
    "vocab.bpe": "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe",
}
STDLIB = sysconfig.get_paths()["stdlib"]


@pytest.fixture(scope="session")
def reference_gpt2(tmp_path_factory):
    """tiktoken.get_encoding('gpt2'), served from a local cache (no network)."""
    import tiktoken
    import tiktoken.registry

    cache = tmp_path_factory.mktemp("tiktoken-cache")
    for path in gpt2_files():
        url = OPENAI_URLS[path.name]
        shutil.copy(path, cache / hashlib.sha1(url.encode()).hexdigest())
    saved = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
    try:
        tiktoken.registry.ENCODINGS.pop("gpt2", None)
        yield tiktoken.get_encoding("gpt2")
    finally:
        if saved is None:
            os.environ.pop("TIKTOKEN_CACHE_DIR")
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = saved


def hf_vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    encoder_path, merges_path = gpt2_files()
    vocab = json.loads(encoder_path.read_text(encoding="utf-8"))
    lines = merges_path.read_text(encoding="utf-8").splitlines()[1:]
    return vocab, [tuple(line.split(" ")) for line in lines if line]


@pytest.fixture(scope="session")
def hf_gpt2_fast():
    from transformers import GPT2TokenizerFast

    vocab, merges = hf_vocab_and_merges()
    return GPT2TokenizerFast(vocab=vocab, merges=merges)


@pytest.fixture(scope="session")
def hf_gpt2_slow():
    from transformers import GPT2Tokenizer

    vocab, merges = hf_vocab_and_merges()
    return GPT2Tokenizer(vocab=vocab, merges=merges)


def read_texts(patterns: list[str], budget: int) -> list[str]:
    """UTF-8 files matching the patterns, in sorted order, until `budget` bytes are read."""
    texts, size = [], 0
    for pattern in patterns:
        for path in sorted(glob.glob(pattern, recursive=True)):
            try:
                text = Path(path).read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            texts.append(text)
            size += len(text.encode())
            if size >= budget:
                return texts
    return texts


def collect_real_text(total: int) -> list[str]:
    """About `total` bytes of text found on this machine, most varied sources first."""
    texts = read_texts(["/usr/share/common-licenses/*"], total // 10)
    texts += read_texts(
        ["/usr/share/vim/vim*/tutor/tutor*.utf-8", f"{STDLIB}/test/cjkencodings/*-utf8.txt"],
        total // 10,
    )
    texts += read_texts(["/usr/share/doc/*/copyright"], total // 4)
    texts += read_texts(["/usr/share/vim/vim*/doc/*.txt"], total // 5)
    size = sum(len(text.encode()) for text in texts)
    return texts + read_texts([f"{STDLIB}/**/*.py", f"{STDLIB}/**/*.txt"], total - size)


@pytest.fixture(scope="session")
def real_text() -> list[str]:
    """≥ 5 MB of documents: machine text plus generated stories."""
    from gpt2lab.data.stories import generate_text

    return collect_real_text(4_500_000) + [generate_text(600_000, seed=11)]
