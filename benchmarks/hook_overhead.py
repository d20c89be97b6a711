"""Do hook points cost anything when no hook is attached?

Times the forward pass (inference, no grad) of the same weights four ways, alternating them
round after round so a busy shared CPU slows them all alike, and prints median times and
ratios against gpt2lab's plain forward:

    gpt2lab            GPT as shipped: every HookPoint is called, none has a hook (fused attention)
    gpt2lab, stripped  the same model with every HookPoint replaced by a bare pass-through
                       (no nn.Module call at all): the no-hook-points reference
    transformers       GPT2LMHeadModel (sdpa attention) with the same weights: the peer
    gpt2lab, pattern   a hook on every hook_pattern (forces the explicit path): what looking costs

    python benchmarks/hook_overhead.py [--preset gpt2] [--seq-len 128] [--batch 1] [--rounds 15] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from gpt2lab.config import GPTConfig
from gpt2lab.hooks import HookPoint
from gpt2lab.model import GPT
from gpt2lab.pretrained import config_to_hf, export_state_dict


class Bare(HookPoint):
    """A HookPoint with nn.Module's call machinery removed: `x -> x`, nothing else."""

    def __call__(self, x):
        return x


def stripped(model: GPT) -> GPT:
    """A deep copy whose HookPoints are all `Bare` (same weights, same fused attention)."""
    copy_ = copy.deepcopy(model)
    for module in copy_.modules():
        if isinstance(module, HookPoint):
            module.__class__ = Bare
    return copy_


def hf_twin(model: GPT):
    from transformers import GPT2Config, GPT2LMHeadModel

    hf_config = {k: v for k, v in config_to_hf(model.config).items() if k != "architectures"}
    hf = GPT2LMHeadModel(GPT2Config(**hf_config, attn_implementation="sdpa")).eval()
    hf.load_state_dict(export_state_dict(model), strict=False)
    hf.tie_weights()
    return hf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="gpt2")
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: steadier on a shared CPU)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    torch.manual_seed(args.seed)
    model = GPT(GPTConfig.preset(args.preset)).eval()
    bare, hf = stripped(model), hf_twin(model)
    g = torch.Generator().manual_seed(args.seed)
    idx = torch.randint(0, model.config.vocab_size, (args.batch, args.seq_len), generator=g)
    save = lambda a, hook: None  # noqa: E731  (a hook that only looks)

    def run_pattern():
        with model.hooks([(lambda n: n.endswith("hook_pattern"), save)]):
            return model(idx)[0]

    runs = {
        "gpt2lab": lambda: model(idx)[0],
        "gpt2lab, stripped": lambda: bare(idx)[0],
        "transformers": lambda: hf(idx).logits,
        "gpt2lab, pattern hooked": run_pattern,
    }
    with torch.no_grad():
        reference = runs["gpt2lab"]()
        for name, fn in runs.items():  # warm up, and check they compute the same thing
            assert (fn() - reference).abs().max() < 1e-3, name
        times = {name: [] for name in runs}
        for _ in range(args.rounds):
            for name, fn in runs.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)

    base = statistics.median(times["gpt2lab"])
    print(
        f"{args.preset}, batch {args.batch} × {args.seq_len} tokens, {args.rounds} alternating rounds, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"{'forward':<26}{'median ms':>10}{'min ms':>9}{'÷ gpt2lab':>11}")
    for name, ts in times.items():
        median = statistics.median(ts)
        print(f"{name:<26}{median * 1e3:>10.1f}{min(ts) * 1e3:>9.1f}{median / base:>11.3f}")
    ratio = base / statistics.median(times["gpt2lab, stripped"])
    print(f"hook points with no hook attached: gpt2lab / stripped = {ratio:.3f}")


if __name__ == "__main__":
    main()
