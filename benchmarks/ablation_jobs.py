"""Does the ablation runner gain from parallel processes? 2 processes × 1 thread vs 1 × 2.

Trains the same 4 short tiny runs (baseline and no_pos, 2 seeds each) both ways, alternating
the order over rounds, and prints the wall time of each and the ratio. Run from the repo root:

    python benchmarks/ablation_jobs.py [--steps 30] [--rounds 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from gpt2lab.experiments.runner import BUDGETS, RunKey, Suite, ensure_data, execute
from gpt2lab.experiments.variants import VARIANTS


def wall_time(jobs: int, threads: int, steps: int, root: Path) -> float:
    suite = Suite(
        [VARIANTS["baseline"], VARIANTS["no_pos"]],
        seeds=2,
        budget=BUDGETS["tiny"].with_steps(steps),
        out=str(root / f"j{jobs}t{threads}-{time.monotonic_ns()}"),
        jobs=jobs,
        threads=threads,
    )
    lr = suite.budget.lrs[0]
    configs = [suite.train_config(RunKey(v.name, lr, s)) for s in range(2) for v in suite.variants]
    if jobs == 1:  # one process using `threads` threads
        configs = [c.replace(threads=threads) for c in configs]
    started = time.perf_counter()
    outcomes = list(execute([c.to_dict() for c in configs], jobs))
    assert all(o["stopped"] == "completed" for o in outcomes), outcomes
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    ensure_data(BUDGETS["tiny"].data)
    ways = {"2 jobs × 1 thread": (2, 1), "1 job × 2 threads": (1, 2)}
    times: dict[str, list[float]] = {name: [] for name in ways}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            order = list(ways) if i % 2 == 0 else list(reversed(ways))
            for name in order:
                times[name].append(wall_time(*ways[name], args.steps, Path(tmp)))
                print(f"round {i}: {name}: {times[name][-1]:.1f} s", flush=True)
    a, b = (min(t) for t in times.values())
    print(f"best of {args.rounds}: 2×1 {a:.1f} s, 1×2 {b:.1f} s, speedup of 2 jobs {b / a:.2f}×")


if __name__ == "__main__":
    main()
