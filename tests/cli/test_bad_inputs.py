"""Bad input, across every command: one line on stderr, exit code 2, nothing lost.

Each row of BAD_INPUTS is a command line that must fail as a user's mistake, never as a bug:
the command returns 2, stderr is a single line without a traceback, and every file that was
in the working folder before (a prepared dataset, a model, a run, the user's own files) is
byte-for-byte the same afterwards, and no new file is left behind (a half-made run directory
would block its name). The working folder is a sandbox holding one of each kind of thing a
command reads: a prepared dataset, a saved model (with and without its own small tokenizer),
a training run's metrics, text in and not in UTF-8, and a regular file where commands are
told to write a folder.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from gpt2lab.cli import main

# (id, argv, what stderr must say): {D} is the prepared dataset, {M} a model (GPT-2 vocabulary), {S} a model with a
# 300-token vocabulary of its own, {R} a run (metrics.jsonl), {C} a run with a step checkpoint
# ({M} as step_000003), {F} a regular file, {L} a Latin-1 (not UTF-8) text file, {X} a path
# that does not exist.
BAD_INPUTS = [
    # --- train ----------------------------------------------------------------------------
    ("train-missing-data", "train --data {X}", "no prepared data in no/such/path"),
    ("train-data-is-a-file", "train --data {F}", "no prepared data in notes.txt"),
    ("train-lr-not-a-number", "train --data {D} --lr abc", "lr must be float"),
    (
        "train-step-log-numpy",
        "train --data {D} --engine numpy --step-log --max-steps 2",
        "--step-log hooks the torch model's attention",
    ),
    (
        "train-step-log-compile",
        "train --data {D} --compile --step-log --max-steps 2",
        "--step-log hooks the attention, which --compile would trace",
    ),
    ("train-lr-inf", "train --data {D} --lr inf --max-steps 2", "lr"),
    ("train-lr-nan", "train --data {D} --lr nan --max-steps 2", "lr"),
    ("train-lr-huge", "train --data {D} --lr 1e40 --max-steps 2", "lr"),
    ("train-lr-negative", "train --data {D} --lr -0.1 --max-steps 2", "lr"),
    ("train-steps-negative", "train --data {D} --max-steps -5", "max_steps"),
    ("train-batch-zero", "train --data {D} --batch-size 0 --max-steps 2", "batch_size"),
    (
        "train-out-under-a-file",
        "train --data {D} --out-dir {F}/runs --batch-size 4 --max-steps 2",
        "notes.txt",
    ),
    ("train-config-not-utf8", "train --config {L}", "latin1.txt is not UTF-8"),
    ("train-config-missing", "train --config {X}.yaml", "no such config file"),
    ("train-config-not-a-mapping", "train --config {F}", "must hold a mapping"),
    ("train-resume-missing", "train --resume {X}", "no training run at no/such/path"),
    ("train-unknown-preset", "train --data {D} --preset gpt5", "unknown preset 'gpt5'"),
    (
        "train-heads-do-not-divide",
        "train --data {D} --model.n-head 3 --max-steps 2",
        "divisible by n_head",
    ),
    (
        "train-device-bogus",
        "train --data {D} --device bogus --max-steps 2",
        "unknown device 'bogus'",
    ),
    ("train-device-cuda", "train --data {D} --device cuda --max-steps 2", "CUDA is not available"),
    (
        "train-unknown-flag",
        "train --data {D} --learning-rate 3",
        "unrecognized arguments: --learning-rate",
    ),
    ("train-dtype", "train --data {D} --dtype float8 --max-steps 2", "dtype must be one of"),
    (
        "train-block-over-positions",
        "train --data {D} --block-size 100000 --max-steps 2",
        "learned positions",
    ),
    # --- data prepare ----------------------------------------------------------------------
    ("prepare-missing-source", "data prepare --source {X}.txt --out data/new", "input not found"),
    (
        "prepare-not-utf8-over-data",
        "data prepare --source {L} --out {D}",
        "latin1.txt is not valid UTF-8",
    ),
    (
        "prepare-bad-file-in-folder",
        "data prepare --source corpus --out {D} --overwrite",
        "corpus/b.txt is not valid UTF-8",
    ),
    (
        "prepare-out-under-a-file",
        "data prepare --source {F} --out {F}/out",
        "notes.txt is a file, not a folder",
    ),
    (
        "prepare-max-tokens-negative",
        "data prepare --source stories --out {D} --max-tokens -5",
        "max tokens must be a positive number",
    ),
    (
        "prepare-val-fraction",
        "data prepare --source {F} --out data/new --val-fraction 1.5",
        "val fraction",
    ),
    (
        "prepare-shard-tokens-zero",
        "data prepare --source {F} --out data/new --shard-tokens 0",
        "shard size",
    ),
    (
        "prepare-missing-tokenizer",
        "data prepare --source {F} --out data/new --tokenizer {X}",
        "tokenizer directory not found",
    ),
    ("prepare-hf-without-name", "data prepare --source hf: --out data/new", "needs a dataset name"),
    (
        "prepare-stories-seed",
        "data prepare --source stories:abc --out data/new",
        "stories seed must be an integer",
    ),
    (
        "prepare-workers-zero",
        "data prepare --source {F} --out data/new --workers 0",
        "workers must be at least 1",
    ),
    ("prepare-empty-source", "data prepare --source empty.txt --out data/new", "has no text"),
    (
        "prepare-other-tokenizer",
        "data prepare --source {F} --out {D} --tokenizer {S}",
        "holds shards of tokenizer gpt2",
    ),
    # --- data stories ----------------------------------------------------------------------
    (
        "stories-bytes-negative",
        "data stories --out stories.txt --bytes -5",
        "--bytes must be a positive number",
    ),
    (
        "stories-out-under-a-file",
        "data stories --out {F}/stories.txt --bytes 100",
        "notes.txt is a file, not a folder",
    ),
    (
        "stories-probe-count",
        "data stories --out s.txt --bytes 100 --probes p.jsonl --probe-count 0",
        "--probe-count must be a positive number",
    ),
    # --- tokenizer train -------------------------------------------------------------------
    (
        "tokenizer-missing-input",
        "tokenizer train --input {X}.txt --vocab-size 300 --out tok",
        "input not found",
    ),
    (
        "tokenizer-vocab-too-small",
        "tokenizer train --input stories.txt --vocab-size 10 --out tok",
        "vocab size must be at least 257",
    ),
    (
        "tokenizer-out-under-a-file",
        "tokenizer train --input stories.txt --vocab-size 300 --out {F}/tok",
        "notes.txt",
    ),
    (
        "tokenizer-input-not-utf8",
        "tokenizer train --input {L} --vocab-size 300 --out tok",
        "latin1.txt is not valid UTF-8",
    ),
    # --- generate --------------------------------------------------------------------------
    ("generate-missing-model", "generate --model {X} --prompt hi", "no such model directory"),
    ("generate-empty-prompt", "generate --model {M} --prompt ''", "--prompt is empty"),
    (
        "generate-temperature",
        "generate --model {M} --prompt hi --temperature -1",
        "temperature must be >= 0",
    ),
    ("generate-top-p", "generate --model {M} --prompt hi --top-p 2", "top_p must be in (0, 1]"),
    (
        "generate-tokens-negative",
        "generate --model {M} --prompt hi --max-new-tokens -3",
        "--max-new-tokens must be at least 1",
    ),
    (
        "generate-device-cuda",
        "generate --model {M} --prompt hi --device cuda",
        "CUDA is not available",
    ),
    (
        "generate-device-bogus",
        "generate --model {M} --prompt hi --device bogus",
        "unknown device 'bogus'",
    ),
    (
        "generate-no-samples",
        "generate --model {M} --prompt hi --num-samples 0",
        "--num-samples must be at least 1",
    ),
    (
        "generate-dtype-bogus",
        "generate --model {M} --prompt hi --dtype float16",
        "dtype must be one of float32, bfloat16, int8, int8-dynamic, got 'float16'",
    ),
    ("generate-dtype-empty", "generate --model {M} --prompt hi --dtype ''", "dtype must be one of"),
    # --- eval ------------------------------------------------------------------------------
    ("eval-missing-data", "eval --model {M} --data {X}.txt", "no such file or directory"),
    ("eval-data-not-utf8", "eval --model {M} --data {L}", "latin1.txt is not UTF-8"),
    (
        "eval-ids-over-the-vocabulary",
        "eval --model {S} --data data/anonymous",
        "past the model's vocabulary",
    ),
    ("eval-other-tokenizer", "eval --model {S} --data {D}", "was tokenized with"),
    (
        "eval-out-under-a-file",
        "eval --model {M} --data {F} --out {F}/result.json",
        "notes.txt is a file, not a folder",
    ),
    ("eval-stride-zero", "eval --model {M} --data {F} --stride 0", "stride must be between"),
    (
        "eval-max-tokens-negative",
        "eval --model {M} --data {F} --max-tokens -1",
        "--max-tokens must be at least 2",
    ),
    ("eval-device-bogus", "eval --model {M} --data {F} --device bogus", "unknown device 'bogus'"),
    # --- inspect / heads -------------------------------------------------------------------
    ("inspect-empty-text", "inspect --model {M} --text '' --out out/inspect", "empty --text"),
    (
        "inspect-layer",
        "inspect --model {M} --text hi --layer 99 --out out/inspect",
        "layer 99 is out of range",
    ),
    (
        "inspect-head",
        "inspect --model {M} --text hi --head -1 --out out/inspect",
        "--head needs --layer",
    ),
    (
        "inspect-out-under-a-file",
        "inspect --model {M} --text hi --out {F}/inspect",
        "notes.txt is a file, not a folder",
    ),
    (
        "heads-out-under-a-file",
        "heads --model {M} --out {F}/heads",
        "notes.txt is a file, not a folder",
    ),
    (
        "heads-missing-texts",
        "heads --model {M} --texts {X}.txt --out out/heads",
        "text file not found",
    ),
    ("heads-missing-model", "heads --model {X} --out out/heads", "no such model directory"),
    (
        "inspect-shuffle-too-short",
        "inspect --model {M} --text hi --shuffle 0 --out out/inspect",
        "at least 3 tokens",
    ),
    # --- gardenpath ------------------------------------------------------------------------
    ("gardenpath-missing-model", "gardenpath --model {X}", "no such model directory"),
    (
        "gardenpath-out-under-a-file",
        "gardenpath --model {M} --out {F}/gardenpath",
        "notes.txt is a file, not a folder",
    ),
    ("gardenpath-out-is-a-file", "gardenpath --model {M} --out {F}", "notes.txt"),
    (
        "gardenpath-bootstrap-zero",
        "gardenpath --model {M} --bootstrap 0",
        "--bootstrap must be at least 1",
    ),
    ("gardenpath-seed-not-a-number", "gardenpath --model {M} --seed abc", "invalid int value"),
    ("neurons-missing-model", "neurons --model {X} --out out/n", "no such model directory"),
    (
        "neurons-layer",
        "neurons --model {M} --layer 99 --out out/n",
        "layer 99 is out of range",
    ),
    (
        "neurons-empty-texts",
        "neurons --model {M} --texts empty.txt --out out/n",
        "no text to score",
    ),
    (
        "neurons-missing-texts",
        "neurons --model {M} --texts {X}.txt --out out/n",
        "text file not found",
    ),
    ("neurons-top-zero", "neurons --model {M} --top 0 --out out/n", "--top must be at least 1"),
    (
        "neurons-out-under-a-file",
        "neurons --model {M} --out {F}/n",
        "notes.txt is a file, not a folder",
    ),
    ("neurons-out-is-a-file", "neurons --model {M} --out {F}", "notes.txt is a file, not a folder"),
    # --- verify / convert ------------------------------------------------------------------
    ("verify-unknown-preset", "verify --preset gpt5", "unknown preset 'gpt5'"),
    (
        "verify-seq-len-zero",
        "verify --preset tiny --seq-len 0",
        "--seq-len and --batch-size must be at least 1",
    ),
    (
        "verify-trace-against-missing",
        "verify --trace --model {M} --against {X} --out out/trace",
        "--against must be hf, numpy or a model directory; no folder no/such/path",
    ),
    (
        "verify-trace-against-other-shape",
        "verify --trace --model {M} --against {S} --out out/trace",
        "model300 has vocab_size=300, the model 50257",
    ),
    (
        "verify-trace-out-under-a-file",
        "verify --trace --model {M} --against numpy --out {F}/trace",
        "notes.txt",
    ),
    (
        "verify-trace-rtol-negative",
        "verify --trace --model {M} --rtol -1 --out out/trace",
        "tolerances must be finite and >= 0",
    ),
    ("verify-trace-dtype", "verify --trace --model {M} --dtype float16", "invalid choice"),
    (
        "verify-against-without-trace",
        "verify --model {M} --against numpy",
        "--against goes with --trace",
    ),
    ("verify-trace-missing-model", "verify --trace --model {X}", "no such model directory"),
    ("convert-missing-source", "convert {X} --out converted", "no such model directory"),
    ("convert-out-under-a-file", "convert {M} --out {F}/converted", "notes.txt"),
    ("convert-to-unknown", "convert {M} --out converted --to onnx", "invalid choice: 'onnx'"),
    # --- plot ------------------------------------------------------------------------------
    ("plot-missing-run", "plot {X}", "no training run at no/such/path"),
    ("plot-metrics-not-utf8", "plot latin1-run", "latin1-run/metrics.jsonl is not UTF-8"),
    ("plot-out-under-a-file", "plot {R} --out {F}/plots", "notes.txt"),
    # --- serve -----------------------------------------------------------------------------
    ("serve-missing-model", "serve --model {X}", "no such model directory"),
    ("serve-port", "serve --model {M} --port 70000", "not a port number"),
    ("serve-run-without-metrics", "serve --model {M} --run data", "has no metrics.jsonl"),
    # --- ablate ----------------------------------------------------------------------------
    ("ablate-suite-not-utf8", "ablate --suite {L} --data {D}", "latin1.txt is not UTF-8"),
    ("ablate-suite-missing", "ablate --suite {X}.yaml --data {D}", "no such config file"),
    ("ablate-only-unknown", "ablate --only no_such_variant --data {D}", "not in the suite"),
    (
        "ablate-variant-bad-key",
        "ablate --variant bad:no_such_key=1 --only baseline --data {D}",
        "unknown model field 'no_such_key'",
    ),
    ("ablate-seeds-zero", "ablate --seeds 0 --data {D}", "seeds must be >= 1"),
    ("ablate-report-only-nothing", "ablate --report-only --out {X}", "is not an ablation suite"),
    ("ablate-lrs-not-numbers", "ablate --lrs 1e-3,abc --data {D}", "lrs must be numbers"),
    ("ablate-lrs-zero", "ablate --lrs 0,1e-3 --data {D}", "lrs must be positive finite"),
    ("ablate-lrs-empty", "ablate --lrs , --data {D}", "lrs must be positive finite"),
    ("ablate-quick-preset", "ablate --quick --preset mini --data {D}", "--quick shrinks the tiny"),
    ("serve-max-tokens-negative", "serve --model {M} --max-tokens -1", "--max-tokens"),
    ("generate-top-k-negative", "generate --model {M} --prompt hi --top-k -1", "top_k"),
    ("eval-context-zero", "eval --model {M} --data {F} --context 0", "context"),
    (
        "heads-no-probes",
        "heads --model {M} --probes 0 --out out/heads",
        "--probes must be at least 1",
    ),
    (
        "prepare-out-is-a-file",
        "data prepare --source stories --out {F} --max-tokens 100",
        "notes.txt is a file, not a folder",
    ),
    (
        "tokenizer-out-is-a-file",
        "tokenizer train --input stories.txt --vocab-size 300 --out {F}",
        "notes.txt is a file, not a folder",
    ),
    ("convert-out-is-a-file", "convert {M} --out {F}", "notes.txt is a file, not a folder"),
    ("plot-out-is-a-file", "plot {R} --out {F}", "notes.txt is a file, not a folder"),
    ("ablate-jobs-zero", "ablate --jobs 0 --data {D}", "jobs"),
    ("ablate-steps-negative", "ablate --steps -1 --data {D}", "steps"),
    (
        "ablate-out-is-a-file",
        "ablate --out {F} --only baseline --seeds 1 --steps 2 --data {D}",
        "notes.txt is a file, not a folder",
    ),
    # --- embeddings / params -------------------------------------------------------------
    ("embeddings-missing-model", "embeddings --model {X} --out out/emb", "no such model directory"),
    (
        "embeddings-out-under-a-file",
        "embeddings --model {M} --out {F}/emb",
        "notes.txt is a file, not a folder",
    ),
    ("embeddings-words", "embeddings --model {M} --words 0", "--words must be at least 10"),
    ("embeddings-group", "embeddings --model {M} --group colour", "invalid choice: 'colour'"),
    ("params-unknown-preset", "params --preset gpt5", "unknown preset 'gpt5'"),
    ("params-missing-model", "params --model {X}", "no such model directory"),
    ("params-batch-zero", "params --preset tiny --batch-size 0", "--batch-size and --block-size"),
    ("params-block-over-positions", "params --preset tiny --block-size 1000", "learned positions"),
    ("params-budget", "params --preset tiny --budget-gib 0", "--budget-gib must be"),
    ("params-model-and-preset", "params --model {M} --preset tiny", "not allowed with argument"),
    ("params-measure-on-mps", "params --preset tiny --measure --device mps", "cpu or cuda"),
    (
        "params-out-under-a-file",
        "params --preset tiny --out {F}/params",
        "notes.txt is a file, not a folder",
    ),
    # --- timeline --------------------------------------------------------------------------
    ("timeline-missing-run", "timeline {X}", "no training run at no/such/path"),
    ("timeline-data-is-not-a-run", "timeline {D}", "no training run at data/tiny"),
    ("timeline-no-checkpoints", "timeline {R}", "has no step checkpoints"),
    ("timeline-probes-zero", "timeline {C} --probes 0", "--probes must be at least 1"),
    ("timeline-seed-not-a-number", "timeline {C} --seed abc", "invalid int value: 'abc'"),
    ("timeline-missing-data", "timeline {C} --data {X}", "no prepared data at no/such/path"),
    ("timeline-device-bogus", "timeline {C} --device bogus", "unknown device 'bogus'"),
    (
        "timeline-out-under-a-file",
        "timeline {C} --out {F}/timeline",
        "notes.txt is a file, not a folder",
    ),
    ("timeline-out-is-a-file", "timeline {C} --out {F}", "notes.txt is a file, not a folder"),
]

NAMES = {
    "{D}": "data/tiny",
    "{M}": "model",
    "{S}": "model300",
    "{R}": "run",
    "{C}": "ckpt-run",
    "{F}": "notes.txt",
    "{L}": "latin1.txt",
    "{X}": "no/such/path",
}


def argv_of(line: str) -> list[str]:
    import shlex

    for mark, name in NAMES.items():
        line = line.replace(mark, name)
    return shlex.split(line)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory, tiny_gpt) -> Path:
    """A working folder with one of each kind of thing the commands read."""
    from gpt2lab.data.prepare import prepare
    from gpt2lab.data.stories import generate_text
    from gpt2lab.pretrained import save_pretrained
    from gpt2lab.tokenizer import train_tokenizer

    root = tmp_path_factory.mktemp("sandbox")
    (root / "notes.txt").write_text("My own notes.\n\nA second paragraph of them.\n")
    (root / "latin1.txt").write_bytes("café au lait, crème brûlée\n".encode("latin-1"))
    (root / "empty.txt").write_text("")
    (root / "stories.txt").write_text(generate_text(20_000, seed=0))
    (root / "corpus").mkdir()
    (root / "corpus" / "a.txt").write_text("A good file. " * 20)
    (root / "corpus" / "b.txt").write_bytes("déjà vu".encode("latin-1"))
    prepare("stories:1", root / "data" / "tiny", max_tokens=6000)
    anonymous = root / "data" / "anonymous"  # hand-made: meta names no tokenizer identity
    shutil.copytree(root / "data" / "tiny", anonymous)
    meta = json.loads((anonymous / "meta.json").read_text())
    meta["tokenizer"].pop("identity")
    (anonymous / "meta.json").write_text(json.dumps(meta))
    save_pretrained(tiny_gpt("tiny", 0, vocab_size=50257), root / "model", format="hf")
    save_pretrained(tiny_gpt("tiny", 0, vocab_size=300), root / "model300", format="gpt2lab")
    train_tokenizer([(root / "stories.txt").read_text()], 300, root / "model300")
    for run, text in (("run", "utf-8"), ("latin1-run", "latin-1")):
        (root / run).mkdir()
        records = [{"step": s, "kind": "train", "loss": 5.0 / s, "lr": 1e-3} for s in (1, 2, 3)]
        lines = "".join(json.dumps(r) + "\n" for r in records) + '{"note": "é"}\n'
        (root / run / "metrics.jsonl").write_bytes(lines.encode(text))
        (root / run / "config.yaml").write_text("preset: tiny\nmax_steps: 3\n")
    shutil.copytree(root / "run", root / "ckpt-run")
    (root / "ckpt-run" / "config.yaml").write_text("data: data/tiny\nmax_steps: 3\n")
    shutil.copytree(root / "model", root / "ckpt-run" / "checkpoints" / "step_000003")
    return root


def snapshot(root: Path) -> dict[str, str]:
    """Every file under `root` with the SHA-256 of its bytes."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.mark.parametrize(
    "line, says", [row[1:] for row in BAD_INPUTS], ids=[row[0] for row in BAD_INPUTS]
)
def test_bad_input_is_one_line_exit_2_and_nothing_lost(line, says, sandbox, monkeypatch, capsys):
    monkeypatch.chdir(sandbox)
    before = snapshot(sandbox)
    capsys.readouterr()
    try:
        code = main([*argv_of(line), *(["--no-progress"] if line.startswith("train") else [])])
    except SystemExit as exit:
        code = exit.code
    err = capsys.readouterr().err
    assert code == 2, f"exit {code}; stderr: {err}"
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.endswith("\n"), f"not one line: {err!r}"
    assert "error" in err and says in err, err
    assert snapshot(sandbox) == before


def test_the_table_covers_every_command_and_is_long():
    from gpt2lab.cli import COMMAND_MODULES

    commands = {line.split()[0] for _, line, _ in BAD_INPUTS}
    assert commands == set(COMMAND_MODULES)
    assert len(BAD_INPUTS) >= 60
    assert len({row[0] for row in BAD_INPUTS}) == len(BAD_INPUTS)
