"""The shard format: header layout, dtypes, memmap reads, refusals."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from gpt2lab.data.shards import HEADER_SIZE, dtype_for, read_shard, write_shard
from gpt2lab.errors import GPT2LabError


@pytest.mark.parametrize("dtype, width", [("uint16", 2), ("uint32", 4)])
def test_round_trip_and_header(tmp_path, dtype, width):
    tokens = np.array([50256, 0, 7, 65535 if width == 2 else 100_000], dtype=np.int64)
    path = write_shard(tmp_path / "a.bin", tokens, dtype)
    raw = path.read_bytes()
    assert raw[:8] == b"GPT2LABT"
    assert struct.unpack("<IIQ", raw[8:24]) == (1, width, 4)
    assert len(raw) == HEADER_SIZE + width * 4
    read = read_shard(path)
    assert isinstance(read, np.memmap) and read.dtype.itemsize == width
    assert read.tolist() == tokens.tolist()
    assert not list(tmp_path.glob("*.tmp"))


def test_dtype_choice():
    assert dtype_for(50257) == "uint16" and dtype_for(65536) == "uint16"
    assert dtype_for(65537) == "uint32" and dtype_for(100, "uint32") == "uint32"
    with pytest.raises(GPT2LabError, match="does not fit in uint16"):
        dtype_for(100_277, "uint16")


def test_refusals(tmp_path):
    with pytest.raises(GPT2LabError, match="does not fit"):
        write_shard(tmp_path / "big.bin", np.array([70_000]), "uint16")
    path = write_shard(tmp_path / "a.bin", np.arange(10), "uint16")
    path.write_bytes(path.read_bytes()[:-2])
    with pytest.raises(GPT2LabError, match="truncated"):
        read_shard(path)
    (tmp_path / "b.bin").write_bytes(b"NOTASHARD" * 8)
    with pytest.raises(GPT2LabError, match="magic"):
        read_shard(tmp_path / "b.bin")
    with pytest.raises(GPT2LabError, match="not found"):
        read_shard(tmp_path / "missing.bin")
