"""Text source -> token shards + meta.json: what `gpt2lab data prepare` runs.

Each document becomes `[<|endoftext|>] + encode(document)`, so documents in the token stream
are joined (and started) by the end-of-text token, as GPT-2 saw them. Documents go to the
val split with probability `val_fraction`, drawn from `random.Random(seed)` in document order,
so the split is the same on every run. The directory's meta.json records what was done:

    {"source": "stories", "tokenizer": {"name": "gpt2", "identity": "bpe50257-b8b1…", ...},
     "dtype": "uint16", "seed": 0, "val_fraction": 0.05,
     "splits": {"train": {"documents": 9500, "tokens": 2300000, "shards": ["train_000000.bin"]},
                "val": {...}}}
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import random
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from gpt2lab.data.shards import ShardWriter, dtype_for
from gpt2lab.data.sources import is_endless, iter_documents
from gpt2lab.errors import GPT2LabError
from gpt2lab.files import atomic_write_text
from gpt2lab.tokenizer import get_tokenizer

META = "meta.json"
FORMAT = "gpt2lab-token-shards"
STORIES_DEFAULT_TOKENS = 5_000_000
"""Tokens taken from the endless `stories` source when no --max-tokens is given."""
CHUNK = 256  # documents per tokenizer call (and per worker task)


def read_meta(directory: str | Path) -> dict[str, Any]:
    """The meta.json of a prepared directory."""
    path = Path(directory) / META
    if not path.is_file():
        raise GPT2LabError(f"{directory} is not a prepared token directory (no {META})")
    meta = json.loads(path.read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT:
        raise GPT2LabError(f"{path} is not gpt2lab token-shard metadata")
    return meta


def check_out_dir(out: Path, identity: str, overwrite: bool) -> None:
    """Refuse to mix tokens of two tokenizers in one directory."""
    if not (out / META).is_file() or overwrite:
        return
    previous = read_meta(out)["tokenizer"]
    if previous["identity"] != identity:
        raise GPT2LabError(
            f"{out} holds shards of tokenizer {previous['name']} ({previous['identity']}), not "
            f"{identity}; choose another --out or pass --overwrite"
        )


_worker_tokenizer = None


def _start_worker(name: str, backend: str) -> None:
    global _worker_tokenizer
    _worker_tokenizer = get_tokenizer(name, backend)


def _encode_chunk(documents: list[str]) -> list[list[int]]:
    return _worker_tokenizer.encode_batch(documents, disallowed_special=())


def encode_documents(
    documents: Iterable[str], tokenizer: str, backend: str, workers: int
) -> Iterator[list[int]]:
    """Token ids of each document, in order; `workers` > 1 spreads chunks over processes."""
    chunks = iter(lambda: list(itertools.islice(documents, CHUNK)), [])
    if workers <= 1:
        tok = get_tokenizer(tokenizer, backend)
        for chunk in chunks:
            yield from tok.encode_batch(chunk, disallowed_special=())
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_start_worker, initargs=(tokenizer, backend)) as pool:
        for encoded in pool.imap(_encode_chunk, chunks):
            yield from encoded


def prepare(
    source: str,
    out: str | Path,
    tokenizer: str = "gpt2",
    *,
    backend: str = "tiktoken",
    val_fraction: float = 0.05,
    seed: int = 0,
    max_tokens: int | None = None,
    shard_tokens: int = 100_000_000,
    dtype: str = "auto",
    errors: str = "strict",
    split: str = "train",
    text_field: str = "text",
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Tokenize `source` into `out`/{train,val}_NNNNNN.bin shards and write meta.json.

    `max_tokens` caps the total (the stories source defaults to 5M tokens). Returns the meta.
    The new dataset is built in a temporary sibling of `out` and moved in only when complete:
    a source that fails half-way (an undecodable file, Ctrl+C) leaves `out` as it was.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise GPT2LabError(f"val fraction must be in [0, 1), got {val_fraction}")
    if shard_tokens < 1:
        raise GPT2LabError(f"shard size must be a positive number of tokens, got {shard_tokens}")
    if max_tokens is not None and max_tokens < 1:
        raise GPT2LabError(f"max tokens must be a positive number, got {max_tokens}")
    if workers < 1:
        raise GPT2LabError(f"workers must be at least 1, got {workers}")
    tok = get_tokenizer(tokenizer, backend)
    token_dtype = dtype_for(tok.n_vocab, dtype)
    if max_tokens is None and is_endless(source):
        max_tokens = STORIES_DEFAULT_TOKENS
    out = Path(out)
    check_out_dir(out, tok.identity, overwrite)
    documents = iter_documents(source, errors=errors, split=split, text_field=text_field)
    first = next(documents, None)
    if first is None:
        raise GPT2LabError(f"source {source} has no text (empty input)")
    out.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        splits = write_shards(
            itertools.chain([first], documents),
            building,
            tok,
            tokenizer,
            backend=backend,
            token_dtype=token_dtype,
            val_fraction=val_fraction,
            seed=seed,
            max_tokens=max_tokens,
            shard_tokens=shard_tokens,
            workers=workers,
            progress=progress,
        )
        meta = {
            "format": FORMAT,
            "version": 1,
            "source": source,
            "tokenizer": {
                "name": tok.name,
                "identity": tok.identity,
                "n_vocab": tok.n_vocab,
                "eot_token": tok.eot_token,
                "spec": str(tokenizer),
            },
            "dtype": token_dtype,
            "seed": seed,
            "val_fraction": val_fraction,
            "max_tokens": max_tokens,
            "splits": splits,
        }
        atomic_write_text(building / META, json.dumps(meta, indent=2) + "\n")
        swap_in(building, out)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return meta


def write_shards(
    documents: Iterable[str],
    directory: Path,
    tok,
    tokenizer: str,
    *,
    backend: str,
    token_dtype: str,
    val_fraction: float,
    seed: int,
    max_tokens: int | None,
    shard_tokens: int,
    workers: int,
    progress: bool,
) -> dict[str, dict[str, Any]]:
    """Tokenize `documents` into `directory`/{train,val}_NNNNNN.bin; the splits' meta."""
    writers = {
        name: ShardWriter(directory, name, token_dtype, shard_tokens) for name in ("train", "val")
    }
    rng = random.Random(seed)
    eot = np.array([tok.eot_token], dtype=np.int64)
    bar = _progress_bar(max_tokens, progress)
    held: np.ndarray | None = None  # the last train document, kept back in case val stays empty
    total = 0
    for ids in encode_documents(documents, tokenizer, backend, workers):
        tokens = np.concatenate([eot, np.asarray(ids, dtype=np.int64)])
        if max_tokens is not None and total + tokens.size > max_tokens:
            tokens = tokens[: max_tokens - total]
        total += tokens.size
        bar.update(tokens.size)
        if rng.random() < val_fraction:
            writers["val"].add(tokens)
        else:
            if held is not None:
                writers["train"].add(held)
            held = tokens
        if max_tokens is not None and total >= max_tokens:
            break
    bar.close()
    if held is not None:
        val_empty = val_fraction > 0 and writers["val"].documents == 0
        if val_empty and writers["train"].documents == 0:
            # One document in all (a single .txt, say): its last val_fraction goes to val.
            cut = max(1, int(round(held.size * (1 - val_fraction))))
            writers["train"].add(held[:cut])
            writers["val"].add(held[cut:])
        else:
            writers["val" if val_empty else "train"].add(held)
    for writer in writers.values():
        writer.close()
    return {
        name: {"documents": w.documents, "tokens": w.tokens, "shards": w.shards}
        for name, w in writers.items()
    }


def swap_in(built: Path, out: Path) -> None:
    """Move a finished dataset from `built` into `out`, replacing the shards and meta.json of
    an earlier one (other files in `out` stay). meta.json moves last: until then `out` reads
    as unprepared, never as a mix of two datasets."""
    out.mkdir(parents=True, exist_ok=True)
    (out / META).unlink(missing_ok=True)
    for stale in itertools.chain(out.glob("train_*.bin"), out.glob("val_*.bin")):
        stale.unlink()
    for shard in sorted(built.glob("*.bin")):
        shard.replace(out / shard.name)
    (built / META).replace(out / META)


def _progress_bar(total: int | None, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="tok", unit_scale=True, disable=not enabled, desc="tokens")
