"""Training-step throughput of gpt2lab against nanoGPT's model.py, on identical shapes.

    python benchmarks/train_throughput.py --nanogpt /path/to/nanoGPT [--threads 1]

nanoGPT is not a dependency: pass the directory holding its `model.py`. For each shape the
script builds both models from the same seed with the same settings (fp32, no dropout, exact
GELU like nanoGPT, AdamW lr 6e-4, wd 0.1, betas 0.9/0.95, clip 1.0), then times one full
training step of each — forward, cross-entropy, backward, clip, AdamW — alternating the two
`--repeats` times so that a busy machine slows both alike. gpt2lab's step is the one its
trainer runs (`gpt2lab.train.engine.accumulate_gradients`); nanoGPT's is its train.py step.

It prints tokens/s, the ratio gpt2lab / nanoGPT (median of the per-repeat ratios) and the
MFU of each: model FLOPs (6·N + 12·L·H·Q·T per token, PaLM appendix B, nanoGPT's
`estimate_mfu`) over the machine's fp32 (or --dtype) GEMM peak, measured here first.
On a GPU, `--device cuda --dtype bfloat16 --compile` gives the bf16 + compile MFU.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from gpt2lab.config import GPTConfig
from gpt2lab.model import GPT
from gpt2lab.train.engine import accumulate_gradients
from gpt2lab.train.optim import make_optimizer

SHAPES = {
    "124M": dict(n_layer=12, n_head=12, n_embd=768),
    "6x384": dict(n_layer=6, n_head=6, n_embd=384),
}


def load_nanogpt(directory: str):
    path = Path(directory) / "model.py"
    if not path.is_file():
        sys.exit(f"--nanogpt: no model.py in {directory}")
    spec = importlib.util.spec_from_file_location("nanogpt_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def gemm_peak(device: torch.device, dtype: torch.dtype, n: int = 2048, repeats: int = 10) -> float:
    """Best-of FLOP/s of an n×n matmul: the machine's practical peak for this dtype."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    best = math.inf
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def flops_per_token(n_params: int, shape: dict, block: int) -> float:
    """6·N + 12·L·H·Q·T (the attention's matmuls on top of the weights')."""
    L, H = shape["n_layer"], shape["n_head"]
    return 6 * n_params + 12 * L * H * (shape["n_embd"] // H) * block


def build(args, shape, nanogpt, device):
    """(name, step function, non-embedding params) for both models, same seed."""
    vocab, block = args.vocab, args.block
    torch.manual_seed(0)
    ours = GPT(GPTConfig(vocab_size=vocab, block_size=block, activation="gelu", **shape)).to(device)
    torch.manual_seed(0)
    with open("/dev/null", "w") as quiet:  # nanoGPT prints while it builds
        stdout, sys.stdout = sys.stdout, quiet
        try:
            theirs = nanogpt.GPT(
                nanogpt.GPTConfig(vocab_size=vocab, block_size=block, bias=True, **shape)
            ).to(device)
            their_opt = theirs.configure_optimizers(0.1, 6e-4, (0.9, 0.95), device.type)
        finally:
            sys.stdout = stdout
    our_opt = make_optimizer(ours, 6e-4, 0.1, (0.9, 0.95), device.type)
    dtype = args.dtype
    autocast = (
        (lambda: torch.autocast(device.type, dtype=getattr(torch, dtype)))
        if dtype != "float32"
        else nullcontext
    )
    our_model = torch.compile(ours) if args.compile else ours
    their_model = torch.compile(theirs) if args.compile else theirs

    def our_step(x, y):
        accumulate_gradients(our_model, [(x, y)], scale=1 / y.numel(), device=device, dtype=dtype)
        torch.nn.utils.clip_grad_norm_(ours.parameters(), 1.0)
        our_opt.step()
        our_opt.zero_grad(set_to_none=True)

    def their_step(x, y):
        with autocast():
            _, loss = their_model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(theirs.parameters(), 1.0)
        their_opt.step()
        their_opt.zero_grad(set_to_none=True)

    n = theirs.get_num_params()  # nanoGPT's count (wte counted, wpe not), used for both
    return [("gpt2lab", our_step), ("nanoGPT", their_step)], n


def time_steps(step, x, y, steps, device) -> float:
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step(x, y)
    sync(device)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nanogpt", required=True, help="directory with nanoGPT's model.py")
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--block", type=int, default=256)
    parser.add_argument("--vocab", type=int, default=50304, help="nanoGPT's padded GPT-2 vocab")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="alternating measurements")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    nanogpt = load_nanogpt(args.nanogpt)

    peak = gemm_peak(device, getattr(torch, args.dtype))
    print(
        f"device {device}, {torch.get_num_threads()} threads, {args.dtype}"
        f"{' + compile' if args.compile else ''}; measured GEMM peak {peak / 1e9:,.1f} GFLOP/s"
    )
    for name in args.shapes:
        shape = SHAPES[name]
        steps, n_params = build(args, shape, nanogpt, device)
        x = torch.randint(0, args.vocab, (args.batch, args.block), device=device)
        y = torch.randint(0, args.vocab, (args.batch, args.block), device=device)
        for _, step in steps:  # warm-up (and compilation)
            step(x, y)
        seconds: dict[str, list[float]] = {label: [] for label, _ in steps}
        for r in range(args.repeats):
            order = steps if r % 2 == 0 else steps[::-1]
            for label, step in order:
                seconds[label].append(time_steps(step, x, y, args.steps, device))
        tokens = args.batch * args.block
        fpt = flops_per_token(n_params, shape, args.block)
        ratios = [n / o for o, n in zip(seconds["gpt2lab"], seconds["nanoGPT"])]
        print(
            f"\n{name} (L={shape['n_layer']}, C={shape['n_embd']}, B={args.batch}, T={args.block})"
        )
        for label in seconds:
            best = min(seconds[label])
            med = statistics.median(seconds[label])
            print(
                f"  {label:8s} {tokens / med:10,.0f} tok/s (median; best {tokens / best:,.0f})"
                f"   MFU {fpt * tokens / med / peak:6.1%}"
            )
        print(
            f"  ratio gpt2lab/nanoGPT: {statistics.median(ratios):.3f} "
            f"(per repeat: {', '.join(f'{r:.3f}' for r in ratios)})"
        )


if __name__ == "__main__":
    main()
