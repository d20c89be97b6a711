"""The command line: the only place that reads argv.

Each submodule of `gpt2lab.cli` is named after the command it registers: it exposes
`register(subparsers)`, which adds the parser and sets `func` to a small function that calls
the Python API. Handlers import the heavy API when they run, so `gpt2lab --help` and every
`gpt2lab COMMAND --help` never import torch (tests/test_cli_help.py checks it).

A mistake is one line on stderr and exit code 2: a bad flag (argparse), or a `GPT2LabError`
raised by the API (a bad value, a missing file).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from gpt2lab import __version__
from gpt2lab.cli.flags import Parser, print_notes
from gpt2lab.errors import GPT2LabError

# The commands, each in the module of its name, in the order they appear in --help.
COMMAND_MODULES = (
    "train",
    "plot",
    "generate",
    "eval",
    "inspect",
    "heads",
    "tokenizer",
    "data",
    "verify",
    "convert",
    "serve",
    "ablate",
)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="gpt2lab",
        description="A GPT-2 you can build, verify, train, break and see inside.",
    )
    parser.add_argument("--version", action="version", version=f"gpt2lab {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"gpt2lab.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # reported by the command's own name, in one line
        words = [getattr(args, "command", None), getattr(args, "action", None)]
        prog = " ".join(["gpt2lab", *filter(None, words)])
        parser.exit(2, f"{prog}: error: unrecognized arguments: {' '.join(unknown)}\n")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    print_notes(args, args.command)
    try:
        return int(args.func(args) or 0)
    except GPT2LabError as err:
        print(f"gpt2lab {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gpt2lab {args.command}: interrupted", file=sys.stderr)
        return 130
