"""Writing files so that a reader (or a crash) never sees half of one, and reading text back
with a one-line error. Leaf: stdlib and gpt2lab.errors only.

>>> atomic_write_text(Path("result.json"), "{}")   # doctest: +SKIP

The content goes to a temporary file in the same directory, is fsynced, then renamed over the
target (`os.replace` is atomic on one file system): the path holds the old file or the whole
new one, never a torn write. Checkpoint *directories* use the same idea one level up
(train/checkpoint.py).
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from gpt2lab.errors import GPT2LabError


@functools.cache
def new_file_mode() -> int:
    """The mode `open()` gives a new file: 0o666 less the umask (0o644 under umask 022).

    Read once: os.umask can only be read by setting it, which is not thread-safe later on.
    """
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> Path:
    """Call `write(temporary_path)`, fsync what it wrote, then rename it onto `path`.

    The result has the mode a plain `open(path, "w")` would leave: the old file's when it
    replaces one, else `new_file_mode()` (mkstemp's own 0o600 would hide reports from others).
    """
    path = Path(path)
    mode = path.stat().st_mode & 0o7777 if path.is_file() else new_file_mode()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
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
