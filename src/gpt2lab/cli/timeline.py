"""`gpt2lab timeline`: what changed at each kept checkpoint of a run; timeline.md/.json/.png."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "timeline",
        help="what changed between a run's checkpoints: slope changes, samples, head roles",
        description=(
            "Find where the slope of a run's train-loss curve changed (a piecewise-linear fit "
            "whose bends must pay for themselves), and for every kept step checkpoint show side "
            "by side: the val loss (recomputed on the run's val batches), a sample (the run's "
            "prompt, seed and sampling settings, as in samples.txt), the best head score of "
            "each head role on the stories probes, and the cloze accuracy on the same probes. "
            "Writes timeline.md, timeline.json and timeline.png. Train with --keep-every N so "
            "that the checkpoints are there (gpt2lab train --keep-every 100)."
        ),
    )
    p.add_argument("run", metavar="RUN", help="a training run directory (runs/NAME)")
    p.add_argument("--out", metavar="DIR", help="output directory [RUN/timeline]")
    p.add_argument(
        "--probes", type=int, default=200, help="stories probe examples per checkpoint [200]"
    )
    p.add_argument("--prompt", help="prompt of the samples [the run's sample prompt]")
    p.add_argument("--seed", type=int, help="seed of the samples [the run's seed]")
    p.add_argument(
        "--data", metavar="DIR", help="prepared data for the val loss [the run's own data]"
    )
    p.add_argument(
        "--log-step",
        action="store_true",
        help="fit the loss against ln(step): a fall by the same amount per doubling is a line",
    )
    p.add_argument("--device", default="cpu", help="torch device [cpu]")
    p.set_defaults(func=cmd_timeline)


def cmd_timeline(args: argparse.Namespace) -> int:
    from gpt2lab.files import writable_dir
    from gpt2lab.model import resolve_device
    from gpt2lab.timeline import (
        build_timeline,
        checkpoint_dirs,
        make_inputs,
        slope_text,
        write_timeline,
    )
    from gpt2lab.train.metrics import find_run

    run = find_run(args.run)
    device = resolve_device(args.device)
    steps = sorted(checkpoint_dirs(run))
    inputs = make_inputs(
        run, prompt=args.prompt, seed=args.seed, probes=args.probes, data=args.data
    )
    out = writable_dir(args.out or run / "timeline")  # after every check, before the work
    timeline = build_timeline(
        run,
        inputs=inputs,
        log_step=args.log_step,
        device=device,
        progress=sys.stderr.isatty(),
    )
    path = write_timeline(timeline, Path(out))
    changes = timeline.curve.fit.changes
    print(f"{len(steps)} checkpoints of {run} (steps {steps[0]}–{steps[-1]}); wrote {path}")
    print(f"{len(changes)} slope change(s) of the train loss:")
    for change in changes:
        print(f"  {slope_text(change, args.log_step)}")
    return 0
