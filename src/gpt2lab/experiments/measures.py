"""What the runs of a suite measured: read back from their files, and from their final weights.

From the files of one run (`Run`): the final val loss, the loss at initialisation, stability,
the exact peak gradient norm and attention logit (steps.jsonl holds every step), steps to a
target with censoring, and the roughness of the loss curve.

From final weights (a few val batches, no training): the unigram loss of the data (the
floor a model that only learned word frequencies reaches), word-order sensitivity (val loss
with each sequence's tokens shuffled, minus the loss in order), and the attention weights
themselves (negative share, row sums, head roles).

>>> Censored(200.0, True)            # never reached within the budget of 200 steps
Censored(value=200.0, censored=True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import permutations
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gpt2lab.experiments.runner import RunKey, final_loss, read_result
from gpt2lab.train.metrics import parse_records, read_metrics

STEPS_FILE = "steps.jsonl"


PLATEAU_MARGIN = 0.1
"""Nats below the unigram loss a run must end to count as trained. Runs stuck on the
frequency plateau in the committed suite end at 5.82–5.84 against a unigram loss of 5.827."""


@dataclass(frozen=True)
class Censored:
    """A measured number of steps, or a lower bound of it (`censored`: not reached)."""

    value: float
    censored: bool = False

    def __str__(self) -> str:
        return f"> {self.value:.0f}" if self.censored else f"{self.value:.0f}"


@dataclass
class Run:
    """One finished run of a suite, read back from its directory."""

    key: RunKey
    directory: Path
    result: dict[str, Any]
    records: list[dict[str, Any]]
    """metrics.jsonl: train records every log_interval steps, and the evaluations."""
    steps: list[dict[str, Any]] = field(default_factory=list)
    """steps.jsonl: every step's loss, grad_norm, attn_logit_max."""

    @classmethod
    def read(cls, key: RunKey, directory: Path) -> Run | None:
        """The run in `directory`, or None while it has no result.json."""
        result = read_result(directory)
        if result is None:
            return None
        path = directory / STEPS_FILE
        steps = parse_records(path.read_text()) if path.is_file() else []
        return cls(key, directory, result, read_metrics(directory), steps)

    @property
    def diverged(self) -> bool:
        return self.result["stopped"] == "nonfinite"

    @property
    def final_val(self) -> float:
        """The last evaluation; +inf for a run that diverged."""
        return final_loss(self.result)

    @property
    def initial_loss(self) -> float:
        """The loss of the first step, taken at the initial weights."""
        return float(self.steps[0]["loss"]) if self.steps else math.nan

    def trains(self, unigram: float) -> bool:
        """Finite to the end, with a final val loss at least PLATEAU_MARGIN below `unigram`,
        the val loss of predicting token frequencies alone: a run stuck on that plateau
        (post-norm without warmup at a high lr) has learned little a bag of counts would not
        know, and ends within a few hundredths of it on either side."""
        return math.isfinite(self.final_val) and self.final_val < unigram - PLATEAU_MARGIN

    def step_values(self, key: str) -> tuple[list[int], list[float]]:
        """(steps, values) of a steps.jsonl field; non-finite values become +inf."""
        xs, ys = [], []
        for r in self.steps:
            if key in r:
                xs.append(r["step"])
                ys.append(r[key] if math.isfinite(r[key]) else math.inf)
        return xs, ys

    @property
    def peak_grad_norm(self) -> float:
        """Largest pre-clip global gradient norm of any step (non-finite: inf)."""
        return max(self.step_values("grad_norm")[1], default=math.nan)

    def logit_curve(self) -> tuple[list[int], list[float]]:
        """(steps, the largest attention logit over the layers at each step)."""
        rows = [(r["step"], r["attn_logit_max"]) for r in self.steps if "attn_logit_max" in r]
        return [s for s, _ in rows], [max_finite(v) for _, v in rows]

    @property
    def peak_logit(self) -> float:
        """The largest attention logit of any layer at any step (non-finite: inf)."""
        return max(self.logit_curve()[1], default=math.nan)

    def steps_to(self, target: float, budget: int) -> Censored:
        """First step where the val curve reaches `target` (linear between evaluations), or
        the budget as a lower bound (censored) when it never does."""
        evals = [(r["step"], r["val_loss"]) for r in self.records if r["kind"] == "eval"]
        prev_step, prev_value = 0, math.inf
        for step, value in evals:
            if value <= target:
                if not math.isfinite(prev_value):
                    return Censored(float(step))
                frac = (prev_value - target) / (prev_value - value)
                return Censored(prev_step + frac * (step - prev_step))
            prev_step, prev_value = step, value
        return Censored(float(budget), censored=True)

    def roughness(self, after: int) -> float:
        """Std of the step-to-step change of the training loss after step `after` (the
        warmup): how jagged the curve is, every step counted."""
        steps, losses = self.step_values("loss")
        tail = np.asarray([v for s, v in zip(steps, losses) if s > after], float)
        diffs = np.diff(tail)
        return float(diffs.std(ddof=1)) if len(diffs) > 1 else math.nan


def max_finite(values: list[float]) -> float:
    """max of a list; any non-finite entry makes it inf.

    >>> max_finite([1.0, 3.0]), max_finite([1.0, float("nan")])
    (3.0, inf)
    """
    a = np.asarray(values, float)
    return float(a.max()) if np.isfinite(a).all() else math.inf


# ---------------------------------------------------------------------------------------------
# The data
# ---------------------------------------------------------------------------------------------


def unigram_loss(data: str | Path, vocab: int) -> float:
    """Cross-entropy (nats/token) on the val split of the unigram model fitted on the train
    split (add-one smoothing): what a model reaches by learning word frequencies only.
    E.g. train counts {0: 3, 1: 1} over V = 2 give p = (4/6, 2/6), and val tokens [0, 1] the
    loss (−log 4/6 − log 2/6) / 2 = 0.752.
    """
    from gpt2lab.data.loader import open_split

    counts = np.ones(vocab, dtype=np.float64)
    for shard in open_split(data, "train")[0]:
        counts += np.bincount(np.asarray(shard), minlength=vocab)[:vocab]
    log_p = np.log(counts / counts.sum())
    val = np.concatenate([np.asarray(s) for s in open_split(data, "val")[0]])
    return float(-log_p[val].mean())


# ---------------------------------------------------------------------------------------------
# Final weights
# ---------------------------------------------------------------------------------------------


def final_model(run: Run):
    """The run's last checkpoint as a GPT in eval mode."""
    from gpt2lab.pretrained import load_pretrained
    from gpt2lab.train.checkpoint import latest

    return load_pretrained(latest(run.directory / "checkpoints")).eval()


def val_batches(data: str | Path, block: int, n: int, batch_size: int = 4):
    """The first n (x, y) val batches of (batch_size, block) tokens, in order."""
    from gpt2lab.data.loader import TokenLoader

    loader = TokenLoader(data, "val", batch_size=batch_size, block_size=block, mode="sequential")
    out = []
    for _ in range(n):
        try:
            out.append(loader.next_batch())
        except StopIteration:
            break
    return out


def shuffle_within(x: torch.Tensor, y: torch.Tensor, seed: int = 0):
    """Each sequence's tokens in a random order (seeded), the targets the next shuffled token:
    the same bag of tokens, no word order. x, y (B, T) -> (B, T), (B, T).

    >>> x = torch.arange(6).view(1, 6); y = x + 1
    >>> xs, ys = shuffle_within(x, y); sorted((xs[0].tolist() + ys[0, -1:].tolist()))
    [0, 1, 2, 3, 4, 5, 6]
    """
    g = torch.Generator().manual_seed(seed)
    full = torch.cat([x, y[:, -1:]], dim=1)  # (B, T + 1): the sequence and its last target
    out = torch.stack([row[torch.randperm(row.numel(), generator=g)] for row in full])
    return out[:, :-1], out[:, 1:]


@torch.inference_mode()
def order_sensitivity(model, batches) -> float:
    """Val loss with each sequence's tokens shuffled minus the loss in order (nats/token):
    how much the model relies on word order. Near 0: it reads a bag of words."""
    from gpt2lab.evaluate import token_losses

    ordered = np.mean([float(token_losses(model, x, y).mean()) for x, y in batches])
    shuffled = np.mean(
        [
            float(token_losses(model, *shuffle_within(x, y, i)).mean())
            for i, (x, y) in enumerate(batches)
        ]
    )
    return float(shuffled - ordered)


ROLE_OFFSETS = 16
"""A head's role: how its |weight| spreads over the last ROLE_OFFSETS relative positions."""


@dataclass
class AttentionStats:
    """The attention weights of a model on a few val batches (all layers and heads)."""

    negative_share: float
    """Fraction of the weights (visible pairs) below 0; 0 for a softmax."""
    row_sum_sd: float
    """Std over rows of Σ_j A_ij; 0 for a softmax (every row sums to 1)."""
    max_abs: float
    """Largest |A_ij|; ≤ 1 for a softmax."""
    sample: list[float]
    """Up to 4000 weights (visible pairs), for the histogram."""
    roles: list[list[float]]
    """Per head (layer-major): mean |A| at relative offsets 0 … ROLE_OFFSETS−1, normalised."""


@torch.inference_mode()
def attention_stats(model, batches, n_sample: int = 4000) -> AttentionStats:
    """The statistics of every layer's attention weights (hook_pattern) over the batches."""
    names = [f"blocks.{i}.attn.hook_pattern" for i in range(model.config.n_layer)]
    weights, row_sums, profiles = [], [], []
    for x, _ in batches:
        _, cache = model.run_with_cache(x, names=names)
        T = x.size(1)
        visible = torch.ones(T, T, dtype=torch.bool).tril()  # (T, T)
        offset = torch.arange(T)[:, None] - torch.arange(T)[None, :]  # (T, T): i − j
        per_layer = []
        for name in names:
            a = cache[name].float()  # (B, nh, T, T)
            weights.append(a[..., visible].flatten())
            row_sums.append(a.sum(-1).flatten())
            by_offset = [
                a.abs()[..., offset == d].mean(dim=(0, 2))  # (nh,)
                for d in range(min(ROLE_OFFSETS, T))
            ]
            per_layer.append(torch.stack(by_offset, dim=-1))  # (nh, offsets)
        profiles.append(torch.cat(per_layer))  # (n_layer · nh, offsets)
    profile = torch.stack(profiles).sum(0)  # summed over batches
    profile = profile / profile.sum(-1, keepdim=True).clamp_min(1e-30)
    w = torch.cat(weights)
    pick = torch.randperm(w.numel(), generator=torch.Generator().manual_seed(0))[:n_sample]
    return AttentionStats(
        negative_share=float((w < 0).float().mean()),
        row_sum_sd=float(torch.cat(row_sums).std()),
        max_abs=float(w.abs().max()),
        sample=w[pick].tolist(),
        roles=profile.tolist(),
    )


def role_agreement(a: list[list[float]], b: list[list[float]], n_layer: int) -> float:
    """How well two seeds' heads match in role: within each layer, heads are paired one to
    one to maximise the summed correlation of their role profiles (every pairing tried: for
    up to 8 heads per layer), and the mean matched correlation is returned.
    1 = the same roles up to a permutation of heads.

    >>> r = [[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]]
    >>> round(role_agreement(r, r[::-1], 1), 6)   # the same two heads, swapped
    1.0
    """
    per = len(a) // n_layer
    total = 0.0
    for layer in range(n_layer):
        rows = slice(layer * per, (layer + 1) * per)
        c = np.corrcoef(np.asarray(a[rows]), np.asarray(b[rows]))[:per, per:]  # (nh, nh)
        c = np.nan_to_num(c, nan=0.0)
        total += max(sum(c[i, p[i]] for i in range(per)) for p in permutations(range(per)))
    return float(total / (n_layer * per))
