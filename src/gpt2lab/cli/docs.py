"""The CLI reference in Markdown, generated from the argument parser itself.

`python -m gpt2lab.cli.docs > docs/cli.md` rewrites it; a test fails when the file and the
parser disagree, so the reference cannot drift from the code.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator


def walk(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every (command path, parser) pair, depth first: (), ('train',), ('tokenizer', 'train'), ..."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(sub, (*path, name))


def cli_reference() -> str:
    from gpt2lab.cli import build_parser

    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps help at the terminal width; fix it
    try:
        parser = build_parser()
        sections = [
            "# CLI reference",
            "",
            "Generated from the argument parser by `python -m gpt2lab.cli.docs`.",
            "",
        ]
        for path, sub in walk(parser):
            title = " ".join(("gpt2lab", *path))
            sections += [f"## `{title}`", "", "```text", sub.format_help().rstrip(), "```", ""]
        return "\n".join(sections)
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous


if __name__ == "__main__":
    print(cli_reference(), end="")
