"""`gpt2lab neurons`: what every MLP neuron responds to and writes; label the selective ones."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gpt2lab.cli.flags import MODEL_HELP


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "neurons",
        help="top contexts, histograms and output tokens of MLP neurons; category labels",
        description=(
            "Scan every MLP neuron (blocks.L.mlp.hook_post) over a text set, keeping each "
            "neuron's top-K activating tokens with their context; label neurons with the "
            "stories grammar's word categories (part of speech, gender, number, meaning) and "
            "token identity when most of their top activations fall on one category far more "
            "often than the text does; count the selective neurons per layer; and describe the "
            "most selective neurons of each layer (top contexts, activation histogram, the "
            "tokens they write, W_out·W_U). Writes report.md, neurons.json and PNGs. Default "
            "text set: the stories probe examples."
        ),
    )
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--layer", type=int, help="only this layer (default: every layer)")
    p.add_argument("--texts", help="scan this text file (paragraphs split on blank lines)")
    p.add_argument(
        "--probes", type=int, default=200, help="stories probe examples when no --texts (200)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the probe examples (default 0)")
    p.add_argument(
        "--top", type=int, default=20, help="top activations kept and labelled per neuron (20)"
    )
    p.add_argument("--show", type=int, default=6, help="neurons described in full per layer (6)")
    p.add_argument("--out", default="out/neurons", help="output directory (default out/neurons)")
    p.set_defaults(func=cmd_neurons)


def cmd_neurons(args: argparse.Namespace) -> int:
    from gpt2lab.errors import GPT2LabError
    from gpt2lab.files import writable_dir
    from gpt2lab.interp.neurons import check_layers
    from gpt2lab.interp.neurons_report import build_neurons_report, write_neurons_report
    from gpt2lab.interp.texts import load_text_set
    from gpt2lab.pretrained import load_model_and_tokenizer

    if args.probes < 1 or args.top < 1 or args.show < 0:
        raise GPT2LabError("--probes and --top must be at least 1, --show at least 0")
    writable_dir(args.out)  # before minutes of scanning
    model, tokenizer, name = load_model_and_tokenizer(args.model)
    layers = check_layers(model, args.layer)
    context = min(model.config.block_size, 256)
    texts = load_text_set(tokenizer, context, args.texts, args.probes, args.seed)
    report = build_neurons_report(
        model,
        texts,
        tokenizer.decode,
        layers=layers,
        k=args.top,
        show=args.show,
        progress=sys.stderr.isatty(),
    )
    path = write_neurons_report(report, Path(args.out), name)
    print(f"{report.scan.n_tokens} tokens scanned in {name}; wrote {path}")
    for x in report.selectivity:
        groups = ", ".join(f"{g} {n}" for g, n in x.by_group.items())
        print(f"  layer {x.layer}: {x.selective}/{x.n_neurons} neurons labelled ({groups})")
    return 0
