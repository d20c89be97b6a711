"""`gpt2lab train` and `gpt2lab plot`.

Every TrainConfig field is a flag (`--lr 3e-4`, `--max_steps 2000`), every GPTConfig field a
`--model.FIELD` flag; a YAML file (`--config run.yaml`) sets the same keys, and flags win.
Under `torchrun --nproc_per_node N -m gpt2lab train …` each process runs this same command.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

TRAIN_HELP = """Train a GPT-2 (the default: a small model on the embedded stories corpus, ~10 min on
2 CPU cores). Writes runs/NAME/{config.yaml, metrics.jsonl, samples.txt, plots/, checkpoints/}.
A run that diverges (max_nonfinite non-finite steps in a row) stops with a one-line error
(exit 2) naming the step and layer; its last good checkpoint is kept. --engine numpy runs the
same loop on the hand-written NumPy forward/backward and AdamW (tiny models, CPU, float32 or
--dtype float64)."""

PLOT_HELP = """Draw a run's figures as PNGs: loss and perplexity (several runs overlaid), lr,
gradient norm and update ratio per layer, residual RMS by depth, attention entropy per head."""


def register(subparsers) -> None:
    from gpt2lab.config import GPTConfig
    from gpt2lab.train.config import TrainConfig

    p = subparsers.add_parser("train", help="train or fine-tune a model", description=TRAIN_HELP)
    p.add_argument("--config", metavar="FILE.yaml", help="YAML file of options (flags override it)")
    p.add_argument(
        "--resume",
        metavar="RUN",
        help="continue runs/NAME (or a run dir) from its latest checkpoint, exactly",
    )
    p.add_argument(
        "--no-progress",
        dest="opt:progress",
        action="store_const",
        const="false",
        default=argparse.SUPPRESS,
        help="no progress bar (the same as --progress false)",
    )
    options = p.add_argument_group("training options (defaults in brackets)")
    for f in dataclasses.fields(TrainConfig):
        if f.name == "model":
            continue
        flags = [f"--{f.name}"]
        if "_" in f.name:
            flags.append(f"--{f.name.replace('_', '-')}")
        default = f.default if f.default is not dataclasses.MISSING else None
        options.add_argument(
            *flags,
            dest=f"opt:{f.name}",
            default=argparse.SUPPRESS,
            metavar="V",
            help=f"{f.metadata.get('help', '')} [{default}]",
        )
    model = p.add_argument_group(
        "model options (GPTConfig fields over the preset; see gpt2lab.config)"
    )
    for f in dataclasses.fields(GPTConfig):
        if f.name != "extra":
            model.add_argument(
                f"--model.{f.name}",
                dest=f"opt:model.{f.name}",
                default=argparse.SUPPRESS,
                metavar="V",
                help=f"GPTConfig.{f.name}",
            )
    p.set_defaults(func=run_train)

    plot = subparsers.add_parser(
        "plot", help="draw a run's training figures", description=PLOT_HELP
    )
    plot.add_argument("runs", nargs="+", metavar="RUN", help="run directories (runs/NAME)")
    plot.add_argument("--out", metavar="DIR", help="where the PNGs go [the first run's plots/]")
    plot.set_defaults(func=run_plot)


def _options(args: argparse.Namespace) -> dict[str, str]:
    return {k.removeprefix("opt:"): v for k, v in vars(args).items() if k.startswith("opt:")}


def _run_dir(name: str) -> Path:
    """A run given as a path, or as a name under runs/."""
    from gpt2lab.errors import GPT2LabError

    path = Path(name)
    for candidate in (path, Path("runs") / name):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise GPT2LabError(f"no training run at {name} (expected a dir with config.yaml)")


def run_train(args: argparse.Namespace) -> int:
    from gpt2lab.errors import GPT2LabError
    from gpt2lab.train import TrainConfig, apply_overrides, resume_config, train
    from gpt2lab.train.config import load_yaml
    from gpt2lab.train.metrics import write_plots

    options = _options(args)
    if args.resume:
        if args.config:
            raise GPT2LabError("--resume uses the run's own config.yaml; drop --config")
        config = resume_config(_run_dir(args.resume), options)
    else:
        base = TrainConfig()
        if args.config:
            base = apply_overrides(base, load_yaml(args.config))
        config = apply_overrides(base, options)
    result = train(config, resume=bool(args.resume))

    if os.environ.get("RANK", "0") != "0":
        return 0
    write_plots([result.run_dir])
    if result.stopped == "nonfinite":
        nf = result.nonfinite
        raise GPT2LabError(
            f"training stopped after {nf['consecutive']} consecutive non-finite steps at step "
            f"{nf['step']}: first non-finite value in {nf['where']} (layer {nf['layer']}); "
            f"last good checkpoint: {result.checkpoint or 'none'}"
        )
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


def run_plot(args: argparse.Namespace) -> int:
    from gpt2lab.train.metrics import write_plots

    paths = write_plots([_run_dir(r) for r in args.runs], args.out)
    for path in paths:
        print(path)
    return 0
