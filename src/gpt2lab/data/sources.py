"""Where documents come from: local files, Hugging Face datasets, or the built-in stories.

A source is a string:

- a file, a glob or a directory: `notes.txt`, `data/*.jsonl`, `corpus/` (searched recursively).
  `.txt` files are split into documents at "<|endoftext|>" (TinyStories' text dumps use it);
  `.jsonl` lines are objects with a text field; `.parquet` files have a text column.
- `hf:NAME[:CONFIG]`: a Hugging Face dataset, streamed (needs the network):
  `hf:roneneldan/TinyStories`, `hf:Skylion007/openwebtext`, `hf:HuggingFaceFW/fineweb-edu:sample-10BT`.
- `stories` or `stories:SEED`: the embedded generator (`stories.py`), endless.

`iter_documents` yields each document's text and raises GPT2LabError with one line for a source
that does not exist or a file that is not UTF-8 (unless errors="replace").
"""

from __future__ import annotations

import glob
import json
from collections.abc import Iterator
from pathlib import Path

from gpt2lab.errors import GPT2LabError

SUFFIXES = (".txt", ".jsonl", ".parquet")
SEPARATOR = "<|endoftext|>"


def is_endless(source: str) -> bool:
    """True for sources with no end (the stories generator)."""
    return source == "stories" or source.startswith("stories:")


def resolve_files(source: str) -> list[Path]:
    """The files a local source names, sorted: a file, a glob, or a directory's data files."""
    path = Path(source).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
        if not files:
            raise GPT2LabError(f"directory {source} holds no {', '.join(SUFFIXES)} files")
        return files
    if path.is_file():
        return [path]
    if glob.has_magic(source):
        files = sorted(Path(p) for p in glob.glob(source, recursive=True) if Path(p).is_file())
        if files:
            return files
        raise GPT2LabError(f"no input files match {source!r}")
    raise GPT2LabError(f"input not found: {source}")


def decode(raw: bytes, path: Path, errors: str) -> str:
    """UTF-8 text of a file's bytes, or one clear error naming the first bad byte."""
    try:
        return raw.decode("utf-8", errors=errors)
    except UnicodeDecodeError as err:
        raise GPT2LabError(
            f"{path} is not valid UTF-8 (byte 0x{raw[err.start]:02x} at offset {err.start}); "
            "fix the file or pass --errors replace"
        ) from None


def read_txt(path: Path, errors: str) -> Iterator[str]:
    yield from decode(path.read_bytes(), path, errors).split(SEPARATOR)


def read_jsonl(path: Path, errors: str, text_field: str) -> Iterator[str]:
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            line = decode(raw, path, errors).strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise GPT2LabError(f"{path}:{number}: not a JSON object ({err.msg})") from None
            if not isinstance(record, dict) or not isinstance(record.get(text_field), str):
                raise GPT2LabError(f"{path}:{number}: no string field {text_field!r}")
            yield record[text_field]


def read_parquet(path: Path, text_field: str) -> Iterator[str]:
    import pyarrow.parquet as pq

    table = pq.ParquetFile(path)
    if text_field not in table.schema_arrow.names:
        raise GPT2LabError(f"{path} has no column {text_field!r}")
    for batch in table.iter_batches(columns=[text_field]):
        yield from (text for text in batch.column(0).to_pylist() if text is not None)


def read_file(path: Path, errors: str, text_field: str) -> Iterator[str]:
    """Documents of one local file, by suffix (anything not .jsonl/.parquet is read as text)."""
    if path.suffix == ".jsonl":
        return read_jsonl(path, errors, text_field)
    if path.suffix == ".parquet":
        return read_parquet(path, text_field)
    return read_txt(path, errors)


def load_hf_dataset(name: str, config: str | None, split: str):
    """A streaming Hugging Face dataset (network needed). Tests replace this function."""
    try:
        import datasets
    except ImportError as err:
        raise GPT2LabError(
            "hf: sources need the `datasets` package: pip install 'gpt2lab[data]'"
        ) from err
    try:
        return datasets.load_dataset(name, config, split=split, streaming=True)
    except Exception as err:  # the hub raises many types; the user needs one line
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise GPT2LabError(f"could not open dataset {name!r}: {message}") from None


def read_hf(source: str, split: str, text_field: str) -> Iterator[str]:
    name, _, config = source[len("hf:") :].partition(":")
    if not name:
        raise GPT2LabError("an hf: source needs a dataset name, e.g. hf:roneneldan/TinyStories")
    for row in load_hf_dataset(name, config or None, split):
        text = row.get(text_field)
        if not isinstance(text, str):
            raise GPT2LabError(f"dataset {name!r} rows have no string field {text_field!r}")
        yield text


def iter_documents(
    source: str, *, errors: str = "strict", split: str = "train", text_field: str = "text"
) -> Iterator[str]:
    """Yield the documents of a source, in a fixed order. Empty documents are skipped."""
    if errors not in ("strict", "replace"):
        raise GPT2LabError(f"errors must be strict or replace, got {errors!r}")
    if is_endless(source):
        from gpt2lab.data.stories import generate_stories

        seed = source.partition(":")[2]
        if seed and not seed.isdigit():
            raise GPT2LabError(f"stories seed must be an integer, got {seed!r}")
        yield from generate_stories(seed=int(seed or 0))
        return
    if source.startswith("hf:"):
        documents = read_hf(source, split, text_field)
    else:
        documents = (
            document
            for path in resolve_files(source)
            for document in read_file(path, errors, text_field)
        )
    for document in documents:
        if document.strip():
            yield document


def take_bytes(documents: Iterator[str], limit: int) -> Iterator[str]:
    """Documents until at least `limit` characters have passed (bounds endless sources)."""
    size = 0
    for document in documents:
        yield document
        size += len(document)
        if size >= limit:
            return
