"""Data: the embedded `stories` corpus, text sources, token shards and the batch loader.

    from gpt2lab.data import prepare, TokenLoader
    prepare("stories", "data/stories", tokenizer="gpt2", max_tokens=2_000_000)
    loader = TokenLoader("data/stories", "train", batch_size=8, block_size=128, seed=0)
    x, y = loader.next_batch()  # int64 tensors, shape (8, 128)

Importing this package is cheap; torch is loaded only with the loader.
"""

from __future__ import annotations

# Imported eagerly: the function `prepare` shares its name with its module, and a lazy lookup
# would lose to the submodule attribute once anything imports `gpt2lab.data.prepare`.
from gpt2lab.data.prepare import prepare, read_meta
from gpt2lab.lazy import lazy_attributes

_LAZY = {
    "TokenLoader": "gpt2lab.data.loader",
    "read_shard": "gpt2lab.data.shards",
    "write_shard": "gpt2lab.data.shards",
    "iter_documents": "gpt2lab.data.sources",
    "generate_stories": "gpt2lab.data.stories",
    "generate_text": "gpt2lab.data.stories",
    "probe_examples": "gpt2lab.data.stories",
    "write_probes": "gpt2lab.data.stories",
}

__all__ = ["prepare", "read_meta", *_LAZY]

__getattr__ = lazy_attributes(__name__, _LAZY)
