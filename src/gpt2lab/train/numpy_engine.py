"""`gpt2lab train --engine numpy`: the Trainer's loop with the hand-written NumPy math.

The loop is the torch engine's own (`trainer.Trainer`): the same TokenLoader batches in the same
order, the same lr schedule, the same metrics.jsonl records, evaluations and checkpoints.
Only the math of a step changes hands, and none of it is autograd:

    loss, cache = numpy_gpt.forward(params, x, targets=y)     mean over the n valid tokens
    grads = numpy_gpt.backward(params, cache) · n · scale      = d(Σ losses · scale)/dθ
    norm = numpy_optim.clip_grad_norm(grads, clip)
    numpy_optim.adamw_step(params, grads, lr, ...)             2-D weights decayed, as in torch

From the same weights and batches the two engines' losses agree to ~1e-12 in float64
(tests/train/test_numpy_engine.py). Callbacks that look at a torch model (samples, layer
statistics, the non-finite locator, checkpoints) get a mirror: the torch GPT the run was
built with, into which the engine copies its weights and gradients whenever it is asked.
Checkpoints are therefore ordinary gpt2lab/Hugging Face model directories; optimizer.pt holds
the AdamW moments as {"step", "m": {name: tensor}, "v": {...}} in numpy_gpt's names and layout.

Limits, each refused with one line: at most MAX_PARAMS parameters, one CPU process, float32
or float64, no dropout, nothing to compile (the last four in `config.validate_numpy_engine`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gpt2lab.errors import GPT2LabError
from gpt2lab.model import GPT
from gpt2lab.pretrained import TRANSPOSED, hf_name, reference_params
from gpt2lab.reference.numpy_gpt import Params, backward, forward
from gpt2lab.reference.numpy_optim import adamw_init, adamw_step, clip_grad_norm
from gpt2lab.train import checkpoint as ckpt
from gpt2lab.train.config import TrainConfig
from gpt2lab.train.distributed import Dist
from gpt2lab.train.engine import count_targets

MAX_PARAMS = 10_000_000
"""The tiny preset with any vocabulary (1.3M parameters with 4096 tokens, 7.2M with GPT-2's
50257) fits; mini (12M with 4096 tokens) and larger do not: NumPy would take hours."""

REFERENCE_NAMES = {"wte.weight": "wte", "wpe.weight": "wpe"}
"""Hugging Face names that numpy_gpt spells differently; every other name is the same."""


def reference_name(name: str) -> str:
    """A torch parameter's name in numpy_gpt's weight contract:
    'blocks.0.attn.c_attn.weight' -> 'h.0.attn.c_attn.weight', 'wte.weight' -> 'wte'."""
    name = hf_name(name)
    return REFERENCE_NAMES.get(name, name)


def torch_layout(model: GPT, arrays: Params) -> dict[str, torch.Tensor]:
    """numpy_gpt-named arrays (weights or gradients) as tensors named and shaped like the
    model's parameters: the inverse of `reference_params`. A Conv1D-layout weight [n_in, n_out]
    goes back to nn.Linear's [n_out, n_in]; a tied lm_head is wte (listed once)."""
    out = {}
    for name, _ in model.named_parameters():
        value = torch.from_numpy(arrays[reference_name(name)])
        out[name] = value.t() if name.endswith(TRANSPOSED) else value
    return out


def check_model(model: GPT, dist: Dist) -> None:
    """Refuse, in one line, a model or launch the NumPy engine cannot train."""
    if dist.enabled:
        raise GPT2LabError("the numpy engine runs in one process; launch it without torchrun")
    if model.config.dropout > 0:
        raise GPT2LabError(
            f"the numpy engine has no dropout (model.dropout is {model.config.dropout}); "
            "set --model.dropout 0"
        )
    n_params = sum(p.numel() for p in model.parameters())
    if n_params > MAX_PARAMS:
        raise GPT2LabError(
            f"the numpy engine trains tiny models only (at most {MAX_PARAMS / 1e6:.0f}M "
            f"parameters, e.g. --preset tiny); this one has {n_params / 1e6:.1f}M: use "
            "--engine torch"
        )


class NumpyEngine:
    """The engine interface of `engine.TorchEngine`, on NumPy arrays (see the module docstring)."""

    def __init__(self, config: TrainConfig, model: GPT, dist: Dist) -> None:
        check_model(model, dist)
        self.config, self.mirror = config, model
        self.dtype = np.float64 if config.dtype == "float64" else np.float32
        self.params = reference_params(model, self.dtype)
        self.adam = adamw_init(self.params)
        self.grads: Params | None = None

    def torch_model(self) -> GPT:
        """The mirror, brought up to date: the current weights, and the gradients while a step
        holds them (None otherwise, as after torch's zero_grad)."""
        weights = torch_layout(self.mirror, self.params)
        grads = torch_layout(self.mirror, self.grads) if self.grads is not None else {}
        with torch.no_grad():
            for name, p in self.mirror.named_parameters():
                p.copy_(weights[name])
                p.grad = grads[name].clone() if grads else None
        return self.mirror

    def forward_backward(self, batches, scale: float) -> float:
        """Σ token losses of the micro-batches; the gradient of (Σ losses) · scale
        accumulates in self.grads. numpy_gpt's loss is the mean over a micro-batch's n valid
        tokens, so its gradient times n · scale is that micro-batch's share."""
        loss_sum = 0.0
        for x, y in batches:
            n = count_targets(y)
            _, loss, cache = forward(self.params, x.numpy(), self.mirror.config, y.numpy())
            grads = backward(self.params, cache, self.mirror.config)
            for g in grads.values():
                g *= n * scale
            if self.grads is not None:
                grads = {name: self.grads[name] + g for name, g in grads.items()}
            self.grads = grads
            loss_sum += float(loss) * n
        return loss_sum

    def clip_gradients(self, max_norm: float) -> float:
        return clip_grad_norm(self.grads, max_norm)

    def optimizer_step(self, lr: float) -> None:
        cfg = self.config
        adamw_step(
            self.params,
            self.grads,
            self.adam,
            lr,
            betas=(cfg.beta1, cfg.beta2),
            weight_decay=cfg.weight_decay,
        )

    def zero_grad(self) -> None:
        self.grads = None

    def eval_loss_sum(self, batches) -> float:
        total = 0.0
        for x, y in batches:
            _, loss, _ = forward(self.params, x.numpy(), self.mirror.config, y.numpy())
            total += float(loss) * count_targets(y)
        return total

    def states(self) -> tuple[dict, dict, dict]:
        moments = {
            key: {name: torch.from_numpy(a) for name, a in self.adam[key].items()}
            for key in ("m", "v")
        }
        return self.torch_model().state_dict(), {"step": self.adam["step"], **moments}, {}

    def load_states(self, directory: Path) -> None:
        """The AdamW moments and step count of a checkpoint written by this engine."""
        saved = ckpt.read_optimizer(directory)["optimizer"]
        try:
            self.adam = {
                "step": int(saved["step"]),
                **{
                    key: {name: saved[key][name].numpy().astype(self.dtype) for name in self.params}
                    for key in ("m", "v")
                },
            }
        except (KeyError, TypeError, AttributeError) as err:
            raise ckpt.mismatch(directory / "optimizer.pt", err) from None
