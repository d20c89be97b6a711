"""The ablation lab: break GPT-2 on purpose, at equal budget over several seeds, and report.

    variants.py   the declarative table of variants, `--variant name:key=value,…`, YAML suites
    runner.py     equal-budget runs over seeds: resumable, in parallel processes
    report.py     the claims table and report.md: curves, verdicts, extrapolation, samples

>>> from gpt2lab.experiments import Suite, run_suite, suite_variants, write_report
>>> variants, _ = suite_variants("seed")
>>> suite = Suite(variants, preset="tiny", seeds=3, out="out/ablation")  # doctest: +SKIP
>>> run_suite(suite); write_report(suite.out)                           # doctest: +SKIP
"""

from gpt2lab.experiments.report import CLAIMS, judge, write_report
from gpt2lab.experiments.runner import BUDGETS, Budget, Suite, run_suite
from gpt2lab.experiments.variants import VARIANTS, Variant, parse_variant, suite_variants

__all__ = [
    "BUDGETS",
    "CLAIMS",
    "VARIANTS",
    "Budget",
    "Suite",
    "Variant",
    "judge",
    "parse_variant",
    "run_suite",
    "suite_variants",
    "write_report",
]
