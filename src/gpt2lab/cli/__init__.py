"""The command line: the only place that reads argv.

Each submodule of `gpt2lab.cli` owns a few subcommands: it exposes `register(subparsers)`,
which adds its parsers and sets `func` to a small function that calls the Python API.
Handlers import the heavy API lazily so `gpt2lab --help` stays fast.

A `GPT2LabError` (the user's fault) is printed as one line and exits with code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from gpt2lab import __version__
from gpt2lab.errors import GPT2LabError

# Submodules that register subcommands, in the order their commands appear in --help.
COMMAND_MODULES = ("train", "generate", "interp", "data", "model", "serve", "ablate")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except GPT2LabError as err:
        print(f"gpt2lab {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gpt2lab {args.command}: interrupted", file=sys.stderr)
        return 130
