"""The command line's contract: `--help` is instant (no torch, no pydantic), flags are typed
and dashed, old underscore spellings still work with a note, a mistake is one line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gpt2lab.cli import build_parser, main
from gpt2lab.cli.docs import walk

HELP_PROBE = """
import json, sys
from gpt2lab.cli import build_parser, main
from gpt2lab.cli.docs import walk
paths = [list(path) for path, _ in walk(build_parser())]
for path in paths:
    try:
        main([*path, "--help"])
    except SystemExit:
        pass
heavy = sorted(m for m in ("torch", "pydantic", "numpy", "matplotlib") if m in sys.modules)
print(json.dumps({"commands": paths, "heavy": heavy}))
"""


def test_every_help_imports_neither_torch_nor_pydantic():
    """`gpt2lab --help` and every `gpt2lab CMD [ACTION] --help`, in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", HELP_PROBE], capture_output=True, text=True, check=True
    ).stdout
    report = json.loads(out.splitlines()[-1])
    assert len(report["commands"]) >= 13  # gpt2lab, 12 commands and their actions
    assert report["heavy"] == []


def help_of(*command: str) -> str:
    for path, parser in walk(build_parser()):
        if path == command:
            return parser.format_help()
    raise AssertionError(f"no command {command}")


def test_flags_are_typed_with_their_docstrings_as_help():
    text = help_of("train")
    assert "--lr FLOAT" in text and "peak learning rate [0.003]" in text
    assert "--max-steps INT" in text and "--block-size INT|null" in text
    assert "--compile, --no-compile" in text and "--model.n-layer INT" in text
    assert "Transformer blocks. GPT-2 small: 12." in text  # GPTConfig.n_layer's docstring
    assert "--seeds INT" in help_of("ablate") and "seeds per variant [3]" in help_of("ablate")


def test_bool_flags_and_the_old_spellings(capsys):
    """--compile / --no-compile, the old `--compile true`, and `--max_steps` with a note."""
    args = build_parser().parse_args(["train", "--no-compile", "--progress", "--max_steps", "5"])
    assert (args.__dict__["opt:compile"], args.__dict__["opt:progress"]) == ("false", "true")
    assert args.__dict__["opt:max_steps"] == "5"
    assert args.notes == ["--max_steps is deprecated: spell it --max-steps"]
    old = build_parser().parse_args(["train", "--compile", "true", "--model.attn_scale", "false"])
    assert old.__dict__["opt:compile"] == "true"
    assert old.__dict__["opt:model.attn_scale"] == "false"


@pytest.mark.parametrize(
    "argv, words",
    [
        (["train", "--lrr", "1"], ["unrecognized arguments: --lrr 1"]),
        (["train", "--no-compile", "yes"], ["--no-compile", "takes no value"]),
        (["ablate", "--seedz", "2"], ["unrecognized arguments: --seedz"]),
    ],
)
def test_unknown_flags_are_one_line_exit_2(argv, words, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"gpt2lab {argv[0]}: error: "), err
    for word in words:
        assert word in err


def test_a_bad_value_names_the_flag_in_one_line(capsys):
    assert main(["train", "--max-steps", "many"]) == 2
    err = capsys.readouterr().err
    assert err == "gpt2lab train: error: max_steps must be int, got 'many'\n"
    assert main(["ablate", "--seeds", "two"]) == 2
    assert capsys.readouterr().err == "gpt2lab ablate: error: seeds must be int, got 'two'\n"


def test_the_deprecation_note_is_printed(capsys):
    assert main(["train", "--max_steps", "x"]) == 2
    note, error = capsys.readouterr().err.splitlines()
    assert note == "gpt2lab train: note: --max_steps is deprecated: spell it --max-steps"
    assert error == "gpt2lab train: error: max_steps must be int, got 'x'"
