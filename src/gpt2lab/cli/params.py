"""`gpt2lab params`: parameters per component and the memory of a training step."""

from __future__ import annotations

import argparse

from gpt2lab.cli.flags import MODEL_HELP


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "params",
        help="parameters per component and the training memory estimate",
        description=(
            "Count the parameters of a model per component (embeddings, attention, MLP, "
            "LayerNorm; with and without embeddings; a tied head counted once) from its config "
            "alone, and estimate the memory of one AdamW training step (weights, gradients, "
            "AdamW moments, activations, logits) for a batch × context × dtype. --measure takes "
            "two real steps and reports the measured peak next to the estimate. Writes "
            "params.md, params.json and params.png."
        ),
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--model", help=MODEL_HELP + " (only its config is read)")
    which.add_argument(
        "--preset",
        help="a preset shape: gpt2, gpt2-medium, gpt2-large, gpt2-xl, tiny, stories, mini",
    )
    p.add_argument("--batch-size", type=int, default=8, help="sequences per step (default 8)")
    p.add_argument(
        "--block-size", type=int, help="tokens per sequence (default: the model's block size)"
    )
    p.add_argument(
        "--dtype",
        choices=("float32", "float64", "bfloat16", "float16"),
        default="float32",
        help="as train --dtype: float32/float64, or bfloat16/float16 autocast (default float32)",
    )
    p.add_argument(
        "--budget-gib", type=float, default=16.0, help="memory to fit a batch into (default 16)"
    )
    p.add_argument(
        "--measure",
        action="store_true",
        help="also take two training steps on --device and report the measured peak",
    )
    p.add_argument("--device", default="cpu", help="where --measure runs: cpu or cuda[:N] (cpu)")
    p.add_argument("--out", default="out/params", help="output directory (default out/params)")
    p.set_defaults(func=cmd_params)


def cmd_params(args: argparse.Namespace) -> int:
    from gpt2lab.config import GPTConfig
    from gpt2lab.errors import GPT2LabError
    from gpt2lab.files import writable_dir
    from gpt2lab.model import resolve_device
    from gpt2lab.params import measure_training_peak, params_report, write_params_report

    if args.batch_size < 1 or (args.block_size is not None and args.block_size < 1):
        raise GPT2LabError("--batch-size and --block-size must be at least 1")
    if not args.budget_gib > 0:
        raise GPT2LabError("--budget-gib must be a positive number")
    if args.preset:
        config, name = GPTConfig.preset(args.preset), args.preset
    else:
        from gpt2lab.pretrained import read_config, resolve_model_dir, resolve_model_name

        target, name = resolve_model_name(args.model)
        config = read_config(resolve_model_dir(target))
    block = args.block_size or config.block_size
    if config.pos_encoding == "learned" and block > config.block_size:
        raise GPT2LabError(
            f"--block-size {block} is longer than the model's {config.block_size} learned positions"
        )
    if args.measure and resolve_device(args.device).type not in ("cpu", "cuda"):
        raise GPT2LabError(f"--measure runs on cpu or cuda, not {args.device}")
    writable_dir(args.out)
    measured = None
    if args.measure:
        measured = measure_training_peak(config, args.batch_size, block, args.dtype, args.device)
    report = params_report(config, args.batch_size, block, args.dtype, args.budget_gib, measured)
    path = write_params_report(report, args.out, name)
    m = report["memory"]
    print(
        f"{name}: {report['total']:,} parameters ({report['non_embedding']:,} non-embedding; "
        f"MLP {report['mlp_share_of_non_embedding']:.1%} of those)"
    )
    print(
        f"training step {args.batch_size} × {block} {args.dtype}: about "
        f"{m['total'] / 2**30:.2f} GiB"
        + (f", measured {measured / 2**30:.2f} GiB" if measured is not None else "")
    )
    print(f"wrote {path}")
    return 0
