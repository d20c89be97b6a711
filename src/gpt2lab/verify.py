"""Parity checks: is this GPT the GPT-2 that Hugging Face, NumPy and our own files say it is?

Each check runs the same tokens through two implementations and compares the logits
(max |Δ|), the loss and the greedy continuation. The references:
  transformers  GPT2LMHeadModel loaded from our exported files, and gpt2lab re-loading the
                files that GPT2LMHeadModel itself saved (both directions through real files);
  numpy         gpt2lab.reference.numpy_gpt, every matmul written out;
  explicit      our explicit attention path against the fused SDPA one;
  round trip    save_pretrained -> load_pretrained in gpt2lab's own reader.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from gpt2lab.model import GPT
from gpt2lab.pretrained import (
    load_pretrained,
    load_transformers,
    reference_params,
    save_pretrained,
)


@dataclass
class CheckResult:
    name: str
    max_abs_diff: float
    loss_diff: float
    greedy_equal: bool | None
    tolerance: float
    note: str = ""

    @property
    def passed(self) -> bool:
        return (
            self.max_abs_diff <= self.tolerance
            and self.loss_diff <= self.tolerance
            and self.greedy_equal is not False
        )


def random_batch(config, batch_size: int, seq_len: int, seed: int):
    """Seeded (idx, targets) of shape (B, T) with T clipped to the context."""
    g = torch.Generator().manual_seed(seed)
    T = min(seq_len, config.block_size)
    tokens = torch.randint(0, config.vocab_size, (batch_size, T + 1), generator=g)
    return tokens[:, :-1], tokens[:, 1:]


@torch.no_grad()
def greedy_ids(forward, idx: torch.Tensor, steps: int, block_size: int) -> torch.Tensor:
    """Greedy continuation by full recomputation: forward(idx) -> logits (B, T, V)."""
    for _ in range(steps):
        logits = forward(idx[:, -block_size:])
        idx = torch.cat([idx, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return idx


def _compare(name, ours, theirs, tolerance, note="") -> CheckResult:
    (logits_a, loss_a, greedy_a), (logits_b, loss_b, greedy_b) = ours, theirs
    return CheckResult(
        name=name,
        max_abs_diff=float((logits_a.double() - torch.as_tensor(logits_b).double()).abs().max()),
        loss_diff=abs(float(loss_a) - float(loss_b)),
        greedy_equal=None if greedy_a is None else bool(torch.equal(greedy_a, greedy_b)),
        tolerance=tolerance,
        note=note,
    )


@torch.no_grad()
def run_checks(
    model: GPT,
    batch_size: int = 2,
    seq_len: int = 32,
    seed: int = 0,
    greedy_steps: int = 4,
    tolerance: float = 1e-4,
) -> Iterator[CheckResult]:
    """Run every check that applies to this model's architecture (fp32, CPU), yielding each
    result as soon as it is known."""
    model = model.float().cpu().eval()
    config = model.config
    idx, targets = random_batch(config, batch_size, seq_len, seed)
    prompt = idx[:, : max(1, idx.size(1) - greedy_steps)]

    def ours(m: GPT):
        logits, loss = m(idx, targets)
        greedy = greedy_ids(lambda x: m(x)[0], prompt, greedy_steps, config.block_size)
        return logits, loss, greedy

    baseline = ours(model)

    model.set_attention_path("explicit")
    yield _compare("explicit vs fused attention", ours(model), baseline, 1e-5)
    model.set_attention_path("auto")

    yield _compare("numpy reference", _numpy_forward(model, idx, targets), baseline, tolerance)

    with tempfile.TemporaryDirectory() as tmp:
        fmt = save_pretrained(model, tmp)
        yield _compare(f"save/load ({fmt} format)", ours(load_pretrained(tmp)), baseline, 0.0)
        if fmt == "hf":
            yield from _transformers_checks(tmp, ours, baseline, idx, targets, prompt, tolerance)


def _numpy_forward(model: GPT, idx: torch.Tensor, targets: torch.Tensor):
    from gpt2lab.reference import numpy_gpt

    params = reference_params(model, np.float64)
    logits, loss, _ = numpy_gpt.forward(params, idx.numpy(), model.config, targets.numpy())
    return torch.from_numpy(np.asarray(logits)), loss, None


def _transformers_checks(directory, ours, baseline, idx, targets, prompt, tolerance):
    """gpt2lab -> HF (HF loads our files) and HF -> gpt2lab (we load HF's own save)."""
    hf = load_transformers(directory)
    logits = hf(idx).logits
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
    steps = baseline[2].size(1) - prompt.size(1)
    greedy = greedy_ids(lambda x: hf(x).logits, prompt, steps, hf.config.n_positions)
    yield _compare("transformers loads gpt2lab", (logits, loss, greedy), baseline, tolerance)
    with tempfile.TemporaryDirectory() as tmp:
        hf.save_pretrained(tmp)
        theirs = (logits, loss, greedy)
        yield _compare("gpt2lab loads transformers", ours(load_pretrained(tmp)), theirs, tolerance)


TABLE_HEADER = (
    f"{'check':<30} {'max|Δlogits|':>13} {'|Δloss|':>10} {'greedy':>7} {'tol':>7}  result"
)


def format_row(r: CheckResult) -> str:
    """One fixed-width row under TABLE_HEADER."""
    greedy = "-" if r.greedy_equal is None else ("same" if r.greedy_equal else "DIFF")
    return (
        f"{r.name:<30} {r.max_abs_diff:>13.2e} {r.loss_diff:>10.2e} {greedy:>7} "
        f"{r.tolerance:>7.0e}  {'pass' if r.passed else 'FAIL'}"
    )
