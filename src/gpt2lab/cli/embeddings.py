"""`gpt2lab embeddings`: PCA of token, position and residual-stream vectors; linear probes."""

from __future__ import annotations

import argparse
import sys

from gpt2lab.cli.flags import MODEL_HELP

GROUP_NAMES = ("part of speech", "gender", "number", "meaning")  # data.categories.GROUPS


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "embeddings",
        help="embedding spaces in 2-D and what each layer knows (linear probes)",
        description=(
            "Draw the token embeddings, the position embeddings (the learned table next to "
            "the sinusoidal one of the same size: PCA by position and the cosine-similarity "
            "matrix) and the residual stream after every layer at the words of stories "
            "texts, each as a 2-D PCA coloured by a category group of the stories grammar. "
            "Then train a linear probe per layer and group (part of speech, gender, number, "
            "meaning) and report its accuracy on held-out words next to the majority-class "
            "baseline. Writes embeddings.md, embeddings.json and four PNGs."
        ),
    )
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument(
        "--group",
        choices=GROUP_NAMES,
        default="part of speech",
        help="category group that colours the pictures (default 'part of speech')",
    )
    p.add_argument(
        "--words", type=int, default=3000, help="word occurrences to read (default 3000)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the texts and the split (0)")
    p.add_argument("--out", default="out/embeddings", help="output directory (out/embeddings)")
    p.set_defaults(func=cmd_embeddings)


def cmd_embeddings(args: argparse.Namespace) -> int:
    from gpt2lab.errors import GPT2LabError
    from gpt2lab.files import writable_dir
    from gpt2lab.interp.embeddings import analyse_embeddings, write_embeddings_report
    from gpt2lab.pretrained import load_model_and_tokenizer

    if args.words < 10:
        raise GPT2LabError("--words must be at least 10")
    writable_dir(args.out)  # before a minute of probing
    model, tokenizer, name = load_model_and_tokenizer(args.model)
    analysis = analyse_embeddings(
        model,
        tokenizer,
        group=args.group,
        n_words=args.words,
        seed=args.seed,
        model_name=name,
        progress=sys.stderr.isatty(),
    )
    path = write_embeddings_report(analysis, args.out)
    print(f"{analysis.n_words} words of {name}; wrote {path}")
    for group in GROUP_NAMES:
        row = [p for p in analysis.probes if p.group == group]
        if row:
            accs = " ".join(f"{p.accuracy:.2f}" for p in row)
            print(f"  {group}: probe accuracy by layer {accs} (baseline {row[0].baseline:.2f})")
    return 0
