"""Checkpoints that survive being killed at any moment, and resume bit-for-bit.

A checkpoint is a directory:

    checkpoints/step_000500/
        model.safetensors, config.json   the model, via gpt2lab.pretrained.save_pretrained
                                         (Hugging Face layout when HF can hold the architecture)
        optimizer.pt                     AdamW moments + grad-scaler state (tensors only;
                                         the numpy engine's in its own names, numpy_engine.py)
        state.json                       step, config, RNG states of every rank, data positions
        encoder.json, vocab.bpe          the tokenizer, when it is not GPT-2's own

Atomicity: everything is written into `checkpoints/.tmp-<name>-<pid>/`, each file fsynced,
and only then is the directory renamed to its final name. A rename is atomic, so a
`step_*` directory either exists complete or not at all; a kill leaves at most a `.tmp-*`
directory, which `recover` deletes. Replacing `best/` takes two renames (old best aside, new
best in); a kill between them leaves `.old-best-*`, which `recover` puts back.

Everything loads with `torch.load(weights_only=True)`: RNG states are stored as JSON lists.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_optimizer_state_dict,
)

from gpt2lab.errors import GPT2LabError
from gpt2lab.model import GPT
from gpt2lab.pretrained import import_state_dict, read_config, read_weights, save_pretrained

FORMAT_VERSION = 1
STEP_DIR = re.compile(r"^step_(\d+)$")
FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)


def step_name(step: int) -> str:
    return f"step_{step:06d}"


# ---------------------------------------------------------------------------------------------
# RNG states as JSON
# ---------------------------------------------------------------------------------------------


def rng_state() -> dict[str, Any]:
    """This process's python, numpy, torch and CUDA generator states, as JSON-able lists."""
    version, mt, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": [version, list(mt), gauss],
        "numpy": [kind, keys.tolist(), pos, has_gauss, cached],
        "torch": torch.get_rng_state().tolist(),
        "cuda": [s.tolist() for s in torch.cuda.get_rng_state_all()]
        if torch.cuda.is_available()
        else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    version, mt, gauss = state["python"]
    random.setstate((version, tuple(mt), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def full_states(model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """Unsharded model and optimizer state dicts on CPU, named by plain parameter names.

    Works the same for a plain model, DDP, torch.compile and FSDP (where it is a collective:
    every rank must call it). Names carry no `module.` or `_orig_mod.` prefix.
    """
    return get_model_state_dict(model, options=FULL), get_optimizer_state_dict(
        model, optimizer, options=FULL
    )


def write_checkpoint(
    directory: Path,
    *,
    model_config,
    model_state: dict[str, torch.Tensor],
    optimizer_state: dict,
    scaler_state: dict,
    state: dict[str, Any],
    extra_files: list[Path] = (),
) -> Path:
    """Write a complete checkpoint to `directory` atomically (replacing one that exists)."""
    parent = directory.parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = parent / f".tmp-{directory.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()

    with torch.device("meta"):  # no memory, no random init (the RNG streams stay untouched)
        shadow = GPT(model_config)
    shadow.load_state_dict(model_state, assign=True)  # a plain model around the full weights
    save_pretrained(shadow, tmp)
    torch.save({"optimizer": optimizer_state, "scaler": scaler_state}, tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps({"format": FORMAT_VERSION, **state}))
    for file in extra_files:
        shutil.copyfile(file, tmp / Path(file).name)
    for file in tmp.iterdir():
        _fsync(file)
    _fsync(tmp)

    if directory.exists():
        old = parent / f".old-{directory.name}-{os.getpid()}"
        os.replace(directory, old)
        os.replace(tmp, directory)
        shutil.rmtree(old)
    else:
        os.replace(tmp, directory)
    _fsync(parent)
    return directory


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def prune(checkpoints: Path, keep_last: int, keep_every: int = 0) -> None:
    """Delete the step_* checkpoints that `pruned_steps` gives up (best/ is never touched)."""
    dirs = {int(STEP_DIR.match(p.name).group(1)): p for p in step_dirs(checkpoints)}
    for step in pruned_steps(sorted(dirs), keep_last, keep_every):
        shutil.rmtree(dirs[step])


def pruned_steps(steps: list[int], keep_last: int, keep_every: int = 0) -> list[int]:
    """The checkpoint steps to delete: all but the newest `keep_last`, except that the newest
    one (what a resume starts from) always stays, and so does every multiple of `keep_every`
    (0 = none: the timeline's checkpoints, `gpt2lab timeline`).

    >>> pruned_steps([100, 200, 300, 400, 500], keep_last=2)
    [100, 200, 300]
    >>> pruned_steps([100, 200, 300, 400, 500], keep_last=0, keep_every=200)
    [100, 300]
    """
    steps = sorted(steps)
    old = steps[: max(0, len(steps) - max(keep_last, 1))]
    return [s for s in old if not (keep_every > 0 and s % keep_every == 0)]


def recover(checkpoints: Path) -> None:
    """Undo what a kill mid-write left: drop `.tmp-*`, restore an `.old-NAME-*` whose NAME
    is missing (the kill came between the two renames), drop the other `.old-*`."""
    if not checkpoints.is_dir():
        return
    for path in sorted(checkpoints.glob(".tmp-*")):
        shutil.rmtree(path, ignore_errors=True)
    for path in sorted(checkpoints.glob(".old-*")):
        name = path.name.removeprefix(".old-").rsplit("-", 1)[0]
        if not (checkpoints / name).exists():
            os.replace(path, checkpoints / name)
        else:
            shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Finding and reading
# ---------------------------------------------------------------------------------------------


def step_dirs(checkpoints: Path) -> list[Path]:
    """step_* checkpoint directories, oldest first."""
    if not checkpoints.is_dir():
        return []
    found = [p for p in checkpoints.iterdir() if p.is_dir() and STEP_DIR.match(p.name)]
    return sorted(found, key=lambda p: int(STEP_DIR.match(p.name).group(1)))


def latest(checkpoints: Path) -> Path | None:
    """The checkpoint to resume from: the newest step_* (best/ may be older)."""
    steps = step_dirs(checkpoints)
    return steps[-1] if steps else None


def read_state(directory: Path) -> dict[str, Any]:
    path = directory / "state.json"
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        raise GPT2LabError(f"checkpoint {directory} is incomplete: no state.json") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise GPT2LabError(f"checkpoint {path} is corrupt: {err}") from None
    if state.get("format") != FORMAT_VERSION:
        raise GPT2LabError(f"checkpoint {directory} has unknown format {state.get('format')!r}")
    return state


def load_model_weights(model: GPT, directory: Path) -> None:
    """Copy a checkpoint's weights into a plain (unwrapped) GPT of the same config."""
    saved = read_config(directory).to_dict()
    differ = [
        k for k, v in saved.items() if k not in ("extra", "init") and getattr(model.config, k) != v
    ]
    if differ:
        raise GPT2LabError(
            f"checkpoint {directory} holds a different model ({', '.join(differ[:3])} differ)"
        )
    import_state_dict(model, read_weights(directory))


def read_optimizer(directory: Path) -> dict[str, Any]:
    """optimizer.pt: {"optimizer": the engine's optimizer state, "scaler": grad-scaler state}."""
    path = directory / "optimizer.pt"
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise GPT2LabError(f"checkpoint {directory} is incomplete: no optimizer.pt") from None
    except Exception as err:  # torch.load raises many types on a bad file
        raise mismatch(path, err) from None


def mismatch(path: Path, err: Exception) -> GPT2LabError:
    """The one-line error for an optimizer file that is corrupt or is not this run's."""
    return GPT2LabError(
        f"checkpoint {path} is corrupt or does not match: {type(err).__name__}: "
        f"{str(err).splitlines()[0] if str(err) else ''}"
    )


def load_optimizer(
    directory: Path, model: nn.Module, optimizer: torch.optim.Optimizer
) -> dict[str, Any]:
    """Restore the optimizer (any wrapper, FSDP too); return the saved grad-scaler state."""
    saved = read_optimizer(directory)
    try:
        set_optimizer_state_dict(
            model, optimizer, saved["optimizer"], options=StateDictOptions(full_state_dict=True)
        )
    except Exception as err:  # the state-dict checks raise many types on a foreign state
        raise mismatch(directory / "optimizer.pt", err) from None
    return saved.get("scaler", {})
