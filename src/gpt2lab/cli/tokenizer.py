"""`gpt2lab tokenizer train`: learn a byte-level BPE vocabulary."""

from __future__ import annotations

import argparse
import itertools


def register(subparsers) -> None:
    tokenizer = subparsers.add_parser("tokenizer", help="train a byte-level BPE tokenizer")
    tokenizer_commands = tokenizer.add_subparsers(dest="action", metavar="ACTION", required=True)
    train = tokenizer_commands.add_parser(
        "train",
        help="learn BPE merges with GPT-2's pre-tokenization",
        description="Learn a byte-level BPE vocabulary (256 bytes + merges + <|endoftext|>) and "
        "save encoder.json + vocab.bpe; load it with get_tokenizer(DIR).",
    )
    train.add_argument(
        "--input",
        nargs="+",
        required=True,
        metavar="SRC",
        help="files, globs, directories, hf:NAME or stories",
    )
    train.add_argument(
        "--vocab-size",
        type=int,
        required=True,
        help="total ids including <|endoftext|> (GPT-2: 50257)",
    )
    train.add_argument("--out", required=True, help="directory to write the vocabulary to")
    train.add_argument(
        "--max-bytes",
        type=int,
        default=20_000_000,
        help="read at most this much text (default 20 MB)",
    )
    train.add_argument(
        "--errors",
        choices=("strict", "replace"),
        default="strict",
        help="what to do with bytes that are not UTF-8",
    )
    train.set_defaults(func=tokenizer_train)


def tokenizer_train(args: argparse.Namespace) -> int:
    from gpt2lab.data.sources import iter_documents, take_bytes
    from gpt2lab.errors import GPT2LabError
    from gpt2lab.tokenizer import train_tokenizer

    if args.max_bytes < 1:
        raise GPT2LabError(f"--max-bytes must be positive, got {args.max_bytes}")
    documents = itertools.chain.from_iterable(
        iter_documents(source, errors=args.errors) for source in args.input
    )
    texts = take_bytes(documents, args.max_bytes)
    out = train_tokenizer(texts, args.vocab_size, args.out, source=" ".join(args.input))
    print(f"wrote {args.vocab_size}-id vocabulary to {out}")
    return 0
