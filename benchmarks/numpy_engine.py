"""Training throughput of `--engine numpy` next to the torch engine, on the same tiny run.

    python benchmarks/numpy_engine.py [--data data/stories-4096] [--threads 1]

Two Trainers are built from one TrainConfig (preset tiny, float32) that differs only in
`engine`, so they start from the same weights and read the same TokenLoader batches in the
same order. The script alternates blocks of `--steps` real `Trainer.train_step()` calls of
each (forward, backward, clip, AdamW: everything but callbacks) `--repeats` times, so a busy
machine slows both alike, and prints tokens/s of each and the ratio numpy / torch (median of
the per-repeat ratios). The losses of the two are compared as they go: a fast engine that
computes something else would show here. Both use `--threads` threads (torch's intra-op pool,
OpenBLAS for NumPy). Without --data a small stories corpus (4096-token BPE) is prepared in a
temporary directory first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", help="prepared data dir [a temporary stories corpus]")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--block-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=5, help="steps per timed block")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args()


def timed_block(trainer, steps: int) -> tuple[float, list[float]]:
    """(tokens/s, losses) of `steps` training steps."""
    started, tokens, step_losses = time.perf_counter(), 0, []
    for _ in range(steps):
        tokens_before = trainer.tokens
        step_losses.append(trainer.train_step()["loss"])
        tokens += trainer.tokens - tokens_before
    return tokens / (time.perf_counter() - started), step_losses


def main() -> None:
    args = parse_args()
    os.environ["OMP_NUM_THREADS"] = os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)
    import torch  # after the thread variables: OpenBLAS reads them when it loads

    from gpt2lab.data.prepared import prepare_stories
    from gpt2lab.train import TrainConfig, Trainer
    from gpt2lab.train.distributed import Dist
    from gpt2lab.train.run import open_data, prepare_model

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data
        if data_dir is None:
            data_dir = str(Path(tmp) / "stories")
            print("preparing a stories corpus (4096-token BPE, 400k tokens) ...")
            prepare_stories(data_dir, tokens=400_000)
        base = TrainConfig(
            data=data_dir,
            preset="tiny",
            batch_size=args.batch_size,
            block_size=args.block_size,
            max_steps=args.steps * args.repeats,
            warmup_steps=2,
            threads=args.threads,
            progress=False,
            tensorboard=False,
        )
        dist = Dist()
        data = open_data(base, dist)
        trainers = {}
        for engine in ("torch", "numpy"):
            cfg = base.replace(engine=engine)
            model = prepare_model(cfg, data, dist)
            trainers[engine] = Trainer(cfg, Path(tmp) / engine, dist, data, [], None, model)
        model = trainers["torch"].model_config
        n_params = sum(p.numel() for p in trainers["torch"].raw_model.parameters())
        print(
            f"tiny preset: {model.n_layer} layers × {model.n_embd}, vocab {model.vocab_size}, "
            f"{n_params / 1e6:.2f}M parameters; batch {args.batch_size} × {args.block_size} "
            f"tokens, float32, {args.threads} thread(s)"
        )
        speeds: dict[str, list[float]] = {"torch": [], "numpy": []}
        losses: dict[str, list[float]] = {"torch": [], "numpy": []}
        for _ in range(args.repeats):
            for engine, trainer in trainers.items():
                speed, block_losses = timed_block(trainer, args.steps)
                speeds[engine].append(speed)
                losses[engine] += block_losses
        ratios = [n / t for n, t in zip(speeds["numpy"], speeds["torch"], strict=True)]
        gap = max(abs(a - b) for a, b in zip(losses["torch"], losses["numpy"], strict=True))
        for engine, values in speeds.items():
            print(
                f"{engine:>6}: {statistics.median(values):10,.0f} tokens/s (median of {len(values)})"
            )
        print(
            f"numpy / torch: {statistics.median(ratios):.3f}  (per repeat: "
            + ", ".join(f"{r:.3f}" for r in ratios)
            + ")"
        )
        print(f"max |Δloss| over {len(losses['torch'])} steps (float32): {gap:.2e}")


if __name__ == "__main__":
    main()
