"""`gpt2lab data prepare` (token shards) and `gpt2lab data stories` (the stories corpus)."""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    data = subparsers.add_parser("data", help="prepare token shards, write stories")
    data_commands = data.add_subparsers(dest="action", metavar="ACTION", required=True)
    prep = data_commands.add_parser(
        "prepare",
        help="tokenize a source into shards with a train/val split",
        description="Tokenize a text source into token shards (uint16/uint32 with a header) and "
        "a meta.json; documents are joined with <|endoftext|>.",
    )
    prep.add_argument(
        "--source", required=True, help="file, glob, directory, hf:NAME[:CONFIG] or stories[:SEED]"
    )
    prep.add_argument("--tokenizer", default="gpt2", help="gpt2 or a vocabulary directory")
    prep.add_argument("--out", required=True, help="directory for the shards and meta.json")
    prep.add_argument("--backend", choices=("tiktoken", "bpe"), default="tiktoken")
    prep.add_argument("--val-fraction", type=float, default=0.05)
    prep.add_argument("--seed", type=int, default=0)
    prep.add_argument(
        "--max-tokens",
        type=int,
        default=None,
        help="stop after this many tokens (stories default: 5M)",
    )
    prep.add_argument("--shard-tokens", type=int, default=100_000_000)
    prep.add_argument("--dtype", choices=("auto", "uint16", "uint32"), default="auto")
    prep.add_argument("--errors", choices=("strict", "replace"), default="strict")
    prep.add_argument("--split", default="train", help="dataset split for hf: sources")
    prep.add_argument("--text-field", default="text", help="field/column holding the text")
    prep.add_argument("--workers", type=int, default=1, help="tokenizer processes")
    prep.add_argument(
        "--overwrite", action="store_true", help="replace shards written by another tokenizer"
    )
    prep.add_argument("--no-progress", action="store_true")
    prep.set_defaults(func=data_prepare)

    stories = data_commands.add_parser(
        "stories", help="write a sample of the stories corpus and labelled probe examples"
    )
    stories.add_argument("--out", required=True, help="text file for the stories")
    stories.add_argument("--bytes", type=int, default=1_000_000)
    stories.add_argument("--seed", type=int, default=0)
    stories.add_argument("--probes", default=None, help="JSONL file for probe examples")
    stories.add_argument("--probe-count", type=int, default=1000)
    stories.add_argument("--tokenizer", default="gpt2", help="tokenizer for probe token positions")
    stories.set_defaults(func=data_stories)


def data_prepare(args: argparse.Namespace) -> int:
    from gpt2lab.data.prepare import prepare

    meta = prepare(
        args.source,
        args.out,
        args.tokenizer,
        backend=args.backend,
        val_fraction=args.val_fraction,
        seed=args.seed,
        max_tokens=args.max_tokens,
        shard_tokens=args.shard_tokens,
        dtype=args.dtype,
        errors=args.errors,
        split=args.split,
        text_field=args.text_field,
        workers=args.workers,
        overwrite=args.overwrite,
        progress=not args.no_progress and sys.stderr.isatty(),
    )
    splits = meta["splits"]
    print(
        f"wrote {splits['train']['tokens']:,} train + {splits['val']['tokens']:,} val tokens "
        f"({meta['dtype']}) to {args.out}"
    )
    return 0


def data_stories(args: argparse.Namespace) -> int:
    from pathlib import Path

    from gpt2lab.data.stories import generate_text, write_probes
    from gpt2lab.errors import GPT2LabError
    from gpt2lab.files import atomic_write_text

    if args.bytes < 1:
        raise GPT2LabError(f"--bytes must be a positive number, got {args.bytes}")
    if args.probes and args.probe_count < 1:
        raise GPT2LabError(f"--probe-count must be a positive number, got {args.probe_count}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, generate_text(args.bytes, seed=args.seed) + "\n")
    print(f"wrote {out.stat().st_size:,} bytes of stories to {out}")
    if args.probes:
        path = write_probes(args.probes, args.probe_count, args.seed, args.tokenizer)
        print(f"wrote {args.probe_count} probe examples to {path}")
    return 0
