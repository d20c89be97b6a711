"""data prepare: the token stream is the tokenizer's, split by document, recorded, refused clearly."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gpt2lab.cli import main
from gpt2lab.data import sources
from gpt2lab.data.prepare import prepare, read_meta
from gpt2lab.data.shards import read_shard
from gpt2lab.data.stories import generate_stories
from gpt2lab.tokenizer import get_tokenizer
from gpt2lab.tokenizer.vocab import write_vocab

EOT = 50256


def split_tokens(out, split) -> np.ndarray:
    meta = read_meta(out)
    shards = [read_shard(out / name) for name in meta["splits"][split]["shards"]]
    return np.concatenate(shards).astype(np.int64) if shards else np.zeros(0, np.int64)


def documents_of(tokens: np.ndarray) -> list[list[int]]:
    """Split a stream at <|endoftext|>, which starts every document."""
    starts = np.flatnonzero(tokens == EOT).tolist() + [len(tokens)]
    return [tokens[a + 1 : b].tolist() for a, b in zip(starts, starts[1:])]


@pytest.fixture
def corpus(tmp_path):
    """A directory of .txt (two documents joined by <|endoftext|>), .jsonl and .parquet files."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    stories = list(generate_stories(60, seed=2))
    root = tmp_path / "corpus"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("<|endoftext|>".join(stories[:20]), encoding="utf-8")
    with open(root / "sub" / "b.jsonl", "w", encoding="utf-8") as f:
        for story in stories[20:40]:
            f.write(json.dumps({"text": story, "id": 1}) + "\n")
    pq.write_table(pa.table({"text": stories[40:]}), root / "sub" / "c.parquet")
    return root, stories


def test_stream_is_eot_plus_document_tokens(tmp_path, corpus):
    root, stories = corpus
    out = tmp_path / "shards"
    meta = prepare(str(root), out, "gpt2", val_fraction=0.2, seed=1, shard_tokens=3000)
    tok = get_tokenizer("gpt2")
    expected = {tuple(tok.encode(story)) for story in stories}
    train, val = split_tokens(out, "train"), split_tokens(out, "val")
    got_train, got_val = documents_of(train), documents_of(val)
    # every document lands whole in exactly one split
    assert {tuple(d) for d in got_train} | {tuple(d) for d in got_val} == expected
    assert len(got_train) + len(got_val) == 60 and got_val
    assert meta["splits"]["train"]["tokens"] == train.size
    assert meta["splits"]["val"]["documents"] == len(got_val)
    assert len(meta["splits"]["train"]["shards"]) > 1  # shard_tokens=3000 forced several
    assert meta["tokenizer"]["identity"] == tok.identity and meta["dtype"] == "uint16"
    # deterministic, and the same with two worker processes
    again = prepare(str(root), tmp_path / "again", "gpt2", val_fraction=0.2, seed=1, workers=2)
    assert split_tokens(tmp_path / "again", "train").tolist() == train.tolist()
    assert again["splits"] == {
        k: {**v, "shards": again["splits"][k]["shards"]} for k, v in meta["splits"].items()
    }


def test_globs_and_stories_with_a_cap(tmp_path, corpus):
    root, stories = corpus
    meta = prepare(str(root / "**" / "*.jsonl"), tmp_path / "g", val_fraction=0.0)
    assert meta["splits"]["train"]["documents"] == 20 and meta["splits"]["val"]["tokens"] == 0
    meta = prepare("stories:3", tmp_path / "s", max_tokens=20_000)
    total = sum(s["tokens"] for s in meta["splits"].values())
    assert total == 20_000


def test_hf_source_offline(tmp_path, monkeypatch):
    import datasets

    texts = ["First document.", "Second one, longer.", "Third."] * 5
    calls = []

    def fake_load(name, config, split):
        calls.append((name, config, split))
        return datasets.Dataset.from_dict({"text": texts})

    monkeypatch.setattr(sources, "load_hf_dataset", fake_load)
    argv = ["data", "prepare", "--source", "hf:HuggingFaceFW/fineweb-edu:sample-10BT"]
    argv += ["--out", str(tmp_path / "hf"), "--split", "train", "--max-tokens", "40"]
    assert main(argv) == 0
    assert calls == [("HuggingFaceFW/fineweb-edu", "sample-10BT", "train")]
    tok = get_tokenizer("gpt2")
    stream = np.concatenate([split_tokens(tmp_path / "hf", s) for s in ("train", "val")])
    full = [t for text in texts for t in [EOT, *tok.encode(text)]]
    assert stream.size == 40 and sorted(stream.tolist()) == sorted(full[:40])


def one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    return captured.err


def test_bad_inputs_are_one_clear_line(tmp_path, capsys):
    out = str(tmp_path / "out")
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n", encoding="utf-8")
    latin = tmp_path / "latin.txt"
    latin.write_bytes("Grüße aus Köln".encode("latin-1"))
    base = ["data", "prepare", "--out", out, "--no-progress"]

    assert "empty input" in one_line_error(capsys, [*base, "--source", str(empty)])
    assert "input not found" in one_line_error(capsys, [*base, "--source", str(tmp_path / "nope")])
    assert "no input files match" in one_line_error(capsys, [*base, "--source", f"{tmp_path}/*.md"])
    err = one_line_error(capsys, [*base, "--source", str(latin)])
    assert "not valid UTF-8" in err and "--errors replace" in err
    assert main([*base, "--source", str(latin), "--errors", "replace"]) == 0
    capsys.readouterr()

    # a directory of gpt2 shards refuses a different tokenizer
    small = tmp_path / "small_tok"
    write_vocab(small, [(b"G", b"r")])
    err = one_line_error(capsys, [*base, "--source", str(latin), "--tokenizer", str(small)])
    assert "holds shards of tokenizer gpt2" in err
    assert (
        main(
            [
                *base,
                "--source",
                "stories",
                "--tokenizer",
                str(small),
                "--max-tokens",
                "500",
                "--overwrite",
            ]
        )
        == 0
    )
    capsys.readouterr()


def test_ids_that_do_not_fit_the_dtype(tmp_path, capsys):
    # 65,536 merges: every two-byte pair, so the vocabulary has 65,793 ids
    big = tmp_path / "big_tok"
    write_vocab(big, [(bytes([a]), bytes([b])) for a in range(256) for b in range(256)])
    source = tmp_path / "t.txt"
    source.write_text("hello there", encoding="utf-8")
    base = ["data", "prepare", "--source", str(source), "--tokenizer", str(big), "--no-progress"]
    err = one_line_error(capsys, [*base, "--out", str(tmp_path / "o"), "--dtype", "uint16"])
    assert "does not fit in uint16" in err
    assert main([*base, "--out", str(tmp_path / "o")]) == 0
    assert read_meta(tmp_path / "o")["dtype"] == "uint32"
    assert read_shard(tmp_path / "o" / "train_000000.bin").dtype.itemsize == 4


def test_help_texts(capsys):
    for argv, option in [
        (["data", "prepare", "--help"], "--max-tokens"),
        (["data", "stories", "--help"], "--probes"),
        (["tokenizer", "train", "--help"], "--vocab-size"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 0 and option in capsys.readouterr().out


def test_a_single_document_is_split_so_val_is_not_empty(tmp_path):
    text = " ".join(["the cat sat on the mat"] * 300)
    (tmp_path / "one.txt").write_text(text)
    meta = prepare(str(tmp_path / "one.txt"), tmp_path / "out", val_fraction=0.1)
    train = np.concatenate([read_shard(p) for p in sorted((tmp_path / "out").glob("train_*.bin"))])
    val = np.concatenate([read_shard(p) for p in sorted((tmp_path / "out").glob("val_*.bin"))])
    tok = get_tokenizer("gpt2")
    assert val.size > 0 and train.size > val.size
    assert train.tolist() + val.tolist() == [tok.eot_token] + tok.encode(text)  # nothing lost
    assert read_meta(tmp_path / "out") == meta


def test_package_name_prepare_is_the_function_even_after_the_module_loads():
    import gpt2lab.data.loader  # noqa: F401  (imports gpt2lab.data.prepare, the module)
    from gpt2lab.data import prepare as exported

    assert callable(exported) and exported is prepare


def test_hf_source_through_datasets_on_a_local_openwebtext_shaped_dataset(tmp_path, monkeypatch):
    """No stand-in for `load_hf_dataset`: `datasets` itself streams a local folder of parquet
    shards shaped like Skylion007/openwebtext (one `text` column, a train split), offline."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    texts = [f"Web page {i}.\n\nIt says {'more ' * (i % 7)}things." for i in range(60)]
    folder = tmp_path / "openwebtext" / "plain_text"
    folder.mkdir(parents=True)
    for shard in range(2):
        table = pa.table({"text": texts[shard * 30 : (shard + 1) * 30]})
        pq.write_table(table, folder / f"train-0000{shard}-of-00002.parquet")
    out = tmp_path / "owt"
    argv = ["data", "prepare", "--source", f"hf:{tmp_path / 'openwebtext'}", "--out", str(out)]
    assert main([*argv, "--no-progress"]) == 0
    tok = get_tokenizer("gpt2")
    stream = np.concatenate([split_tokens(out, s) for s in ("train", "val")])
    documents = sorted(documents_of(stream))
    assert documents == sorted(tok.encode(t) for t in texts)
