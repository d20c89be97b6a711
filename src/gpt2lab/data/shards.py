"""The on-disk token format: a 32-byte header, then the tokens, one shard per file.

    offset  size  field
    0       8     magic b"GPT2LABT"
    8       4     version (1), little-endian uint32
    12      4     bytes per token: 2 (uint16) or 4 (uint32)
    16      8     token count, little-endian uint64
    24      8     zero padding (keeps the tokens 32-byte aligned)
    32      ...   the tokens, little-endian

GPT-2's 50,257 ids fit in uint16 (max 65,535), halving disk and memory; larger vocabularies
use uint32. A shard is read with `np.memmap`, so a loader touches only the windows it uses.
Shards are written to a temporary name and renamed, so a crash never leaves half a shard.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from gpt2lab.errors import GPT2LabError
from gpt2lab.files import atomic_write_bytes

MAGIC = b"GPT2LABT"
VERSION = 1
HEADER = struct.Struct("<8sIIQ8x")  # magic, version, bytes per token, token count
HEADER_SIZE = HEADER.size  # 32
DTYPES = {2: np.dtype("<u2"), 4: np.dtype("<u4")}
DTYPE_NAMES = {"uint16": 2, "uint32": 4}


def dtype_for(n_vocab: int, requested: str = "auto") -> str:
    """'uint16' when every id (0 .. n_vocab-1) fits in 16 bits, else 'uint32'.

    dtype_for(50257) -> 'uint16'; dtype_for(100277) -> 'uint32'. A requested dtype that cannot
    hold the ids is refused.
    """
    fits16 = n_vocab <= 2**16
    if requested == "auto":
        return "uint16" if fits16 else "uint32"
    if requested not in DTYPE_NAMES:
        raise GPT2LabError(f"unknown token dtype {requested!r}; choose auto, uint16 or uint32")
    if requested == "uint16" and not fits16:
        raise GPT2LabError(
            f"a vocabulary of {n_vocab} ids does not fit in uint16 (max id 65535); "
            "use --dtype uint32 or auto"
        )
    return requested


def write_shard(path: str | Path, tokens: np.ndarray, dtype: str) -> Path:
    """Write `tokens` (1-D ints) as one shard, atomically. Returns the path."""
    path = Path(path)
    width = DTYPE_NAMES[dtype]
    tokens = np.asarray(tokens)
    if tokens.size and int(tokens.max()) >= 2 ** (8 * width):
        raise GPT2LabError(f"token id {int(tokens.max())} does not fit in {dtype}")
    header = HEADER.pack(MAGIC, VERSION, width, tokens.size)
    return atomic_write_bytes(path, header + tokens.astype(DTYPES[width], copy=False).tobytes())


def read_header(path: str | Path) -> tuple[int, int]:
    """(bytes per token, token count) of a shard, after checking it is one."""
    path = Path(path)
    if not path.is_file():
        raise GPT2LabError(f"shard not found: {path}")
    with open(path, "rb") as f:
        raw = f.read(HEADER_SIZE)
    if len(raw) < HEADER_SIZE or raw[:8] != MAGIC:
        raise GPT2LabError(f"{path} is not a gpt2lab token shard (bad magic bytes)")
    _, version, width, count = HEADER.unpack(raw)
    if version != VERSION:
        raise GPT2LabError(
            f"{path} has shard format version {version}; this gpt2lab reads {VERSION}"
        )
    if width not in DTYPES:
        raise GPT2LabError(f"{path} has an unknown token width of {width} bytes")
    expected = HEADER_SIZE + width * count
    if path.stat().st_size != expected:
        raise GPT2LabError(
            f"{path} is truncated or padded: {path.stat().st_size} bytes, header says {expected}"
        )
    return width, count


def read_shard(path: str | Path) -> np.ndarray:
    """The tokens of a shard as a read-only memory map (uint16 or uint32), shape (count,)."""
    width, count = read_header(path)
    if count == 0:
        return np.zeros(0, dtype=DTYPES[width])
    return np.memmap(path, dtype=DTYPES[width], mode="r", offset=HEADER_SIZE, shape=(count,))


class ShardWriter:
    """Collects one split's tokens and writes `{split}_000000.bin`, ... of `shard_tokens` each."""

    def __init__(self, directory: Path, split: str, dtype: str, shard_tokens: int) -> None:
        self.directory, self.split, self.dtype = directory, split, dtype
        self.shard_tokens = shard_tokens
        self.pending: list[np.ndarray] = []
        self.pending_size = 0
        self.shards: list[str] = []
        self.tokens = 0
        self.documents = 0

    def add(self, tokens: np.ndarray) -> None:
        """Append one document's tokens."""
        self.pending.append(tokens)
        self.pending_size += tokens.size
        self.tokens += tokens.size
        self.documents += 1
        while self.pending_size >= self.shard_tokens:
            flat = np.concatenate(self.pending)
            self.write(flat[: self.shard_tokens])
            rest = flat[self.shard_tokens :]
            self.pending, self.pending_size = [rest], rest.size

    def write(self, tokens: np.ndarray) -> None:
        name = f"{self.split}_{len(self.shards):06d}.bin"
        write_shard(self.directory / name, tokens, self.dtype)
        self.shards.append(name)

    def close(self) -> None:
        """Write what is left (if anything)."""
        if self.pending_size:
            self.write(np.concatenate(self.pending))
        self.pending, self.pending_size = [], 0
