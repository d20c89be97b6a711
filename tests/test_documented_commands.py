"""Every `gpt2lab ...` command line in the README and docs/ is one the CLI accepts as written.

Each command line in a ```bash block (continuation lines joined, `# comments` dropped; also
under `torchrun ... -m gpt2lab`) is parsed by the real parser: the command and every flag
exist and take the values given. `gpt2lab train` lines are also turned into their TrainConfig,
so typed values (numbers, booleans, presets) are checked too. The OpenWebText how-to is then
run end to end with the hub dataset, the GPU and the model swapped for small local ones.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from gpt2lab.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"```bash\n(.*?)```", re.S)


def command_lines(page: Path) -> list[list[str]]:
    """The gpt2lab argv (after `gpt2lab`) of each command line in the page's bash blocks."""
    commands = []
    for block in BLOCK.findall(page.read_text(encoding="utf-8")):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["gpt2lab"]:
                commands.append(words[1:])
            elif words[:1] == ["torchrun"] and "gpt2lab" in words:
                commands.append(words[words.index("gpt2lab") + 1 :])
    return commands


DOCUMENTED = [
    pytest.param(argv, id=f"{page.relative_to(ROOT)}:{' '.join(argv)[:60]}")
    for page in PAGES
    for argv in command_lines(page)
]


def test_the_docs_have_commands_to_check():
    assert len(DOCUMENTED) >= 40
    assert {"train", "generate", "heads", "serve", "ablate", "data"} <= {
        p.values[0][0] for p in DOCUMENTED if p.values[0]
    }


@pytest.mark.parametrize("argv", DOCUMENTED)
def test_a_documented_command_line_is_accepted_as_written(argv):
    args, unknown = build_parser().parse_known_args(argv)
    assert not unknown, f"gpt2lab {' '.join(argv)}: unknown {unknown}"
    if getattr(args, "command", None) == "train" and not args.resume:
        from gpt2lab.cli.train import config_from_args

        if args.config and not Path(args.config).is_file():
            args.config = None  # a file the page's reader writes themselves
        config = config_from_args(args)  # typed values checked as `gpt2lab train` checks them
        assert config.model_config().n_layer >= 1


# ---------------------------------------------------------------------------------------------
# docs/howto/train-on-openwebtext.md, end to end on small local stand-ins
# ---------------------------------------------------------------------------------------------

OWT = ROOT / "docs" / "howto" / "train-on-openwebtext.md"
SWAPS = [
    (r"hf:Skylion007/openwebtext|hf:owt-parquet", "hf:{owt}"),
    (r"--max-tokens \d+", "--max-tokens 6000"),
    (r"--workers \d+", "--workers 1"),
    (r"--device cuda", "--device cpu"),
    (r"--dtype bfloat16", "--dtype float32"),
    (r"--compile", "--no-compile"),
    (r"--preset gpt2\b", "--preset tiny"),
    (r"--batch-size \d+", "--batch-size 2"),
    (r"--grad-accum \d+", "--grad-accum 1"),
    (r"--block-size \d+", "--block-size 32"),
    (r"--max-steps \d+", "--max-steps 2"),
    (r"--warmup-steps \d+", "--warmup-steps 1 --eval-iters 1 --no-progress"),
]


def local(argv: list[str], owt: Path) -> list[str]:
    line = shlex.join(argv)
    for pattern, replacement in SWAPS:
        line = re.sub(pattern, replacement.format(owt=owt), line)
    return shlex.split(line)


def test_the_openwebtext_howto_runs_end_to_end_on_local_stand_ins(tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from gpt2lab.cli import main
    from gpt2lab.data.stories import generate_stories

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    owt = tmp_path / "openwebtext"
    owt.mkdir()
    stories = generate_stories(seed=3)
    pq.write_table(pa.table({"text": [next(stories) for _ in range(200)]}), owt / "train.parquet")
    commands = command_lines(OWT)
    kinds = [argv[0] for argv in commands]
    assert kinds == ["data", "data", "train", "train", "eval"]
    for argv in (commands[0], commands[2], commands[4]):  # prepare, train on one GPU, eval
        assert main(local(argv, owt)) == 0, " ".join(local(argv, owt))
    assert (tmp_path / "runs" / "owt-124m" / "eval.json").is_file()
