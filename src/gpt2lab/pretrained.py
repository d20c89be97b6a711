"""Weights in and out: Hugging Face / OpenAI GPT-2 checkpoints <-> gpt2lab's GPT.

The mapping is explicit. Hugging Face names a parameter `transformer.h.3.attn.c_attn.weight`
and stores its four matmul weights as `Conv1D` (shape (in, out), y = x @ W + b); gpt2lab uses
`blocks.3.attn.c_attn.weight` in `nn.Linear` (shape (out, in)). So the names differ by
`h.` -> `blocks.` and the weights in `TRANSPOSED` are transposed; nothing else changes.
Every copy checks the shape first, and any missing or extra tensor is an error.

A directory on disk is either
  HF layout:       config.json (model_type "gpt2") + model.safetensors | pytorch_model.bin
  gpt2lab layout:  config.json (model_type "gpt2lab", the GPTConfig) + model.safetensors,
                   for architectures Hugging Face cannot hold (no LayerNorm, ReLU, ...).
Both store tensors under the same Hugging Face names, so one mapping serves both.

This is also the one room for loading by name: a hub name, a model directory or a training
run (`runs/NAME` -> its best checkpoint), the tokenizer that goes with a model directory,
and the newest local run (`load_model_and_tokenizer`, used by the CLI, the viewer, the lm-eval
adapter and the notebooks). It is over 400 lines because weights and names are one concept:
every way in and out of a GPT's state sits here, next to the mapping it depends on.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch

from gpt2lab.config import ConfigError, GPTConfig
from gpt2lab.errors import GPT2LabError
from gpt2lab.files import atomic_write
from gpt2lab.model import GPT, device_of, resolve_device
from gpt2lab.tokenizer import get_tokenizer
from gpt2lab.tokenizer.vocab import FILE_LAYOUTS

# Conv1D weights that are stored (in, out) by Hugging Face and (out, in) by nn.Linear.
TRANSPOSED = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
# Buffers of HF's GPT-2 that hold no learned values (the causal mask); skipped on load.
IGNORED_SUFFIXES = (".attn.bias", ".attn.masked_bias")
HUB_NAMES = ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", "distilgpt2")

HF_ACTIVATIONS = {"gelu_tanh": "gelu_new", "gelu": "gelu"}
FROM_HF_ACTIVATIONS = {
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu_python_tanh": "gelu_tanh",
    "gelu_fast": "gelu_tanh",
    "gelu": "gelu",
    "gelu_python": "gelu",
}

# ---------------------------------------------------------------------------------------------
# Names and tensors
# ---------------------------------------------------------------------------------------------


def hf_name(name: str) -> str:
    """gpt2lab parameter name -> Hugging Face name without the 'transformer.' prefix."""
    return "h." + name[len("blocks.") :] if name.startswith("blocks.") else name


def export_state_dict(model: GPT, prefix: str = "transformer.") -> dict[str, torch.Tensor]:
    """The model's weights under Hugging Face names and layout (Conv1D weights (in, out)).

    A tied lm_head is left out (it is wte); an untied one is `lm_head.weight`, unprefixed.
    With prefix="" the names are those of `gpt2lab.reference.numpy_gpt`.
    """
    out = {}
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight":
            if not model.config.tie_embeddings:
                out[name] = tensor.detach().clone()
            continue
        value = tensor.detach()
        out[prefix + hf_name(name)] = (value.t() if name.endswith(TRANSPOSED) else value).clone()
    return {k: v.contiguous() for k, v in out.items()}


def reference_params(model: GPT, dtype=np.float64) -> dict[str, np.ndarray]:
    """The weights as `gpt2lab.reference.numpy_gpt` takes them: HF names and layout, without
    the 'transformer.' prefix, and the embeddings as plain `wte` / `wpe`."""
    renamed = {"wte.weight": "wte", "wpe.weight": "wpe"}
    return {
        renamed.get(k, k): v.numpy().astype(dtype)
        for k, v in export_state_dict(model, prefix="").items()
    }


def import_state_dict(model: GPT, tensors: dict[str, torch.Tensor]) -> None:
    """Copy Hugging Face-named tensors into the model: shapes checked, nothing left over."""
    tensors = {
        k.removeprefix("transformer."): v
        for k, v in tensors.items()
        if not k.endswith(IGNORED_SUFFIXES)
    }
    expected = export_state_dict(model, prefix="")
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if unexpected == ["lm_head.weight"] and model.config.tie_embeddings:
        unexpected = []  # a tied head saved anyway (old HF checkpoints do this); must equal wte
        if not torch.equal(tensors["lm_head.weight"], tensors["wte.weight"]):
            raise GPT2LabError(
                "checkpoint has an lm_head different from wte but the config ties them"
            )
    if missing or unexpected:
        what = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise GPT2LabError(f"checkpoint does not match the model config: {what}")

    own = dict(model.named_parameters()) | dict(model.named_buffers())
    with torch.no_grad():
        for name, param in own.items():
            key = hf_name(name)
            if key not in tensors:  # a tied lm_head, or a non-persistent buffer
                continue
            value = tensors[key].t() if name.endswith(TRANSPOSED) else tensors[key]
            if value.shape != param.shape:
                raise GPT2LabError(
                    f"shape mismatch for {key}: checkpoint {tuple(tensors[key].shape)}, "
                    f"model expects {tuple(param.t().shape if name.endswith(TRANSPOSED) else param.shape)}"
                )
            param.copy_(value.to(param.dtype))


# ---------------------------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------------------------


def config_from_hf(hf: dict) -> GPTConfig:
    """A Hugging Face GPT-2 config.json as GPTConfig; options it cannot reproduce are refused."""
    if hf.get("model_type", "gpt2") != "gpt2":
        raise GPT2LabError(f"not a GPT-2 checkpoint (model_type={hf.get('model_type')!r})")
    refused = [
        key
        for key in (
            "scale_attn_by_inverse_layer_idx",
            "reorder_and_upcast_attn",
            "add_cross_attention",
        )
        if hf.get(key)
    ]
    if refused:
        raise GPT2LabError(
            f"unsupported GPT-2 option {refused[0]}=True (gpt2lab does not implement it)"
        )
    activation = hf.get("activation_function", "gelu_new")
    if activation not in FROM_HF_ACTIVATIONS:
        raise GPT2LabError(f"unsupported activation_function {activation!r}")
    try:
        return GPTConfig(
            vocab_size=hf.get("vocab_size", 50257),
            block_size=hf.get("n_positions", hf.get("n_ctx", 1024)),
            n_layer=hf.get("n_layer", 12),
            n_head=hf.get("n_head", 12),
            n_embd=hf.get("n_embd", 768),
            n_inner=hf.get("n_inner"),
            dropout=float(hf.get("resid_pdrop", 0.1)),
            layer_norm_eps=float(hf.get("layer_norm_epsilon", 1e-5)),
            activation=FROM_HF_ACTIVATIONS[activation],
            attn_scale=bool(hf.get("scale_attn_weights", True)),
            tie_embeddings=bool(hf.get("tie_word_embeddings", True)),
        )
    except ConfigError as err:
        raise GPT2LabError(f"invalid GPT-2 config.json: {err}") from None


def config_to_hf(config: GPTConfig) -> dict:
    """GPTConfig as a Hugging Face GPT-2 config.json (only for HF-compatible architectures)."""
    eos = config.vocab_size - 1
    return {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": config.vocab_size,
        "n_positions": config.block_size,
        "n_ctx": config.block_size,
        "n_embd": config.n_embd,
        "n_layer": config.n_layer,
        "n_head": config.n_head,
        "n_inner": config.n_inner,
        "activation_function": HF_ACTIVATIONS[config.activation],
        "resid_pdrop": config.dropout,
        "embd_pdrop": config.dropout,
        "attn_pdrop": config.dropout,
        "layer_norm_epsilon": config.layer_norm_eps,
        "initializer_range": 0.02,
        "scale_attn_weights": config.attn_scale,
        "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False,
        "tie_word_embeddings": config.tie_embeddings,
        "bos_token_id": eos,
        "eos_token_id": eos,
        "torch_dtype": "float32",
    }


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def load_pretrained(
    name_or_dir: str | os.PathLike,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> GPT:
    """A GPT from a local HF/gpt2lab directory or a Hugging Face hub name (downloaded)."""
    directory = resolve_model_dir(name_or_dir)
    config = read_config(directory)
    model = GPT(config).to(dtype=dtype)  # cast first, so float64 weights load exactly
    import_state_dict(model, read_weights(directory))
    model.eval()
    return model.to(device=device)


def load_transformers(directory: str | os.PathLike, attn_implementation: str | None = None):
    """transformers' own GPT2LMHeadModel from a local Hugging Face directory, in eval mode,
    without its warnings or progress bars. attn_implementation="eager" makes its attention
    modules return their weights (the pattern); None keeps transformers' default."""
    from transformers import GPT2LMHeadModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    return GPT2LMHeadModel.from_pretrained(
        directory, attn_implementation=attn_implementation
    ).eval()


def resolve_model_dir(name_or_dir: str | os.PathLike) -> Path:
    """A model directory, a training run (its best checkpoint), or a hub name (downloaded)."""
    path = Path(name_or_dir).expanduser()
    if path.is_dir():
        return checkpoint_of_run(path) if (path / "checkpoints").is_dir() else path
    text = str(name_or_dir)
    if path.exists():
        raise GPT2LabError(f"{text} is a file; expected a model directory")
    if text.startswith((".", "/", "~")) or text.count("/") > 1 or "\\" in text:
        raise GPT2LabError(f"no such model directory: {text}")
    return download(text)


def checkpoint_of_run(run_dir: Path) -> Path:
    """The checkpoint a training run stands for: checkpoints/best, else the latest step_*."""
    checkpoints = run_dir / "checkpoints"
    if (checkpoints / "best" / "config.json").is_file():
        return checkpoints / "best"
    steps = sorted(p for p in checkpoints.glob("step_*") if (p / "config.json").is_file())
    if not steps:
        raise GPT2LabError(f"training run {run_dir} has no complete checkpoint yet")
    return steps[-1]


def download(name: str) -> Path:
    """Fetch config.json and the weights of a hub model (safetensors preferred)."""
    try:
        from huggingface_hub import snapshot_download

        directory = Path(
            snapshot_download(
                repo_id=name,
                allow_patterns=["config.json", "model.safetensors", "model*.safetensors*"],
            )
        )
        if not _weights_files(directory):
            directory = Path(
                snapshot_download(repo_id=name, allow_patterns=["config.json", "pytorch_model.bin"])
            )
    except Exception as err:  # network, auth, unknown repo: all end the same way for a user
        reason = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        known = f" (known GPT-2 names: {', '.join(HUB_NAMES)})" if "/" not in name else ""
        raise GPT2LabError(
            f"no local directory {name!r}, and the Hugging Face hub did not give it{known}: "
            f"{reason}"
        ) from None
    return directory


def read_config(directory: Path) -> GPTConfig:
    path = directory / "config.json"
    if not path.is_file():
        raise GPT2LabError(f"{directory} has no config.json")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise GPT2LabError(f"{path} is not valid JSON: {err}") from None
    if data.get("model_type") == "gpt2lab":
        try:
            return GPTConfig.from_dict(data["config"])
        except (KeyError, TypeError, ConfigError) as err:
            raise GPT2LabError(f"{path}: invalid gpt2lab config: {err}") from None
    return config_from_hf(data)


def _weights_files(directory: Path) -> list[Path]:
    index = directory / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return [directory / s for s in shards]
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (directory / name).is_file():
            return [directory / name]
    return []


def read_weights(directory: Path) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint dir (safetensors, sharded safetensors, or a torch .bin)."""
    files = _weights_files(directory)
    if not files:
        raise GPT2LabError(f"{directory} has no model.safetensors or pytorch_model.bin")
    tensors: dict[str, torch.Tensor] = {}
    for file in files:
        try:
            if file.suffix == ".safetensors":
                from safetensors.torch import load_file

                tensors.update(load_file(str(file)))
            else:
                tensors.update(torch.load(file, map_location="cpu", weights_only=True))
        except Exception as err:  # safetensors/pickle raise many types for a damaged file
            raise GPT2LabError(f"cannot read {file}: {type(err).__name__}: {err}") from None
    return tensors


# ---------------------------------------------------------------------------------------------
# Runs and tokenizers: what the CLI, the viewer, the lm-eval adapter and notebooks load
# ---------------------------------------------------------------------------------------------


def newest_run(runs_dir: Path) -> Path | None:
    """The run under runs_dir whose chosen checkpoint was written last (None if none has one)."""
    found = []
    for run in runs_dir.glob("*") if runs_dir.is_dir() else []:
        if not (run / "checkpoints").is_dir():
            continue
        try:
            checkpoint = checkpoint_of_run(run)
        except GPT2LabError:
            continue
        found.append(((checkpoint / "config.json").stat().st_mtime_ns, run))
    return max(found)[1] if found else None


def resolve_model_name(name: str | None, runs_dir: str | Path = "runs") -> tuple[str, str]:
    """(what to load, how to describe it): `name` itself, or the newest local training run.

    With no name and no run with a checkpoint, a GPT2LabError says how to get one.
    """
    if name:
        return name, name
    run = newest_run(Path(runs_dir))
    if run is None:
        raise GPT2LabError(
            f"no --model given and no training run with a checkpoint in {runs_dir}/; "
            "train one with `gpt2lab train` or pass --model gpt2 (or a model directory)"
        )
    return str(run), f"{run} (the newest local run)"


def tokenizer_for(directory: str | Path, vocab_size: int):
    """The tokenizer of a model directory: its own vocabulary files when it has them
    (encoder.json + vocab.bpe, or vocab.json + merges.txt), else GPT-2's for a 50257-token
    model; anything else is an error."""
    directory = Path(directory)
    candidates = [directory, directory.parent.parent]  # a run's checkpoint, then the run
    for folder in candidates:
        if any((folder / e).is_file() and (folder / m).is_file() for e, m in FILE_LAYOUTS):
            tokenizer = get_tokenizer(str(folder))
            break
    else:
        if vocab_size != 50257:
            raise GPT2LabError(
                f"{directory} has no tokenizer files (encoder.json + vocab.bpe) and its "
                f"vocab_size {vocab_size} is not GPT-2's 50257"
            )
        tokenizer = get_tokenizer("gpt2")
    if tokenizer.n_vocab > vocab_size:
        raise GPT2LabError(
            f"tokenizer of {directory} has {tokenizer.n_vocab} tokens, the model only {vocab_size}"
        )
    return tokenizer


def load_model_and_tokenizer(
    name: str | None = None,
    device: str | torch.device | None = None,
    runs_dir: str | Path = "runs",
):
    """(model, tokenizer, description) for `gpt2`, a model directory, a run, or None (the
    newest local run). The model is in eval mode, in the inference layout on CPU. `device`:
    a torch device or its name (auto, cpu, cuda, cuda:N, mps); one that is not here is a
    GPT2LabError."""
    if isinstance(device, str):
        device = resolve_device(device)
    target, description = resolve_model_name(name, runs_dir)
    directory = resolve_model_dir(target)
    tokenizer = tokenizer_for(directory, read_config(directory).vocab_size)
    model = load_pretrained(directory, device=device)
    if device_of(model).type == "cpu":
        model.use_inference_layout()
    return model, tokenizer, description


# ---------------------------------------------------------------------------------------------
# Saving
# ---------------------------------------------------------------------------------------------


def save_pretrained(model: GPT, out_dir: str | os.PathLike, format: str = "auto") -> str:
    """Write the model to `out_dir`; return the format used ('hf' or 'gpt2lab').

    format='auto' writes Hugging Face layout when GPT2LMHeadModel can hold the architecture,
    else gpt2lab's own; format='hf' refuses an architecture Hugging Face cannot hold.
    Files appear atomically (written to a temporary name, then renamed).
    """
    from safetensors.torch import save_file

    if format not in ("auto", "hf", "gpt2lab"):
        raise GPT2LabError(f"format must be auto, hf or gpt2lab; got {format!r}")
    config = model.config
    reasons = config.hf_incompatibilities()
    if format == "hf" and reasons:
        raise GPT2LabError(
            f"Hugging Face GPT-2 cannot hold this architecture ({', '.join(reasons)}); "
            "save it in gpt2lab format instead"
        )
    chosen = "gpt2lab" if format == "gpt2lab" or reasons else "hf"
    if chosen == "hf":
        config_json = config_to_hf(config)
    else:
        config_json = {"model_type": "gpt2lab", "config": config.to_dict()}

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = export_state_dict(model)
    atomic_write(
        out / "model.safetensors", lambda p: save_file(tensors, p, metadata={"format": "pt"})
    )
    atomic_write(
        out / "config.json", lambda p: Path(p).write_text(json.dumps(config_json, indent=2))
    )
    return chosen


def copy_tokenizer_files(source: Path, out: Path) -> list[str]:
    """Copy a model directory's vocabulary next to converted weights; return the names written.

    gpt2lab's encoder.json/vocab.bpe and Hugging Face's vocab.json/merges.txt hold the same
    content, so both spellings are written: get_tokenizer and transformers both find theirs.
    """
    found = next(
        (
            (source / e, source / m)
            for e, m in FILE_LAYOUTS
            if (source / e).is_file() and (source / m).is_file()
        ),
        None,
    )
    if found is None:
        return []
    written = []
    for names in FILE_LAYOUTS:
        for src, name in zip(found, names):
            if src.resolve() != (out / name).resolve():
                shutil.copyfile(src, out / name)
            written.append(name)
    return written
