"""`gpt2lab plot`: a run's training figures as PNGs."""

from __future__ import annotations

import argparse

PLOT_HELP = """Draw a run's figures as PNGs: loss and perplexity (several runs overlaid), lr,
gradient norm and update ratio per layer, residual RMS by depth, attention entropy per head."""


def register(subparsers) -> None:
    plot = subparsers.add_parser(
        "plot", help="draw a run's training figures", description=PLOT_HELP
    )
    plot.add_argument("runs", nargs="+", metavar="RUN", help="run directories (runs/NAME)")
    plot.add_argument("--out", metavar="DIR", help="where the PNGs go [the first run's plots/]")
    plot.set_defaults(func=run_plot)


def run_plot(args: argparse.Namespace) -> int:
    from gpt2lab.train.metrics import find_run, write_plots

    paths = write_plots([find_run(r) for r in args.runs], args.out)
    for path in paths:
        print(path)
    return 0
