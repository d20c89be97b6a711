"""`gpt2lab heads`: score and classify every attention head; write report.md."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gpt2lab.cli.flags import MODEL_HELP


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "heads",
        help="score and classify every attention head; write report.md",
        description=(
            "Score every (layer, head) on a text set — previous-token, first-token (sink), "
            "self, duplicate-token, induction (repeated random tokens), sentence-boundary, "
            "mean attention distance, entropy, pronoun→antecedent — classify heads by "
            "documented thresholds, measure each head's ablation effect on the loss, "
            "measure the behaviours the roles are for (bigram continuation loss, loss on "
            "each half of repeated random tokens, pronoun-probe accuracy, the loss on names "
            "already said in a held-out story against names said first) and check that "
            "zero-ablating each labelled head hurts its own behaviour more than any other "
            "head, and write report.md with the grids (PNG), the classified heads and their "
            "strongest examples, plus scores.json. Default text set: the stories probe "
            "examples, which carry pronoun/antecedent ground truth."
        ),
    )
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--texts", help="score on this text file (paragraphs split on blank lines)")
    p.add_argument(
        "--probes",
        type=int,
        default=200,
        help="stories probe examples: the texts when no --texts, and the pronoun probes of "
        "the behaviours either way (200)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the probe examples (default 0)")
    p.add_argument(
        "--ablation",
        choices=("zero", "mean", "none"),
        default="zero",
        help="how to remove a head for the Δloss grid (default zero); none also skips the "
        "behaviours and their ablation-specificity check",
    )
    p.add_argument("--examples", type=int, default=5, help="examples per classified head (5)")
    p.add_argument("--out", default="out/heads", help="output directory (default out/heads)")
    p.set_defaults(func=cmd_heads)


def cmd_heads(args: argparse.Namespace) -> int:
    from gpt2lab.errors import GPT2LabError
    from gpt2lab.files import writable_dir
    from gpt2lab.interp.behaviours import (
        BehaviourSet,
        name_recall_set,
        pronoun_contrasts,
        story_text_set,
    )
    from gpt2lab.interp.heads import default_induction
    from gpt2lab.interp.report import build_heads_report, write_heads_report
    from gpt2lab.interp.texts import load_text_set
    from gpt2lab.pretrained import load_model_and_tokenizer

    if args.probes < 1 or args.examples < 0:
        raise GPT2LabError("--probes must be at least 1 and --examples at least 0")
    writable_dir(args.out)  # before minutes of scoring
    model, tokenizer, name = load_model_and_tokenizer(args.model)
    context = min(model.config.block_size, 256)
    texts = load_text_set(tokenizer, context, args.texts, args.probes, args.seed)
    behaviours = BehaviourSet(
        story_text_set(tokenizer, seed=args.seed, max_tokens=context),
        default_induction(model.config.block_size),
        pronoun_contrasts(tokenizer, args.probes, args.seed, context),
        name_recall_set(tokenizer, seed=args.seed, max_tokens=min(context, 128)),
    )
    report = build_heads_report(
        model,
        texts,
        ablation=args.ablation,
        n_examples=args.examples,
        progress=sys.stderr.isatty(),
        behaviours=behaviours,
    )
    path = write_heads_report(report, Path(args.out), name)
    print(f"{len(report.roles)} head roles found in {name}; wrote {path}")
    for role in report.roles:
        print(f"  {role}")
    for check in report.specificity.checks if report.specificity else ():
        print(f"  ablation specificity, {check.role}: {check.verdict}")
    return 0
