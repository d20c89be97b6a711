"""`gpt2lab verify`: a GPT against transformers, the NumPy reference and itself."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "verify",
        help="check a GPT against transformers, the NumPy reference and itself",
        description=(
            "Run the same tokens through gpt2lab and through independent references "
            "(transformers' GPT2LMHeadModel, the NumPy reference, the explicit attention path, "
            "a save/load round trip) and print max |Δlogits|, |Δloss| and greedy agreement. "
            "With no --model it checks a random-init model of --preset (offline). "
            "Exit code 0 when every check passes, 1 otherwise."
        ),
    )
    p.add_argument(
        "--model", help="local model directory or hub name (e.g. gpt2); default: random init"
    )
    p.add_argument(
        "--preset", default="gpt2", help="shape of the random-init model (default: gpt2, 124M)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed for the random weights and tokens")
    p.add_argument("--seq-len", type=int, default=32, help="tokens per sequence (default: 32)")
    p.add_argument("--batch-size", type=int, default=2, help="sequences (default: 2)")
    p.set_defaults(func=cmd_verify)


def cmd_verify(args: argparse.Namespace) -> int:
    import torch

    from gpt2lab.config import GPTConfig
    from gpt2lab.errors import GPT2LabError
    from gpt2lab.model import GPT
    from gpt2lab.pretrained import load_pretrained
    from gpt2lab.verify import TABLE_HEADER, format_row, run_checks

    if args.seq_len < 1 or args.batch_size < 1:
        raise GPT2LabError("--seq-len and --batch-size must be at least 1")
    if args.model:
        model = load_pretrained(args.model)
        what = args.model
    else:
        torch.manual_seed(args.seed)
        model = GPT(GPTConfig.preset(args.preset))
        what = f"random-init {args.preset} (seed {args.seed})"
    print(f"verifying {what}: {model.num_params() / 1e6:.2f}M non-embedding parameters")
    print(TABLE_HEADER, "-" * len(TABLE_HEADER), sep="\n")
    results = []
    for result in run_checks(model, args.batch_size, args.seq_len, args.seed):
        print(format_row(result), flush=True)
        results.append(result)
    failed = [r.name for r in results if not r.passed]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0
