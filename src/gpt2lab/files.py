"""Writing files so that a reader (or a crash) never sees half of one, and reading text back
with a one-line error. Leaf: stdlib and gpt2lab.errors only.

>>> atomic_write_text(Path("result.json"), "{}")   # doctest: +SKIP

The content goes to a temporary file in the same directory, is fsynced, then renamed over the
target (`os.replace` is atomic on one file system): the path holds the old file or the whole
new one, never a torn write. Checkpoint *directories* use the same idea one level up
(train/checkpoint.py).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from gpt2lab.errors import GPT2LabError


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> Path:
    """Call `write(temporary_path)`, fsync what it wrote, then rename it onto `path`."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def writable_dir(path: str | os.PathLike) -> Path:
    """`path` as a folder that exists, made now, before any long work that would write there.

    A path under a regular file ('notes.txt/out') fails here, at once, with an OSError naming
    it, rather than after minutes of computing.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """`path.write_text(text)` (UTF-8), atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """`path.write_bytes(data)`, atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def read_text(path: str | os.PathLike) -> str:
    """The file's bytes decoded as UTF-8, as they are (no newline translation: a CRLF stays
    two characters); a file that is not UTF-8 is a one-line GPT2LabError naming it."""
    try:
        return Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise GPT2LabError(f"{path} is not UTF-8 text (byte {err.start}: {err.reason})") from None
