"""Generation speed: gpt2lab's KV-cache decoding against `transformers` `generate`, same weights.

Both run the same random-init GPT-2 124M weights (fp32, CPU) on the same prompts with greedy
decoding, forced to produce every token (HF: min_new_tokens; gpt2lab: no stop token). The
two are measured alternately, `--repeats` times each, so a busy machine slows both alike;
medians are reported, of wall-clock time and of this process's CPU time (less sensitive to
other processes on a shared machine).

    python benchmarks/generate_speed.py            # all three measurements
    python benchmarks/generate_speed.py --repeats 7 --only decode

Measurements:
  decode   batch 1, 32-token prompt, 128 new tokens: tokens/s (target: >= 2x transformers)
  prefill  one 512-token prompt to its first new token: latency
  batch8   8 prompts of 32 tokens, 128 new tokens each: tokens/s over the batch
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

import torch

from gpt2lab.config import GPTConfig
from gpt2lab.generate import generate
from gpt2lab.model import GPT
from gpt2lab.pretrained import save_pretrained


def load_pair(preset: str, seed: int):
    """The same random-init weights as a gpt2lab GPT and a transformers GPT2LMHeadModel."""
    from transformers import GPT2LMHeadModel

    torch.manual_seed(seed)
    ours = GPT(GPTConfig.preset(preset)).eval()
    with tempfile.TemporaryDirectory() as directory:
        save_pretrained(ours, directory, format="hf")
        theirs = GPT2LMHeadModel.from_pretrained(directory).eval()
    return ours.use_inference_layout(), theirs  # as `gpt2lab generate` loads it on CPU


def run_ours(model, idx, new_tokens):
    return generate(model, idx, new_tokens, temperature=0)


def run_theirs(model, idx, new_tokens):
    with torch.inference_mode():
        return model.generate(
            idx,
            attention_mask=torch.ones_like(idx),
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            pad_token_id=0,
        )


def timed(fn, *args) -> tuple[float, float, torch.Tensor]:
    """(wall seconds, process CPU seconds, result) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu, out


def compare(name, ours, theirs, idx, new_tokens, repeats) -> dict:
    """Alternate the two implementations; return medians, tokens/s and the ratios."""
    run_ours(ours, idx[:, :8], 2)  # warm both up (allocator, kernels, lazy imports)
    run_theirs(theirs, idx[:, :8], 2)
    times = {"gpt2lab": [], "transformers": []}
    for _ in range(repeats):
        for label, fn, model in (
            ("gpt2lab", run_ours, ours),
            ("transformers", run_theirs, theirs),
        ):
            wall, cpu, out = timed(fn, model, idx, new_tokens)
            times[label].append((wall, cpu))
            assert out.shape == (idx.size(0), idx.size(1) + new_tokens), out.shape
    produced = idx.size(0) * new_tokens
    result = {"name": name, "batch": idx.size(0), "prompt": idx.size(1), "new_tokens": new_tokens}
    for label, samples in times.items():
        wall = statistics.median(w for w, _ in samples)
        cpu = statistics.median(c for _, c in samples)
        result[label] = {
            "wall_s": wall,
            "cpu_s": cpu,
            "tokens_per_s": produced / wall,
            "all_wall_s": [round(w, 4) for w, _ in samples],
        }
    result["speedup_wall"] = result["transformers"]["wall_s"] / result["gpt2lab"]["wall_s"]
    result["speedup_cpu"] = result["transformers"]["cpu_s"] / result["gpt2lab"]["cpu_s"]
    return result


def report(r: dict) -> str:
    ours, theirs = r["gpt2lab"], r["transformers"]
    return (
        f"{r['name']:8s} B={r['batch']} prompt={r['prompt']} new={r['new_tokens']}: "
        f"gpt2lab {ours['tokens_per_s']:.1f} tok/s ({ours['wall_s'] * 1e3:.0f} ms), "
        f"transformers {theirs['tokens_per_s']:.1f} tok/s ({theirs['wall_s'] * 1e3:.0f} ms); "
        f"speedup {r['speedup_wall']:.2f}x wall, {r['speedup_cpu']:.2f}x CPU time"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="gpt2", help="model shape (default: gpt2, 124M)")
    parser.add_argument("--repeats", type=int, default=5, help="alternating runs of each")
    parser.add_argument("--only", choices=("decode", "prefill", "batch8"), action="append")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch threads for both (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    ours, theirs = load_pair(args.preset, args.seed)
    vocab = ours.config.vocab_size
    g = torch.Generator().manual_seed(args.seed)
    cases = {
        "decode": (torch.randint(0, vocab, (1, 32), generator=g), 128),
        "prefill": (torch.randint(0, vocab, (1, 512), generator=g), 1),
        "batch8": (torch.randint(0, vocab, (8, 32), generator=g), 128),
    }
    print(
        f"{args.preset}, fp32, CPU, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"load average {os.getloadavg()[0]:.1f}; medians of {args.repeats} alternating runs"
    )
    results = []
    for name in args.only or list(cases):
        idx, new_tokens = cases[name]
        result = compare(name, ours, theirs, idx, new_tokens, args.repeats)
        if name == "prefill":
            for label in ("gpt2lab", "transformers"):
                result[label]["latency_ms"] = result[label]["wall_s"] * 1e3
        print(report(result), flush=True)
        results.append(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
