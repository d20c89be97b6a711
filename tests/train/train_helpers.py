"""Helpers shared by the training tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def records(run_dir: Path, kind: str) -> list[dict]:
    lines = (Path(run_dir) / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


TIMING = ("tokens_per_s",)
"""Record fields that measure time: the only ones two runs of one config may differ in."""


def without_timing(run_dir: Path) -> list[dict]:
    """Every record of a run's metrics.jsonl, timing fields left out."""
    lines = (Path(run_dir) / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in lines]


def losses(run_dir: Path) -> dict[int, float]:
    """{step: train loss} of a run's metrics.jsonl."""
    return {r["step"]: r["loss"] for r in records(run_dir, "train")}


def cli_env() -> dict[str, str]:
    """Environment of a gpt2lab subprocess: offline (tests/conftest.py), one thread."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def run_cli(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m gpt2lab ARGS` in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "gpt2lab", *args],
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def config_flags(cfg) -> list[str]:
    """A TrainConfig as `--key-name value` flags (model fields as --model.KEY), bools as
    `--key` / `--no-key`."""
    items = [(k, v) for k, v in cfg.to_dict().items() if k != "model"]
    items += [(f"model.{k}", v) for k, v in cfg.model.items()]
    flags = []
    for key, value in items:
        if isinstance(value, bool):
            flags.append(flag(key, value))
        elif value is not None:
            flags += [flag(key), str(value)]
    return flags


def flag(key: str, value: bool | None = None) -> str:
    """'max_steps' -> '--max-steps'; a bool False -> '--no-KEY' ('--model.no-KEY')."""
    prefix, _, name = key.rpartition(".")
    prefix = prefix + "." if prefix else ""
    negated = "no-" if value is False else ""
    return f"--{prefix}{negated}{name.replace('_', '-')}"
