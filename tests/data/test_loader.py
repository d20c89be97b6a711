"""TokenLoader: windows of the real stream, seeded, disjoint across ranks, exactly resumable."""

from __future__ import annotations

import pytest
import torch

from gpt2lab.data import TokenLoader
from gpt2lab.data.prepare import prepare, read_meta
from gpt2lab.data.shards import read_shard
from gpt2lab.errors import GPT2LabError


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    out = tmp_path_factory.mktemp("shards")
    prepare("stories", out, "gpt2", max_tokens=60_000, val_fraction=0.1, shard_tokens=20_000)
    return out


def stream(out, split):
    return [read_shard(out / name) for name in read_meta(out)["splits"][split]["shards"]]


def find_window(shards, row):
    """(shard, start) where `row` occurs; every loader row must be a real slice of a shard."""
    for index, shard in enumerate(shards):
        for start in range(len(shard) - len(row) + 1):
            if shard[start] == row[0] and shard[start : start + len(row)].tolist() == row:
                return index, start
    raise AssertionError("window not found in any shard")


def test_batches_are_shifted_windows_of_the_shards(shards):
    loader = TokenLoader(shards, "train", batch_size=4, block_size=32, seed=0)
    x, y = loader.next_batch()
    assert x.shape == y.shape == (4, 32) and x.dtype == y.dtype == torch.int64
    data = stream(shards, "train")
    for row_x, row_y in zip(x.tolist(), y.tolist()):
        assert row_x[1:] == row_y[:-1]
        index, start = find_window(data, row_x + row_y[-1:])
        assert (start - loader.offset(0)) % 32 == 0


def test_seeded(shards):
    def first(seed):
        return TokenLoader(shards, batch_size=2, block_size=16, seed=seed).next_batch()[0]

    assert torch.equal(first(1), first(1)) and not torch.equal(first(1), first(2))


def test_ranks_take_disjoint_windows(shards):
    seen = []
    for rank in range(3):
        loader = TokenLoader(shards, batch_size=4, block_size=64, seed=5, rank=rank, world_size=3)
        windows = {tuple(w) for w in loader.rank_windows(0).tolist()}
        assert len(windows) == loader.windows_per_rank()
        seen.append(windows)
    assert len({len(s) for s in seen}) == 1  # equal work per rank
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])


def test_exact_resume_across_epochs(shards):
    def make():
        return TokenLoader(
            shards, "train", batch_size=8, block_size=64, seed=3, rank=1, world_size=2
        )

    loader = make()
    per_epoch = loader.batches_per_epoch()
    for _ in range(per_epoch - 2):  # stop just before an epoch boundary
        loader.next_batch()
    state = loader.state_dict()
    expected = [loader.next_batch() for _ in range(5)]
    assert loader.epoch == 1  # the five batches crossed into the next epoch
    resumed = make()
    resumed.load_state_dict(state)
    for (x1, y1), (x2, y2) in zip(expected, [resumed.next_batch() for _ in range(5)]):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    with pytest.raises(GPT2LabError, match="seed"):
        TokenLoader(
            shards, batch_size=8, block_size=64, seed=4, rank=1, world_size=2
        ).load_state_dict(state)


def test_sequential_pass_over_val(shards):
    loader = TokenLoader(shards, "val", batch_size=5, block_size=50, mode="sequential")
    batches = list(loader)
    assert len(batches) == len(loader) and batches[-1][0].shape[0] <= 5
    rows = torch.cat([x for x, _ in batches])
    val = stream(shards, "val")
    count = sum((len(s) - 1) // 50 for s in val)
    assert rows.shape == (count, 50)
    assert rows[0].tolist() == val[0][:50].tolist() and rows[1].tolist() == val[0][50:100].tolist()
    assert len(list(loader)) == len(batches)  # a second pass starts again


def test_single_shard_file_and_errors(shards):
    path = shards / read_meta(shards)["splits"]["val"]["shards"][0]
    x, _ = TokenLoader(path, batch_size=2, block_size=8).next_batch()
    assert x.shape == (2, 8)
    with pytest.raises(GPT2LabError, match="too few"):
        TokenLoader(shards, "val", batch_size=10_000, block_size=512)
    with pytest.raises(GPT2LabError, match="no split"):
        TokenLoader(shards, "test")
    with pytest.raises(GPT2LabError, match="not a prepared token directory"):
        TokenLoader(shards.parent)


def said_twice(tail, n):
    """Whether `tail` starts with n tokens and then the same n again (the row may end inside
    the repeat: then what is there must match)."""
    first, second = tail[:n], tail[n : 2 * n]
    return len(first) == n and second == first[: len(second)] and (second or len(tail) == n)


def test_repeat_rows_are_segments_said_twice_after_the_data_rows(shards):
    loader = TokenLoader(shards, batch_size=6, block_size=128, seed=2, repeat_rows=4)
    x, y = loader.next_batch()
    assert x.shape == y.shape == (6, 128) and torch.equal(x[:2, 1:], y[:2, :-1])
    data = stream(shards, "train")
    for row_x, row_y in zip(x[:2].tolist(), y[:2].tolist()):
        find_window(data, row_x + row_y[-1:])  # the first rows are the data's windows
    eot = read_meta(shards)["tokenizer"]["eot_token"]
    for row, targets in zip(x[2:].tolist(), y[2:].tolist()):
        assert eot not in row
        start, lengths = 0, []  # walk the row: a segment of 5–24 tokens, then the same segment
        scored = [False] * len(row)  # again (the last ≤ 24 may be a first copy cut short)
        while len(row) - start > 24:
            lengths.append(next(n for n in range(5, 25) if said_twice(row[start:], n)))
            for i in range(start + lengths[-1], min(start + 2 * lengths[-1] - 1, len(row))):
                scored[i] = True  # predicts a second-copy token after the copy's first one
            start += 2 * lengths[-1]
        assert len(set(lengths)) > 1  # segments of one row differ in length: no fixed period
        for i in range(min(start, len(row) - 1)):
            assert targets[i] == (row[i + 1] if scored[i] else -1)
        assert all(t == -1 or t == row[i + 1] for i, t in enumerate(targets[start:-1], start))
    assert len(loader) == loader.windows_per_rank() // 2  # two data rows a batch


def test_repeat_rows_are_seeded_and_resume_exactly(shards):
    def make(seed=3):
        return TokenLoader(shards, batch_size=4, block_size=32, seed=seed, repeat_rows=2)

    loader = make()
    loader.next_batch()
    state = loader.state_dict()
    expected = [loader.next_batch() for _ in range(3)]
    resumed = make()
    resumed.load_state_dict(state)
    for (x1, y1), (x2, y2) in zip(expected, [resumed.next_batch() for _ in range(3)]):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(make(4).next_batch()[0][2:], make().next_batch()[0][2:])
    with pytest.raises(GPT2LabError, match="repeat_rows"):
        TokenLoader(shards, batch_size=4, block_size=32, seed=3).load_state_dict(state)
    older = {k: v for k, v in make().state_dict().items() if k != "repeat_rows"}
    with pytest.raises(GPT2LabError, match="saved with repeat_rows=0"):  # a state from before
        make().load_state_dict(older)


@pytest.mark.parametrize("rows, mode", [(4, "random"), (-1, "random"), (1, "sequential")])
def test_bad_repeat_rows(shards, rows, mode):
    with pytest.raises(GPT2LabError, match="repeat_rows"):
        TokenLoader(shards, "val", batch_size=4, block_size=32, mode=mode, repeat_rows=rows)


def test_repeat_rows_need_to_know_the_vocabulary(shards):
    path = shards / read_meta(shards)["splits"]["val"]["shards"][0]  # a bare shard: no meta
    with pytest.raises(GPT2LabError, match="prepared with a tokenizer"):
        TokenLoader(path, batch_size=2, block_size=8, repeat_rows=1)
