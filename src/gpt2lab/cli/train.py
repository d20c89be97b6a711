"""`gpt2lab train`: TrainConfig's fields as typed flags over an optional YAML file.

Every TrainConfig field is a flag (`--lr 3e-4`, `--max-steps 2000`, `--compile`), every
GPTConfig field a `--model.FIELD` flag; a YAML file (`--config run.yaml`) sets the same keys,
and flags win. Under `torchrun --nproc_per_node N -m gpt2lab train …` each process runs this
same command.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from gpt2lab.cli.flags import Formatter, add_dataclass_flags, flag_values

TRAIN_HELP = """Train a GPT-2 (the default: a small model on the embedded stories corpus, ~10 min on
2 CPU cores). Writes runs/NAME/{config.yaml, metrics.jsonl, samples.txt, plots/, checkpoints/}.
A run that diverges (--max-nonfinite non-finite steps in a row) stops with a one-line error
(exit 2) naming the step and layer where it began; its last good checkpoint is kept. Ctrl-C
(SIGINT) or SIGTERM saves a checkpoint, says so and exits 130 / 143; --resume continues. --engine numpy runs the
same loop on the hand-written NumPy forward/backward and AdamW (tiny models, CPU, float32 or
--dtype float64). Flags are spelled with dashes; the underscore spellings of earlier versions
(--init_from, --model.n_layer, ...) still work and print a deprecation note."""


def register(subparsers) -> None:
    from gpt2lab.config import GPTConfig
    from gpt2lab.train.config import TrainConfig

    p = subparsers.add_parser(
        "train",
        help="train or fine-tune a model",
        description=TRAIN_HELP,
        formatter_class=Formatter,
    )
    p.add_argument("--config", metavar="FILE.yaml", help="YAML file of options (flags override it)")
    p.add_argument(
        "--resume",
        metavar="RUN",
        help="continue runs/NAME (or a run dir) from its latest checkpoint, exactly",
    )
    add_dataclass_flags(
        p.add_argument_group("training options (defaults in brackets)"),
        TrainConfig,
        skip=("model",),
    )
    add_dataclass_flags(
        p.add_argument_group("model options (GPTConfig fields over the preset's values)"),
        GPTConfig,
        prefix="model.",
        skip=("extra",),
        defaults=False,
    )
    p.set_defaults(func=run_train)


def config_from_args(args: argparse.Namespace):
    """The TrainConfig a `gpt2lab train` command line asks for: defaults < --config < flags,
    or, with --resume, the run's own config.yaml with the flags that may change."""
    from gpt2lab.errors import GPT2LabError
    from gpt2lab.options import load_yaml
    from gpt2lab.train.config import TrainConfig, apply_overrides
    from gpt2lab.train.metrics import find_run
    from gpt2lab.train.run import resume_config

    options = flag_values(args)
    if args.resume:
        if args.config:
            raise GPT2LabError("--resume uses the run's own config.yaml; drop --config")
        return resume_config(find_run(args.resume), options)
    base = TrainConfig()
    if args.config:
        base = apply_overrides(base, load_yaml(args.config))
    return apply_overrides(base, options)


def run_train(args: argparse.Namespace) -> int:
    from gpt2lab.errors import GPT2LabError
    from gpt2lab.train.metrics import write_plots
    from gpt2lab.train.run import train

    result = train(config_from_args(args), resume=bool(args.resume))

    if os.environ.get("RANK", "0") != "0":
        return 0
    write_plots([result.run_dir])
    if result.stopped == "nonfinite":
        nf = result.nonfinite
        raise GPT2LabError(
            f"training diverged: {nf['consecutive']} non-finite steps in a row from step "
            f"{nf['step']}, the first non-finite value in {nf['where']} (layer {nf['layer']}); "
            f"last good checkpoint: {result.checkpoint or 'none'}"
        )
    if result.stopped in ("SIGINT", "SIGTERM"):
        print(
            f"gpt2lab train: stopped by {result.stopped} at step {result.step}; checkpoint saved: "
            f"{result.checkpoint}; continue with gpt2lab train --resume {result.run_dir}",
            file=sys.stderr,
        )
        return 128 + signal.Signals[result.stopped].value
    print(
        f"run:        {result.run_dir}  ({result.stopped} at step {result.step}, "
        f"{result.tokens:,} tokens, {result.seconds:.0f} s)"
    )
    if result.val_loss is not None:
        print(f"val loss:   {result.val_loss:.4f}  (perplexity {result.val_ppl:.2f})")
    print(f"checkpoint: {result.checkpoint}")
    if result.sample:
        print(f"sample:     {result.sample}")
    return 0
