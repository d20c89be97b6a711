"""Looking inside: `gpt2lab inspect` (one text) and `gpt2lab heads` (every head's role)."""

from __future__ import annotations

import argparse
from pathlib import Path

MODEL_HELP = "model directory, training run (runs/NAME) or hub name (gpt2); default: the newest run"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "inspect",
        help="attention pictures, head view, logit lens and top heads for one text",
        description=(
            "Run one text through a model and write to --out: every head of each layer as "
            "heatmaps (PNG), one head in detail with --layer/--head, an interactive head view "
            "(head_view.html, works offline), a logit-lens table (the top next-token guess "
            "after each layer) and, for every position, the heads whose direct write raised "
            "the next token's logit most (inspect.md, inspect.json)."
        ),
    )
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--text", required=True, help="the text to look at")
    p.add_argument("--layer", type=int, help="only this layer's pictures (0-based)")
    p.add_argument("--head", type=int, help="also one head's heatmap (needs --layer)")
    p.add_argument("--top-k", type=int, default=5, help="predictions per position (default 5)")
    p.add_argument("--out", default="out/inspect", help="output directory (default out/inspect)")
    p.set_defaults(func=cmd_inspect)

    p = subparsers.add_parser(
        "heads",
        help="score and classify every attention head; write report.md",
        description=(
            "Score every (layer, head) on a text set — previous-token, first-token (sink), "
            "self, duplicate-token, induction (repeated random tokens), sentence-boundary, "
            "mean attention distance, entropy, pronoun→antecedent — classify heads by "
            "documented thresholds, measure each head's ablation effect on the loss, and "
            "write report.md with the grids (PNG), the classified heads and their strongest "
            "examples, plus scores.json. Default text set: the stories probe examples, "
            "which carry pronoun/antecedent ground truth."
        ),
    )
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--texts", help="score on this text file (paragraphs split on blank lines)")
    p.add_argument(
        "--probes", type=int, default=200, help="stories probe examples when no --texts (200)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the probe examples (default 0)")
    p.add_argument(
        "--ablation",
        choices=("zero", "mean", "none"),
        default="zero",
        help="how to remove a head for the Δloss grid (default zero)",
    )
    p.add_argument("--examples", type=int, default=5, help="examples per classified head (5)")
    p.add_argument("--out", default="out/heads", help="output directory (default out/heads)")
    p.set_defaults(func=cmd_heads)


def cmd_inspect(args: argparse.Namespace) -> int:
    from gpt2lab.errors import GPT2LabError
    from gpt2lab.interp.heads import check_fits
    from gpt2lab.interp.interventions import check_head
    from gpt2lab.interp.report import inspect_text
    from gpt2lab.pretrained import load_model_and_tokenizer

    if args.head is not None and args.layer is None:
        raise GPT2LabError("--head needs --layer (e.g. --layer 3 --head 7)")
    if args.top_k < 1:
        raise GPT2LabError("--top-k must be at least 1")
    if not args.text.strip():
        raise GPT2LabError("empty --text: give a text to look at")
    model, tokenizer, name = load_model_and_tokenizer(args.model)
    if args.layer is not None:
        check_head(model, args.layer, args.head)
    ids = tokenizer.encode(args.text, allowed_special="all")
    check_fits(model, len(ids))
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
    return 0


def cmd_heads(args: argparse.Namespace) -> int:
    from gpt2lab.errors import GPT2LabError
    from gpt2lab.interp.report import build_heads_report, write_heads_report
    from gpt2lab.interp.texts import file_text_set, pack, probe_text_set
    from gpt2lab.pretrained import load_model_and_tokenizer

    if args.probes < 1 or args.examples < 0:
        raise GPT2LabError("--probes must be at least 1 and --examples at least 0")
    model, tokenizer, name = load_model_and_tokenizer(args.model)
    context = min(model.config.block_size, 256)
    if args.texts:
        texts = file_text_set(tokenizer, args.texts, context)
    else:
        texts = probe_text_set(tokenizer, args.probes, args.seed, max_tokens=context)
        separator = tokenizer.encode("\n\n")
        texts = pack(texts, context, separator, tokenizer.decode(separator))
    report = build_heads_report(model, texts, ablation=args.ablation, n_examples=args.examples)
    path = write_heads_report(report, Path(args.out), name)
    print(f"{len(report.roles)} head roles found in {name}; wrote {path}")
    for role in report.roles:
        print(f"  {role}")
    return 0
