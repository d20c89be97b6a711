"""`gpt2lab convert`: weights between Hugging Face and gpt2lab layouts."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "convert",
        help="convert weights between Hugging Face and gpt2lab layouts",
        description=(
            "Load a model (local directory in HF or gpt2lab layout, or a hub name) and write it "
            "to --out: Hugging Face layout when GPT2LMHeadModel can hold the architecture "
            "(--to auto or hf), else gpt2lab's own format."
        ),
    )
    p.add_argument("source", help="model directory or hub name")
    p.add_argument("--out", required=True, help="directory to write")
    p.add_argument("--to", choices=("auto", "hf", "gpt2lab"), default="auto", help="target layout")
    p.set_defaults(func=cmd_convert)


def cmd_convert(args: argparse.Namespace) -> int:
    from pathlib import Path

    from gpt2lab.pretrained import (
        copy_tokenizer_files,
        load_pretrained,
        resolve_model_dir,
        save_pretrained,
    )

    source = resolve_model_dir(args.source)
    model = load_pretrained(source)
    fmt = save_pretrained(model, args.out, format=args.to)
    copied = copy_tokenizer_files(source, Path(args.out))
    reasons = model.config.hf_incompatibilities()
    why = (
        f" (Hugging Face cannot hold {', '.join(reasons)})" if fmt == "gpt2lab" and reasons else ""
    )
    vocab = f", with its tokenizer ({', '.join(copied)})" if copied else ""
    print(f"wrote {args.out} in {fmt} layout{why}{vocab}")
    return 0
