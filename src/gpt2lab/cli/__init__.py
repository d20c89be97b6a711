"""The command line: the only place that reads argv.

Each submodule of `gpt2lab.cli` is named after the command it registers: it exposes
`register(subparsers)`, which adds the parser and sets `func` to a small function that calls
the Python API. Handlers import the heavy API when they run, so `gpt2lab --help` and every
`gpt2lab COMMAND --help` never import torch (tests/cli/test_help.py checks it).

A mistake is one line on stderr and exit code 2, decided here for every command: a bad flag
(argparse), a `GPT2LabError` raised by the API (a bad value, a missing file), an OSError (a
path that cannot be used) or a file that is not UTF-8 (`user_error`). Ctrl+C is exit 130. Any
other exception is a bug and shows its traceback. tests/cli/test_bad_inputs.py holds the
table of bad inputs across the commands.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

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
    "neurons",
    "tokenizer",
    "data",
    "verify",
    "convert",
    "serve",
    "ablate",
    "timeline",
    "embeddings",
    "params",
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


def user_error(err: Exception) -> str:
    """One line for an error the user can fix: a bad value or state (GPT2LabError), a path
    that cannot be used (OSError: missing, a file where a folder should be, no permission, a
    full disk), a file that is not UTF-8 text. Anything else is a bug and keeps its traceback.

    >>> user_error(PermissionError(13, "Permission denied", "/root/out"))
    '/root/out: Permission denied'
    """
    if isinstance(err, (FileExistsError, NotADirectoryError)) and err.filename is not None:
        in_the_way = next(
            (p for p in [Path(err.filename), *Path(err.filename).parents] if p.is_file()), None
        )
        if in_the_way is not None:  # a regular file where a folder is needed
            return f"{in_the_way} is a file, not a folder"
    if isinstance(err, OSError) and err.filename is not None:
        return f"{err.filename}: {err.strerror or err}"
    if isinstance(err, UnicodeDecodeError):
        return f"a file is not UTF-8 text ({err.reason} at byte {err.start})"
    return str(err).splitlines()[0] if str(err) else type(err).__name__


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
    except (GPT2LabError, OSError, UnicodeDecodeError) as err:
        print(f"gpt2lab {args.command}: error: {user_error(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gpt2lab {args.command}: interrupted", file=sys.stderr)
        return 130
