"""`gpt2lab eval`: perplexity, bits per byte, last-word accuracy and a cloze score."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gpt2lab.cli.flags import MODEL_HELP


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval",
        help="perplexity, bits per byte, last-word accuracy and a cloze score",
        description=(
            "Evaluate a model. --data (a text or .jsonl FILE, or a token shard DIR from "
            "`gpt2lab data prepare`) gives perplexity and bits per byte with a strided "
            'sliding window; --last-word FILE.jsonl ({"text": ...} per line) gives '
            "LAMBADA-style last-word accuracy; --cloze gives the agreement/pronoun cloze "
            "accuracy on the stories probes. Prints a table and writes JSON (--out)."
        ),
    )
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--data", help="text file, .jsonl file, or token shard directory")
    p.add_argument("--split", default="val", help="split of a shard directory (default: val)")
    p.add_argument("--context", type=int, help="window length (default: the model's block_size)")
    p.add_argument("--stride", type=int, help="window step (default: half the context)")
    p.add_argument("--max-tokens", type=int, help="evaluate only the first N tokens")
    p.add_argument("--batch-size", type=int, default=4, help="windows per forward (default: 4)")
    p.add_argument("--last-word", metavar="FILE", help='JSONL of {"text": ...} examples')
    p.add_argument(
        "--cloze",
        nargs="?",
        const="",
        metavar="PROBES",
        help="probe JSONL from the stories corpus; without a file, 200 fresh probes (seed 0)",
    )
    p.add_argument("--out", help="write the results as JSON here (default: print only)")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    from gpt2lab.errors import GPT2LabError

    if not (args.data or args.last_word or args.cloze is not None):
        raise GPT2LabError("nothing to evaluate: give --data, --last-word and/or --cloze")
    if args.batch_size < 1:
        raise GPT2LabError(f"--batch-size must be at least 1, got {args.batch_size}")
    from gpt2lab import evaluate as ev
    from gpt2lab.files import atomic_write_text, writable_dir
    from gpt2lab.pretrained import load_model_and_tokenizer

    # Check the output place and read the inputs first: a bad path or file is reported before
    # the model is loaded.
    if args.out:
        writable_dir(Path(args.out).parent)
    model_ref = args.model
    texts = ev.read_documents(Path(args.last_word), jsonl=True) if args.last_word else None
    records = ev.read_probe_records(args.cloze or None) if args.cloze is not None else None
    model, tokenizer, description = load_model_and_tokenizer(model_ref, args.device)
    if not args.model:
        print(f"using {description}", file=sys.stderr)

    results: dict = {"model": description}
    if args.data:
        tokens = ev.truncate(
            ev.load_eval_tokens(args.data, tokenizer, args.split), args.max_tokens, tokenizer
        )
        result = ev.perplexity(
            model, tokens, args.context, args.stride, args.batch_size, progress=sys.stderr.isatty()
        )
        results["perplexity"] = result.to_dict()
    if texts is not None:
        results["last_word"] = ev.last_word_accuracy(model, tokenizer, texts, args.batch_size)
    if records is not None:
        results["cloze"] = ev.cloze_score(model, tokenizer, records, args.batch_size)
    print(format_table(results))
    if args.out:
        atomic_write_text(args.out, json.dumps(results, indent=2))
        print(f"wrote {args.out}")
    return 0


def format_table(results: dict) -> str:
    """The results as a Markdown table (readable in a terminal too)."""
    rows = []
    if "perplexity" in results:
        p = results["perplexity"]
        where = (
            f"{p['source']}, {p['tokens']:,} tokens, context {p['context']}, stride {p['stride']}"
        )
        rows += [
            ("perplexity", f"{p['perplexity']:.3f}", where),
            ("loss (nats/token)", f"{p['loss']:.4f}", ""),
            ("bits per byte", f"{p['bits_per_byte']:.4f}", f"{p['bytes']:,} bytes"),
        ]
    if "last_word" in results:
        w = results["last_word"]
        rows += [
            ("last-word accuracy", f"{w['accuracy']:.4f}", f"{w['examples']} examples"),
            ("last-word perplexity", f"{w['perplexity']:.3f}", ""),
        ]
    if "cloze" in results:
        c = results["cloze"]
        rows.append(("cloze accuracy", f"{c['accuracy']:.4f}", f"{c['examples']} examples"))
        for kind, k in sorted(c["by_kind"].items()):
            rows.append((f"  {kind}", f"{k['accuracy']:.4f}", f"{k['examples']} examples"))
    lines = [f"model: {results['model']}", "", "| metric | value | on |", "|---|---:|---|"]
    lines += [f"| {name} | {value} | {note} |" for name, value, note in rows]
    return "\n".join(lines)
