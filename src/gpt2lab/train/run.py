"""A training run from the outside: `train(config) -> RunResult`.

>>> result = train(TrainConfig(data="data/stories", preset="tiny", max_steps=200))
>>> result.val_loss, result.checkpoint        # doctest: +SKIP

What happens around the loop (trainer.py): the run directory `out_dir/name` (refused when it
exists, unless resuming), the prepared data (the default stories corpus is prepared once
when missing), the model (seeded so that every rank starts from the same weights, then each
rank its own dropout stream; or pretrained weights with `init_from`), the standard
callbacks, SIGINT/SIGTERM answered by a checkpoint (`result.stopped` names the signal), and
`--resume` (the latest complete checkpoint, refused when there is none; a config that may
differ only in what does not change the trajectory; metrics.jsonl, steps.jsonl and samples.txt
cut back to the checkpoint's step, so that they end up as those of a run never interrupted).
"""

from __future__ import annotations

import contextlib
import json
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gpt2lab.data.prepared import DEFAULT_DATA, DataSpec, prepare_stories, read_data_spec
from gpt2lab.errors import GPT2LabError
from gpt2lab.files import atomic_write_text, read_text
from gpt2lab.model import GPT
from gpt2lab.options import load_yaml
from gpt2lab.pretrained import import_state_dict, read_config, read_weights, resolve_model_dir
from gpt2lab.tokenizer import get_tokenizer
from gpt2lab.train import checkpoint as ckpt
from gpt2lab.train import distributed as D
from gpt2lab.train.callbacks import (
    SAMPLE_LINE,
    Checkpoints,
    MetricsFile,
    Monitor,
    Progress,
    Samples,
    StepsFile,
    TensorBoard,
    Timer,
)
from gpt2lab.train.config import (
    TrainConfig,
    apply_overrides,
    saved_config,
    to_yaml,
    trajectory_changes,
)
from gpt2lab.train.engine import check_dtype, param_dtype
from gpt2lab.train.metrics import parse_records
from gpt2lab.train.precision import DtypeChoice, choose_dtype
from gpt2lab.train.trainer import Callback, RunResult, Trainer

# ---------------------------------------------------------------------------------------------
# Data and model
# ---------------------------------------------------------------------------------------------


def open_data(cfg: TrainConfig, dist: D.Dist) -> DataSpec:
    """The prepared data of a run; the default stories corpus is prepared when missing."""
    path = Path(cfg.data)
    if not DataSpec.exists(path):
        if cfg.data != DEFAULT_DATA:
            hint = "" if path.is_dir() else " (no such directory)"
            raise GPT2LabError(
                f"no prepared data in {path}{hint}; run `gpt2lab data prepare SOURCE --out {path}`"
            )
        if dist.is_main:
            print(f"preparing the stories corpus in {path} (once)")
            prepare_stories(path, progress=cfg.progress)
        D.barrier(dist)
    return read_data_spec(path)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_model(cfg: TrainConfig, data: DataSpec) -> GPT:
    """A fresh GPT for the data's vocabulary, or pretrained weights (`init_from`)."""
    if cfg.init_from:
        return pretrained_model(cfg, data)
    model = GPT(cfg.model_config(vocab_size=data.n_vocab))
    if model.config.vocab_size < data.n_vocab:
        raise GPT2LabError(
            f"the data's tokenizer has {data.n_vocab} tokens but model.vocab_size is "
            f"{model.config.vocab_size}; drop --model.vocab-size or prepare the data with the "
            "model's tokenizer"
        )
    return model


def pretrained_model(cfg: TrainConfig, data: DataSpec) -> GPT:
    """Weights to fine-tune: the data must use the tokenizer the weights were trained with.

    A directory with encoder.json/vocab.bpe (a gpt2lab checkpoint) names its tokenizer; a hub
    name or a bare Hugging Face directory means GPT-2's. Only model.dropout may be changed.
    """
    changed = sorted(set(cfg.model) - {"dropout"})
    if changed:
        raise GPT2LabError(f"with --init-from the model is fixed; cannot set model.{changed[0]}")
    directory = resolve_model_dir(cfg.init_from)
    try:
        tokenizer = get_tokenizer(str(directory))
    except GPT2LabError:
        tokenizer = get_tokenizer("gpt2")
    if tokenizer.identity != data.tokenizer_identity:
        raise GPT2LabError(
            f"{cfg.init_from} was trained with tokenizer {tokenizer.name} but {data.path} was "
            f"prepared with {data.meta['tokenizer']['name']}; prepare the data with the same one"
        )
    model = GPT(read_config(directory).replace(**cfg.model))
    import_state_dict(model, read_weights(directory))
    return model


def check_block_size(cfg: TrainConfig, model: GPT) -> int:
    block = cfg.block_size or model.config.block_size
    if model.config.pos_encoding == "learned" and block > model.config.block_size:
        raise GPT2LabError(
            f"block_size {block} is larger than the model's {model.config.block_size} "
            "learned positions; lower --block-size or raise --model.block-size"
        )
    return block


def prepare_model(
    cfg: TrainConfig, data: DataSpec, dist: D.Dist, resume_from: Path | None = None
) -> GPT:
    """The run's model in its training dtype: the same initial weights on every rank (FSDP
    needs it), then each rank seeded for its own dropout stream; a checkpoint's weights when
    resuming."""
    check_dtype(dist.device, cfg.dtype)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    model = build_model(cfg, data).to(param_dtype(cfg.dtype))
    seed_everything(cfg.seed + dist.rank)
    if resume_from is not None:
        ckpt.load_model_weights(model, resume_from)
    return model


def resolve_dtype(
    cfg: TrainConfig, model: GPT, dist: D.Dist
) -> tuple[TrainConfig, DtypeChoice | None]:
    """`--dtype auto` made concrete (precision.py): the config with the chosen dtype, and the
    choice (None when the dtype was given). Every rank probes; bf16 only if all chose it."""
    if cfg.dtype != "auto":
        return cfg, None
    if cfg.engine == "numpy":
        choice = DtypeChoice("float32", "the numpy engine computes in float32")
    else:
        choice = choose_dtype(dist.device, model.config.n_embd)
    votes = torch.tensor([float(choice.dtype == "bfloat16")])
    if D.all_reduce_sum(votes, dist).item() not in (0, dist.world_size):
        choice = DtypeChoice("float32", "not every rank measured bfloat16 faster")
    return cfg.replace(dtype=choice.dtype), choice


@contextlib.contextmanager
def stop_on_signals(trainer: Trainer):
    """SIGINT/SIGTERM: finish the step, checkpoint, return; `result.stopped` is "SIGINT" or
    "SIGTERM". A second signal acts as usual."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum, frame):
        trainer.request_stop(signal.Signals(signum).name)
        for s, h in previous.items():
            signal.signal(s, h)

    for s in previous:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


# ---------------------------------------------------------------------------------------------
# Run directories and the public entry point
# ---------------------------------------------------------------------------------------------


def default_name(cfg: TrainConfig) -> str:
    return f"{Path(cfg.data).name}-{cfg.preset}-{time.strftime('%Y%m%d-%H%M%S')}"


def resume_config(run_dir: Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The config of an existing run, with changes that do not alter the trajectory."""
    if not (run_dir / "config.yaml").is_file():
        raise GPT2LabError(f"cannot resume {run_dir}: it has no config.yaml")
    options = load_yaml(run_dir / "config.yaml")
    if not options:  # not the defaults: they would train something else, somewhere else
        raise GPT2LabError(f"cannot resume {run_dir}: its config.yaml is empty")
    saved = saved_config(options)
    latest = ckpt.latest(run_dir / "checkpoints")
    if latest is not None:
        check_checkpoint_config(saved, latest)
    wanted = apply_overrides(saved, overrides or {})
    changed = trajectory_changes(saved, wanted)
    if changed:
        raise GPT2LabError(
            f"cannot resume {run_dir} with a different config ({', '.join(changed[:4])} changed); "
            "start a new run instead"
        )
    return wanted.replace(name=run_dir.name, out_dir=str(run_dir.parent))


def check_checkpoint_config(config: TrainConfig, checkpoint: Path) -> None:
    """A run's config.yaml must agree with its checkpoint's own config in all that shapes the
    trajectory: one that lost its settings would train something else (on the default data)."""
    saved = saved_config(ckpt.read_state(checkpoint)["config"])
    changed = trajectory_changes(saved, config)
    if changed:
        raise GPT2LabError(
            f"cannot resume from {checkpoint}: it was written with another config "
            f"({', '.join(changed[:4])} differ); restore the run's config.yaml"
        )


def metrics_until(text: str, step: int) -> str:
    """metrics.jsonl without the records after `step` and without any line that is not a
    whole record (a half-written last line)."""
    return "".join(json.dumps(r) + "\n" for r in parse_records(text) if r["step"] <= step)


def samples_until(text: str, step: int) -> str:
    """samples.txt without the sample blocks after `step` (blocks are in step order)."""
    later = [m.start() for m in SAMPLE_LINE.finditer(text) if int(m.group(1)) > step]
    return text[: later[0]] if later else text


def cut_back(run_dir: Path, step: int) -> None:
    """metrics.jsonl, steps.jsonl and samples.txt as they were when the checkpoint of `step` was written:
    the resumed run writes the rest again. Both are read (and refused when unreadable)
    before either is rewritten."""
    files = {
        "metrics.jsonl": metrics_until,
        "steps.jsonl": metrics_until,
        "samples.txt": samples_until,
    }
    texts = {n: read_text(run_dir / n) for n in files if (run_dir / n).is_file()}
    for name, text in texts.items():
        atomic_write_text(run_dir / name, files[name](text, step))


def default_callbacks(cfg: TrainConfig, run_dir: Path, data: DataSpec) -> list[Callback]:
    callbacks: list[Callback] = [Timer(), MetricsFile(run_dir / "metrics.jsonl")]
    if cfg.step_log:
        callbacks.append(StepsFile(run_dir / "steps.jsonl"))
    if cfg.tensorboard:
        with contextlib.suppress(ImportError):
            callbacks.append(TensorBoard(run_dir / "tensorboard"))
    if cfg.progress:
        callbacks.append(Progress())
    if cfg.monitor_interval:
        callbacks.append(Monitor(cfg.monitor_interval))
    callbacks.append(
        Samples(
            run_dir / "samples.txt",
            data.tokenizer(),
            cfg.sample_prompt,
            cfg.sample_tokens,
            cfg.sample_interval,
        )
    )
    callbacks.append(Checkpoints(cfg.checkpoint_interval, cfg.keep_every))
    return callbacks


def train(
    config: TrainConfig,
    callbacks: list[Callback] = (),
    *,
    resume: bool = False,
) -> RunResult:
    """Train (or, with resume=True, continue) the run `config.out_dir/config.name`.

    Returns what the run reached. A divergence (max_nonfinite non-finite steps in a row) is
    not an exception: `result.stopped == "nonfinite"` and `result.nonfinite` says at which
    step it began and where (`result.checkpoint`: the last checkpoint before it, finite); a
    signal neither: `result.stopped` is "SIGINT" or "SIGTERM" and a checkpoint was saved.
    Under torchrun every rank calls this; only rank 0 writes.
    """
    dist = D.setup(config.device)
    try:
        if config.fsdp and not dist.enabled:
            raise GPT2LabError(
                "--fsdp shards over processes: launch with torchrun --nproc_per_node N"
            )
        name = config.name or default_name(config)
        config = config.replace(name=name)
        run_dir = Path(config.out_dir) / name
        checkpoints = run_dir / "checkpoints"
        resume_from = None
        if resume:
            if dist.is_main:
                ckpt.recover(checkpoints)
            D.barrier(dist)
            resume_from = ckpt.latest(checkpoints)
            if resume_from is None:
                raise GPT2LabError(
                    f"cannot resume {run_dir}: {checkpoints} holds no complete checkpoint; "
                    "start a new run (another --name)"
                )
        elif (run_dir / "config.yaml").exists():
            raise GPT2LabError(
                f"run {run_dir} already exists; continue it with --resume {run_dir} "
                "or choose another --name"
            )
        data = open_data(config, dist)
        trainer_callbacks = [*default_callbacks(config, run_dir, data), *callbacks]
        model = prepare_model(config, data, dist, resume_from)
        config, choice = resolve_dtype(config, model, dist)
        trainer = Trainer(config, run_dir, dist, data, trainer_callbacks, resume_from, model)
        if dist.is_main and resume:
            cut_back(run_dir, trainer.step)
        if dist.is_main:  # only now: a config that fails its checks leaves no run behind
            (run_dir / "plots").mkdir(parents=True, exist_ok=True)
            atomic_write_text(run_dir / "config.yaml", to_yaml(config))
            if choice is not None:
                print(f"dtype auto: {choice.dtype} ({choice.reason})")
                trainer.log(choice.record())
        return trainer.fit(guard=stop_on_signals(trainer))
    finally:
        D.teardown(dist)
