"""What every command's parser shares: one-line errors, and typed flags from a dataclass.

`add_dataclass_flags(parser, TrainConfig)` turns each field into a flag: the name with
dashes (`--max-steps`), the type in the metavar (`--lr FLOAT`, `--block-size INT|null`), the
field's docstring and default as its help, and `--x` / `--no-x` for a bool (`--x true|false`
is read too). The underscore spelling of earlier versions (`--max_steps`) still works and
leaves a deprecation note. Values are kept as given; `gpt2lab.options` types them (with the
YAML file's values, through the same code), so a bad value is one line naming the field.

Building the flags reads the dataclass's fields and docstrings only: no torch, no pydantic.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

from gpt2lab.options import choices, field_docs, field_types

MODEL_HELP = (
    "'gpt2' (or another hub name), a model directory, or a training run runs/NAME (its best "
    "checkpoint); default: the newest local run"
)
PREFIX = "opt:"
"""Flags made from dataclass fields store their value under dest 'opt:FIELD'."""


class Parser(argparse.ArgumentParser):
    """argparse, but a mistake is one line on stderr and exit code 2 (no usage block)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class Formatter(argparse.HelpFormatter):
    """Shows a bool flag as `--x, --no-x`, and hides deprecated underscore spellings."""

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if isinstance(action, Flag):
            shown = [o for o in action.option_strings if o not in action.deprecated]
            if isinstance(action, BoolFlag):
                return ", ".join(shown)
            return ", ".join(f"{o} {action.metavar}" for o in shown)
        return super()._format_action_invocation(action)


class Flag(argparse.Action):
    """Stores the value as text; an underscore spelling leaves a note in `args.notes`."""

    def __init__(self, option_strings, dest, deprecated=(), **kwargs) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.deprecated = tuple(deprecated)

    def __call__(self, parser, namespace, value, option_string=None) -> None:
        if option_string in self.deprecated:
            dashed = self.option_strings[0]
            note = f"{option_string} is deprecated: spell it {dashed}"
            namespace.notes = [*getattr(namespace, "notes", []), note]
        setattr(namespace, self.dest, self.value(value, option_string))

    def value(self, value: Any, option_string: str | None) -> Any:
        return value


class BoolFlag(Flag):
    """`--x` -> 'true', `--no-x` -> 'false', `--x false` -> 'false' (the old spelling).
    Its option strings are `--x`, `--no-x`, then any deprecated spelling."""

    def __init__(self, option_strings, dest, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs="?", metavar="true|false", **kwargs)

    def value(self, value: Any, option_string: str | None) -> Any:
        if option_string == self.option_strings[1]:  # --no-x
            if value is not None:
                raise argparse.ArgumentError(self, "takes no value")
            return "false"
        return "true" if value is None else value


def flag_name(prefix: str, name: str) -> str:
    return f"--{prefix}{name.replace('_', '-')}"


def add_dataclass_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    prefix: str = "",
    skip: tuple[str, ...] = (),
    defaults: bool = True,
) -> None:
    """A typed flag for each field of `cls` (see the module docstring). `prefix` names nested
    fields ('model.'); `defaults=False` leaves the default out of the help (a preset decides)."""
    docs, types = field_docs(cls), field_types(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        dashed = flag_name(prefix, f.name)
        underscored = f"--{prefix}{f.name}"
        deprecated = (underscored,) if underscored != dashed else ()
        help_text = docs.get(f.name, "")
        if defaults and f.default not in (None, dataclasses.MISSING):
            shown = str(f.default).lower() if isinstance(f.default, bool) else f.default
            help_text += f" [{shown}]"
        kinds = choices(types[f.name])
        common = dict(dest=PREFIX + prefix + f.name, default=argparse.SUPPRESS, help=help_text)
        if bool in kinds:
            negated = f"--{prefix}no-{f.name.replace('_', '-')}"
            parser.add_argument(
                dashed, negated, *deprecated, action=BoolFlag, deprecated=deprecated, **common
            )
        else:
            parser.add_argument(
                dashed,
                *deprecated,
                action=Flag,
                deprecated=deprecated,
                metavar=metavar(types[f.name]),
                **common,
            )


def metavar(annotation: Any) -> str:
    """INT, FLOAT, TEXT; `|null` where None is allowed."""
    names = {int: "INT", float: "FLOAT", str: "TEXT"}
    kinds = choices(annotation)
    shown = "|".join(names.get(k, "V") for k in kinds if k is not type(None))
    return shown + ("|null" if type(None) in kinds else "")


def flag_values(args: argparse.Namespace) -> dict[str, str]:
    """{field (or 'model.FIELD'): text} of the dataclass flags given on the command line."""
    return {k.removeprefix(PREFIX): v for k, v in vars(args).items() if k.startswith(PREFIX)}


def print_notes(args: argparse.Namespace, command: str) -> None:
    for note in getattr(args, "notes", []):
        print(f"gpt2lab {command}: note: {note}", file=sys.stderr)
