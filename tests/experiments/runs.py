"""Hand-made finished runs and arms for the rule and statistics tests."""

from __future__ import annotations

import math
from pathlib import Path

from gpt2lab.experiments.measures import Run
from gpt2lab.experiments.runner import RunKey
from gpt2lab.experiments.verdicts import Arm, Evidence

EVAL_EVERY = 20


def run(variant="v", seed=0, evals=(3.0,), *, lr=1e-3, initial=7.0, grad_norms=(1.0,),
        logits=(1.0,), diverged=False) -> Run:  # fmt: skip
    """A run with val losses at steps 20, 40, …, a first-step loss `initial`, and one
    steps.jsonl line per grad norm (its attention logits: `logits` for every step)."""
    records = [{"kind": "eval", "step": EVAL_EVERY * (i + 1), "val_loss": v}
               for i, v in enumerate(evals)]  # fmt: skip
    steps = [{"kind": "train", "step": i + 1, "loss": initial if i == 0 else 5.0,
              "grad_norm": g, "attn_logit_max": list(logits)}
             for i, g in enumerate(grad_norms)]  # fmt: skip
    result = {
        "stopped": "nonfinite" if diverged else "completed",
        "val_loss": None if diverged else evals[-1],
        "step": EVAL_EVERY * len(evals),
        "nonfinite": {"step": 7, "where": "blocks.1.hook_attn_out", "layer": 1}
        if diverged
        else None,
    }
    return Run(RunKey(variant, lr, seed), Path("."), result, records, steps)


def arm(name, finals, *, reference="baseline", sweep=None, curves=None) -> Arm:
    """An arm whose runs at the best lr end at `finals` (one per seed; inf = diverged);
    `curves`: full val curves per seed instead; `sweep`: {lr: final (inf = diverged)}."""
    curves = curves or [[f] for f in finals]
    runs = [run(name, s, c, diverged=math.isinf(c[-1])) for s, c in enumerate(curves)]
    sweep = sweep or {1e-3: finals[0]}
    swept = {lr: run(name, 0, [f], lr=lr, diverged=math.isinf(f)) for lr, f in sweep.items()}
    return Arm(name, reference, True, {}, swept, min(sweep), runs)


def evidence(*arms: Arm, steps=100, unigram=5.8) -> Evidence:
    return Evidence({a.name: a for a in arms}, steps=steps, warmup_steps=10, unigram=unigram)
