"""`gpt2lab gardenpath`: attention entropy and surprisal at the word that ends a garden path."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gpt2lab.cli.flags import MODEL_HELP


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "gardenpath",
        help="garden-path sentences vs controls: attention entropy and surprisal per layer",
        description=(
            "Run the shipped garden-path sentences ('The horse raced past the barn fell.') and "
            "their minimally different controls ('The horse that was raced past the barn "
            "fell.') through a model. At the disambiguating word, measure every head's "
            "attention entropy and the word's surprisal after every layer (logit lens); "
            "report garden path − control, averaged over items with bootstrap intervals "
            "(gardenpath.md, gardenpath.json, PNGs). Meaningful on a model that has read "
            "such English, e.g. --model gpt2."
        ),
    )
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples (default 2000)")
    p.add_argument(
        "--out", default="out/gardenpath", help="output directory (default out/gardenpath)"
    )
    p.set_defaults(func=cmd_gardenpath)


def cmd_gardenpath(args: argparse.Namespace) -> int:
    from gpt2lab.errors import GPT2LabError
    from gpt2lab.files import writable_dir
    from gpt2lab.interp.gardenpath import analyse_garden_paths, write_garden_path_report
    from gpt2lab.pretrained import load_model_and_tokenizer

    if args.bootstrap < 1:
        raise GPT2LabError("--bootstrap must be at least 1")
    writable_dir(args.out)
    model, tokenizer, name = load_model_and_tokenizer(args.model)
    report = analyse_garden_paths(
        model, tokenizer, seed=args.seed, n_boot=args.bootstrap, progress=sys.stderr.isatty()
    )
    path = write_garden_path_report(report, Path(args.out), name)
    d = report.delta_surprisal
    print(
        f"{len(report.items)} garden paths through {name}: the disambiguating word is "
        f"{d.mean[-1]:+.2f} bits more surprising than in the control "
        f"(95% CI {d.lo[-1]:+.2f} to {d.hi[-1]:+.2f}); wrote {path}"
    )
    return 0
