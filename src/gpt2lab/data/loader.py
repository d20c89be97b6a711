"""Batches of (x, y) windows from token shards: seeded, split across ranks, resumable.

The token stream of each shard is cut into windows of `block_size` + 1 tokens; x is a window's
first `block_size` tokens and y the same shifted by one (the next-token targets):

    tokens  [50256, 7454, 2402, 257, 640, 11, ...]         block_size = 4
    x       [50256, 7454, 2402, 257]
    y       [7454,  2402, 257,  640]

Random mode (training): epoch e starts windows at a seeded offset in [0, block_size) and visits
them in a seeded permutation; rank r of `world_size` takes every world_size-th window of that
permutation, so ranks never share a window within an epoch and all ranks take the same number
of batches. The position is just (epoch, batches taken), so `state_dict()` and
`load_state_dict()` resume exactly.

Sequential mode (evaluation): windows in order from offset 0, one pass, last batch may be short.

Repeat rows (training, optional): `repeat_rows = k` replaces the last k rows of every batch
with random token segments each said twice (`synthetic.spans_said_twice`, the second copies
scored), drawn from a generator seeded by (seed, rank, epoch, step), so resume stays exact.
Stories alone never make a small model copy from its context; these rows do (measured in
docs/interpretability.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gpt2lab.data.prepare import read_meta
from gpt2lab.data.shards import read_shard
from gpt2lab.data.synthetic import spans_said_twice
from gpt2lab.errors import GPT2LabError

MODES = ("random", "sequential")
REPEAT_LENGTHS = (5, 24)
"""Segment lengths of repeat rows: long enough to copy, short enough for several per row."""


def open_split(path: str | Path, split: str) -> tuple[list[np.ndarray], dict[str, Any] | None]:
    """The memory-mapped shards of a split (and the meta), or of a single shard file."""
    path = Path(path)
    if path.is_file():
        return [read_shard(path)], None
    meta = read_meta(path)
    if split not in meta["splits"]:
        raise GPT2LabError(f"{path} has no split {split!r}; it has {', '.join(meta['splits'])}")
    shards = [read_shard(path / name) for name in meta["splits"][split]["shards"]]
    return shards, meta


def repeat_vocab(meta: dict[str, Any] | None) -> int:
    """Token ids repeat rows may use, [0, n): the data's vocabulary without its end-of-text
    token when that is the last id (as in GPT-2's and `gpt2lab data`'s vocabularies)."""
    tokenizer = (meta or {}).get("tokenizer", {})
    if "n_vocab" not in tokenizer:
        raise GPT2LabError("repeat rows need data prepared with a tokenizer (meta.json)")
    n = int(tokenizer["n_vocab"])
    return n - 1 if tokenizer.get("eot_token") == n - 1 else n


class TokenLoader:
    """Yields (x, y) int64 tensors of shape (batch_size, block_size).

    >>> loader = TokenLoader("data/stories", "train", batch_size=8, block_size=128, seed=0)
    >>> x, y = next(iter(loader))  # x.shape == (8, 128), y[:, :-1] == x[:, 1:]
    """

    def __init__(
        self,
        path: str | Path,
        split: str = "train",
        batch_size: int = 8,
        block_size: int = 128,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        mode: str = "random",
        repeat_rows: int = 0,
    ) -> None:
        if mode not in MODES:
            raise GPT2LabError(f"loader mode must be random or sequential, got {mode!r}")
        if batch_size < 1 or block_size < 1:
            raise GPT2LabError("batch_size and block_size must be positive")
        if not 0 <= rank < world_size:
            raise GPT2LabError(f"rank {rank} is outside world size {world_size}")
        if not 0 <= repeat_rows < batch_size or (repeat_rows and mode != "random"):
            raise GPT2LabError(
                f"repeat_rows must be 0 or fewer than the batch size ({batch_size}) in random "
                f"mode, got {repeat_rows}"
            )
        self.shards, self.meta = open_split(path, split)
        self.split, self.mode = split, mode
        self.batch_size, self.block_size = batch_size, block_size
        self.repeat_rows = repeat_rows
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch, self.step = 0, 0
        self.tokens = sum(int(s.size) for s in self.shards)
        self._epoch_windows: tuple[int, np.ndarray] | None = None
        self.repeat_vocab = repeat_vocab(self.meta) if repeat_rows else 0
        if self.windows_per_rank() < (self.text_rows if mode == "random" else 1):
            raise GPT2LabError(
                f"split {split!r} has {self.tokens} tokens: too few for "
                f"{'a batch of ' + str(batch_size) if mode == 'random' else 'one'} window(s) of "
                f"{block_size + 1} tokens across {world_size} rank(s)"
            )

    # -- which windows --------------------------------------------------------------------------
    def offset(self, epoch: int) -> int:
        """Where epoch's windows start inside each shard (0 in sequential mode)."""
        if self.mode == "sequential":
            return 0
        return int(np.random.default_rng([self.seed, epoch, 1]).integers(self.block_size))

    def all_windows(self, epoch: int) -> np.ndarray:
        """(n, 2) array of (shard index, start) for every window of an epoch, in shard order."""
        offset, span = self.offset(epoch), self.block_size
        parts = []
        for index, shard in enumerate(self.shards):
            count = max(0, (shard.size - offset - 1) // span)
            starts = offset + span * np.arange(count, dtype=np.int64)
            parts.append(np.stack([np.full(count, index, dtype=np.int64), starts], axis=1))
        return np.concatenate(parts) if parts else np.zeros((0, 2), dtype=np.int64)

    def rank_windows(self, epoch: int) -> np.ndarray:
        """This rank's windows for an epoch, in the order they are served. Cached per epoch."""
        if self._epoch_windows is not None and self._epoch_windows[0] == epoch:
            return self._epoch_windows[1]
        windows = self.all_windows(epoch)
        if self.mode == "random":
            windows = windows[
                np.random.default_rng([self.seed, epoch, 0]).permutation(len(windows))
            ]
        per_rank = len(windows) // self.world_size
        mine = windows[: per_rank * self.world_size][self.rank :: self.world_size]
        self._epoch_windows = (epoch, mine)
        return mine

    def windows_per_rank(self, epoch: int = 0) -> int:
        return len(self.rank_windows(epoch))

    @property
    def text_rows(self) -> int:
        """Rows of each batch read from the shards (the rest are repeat rows)."""
        return self.batch_size - self.repeat_rows

    def batches_per_epoch(self) -> int:
        """Full batches per epoch (random) or batches in the one pass (sequential, last short)."""
        n = self.windows_per_rank()
        if self.mode == "random":
            return n // self.text_rows
        return -(-n // self.batch_size)

    # -- batches --------------------------------------------------------------------------------
    def gather(self, windows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Stack windows into x, y of shape (len(windows), block_size), int64."""
        span = self.block_size + 1
        rows = np.empty((len(windows), span), dtype=np.int64)  # (B, T+1)
        for row, (index, start) in enumerate(windows):
            rows[row] = self.shards[index][start : start + span]
        batch = torch.from_numpy(rows)
        return batch[:, :-1].contiguous(), batch[:, 1:].contiguous()  # (B, T), (B, T)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next batch; random mode rolls into the next epoch, sequential mode raises
        StopIteration after its one pass."""
        if self.step >= self.batches_per_epoch():
            if self.mode == "sequential":
                raise StopIteration
            self.epoch, self.step = self.epoch + 1, 0
        windows = self.rank_windows(self.epoch)
        start = self.step * self.text_rows
        x, y = self.gather(windows[start : start + self.text_rows])
        if self.repeat_rows:
            rx, ry = self.repeats(self.epoch, self.step)
            x, y = torch.cat([x, rx]), torch.cat([y, ry])
        self.step += 1
        return x, y

    def repeats(self, epoch: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The repeat rows of batch (epoch, step): (repeat_rows, block_size) each, drawn from
        every token id but the end-of-text token."""
        seed = np.random.default_rng([self.seed, self.rank, epoch, step, 2]).integers(2**62)
        sample = spans_said_twice(
            self.repeat_rows, self.block_size, self.repeat_vocab, REPEAT_LENGTHS
        )
        return sample(torch.Generator().manual_seed(int(seed)))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Random mode: endless, from the current position. Sequential: one pass from the start."""
        if self.mode == "sequential":
            self.epoch, self.step = 0, 0
        while True:
            try:
                yield self.next_batch()
            except StopIteration:
                return

    def __len__(self) -> int:
        return self.batches_per_epoch()

    # -- exact resume ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue with the very next batch."""
        return {
            "epoch": self.epoch,
            "step": self.step,
            "seed": self.seed,
            "rank": self.rank,
            "world_size": self.world_size,
            "batch_size": self.batch_size,
            "block_size": self.block_size,
            "mode": self.mode,
            "split": self.split,
            "tokens": self.tokens,
            "repeat_rows": self.repeat_rows,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from `state_dict()`; the loader must read the same data the same way."""
        for key in (
            "seed",
            "rank",
            "world_size",
            "batch_size",
            "block_size",
            "mode",
            "split",
            "tokens",
            "repeat_rows",
        ):
            saved = state.get(key, 0)  # states from before repeat rows have none
            if saved != getattr(self, key):
                raise GPT2LabError(
                    f"loader state was saved with {key}={saved!r}, this loader has "
                    f"{key}={getattr(self, key)!r}"
                )
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
