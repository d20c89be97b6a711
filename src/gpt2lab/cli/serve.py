"""`gpt2lab serve`: the web explorer (see gpt2lab.viewer)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "serve",
        help="explore a model in the browser: attention, predictions, heads, neurons, embeddings",
        description=(
            "Start a local web app that shows, for any text you type, the tokens, each "
            "position's top-k next-token predictions, every head's attention (lines, heatmap, "
            "thumbnails), the head-role map, and what zeroing heads does to the predictions; "
            "each MLP neuron's top contexts and output tokens, the most active neurons at a "
            "token, and 2-D PCA maps of the token, position and residual-stream spaces by word "
            "category. With --run (or a run directory as --model) it also draws the run's loss, "
            "perplexity, learning rate and per-layer gradient norms, and, for a run trained "
            "with --keep-every N, a step slider over its checkpoints (val loss, sample, head "
            "roles, cloze accuracy, slope changes of the loss). The JSON API behind the "
            "page is documented at /docs. Binds 127.0.0.1 unless --host says otherwise."
        ),
    )
    p.add_argument(
        "--model",
        help="hub name (gpt2), model directory, or training run runs/NAME "
        "(default: the newest run under runs/)",
    )
    p.add_argument(
        "--run",
        help="training run directory whose metrics.jsonl to draw (default: --model, if a run)",
    )
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0 = any free)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default: 127.0.0.1, this machine only; 0.0.0.0 exposes it)",
    )
    p.add_argument("--device", default="cpu", help="torch device for the model (default: cpu)")
    p.add_argument(
        "--max-tokens", type=int, default=1024, help="longest text accepted (default: 1024)"
    )
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from gpt2lab.errors import GPT2LabError
    from gpt2lab.pretrained import load_model_and_tokenizer, resolve_model_name
    from gpt2lab.viewer.api import Limits
    from gpt2lab.viewer.server import serve

    if not 0 <= args.port <= 65535:
        raise GPT2LabError(f"--port {args.port} is not a port number (0..65535)")
    if args.max_tokens < 1:
        raise GPT2LabError("--max-tokens must be at least 1")
    target, description = resolve_model_name(args.model)
    run_dir = Path(args.run) if args.run else None
    if run_dir is None and (Path(target) / "metrics.jsonl").is_file():
        run_dir = Path(target)
    model, tokenizer, _ = load_model_and_tokenizer(target, device=args.device)
    print(f"loaded {description}: {model.num_params(non_embedding=False) / 1e6:.1f}M parameters")
    serve(
        model,
        tokenizer,
        host=args.host,
        port=args.port,
        run_dir=run_dir,
        name=Path(target).name or target,
        limits=Limits(max_tokens=args.max_tokens),
    )
    return 0
