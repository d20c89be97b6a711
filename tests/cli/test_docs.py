"""docs/cli.md is generated from the parser; this keeps it from drifting."""

from pathlib import Path

from gpt2lab.cli.docs import cli_reference

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_cli_reference_is_in_sync():
    assert DOC.read_text() == cli_reference(), (
        "regenerate: python -m gpt2lab.cli.docs > docs/cli.md"
    )


def test_every_command_has_help_text():
    text = cli_reference()
    for command in (
        "train",
        "plot",
        "generate",
        "eval",
        "inspect",
        "heads",
        "serve",
        "ablate",
        "verify",
        "convert",
    ):
        assert f"## `gpt2lab {command}`" in text
