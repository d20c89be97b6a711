"""`gpt2lab ablate`: train every variant of a suite on one budget over seeds, then report."""

from __future__ import annotations

import argparse
import os

from gpt2lab.cli.flags import Formatter, add_dataclass_flags, flag_values

ABLATE_HELP = """Break GPT-2 on purpose: train each variant of a suite (the baseline and named
config overrides) on the same data, tokens, steps and lr schedule shape, over a learning-rate
sweep (seed 0) and then over seeds at each variant's best lr, and write DIR/report.md: for each
claim of the seed article a measure that matches its words, a picture, and a verdict with a
paired 95% confidence interval. The default (--suite seed --preset tiny --seeds 3) takes about
50 minutes on 2 CPU cores; --quick is the test-sized suite (under a minute). Interrupted
suites resume: finished runs are not rerun. A YAML suite file may set the suite options below
as keys; flags win."""


def register(subparsers) -> None:
    from gpt2lab.experiments.runner import SuiteOptions

    p = subparsers.add_parser(
        "ablate",
        help="run an ablation suite and write its report",
        description=ABLATE_HELP,
        formatter_class=Formatter,
    )
    p.add_argument(
        "--suite",
        default="seed",
        metavar="NAME|FILE.yaml",
        help="a named suite (seed: the seed article's claims) or a YAML suite file [seed]",
    )
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME[:key=value,…]",
        help="add a variant: a table name, or GPTConfig overrides (repeatable)",
    )
    p.add_argument(
        "--only", metavar="A,B", help="run only these variants (plus the baseline and --variant's)"
    )
    p.add_argument("--report", metavar="DIR", help="write the report here [the suite directory]")
    p.add_argument(
        "--report-only", action="store_true", help="only rewrite the report from finished runs"
    )
    add_dataclass_flags(p.add_argument_group("suite options"), SuiteOptions)
    p.set_defaults(func=run_ablate)


def default_jobs(device: str) -> int:
    """Parallel runs: one per core (each with 1 thread) on a CPU, one on a GPU."""
    import torch

    if device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()):
        return 1
    return max(1, min(os.cpu_count() or 1, 8))


def run_ablate(args: argparse.Namespace) -> int:
    from gpt2lab.experiments.report import write_report
    from gpt2lab.experiments.runner import Suite, run_suite, suite_budget, suite_options
    from gpt2lab.experiments.variants import select_variants, suite_variants

    variants, file_values = suite_variants(args.suite, args.variant)
    o = suite_options(file_values, flag_values(args), args.suite)
    if args.only:
        variants = select_variants(variants, args.only.split(","), args.variant or ())
    suite = Suite(
        variants,
        preset=o.preset,
        seeds=o.seeds,
        budget=suite_budget(o),
        out=o.out,
        jobs=default_jobs(o.device) if o.jobs is None else o.jobs,
        threads=o.threads,
        device=o.device,
    )
    if not args.report_only:
        summary = run_suite(suite, progress=o.progress)
        print(
            f"ablate: {summary['ran']} run(s) trained, {summary['skipped']} already finished, "
            f"{summary['seconds'] / 60:.1f} min"
        )
        for failed in summary["failed"]:
            print(f"ablate: {failed['name']} failed: {failed['error']} (rerun to retry)")
    path = write_report(suite.out, args.report)
    print(f"report: {path}")
    return 0
