"""`gpt2lab inspect`: attention pictures, head view, logit lens and top heads for one text."""

from __future__ import annotations

import argparse
from pathlib import Path

from gpt2lab.cli.flags import MODEL_HELP


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "inspect",
        help="attention pictures, head view, logit lens and top heads for one text",
        description=(
            "Run one text through a model and write to --out: every head of each layer as "
            "heatmaps (PNG), one head in detail with --layer/--head, an interactive head view "
            "(head_view.html, works offline), a logit-lens table (the top next-token guess "
            "after each layer) and, for every position, the heads whose direct write raised "
            "the next token's logit most (inspect.md, inspect.json). With --shuffle SEED, also "
            "whether shuffling the text's tokens shuffles the outputs (permutation.md)."
        ),
    )
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--text", required=True, help="the text to look at")
    p.add_argument("--layer", type=int, help="only this layer's pictures (0-based)")
    p.add_argument("--head", type=int, help="also one head's heatmap (needs --layer)")
    p.add_argument("--top-k", type=int, default=5, help="predictions per position (default 5)")
    p.add_argument(
        "--shuffle",
        type=int,
        metavar="SEED",
        help="also shuffle the tokens (seeded) and measure whether the outputs shuffle the same "
        "way: with and without the causal mask (permutation.md, permutation.json)",
    )
    p.add_argument("--out", default="out/inspect", help="output directory (default out/inspect)")
    p.set_defaults(func=cmd_inspect)


def cmd_inspect(args: argparse.Namespace) -> int:
    from gpt2lab.errors import GPT2LabError
    from gpt2lab.files import writable_dir
    from gpt2lab.interp.heads import check_fits
    from gpt2lab.interp.interventions import check_head
    from gpt2lab.interp.permutation import permutation_check, random_permutation, write_permutation
    from gpt2lab.interp.report import inspect_text
    from gpt2lab.pretrained import load_model_and_tokenizer

    if args.head is not None and args.layer is None:
        raise GPT2LabError("--head needs --layer (e.g. --layer 3 --head 7)")
    if args.top_k < 1:
        raise GPT2LabError("--top-k must be at least 1")
    if not args.text.strip():
        raise GPT2LabError("empty --text: give a text to look at")
    writable_dir(args.out)
    model, tokenizer, name = load_model_and_tokenizer(args.model)
    if args.layer is not None:
        check_head(model, args.layer, args.head)
    ids = tokenizer.encode(args.text, allowed_special="all")
    check_fits(model, len(ids))
    shuffled = None
    if args.shuffle is not None:  # before any file is written: a too-short text fails here
        shuffled = permutation_check(model, ids, random_permutation(len(ids), args.shuffle))
    path = inspect_text(
        model,
        tokenizer,
        ids,
        Path(args.out),
        layer=args.layer,
        head=args.head,
        top_k=args.top_k,
        model_name=name,
    )
    print(f"{len(ids)} tokens through {name}; wrote {path} (and head_view.html, PNGs)")
    if shuffled is not None:
        strings = [tokenizer.decode([t]) for t in ids]
        shuffle_path = write_permutation(shuffled, Path(args.out), strings)
        print(f"shuffled with seed {args.shuffle}; wrote {shuffle_path}")
        for case in shuffled.cases:
            verdict = "exact" if case.exact else "differs"
            print(f"  {case.name:<30} max |Δ| {case.max_abs_diff:9.3g}  {verdict}")
    return 0
