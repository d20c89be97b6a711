"""A prepared data directory read back, and the default `stories` corpus prepared in one call.

`read_data_spec(DIR)` -> `DataSpec`: where the shards are, which tokenizer made them (its
directory, whose files go into every checkpoint), how many tokens it has. `prepare_stories`
trains a small BPE vocabulary on the embedded stories and tokenizes them: what `gpt2lab train`
does once when its default data is missing. The shards themselves are `prepare.py`'s, their
batches `loader.py`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpt2lab.data.prepare import META, prepare, read_meta
from gpt2lab.data.stories import generate_text
from gpt2lab.errors import GPT2LabError
from gpt2lab.tokenizer import get_tokenizer, train_tokenizer
from gpt2lab.tokenizer.vocab import find_files

DEFAULT_DATA = "data/stories-4096"
STORIES_VOCAB = 4096
"""A small BPE vocabulary trained on the stories corpus: the embedding stays cheap on a CPU."""
STORIES_TOKENS = 5_000_000
STORIES_TOKENIZER_TEXT = 2_000_000
"""Characters of stories the tokenizer is trained on (about a second of BPE training)."""


@dataclass
class DataSpec:
    path: Path
    meta: dict[str, Any]
    tokenizer_dir: Path | None
    """None for GPT-2's own vocabulary (nothing to copy into checkpoints)."""

    @property
    def n_vocab(self) -> int:
        return int(self.meta["tokenizer"]["n_vocab"])

    @property
    def tokenizer_identity(self) -> str:
        return self.meta["tokenizer"]["identity"]

    @property
    def tokenizer_files(self) -> list[Path]:
        return list(find_files(self.tokenizer_dir)) if self.tokenizer_dir else []

    def tokenizer(self):
        return get_tokenizer(str(self.tokenizer_dir) if self.tokenizer_dir else "gpt2")

    def describe(self) -> dict[str, Any]:
        return {"path": str(self.path), "tokenizer": self.meta["tokenizer"]}

    @staticmethod
    def exists(path: Path) -> bool:
        """Whether `path` holds prepared data (its meta.json)."""
        return (Path(path) / META).is_file()


def prepare_stories(
    directory: str | Path,
    *,
    vocab_size: int = STORIES_VOCAB,
    tokens: int = STORIES_TOKENS,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """Train a BPE vocabulary on the stories corpus and tokenize `tokens` tokens of it.

    The vocabulary goes to DIR/tokenizer/ (encoder.json, vocab.bpe), the shards and meta.json
    to DIR. Everything is seeded, so the same arguments give the same files.
    """
    directory = Path(directory)
    tokenizer_dir = directory / "tokenizer"
    tokenizer_dir.mkdir(parents=True, exist_ok=True)
    text = generate_text(STORIES_TOKENIZER_TEXT, seed=seed + 1)  # not the training stories
    train_tokenizer([text], vocab_size, tokenizer_dir, source="stories")
    return prepare(
        "stories",
        directory,
        str(tokenizer_dir.resolve()),
        seed=seed,
        max_tokens=tokens,
        overwrite=True,
        progress=progress,
    )


def resolve_tokenizer_dir(data_dir: Path, meta: dict[str, Any]) -> Path | None:
    """The tokenizer directory the data was prepared with (None for GPT-2's own)."""
    spec = meta["tokenizer"].get("spec", meta["tokenizer"]["name"])
    if spec == "gpt2":
        return None
    for candidate in (Path(spec), data_dir / "tokenizer", data_dir / Path(spec).name):
        if candidate.is_dir():
            return candidate
    raise GPT2LabError(f"{data_dir} was prepared with tokenizer {spec}, which is not found")


def read_data_spec(path: str | Path) -> DataSpec:
    """The DataSpec of a prepared directory (GPT2LabError when it is not one)."""
    path = Path(path)
    meta = read_meta(path)
    return DataSpec(path=path, meta=meta, tokenizer_dir=resolve_tokenizer_dir(path, meta))
