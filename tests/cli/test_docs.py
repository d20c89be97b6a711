"""docs/cli.md is generated from the parser; this keeps it from drifting."""

from pathlib import Path

from gpt2lab.cli import COMMAND_MODULES
from gpt2lab.cli.docs import cli_reference

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_cli_reference_is_in_sync():
    assert DOC.read_text() == cli_reference(), (
        "regenerate: python -m gpt2lab.cli.docs > docs/cli.md"
    )


def test_every_command_has_help_text():
    """Each command module is named after its command (gpt2lab.cli.COMMAND_MODULES)."""
    text = cli_reference()
    assert len(COMMAND_MODULES) == 16
    for command in COMMAND_MODULES:
        assert f"## `gpt2lab {command}`" in text
