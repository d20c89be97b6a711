"""The ablation lab: break GPT-2 on purpose, at equal budget, each variant at its best
learning rate over paired seeds, and report what each claim's own measure says.

    variants.py   the declarative table of variants, `--variant name:key=value,…`, YAML suites
    runner.py     the lr sweep, then seeds at the best lr: resumable, in parallel processes
    measures.py   what a run measured: from its files (every step) and its final weights
    verdicts.py   the claims, one rule function per kind of claim, paired intervals
    report.py     compute (typed records) → figures → report.md and report.json

>>> from gpt2lab.experiments import Suite, run_suite, suite_variants, write_report
>>> variants, _ = suite_variants("seed")
>>> suite = Suite(variants, preset="tiny", seeds=3, out="out/ablation")  # doctest: +SKIP
>>> run_suite(suite); write_report(suite.out)                           # doctest: +SKIP
"""

from gpt2lab.lazy import lazy_attributes

_LAZY = {
    "CLAIMS": "gpt2lab.experiments.verdicts",
    "RULES": "gpt2lab.experiments.verdicts",
    "paired_interval": "gpt2lab.experiments.verdicts",
    "write_report": "gpt2lab.experiments.report",
    "BUDGETS": "gpt2lab.experiments.runner",
    "Budget": "gpt2lab.experiments.runner",
    "RunKey": "gpt2lab.experiments.runner",
    "Suite": "gpt2lab.experiments.runner",
    "run_suite": "gpt2lab.experiments.runner",
    "VARIANTS": "gpt2lab.experiments.variants",
    "Variant": "gpt2lab.experiments.variants",
    "parse_variant": "gpt2lab.experiments.variants",
    "suite_variants": "gpt2lab.experiments.variants",
}

__all__ = sorted(_LAZY)

__getattr__ = lazy_attributes(__name__, _LAZY)
