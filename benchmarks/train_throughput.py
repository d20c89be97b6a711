"""Training-step throughput of gpt2lab against nanoGPT's model.py, on identical shapes.

    python benchmarks/train_throughput.py --nanogpt /path/to/nanoGPT [--threads 1]
    python benchmarks/train_throughput.py --nanogpt /path/to/nanoGPT --nanogpt-compile
    python benchmarks/train_throughput.py --nanogpt DIR --device cuda --dtype bfloat16 --compile

nanoGPT is not a dependency: pass the directory holding its `model.py`. For each shape the
script builds the models from the same seed with the same settings (no dropout, exact GELU
like nanoGPT, AdamW lr 6e-4, wd 0.1, betas 0.9/0.95, clip 1.0), then times one full training
step of each side — forward, cross-entropy, backward, clip, AdamW — alternating the sides
`--repeats` times (in turned order every other time) so that a busy machine slows all alike:

    gpt2lab        the trainer's step in `--dtype` (default auto: the dtype `gpt2lab train
                   --dtype auto` picks on this machine by its matmul probe), compiled with
                   `--compile`; the step is the one the trainer runs
                   (`gpt2lab.train.engine.accumulate_gradients`: the fused output layer +
                   cross-entropy, the dtype's attention path)
    gpt2lab fp32   the same code in float32, eager: `gpt2lab train`'s default path
    nanoGPT fp32   nanoGPT eager in float32: its train.py step
    nanoGPT best   with --nanogpt-compile: nanoGPT under torch.compile, in gpt2lab's dtype

It prints tokens/s per side, the ratios of gpt2lab to each other side (median of the
per-repeat ratios), the cold time of the first step (compilation included), the loss each
side reaches after the same steps on the same batch (relative to gpt2lab fp32), and MFU:
model FLOPs (6·N + 12·L·H·Q·T per token, PaLM appendix B, nanoGPT's `estimate_mfu`) over
this machine's matmul peak for the dtype that side computes in, measured here first.
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
from gpt2lab.train.engine import accumulate_gradients, fast_attention_path, loss_sum
from gpt2lab.train.optim import make_optimizer
from gpt2lab.train.precision import choose_dtype

SHAPES = {  # model shape, and the batch it is timed with
    "tiny": dict(n_layer=4, n_head=4, n_embd=128, block=128, batch=32, vocab=4096),
    "6x384": dict(n_layer=6, n_head=6, n_embd=384, block=256, batch=4, vocab=50304),
    "124M": dict(n_layer=12, n_head=12, n_embd=768, block=256, batch=4, vocab=50304),
}
"""tiny: the default `gpt2lab train` run (preset tiny, 4096-word stories vocabulary, 32 × 128
tokens per step); 6x384 and 124M with nanoGPT's padded GPT-2 vocabulary."""


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


def flops_per_token(n_params: int, shape: dict) -> float:
    """6·N + 12·L·H·Q·T (the attention's matmuls on top of the weights')."""
    L, H = shape["n_layer"], shape["n_head"]
    return 6 * n_params + 12 * L * H * (shape["n_embd"] // H) * shape["block"]


def model_shape(shape: dict) -> dict:
    return {k: shape[k] for k in ("n_layer", "n_head", "n_embd")}


def gpt2lab_side(shape, device, dtype: str, compile_: bool):
    """(step, loss) of gpt2lab's trainer step in `dtype`."""
    torch.manual_seed(0)
    cfg = GPTConfig(
        vocab_size=shape["vocab"],
        block_size=shape["block"],
        activation="gelu",
        **model_shape(shape),
    )
    raw = GPT(cfg).to(device)
    fast_attention_path(raw, device, dtype)
    model = torch.compile(raw) if compile_ else raw
    opt = make_optimizer(raw, 6e-4, 0.1, (0.9, 0.95), device.type)

    def step(x, y):
        accumulate_gradients(model, [(x, y)], scale=1 / y.numel(), device=device, dtype=dtype)
        torch.nn.utils.clip_grad_norm_(raw.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    @torch.no_grad()
    def loss(x, y):
        return float(loss_sum(model, x, y, device, dtype)) / y.numel()

    return step, loss


def nanogpt_side(nanogpt, shape, device, dtype: str, compile_: bool):
    """(step, loss, nanoGPT's parameter count) of nanoGPT's train.py step."""
    torch.manual_seed(0)
    with open("/dev/null", "w") as quiet:  # nanoGPT prints while it builds
        stdout, sys.stdout = sys.stdout, quiet
        try:
            raw = nanogpt.GPT(
                nanogpt.GPTConfig(
                    vocab_size=shape["vocab"],
                    block_size=shape["block"],
                    bias=True,
                    dropout=0.0,
                    **model_shape(shape),
                )
            ).to(device)
            opt = raw.configure_optimizers(0.1, 6e-4, (0.9, 0.95), device.type)
        finally:
            sys.stdout = stdout
    model = torch.compile(raw) if compile_ else raw

    def autocast():
        if dtype == "float32":
            return nullcontext()
        return torch.autocast(device.type, dtype=getattr(torch, dtype))

    def step(x, y):
        with autocast():
            _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(raw.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    @torch.no_grad()
    def loss(x, y):
        with autocast():
            _, value = model(x, y)
        return float(value)

    return step, loss, raw.get_num_params()


def time_steps(step, x, y, steps, device) -> float:
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step(x, y)
    sync(device)
    return (time.perf_counter() - start) / steps


def run_shape(name, args, nanogpt, device, dtype: str, peaks: dict[str, float]) -> None:
    shape = dict(SHAPES[name])
    for key in ("batch", "block", "vocab"):
        shape[key] = getattr(args, key) or shape[key]
    sides = {"gpt2lab": (*gpt2lab_side(shape, device, dtype, args.compile), dtype)}
    if dtype != "float32" or args.compile:
        sides["gpt2lab fp32"] = (*gpt2lab_side(shape, device, "float32", False), "float32")
    *nano, n_params = nanogpt_side(nanogpt, shape, device, "float32", False)
    sides["nanoGPT fp32"] = (*nano, "float32")
    if args.nanogpt_compile:
        sides["nanoGPT best"] = (*nanogpt_side(nanogpt, shape, device, dtype, True)[:2], dtype)

    gen = torch.Generator().manual_seed(0)
    B, T, V = shape["batch"], shape["block"], shape["vocab"]
    x = torch.randint(0, V, (B, T), generator=gen).to(device)
    y = torch.randint(0, V, (B, T), generator=gen).to(device)
    cold = {label: time_steps(step, x, y, 1, device) for label, (step, *_) in sides.items()}
    seconds: dict[str, list[float]] = {label: [] for label in sides}
    order = list(sides)
    for r in range(args.repeats):
        for label in order if r % 2 == 0 else order[::-1]:
            seconds[label].append(time_steps(sides[label][0], x, y, args.steps, device))
    losses = {label: loss(x, y) for label, (_, loss, _) in sides.items()}

    tokens = B * T
    fpt = flops_per_token(n_params, shape)
    print(f"\n{name} (L={shape['n_layer']}, C={shape['n_embd']}, V={V}, B={B}, T={T})")
    reference = "gpt2lab fp32" if "gpt2lab fp32" in sides else "gpt2lab"
    for label, (_, _, side_dtype) in sides.items():
        med = statistics.median(seconds[label])
        mfu = fpt * tokens / med / peaks[side_dtype]
        rel = losses[label] / losses[reference] - 1
        print(
            f"  {label:13s} {tokens / med:9,.0f} tok/s (median; best "
            f"{tokens / min(seconds[label]):,.0f})  MFU {mfu:6.1%} of {side_dtype} peak"
            f"  cold step {cold[label]:6.1f} s  loss {losses[label]:.4f} ({rel:+.2%})"
        )
    pairs = [("gpt2lab", other) for other in sides if other != "gpt2lab"]
    if "gpt2lab fp32" in sides:
        pairs.append(("gpt2lab fp32", "nanoGPT fp32"))
    for ours, other in pairs:
        ratios = [o / g for g, o in zip(seconds[ours], seconds[other])]
        print(
            f"  ratio {ours} / {other}: {statistics.median(ratios):.2f}× "
            f"(per repeat: {', '.join(f'{r:.2f}' for r in ratios)})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nanogpt", required=True, help="directory with nanoGPT's model.py")
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--batch", type=int, help="sequences per step (default: the shape's)")
    parser.add_argument("--block", type=int, help="tokens per sequence (default: the shape's)")
    parser.add_argument("--vocab", type=int, help="vocabulary (default: the shape's)")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="alternating measurements")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"]
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile gpt2lab's model")
    parser.add_argument(
        "--nanogpt-compile",
        action="store_true",
        help="also time nanoGPT under torch.compile in gpt2lab's dtype",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    nanogpt = load_nanogpt(args.nanogpt)

    dtype = args.dtype
    if dtype == "auto":
        choice = choose_dtype(device, SHAPES[args.shapes[0]]["n_embd"])
        dtype = choice.dtype
        print(f"--dtype auto: {dtype} ({choice.reason})")
    peaks = {d: gemm_peak(device, getattr(torch, d)) for d in sorted({"float32", dtype})}
    print(
        f"device {device}, {torch.get_num_threads()} threads, gpt2lab in {dtype}"
        f"{' + compile' if args.compile else ''}; measured matmul peak "
        + ", ".join(f"{d} {p / 1e9:,.0f} GFLOP/s" for d, p in peaks.items())
        + (f" (ratio {peaks[dtype] / peaks['float32']:.1f}×)" if dtype != "float32" else "")
    )
    for name in args.shapes:
        run_shape(name, args, nanogpt, device, dtype, peaks)


if __name__ == "__main__":
    main()
