"""`gpt2lab verify`: a GPT against transformers, the NumPy reference and itself; with
--trace, layer by layer (gpt2lab.trace)."""

from __future__ import annotations

import argparse

TRACE_ONLY = ("against", "out", "dtype", "rtol", "atol")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "verify",
        help="check a GPT against transformers, the NumPy reference and itself",
        description=(
            "Run the same tokens through gpt2lab and through independent references "
            "(transformers' GPT2LMHeadModel, the NumPy reference, the explicit attention path, "
            "a save/load round trip) and print max |Δlogits|, |Δloss| and greedy agreement. "
            "With --trace, record every intermediate of both sides (embeddings, each "
            "LayerNorm, q/k/v, scores, pattern, z, attention and MLP outputs, the residual "
            "stream, logits), print the first point where they differ beyond tolerance, and "
            "write trace.md and trace.json. "
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
    trace = p.add_argument_group("layer-by-layer diff (--trace)")
    trace.add_argument(
        "--trace", action="store_true", help="compare every intermediate, not only the logits"
    )
    trace.add_argument(
        "--against",
        metavar="hf|numpy|DIR",
        help="hf: transformers on the same weights (default); numpy: the NumPy reference; "
        "DIR: another model directory of the same shape (HF or gpt2lab format)",
    )
    trace.add_argument("--out", help="output directory (default: out/trace)")
    trace.add_argument(
        "--dtype", choices=("float32", "float64"), help="precision of both sides (float32)"
    )
    trace.add_argument(
        "--rtol", type=float, help="tolerance relative to max |B| (1e-4; 1e-10 in float64)"
    )
    trace.add_argument("--atol", type=float, help="absolute tolerance (1e-8; 1e-14 in float64)")
    p.set_defaults(func=cmd_verify)


def load_model(args: argparse.Namespace):
    """(model, description): --model, or a seeded random-init model of --preset."""
    import torch

    from gpt2lab.config import GPTConfig
    from gpt2lab.model import GPT
    from gpt2lab.pretrained import load_pretrained

    if args.model:
        return load_pretrained(args.model), args.model
    torch.manual_seed(args.seed)
    return GPT(GPTConfig.preset(args.preset)), f"random-init {args.preset} (seed {args.seed})"


def cmd_verify(args: argparse.Namespace) -> int:
    from gpt2lab.errors import GPT2LabError
    from gpt2lab.verify import TABLE_HEADER, format_row, run_checks

    if args.seq_len < 1 or args.batch_size < 1:
        raise GPT2LabError("--seq-len and --batch-size must be at least 1")
    if args.trace:
        return cmd_trace(args)
    given = [f"--{name}" for name in TRACE_ONLY if getattr(args, name) is not None]
    if given:
        raise GPT2LabError(f"{given[0]} goes with --trace")
    model, what = load_model(args)
    print(f"verifying {what}: {model.num_params() / 1e6:.2f}M non-embedding parameters")
    print(TABLE_HEADER, "-" * len(TABLE_HEADER), sep="\n")
    results = []
    for result in run_checks(model, args.batch_size, args.seq_len, args.seed):
        print(format_row(result), flush=True)
        results.append(result)
    failed = [r.name for r in results if not r.passed]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def cmd_trace(args: argparse.Namespace) -> int:
    import torch

    from gpt2lab import trace
    from gpt2lab.files import writable_dir
    from gpt2lab.verify import random_batch

    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    rtol, atol = trace.TOLERANCES[dtype]
    rtol, atol = (
        (rtol if args.rtol is None else args.rtol),
        (atol if args.atol is None else args.atol),
    )
    trace.check_tolerances(rtol, atol)
    model, what = load_model(args)
    model = model.to(dtype).cpu().eval()
    idx, _ = random_batch(model.config, args.batch_size, args.seq_len, args.seed)
    against = trace.resolve_against(args.against or "hf", model.config)
    out = writable_dir(args.out or "out/trace")
    label_b, theirs = trace.reference_trace(model, against, idx)
    ours = trace.trace_gpt2lab(model, idx)
    diff = trace.diff_traces(ours, theirs, rtol, atol, (f"gpt2lab GPT, {what}", label_b))
    setup = f"{idx.size(0)} × {idx.size(1)} random token ids (seed {args.seed}), {args.dtype or 'float32'}"
    md, js = trace.write_trace_report(diff, out, setup)
    print(f"A: {diff.label_a}\nB: {diff.label_b}\n{trace.summary(diff)}\nwrote {md} and {js}")
    return 0 if diff.first is None else 1
