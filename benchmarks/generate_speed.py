"""Generation speed: gpt2lab's KV-cache decoding against `transformers` `generate`, same weights.

Both run the same random-init GPT-2 124M weights (fp32, CPU) on the same prompts with greedy
decoding, forced to produce every token (HF: min_new_tokens; gpt2lab: no stop token). The
runs are measured alternately, `--repeats` times each, so a busy machine slows all alike;
medians are reported, of wall-clock time and of this process's CPU time (less sensitive to
other processes on a shared machine).

    python benchmarks/generate_speed.py            # every measurement
    python benchmarks/generate_speed.py --repeats 7 --only decode
    python benchmarks/generate_speed.py --only floor --only quality --trained runs/NAME

Measurements:
  floor    the memory floor of batch-1 decoding: the time to read every weight matrix once,
           measured as a sweep of matrix-vector products over copies of the model's own
           linear layers (same shapes, dtype and layout; copies enough to leave the caches),
           against gpt2lab's median time per decoding step (goal: fp32 <= 1.25x the floor)
  decode   batch 1, 32-token prompt, 128 new tokens: tokens/s of gpt2lab fp32, bf16 and int8
           weights against transformers fp32 (goal: bf16 >= 2x)
  prefill  one 512-token prompt to its first new token: latency
  batch8   8 prompts of 32 tokens, 128 new tokens each: tokens/s over the batch
  quality  bf16 / int8 against fp32: greedy agreement (free-running and teacher-forced) on
           the 124M shape and, with --trained RUN, on a trained model, whose perplexity on
           its val text (--data) is compared too
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import tempfile
import time

import torch
from torch import nn

from gpt2lab.config import GPTConfig
from gpt2lab.evaluate import load_eval_tokens, perplexity, truncate
from gpt2lab.generate import SamplingConfig, generate, stream
from gpt2lab.model import GPT
from gpt2lab.pretrained import load_model_and_tokenizer, save_pretrained
from gpt2lab.quantize import LOW_PRECISION, greedy_agreement, to_decoding_dtype

LOW = tuple(LOW_PRECISION)  # ("bfloat16", "int8", "int8-dynamic")


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


def compare(name, runners, idx, new_tokens, repeats) -> dict:
    """Alternate the runners {label: (fn, model)}; return medians, tokens/s and the ratios
    of each to transformers."""
    for fn, model in runners.values():
        fn(model, idx[:, :8], 2)  # warm up (allocator, kernels, lazy imports)
    times = {label: [] for label in runners}
    for _ in range(repeats):
        for label, (fn, model) in runners.items():
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
    theirs = result["transformers"]
    for label in runners:
        if label != "transformers":
            result[label]["speedup_wall"] = theirs["wall_s"] / result[label]["wall_s"]
            result[label]["speedup_cpu"] = theirs["cpu_s"] / result[label]["cpu_s"]
    return result


def report(r: dict) -> str:
    theirs = r["transformers"]
    lines = [
        f"{r['name']:8s} B={r['batch']} prompt={r['prompt']} new={r['new_tokens']}: "
        f"transformers fp32 {theirs['tokens_per_s']:.1f} tok/s ({theirs['wall_s'] * 1e3:.0f} ms)"
    ]
    for label, ours in r.items():
        if isinstance(ours, dict) and "speedup_wall" in ours:
            lines.append(
                f"  {label:20s} {ours['tokens_per_s']:.1f} tok/s ({ours['wall_s'] * 1e3:.0f} ms); "
                f"vs transformers {ours['speedup_wall']:.2f}x wall, {ours['speedup_cpu']:.2f}x CPU"
            )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The memory floor
# ---------------------------------------------------------------------------------------------

LINEARS = (nn.Linear, *LOW_PRECISION.values())


def weight_layers(model: GPT) -> list[nn.Module]:
    """The layers whose whole weight matrix a decoding step reads: every linear layer of
    the blocks and the LM head (the embeddings contribute one row each, not counted)."""
    return [m for m in model.modules() if isinstance(m, LINEARS)]


def stored_bytes(layer: nn.Module) -> int:
    """Bytes of a layer's weights, bias and scales, as stored."""
    tensors = [*layer.parameters(recurse=False), *layer.buffers(recurse=False)]
    if hasattr(layer, "packed"):  # int8-dynamic: fbgemm's packed int8 matrix, scales, bias
        weight, bias = torch.ops.quantized.linear_unpack(layer.packed)
        tensors += [weight.int_repr(), weight.q_per_channel_scales()]
        tensors += [bias] if bias is not None else []
    return sum(t.numel() * t.element_size() for t in tensors)


def step_times(model: GPT, idx: torch.Tensor, new_tokens: int) -> list[float]:
    """Wall seconds of each decoding step after the first (the first includes the prompt)."""
    stamps = [time.perf_counter()]
    for _ in stream(model, idx, new_tokens, SamplingConfig(temperature=0)):
        stamps.append(time.perf_counter())
    return [b - a for a, b in zip(stamps[1:-1], stamps[2:])]


def floor_vs_decode(model: GPT, idx, new_tokens, repeats, min_bank_bytes=1.0e9) -> dict:
    """The memory floor (ms/token) of the model's weight layout, measured alternately with
    the model's median decoding step.

    The floor sweep multiplies one (1, 1, in) vector by copies of every weight layer (the
    same module class, so the same kernel, dtype and layout as decoding uses) until the bank
    holds at least `min_bank_bytes` (beyond the caches); floor = sweep time / copies.
    """
    layers = weight_layers(model)
    per_token = sum(stored_bytes(layer) for layer in layers)
    copies = max(2, -(-int(min_bank_bytes) // per_token))
    bank = [copy.deepcopy(layer) for _ in range(copies) for layer in layers]
    inputs = {}
    for layer in layers:
        n_in = layer.in_features
        inputs[id(layer)] = torch.randn(1, 1, n_in)
    order = [inputs[id(layer)] for _ in range(copies) for layer in layers]
    sweeps, steps = [], []
    with torch.inference_mode():
        for layer, x in zip(bank, order):  # warm up
            layer(x)
        for _ in range(repeats):
            start = time.perf_counter()
            for layer, x in zip(bank, order):
                layer(x)
            sweeps.append((time.perf_counter() - start) / copies)
            steps.extend(step_times(model, idx, new_tokens))
    floor, step = statistics.median(sweeps), statistics.median(steps)
    return {
        "weight_bytes_per_token": per_token,
        "bandwidth_GBps": per_token / floor / 1e9,
        "floor_ms": floor * 1e3,
        "step_ms": step * 1e3,
        "step_over_floor": step / floor,
        "bank_copies": copies,
    }


def floor_report(label: str, r: dict) -> str:
    return (
        f"floor    {label:12s} {r['weight_bytes_per_token'] / 1e6:.0f} MB of weights per token "
        f"/ {r['bandwidth_GBps']:.1f} GB/s (mat-vec sweep) = floor {r['floor_ms']:.1f} ms/token; "
        f"gpt2lab {r['step_ms']:.1f} ms/token = {r['step_over_floor']:.2f}x the floor"
    )


# ---------------------------------------------------------------------------------------------
# Quality: greedy agreement and perplexity
# ---------------------------------------------------------------------------------------------


def quality(model, label, prompts, new_tokens, tokens=None) -> dict:
    """Greedy agreement of each low-precision copy with `model`; Δ perplexity on `tokens`."""
    result = {"model": label, "prompts": prompts.size(0), "new_tokens": new_tokens}
    base = perplexity(model, tokens) if tokens is not None else None
    if base is not None:
        result["float32"] = {"perplexity": base.perplexity}
    for dtype in LOW:
        low = to_decoding_dtype(copy.deepcopy(model), dtype)
        agreement = greedy_agreement(model, low, prompts, new_tokens)
        result[dtype] = {
            "free_running": agreement.free_running,
            "teacher_forced": agreement.teacher_forced,
        }
        if base is not None:
            ppl = perplexity(low, tokens).perplexity
            result[dtype].update(perplexity=ppl, delta_perplexity=ppl - base.perplexity)
    return result


def quality_report(r: dict) -> str:
    lines = [f"quality  {r['model']}: {r['prompts']} prompts x {r['new_tokens']} greedy tokens"]
    if "float32" in r:
        lines[0] += f"; fp32 perplexity {r['float32']['perplexity']:.4f}"
    for dtype in LOW:
        q = r[dtype]
        line = (
            f"  {dtype:12s} agreement with fp32: {q['free_running']:.3f} free-running, "
            f"{q['teacher_forced']:.3f} teacher-forced"
        )
        if "perplexity" in q:
            line += f"; perplexity {q['perplexity']:.4f} ({q['delta_perplexity']:+.4f})"
        lines.append(line)
    return "\n".join(lines)


def val_prompts(tokens, n: int, length: int, seed: int) -> torch.Tensor:
    """n prompts (n, length) cut from random places of a token stream."""
    ids = torch.from_numpy(tokens.ids.astype("int64"))
    g = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, ids.numel() - length, (n,), generator=g)
    return torch.stack([ids[s : s + length] for s in starts.tolist()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="gpt2", help="model shape (default: gpt2, 124M)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs of each")
    parser.add_argument(
        "--only", choices=("floor", "decode", "prefill", "batch8", "quality"), action="append"
    )
    parser.add_argument("--trained", help="a trained run/model dir for the quality section")
    parser.add_argument("--data", default="data/stories-4096", help="its val text (shard dir)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch threads for both (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    ours, theirs = load_pair(args.preset, args.seed)
    low = {dtype: to_decoding_dtype(copy.deepcopy(ours), dtype) for dtype in LOW}
    vocab = ours.config.vocab_size
    g = torch.Generator().manual_seed(args.seed)
    cases = {
        "decode": (torch.randint(0, vocab, (1, 32), generator=g), 128),
        "prefill": (torch.randint(0, vocab, (1, 512), generator=g), 1),
        "batch8": (torch.randint(0, vocab, (8, 32), generator=g), 128),
    }
    print(
        f"{args.preset}, CPU, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"load average {os.getloadavg()[0]:.1f}; medians of {args.repeats} alternating runs"
    )
    results = []
    for name in args.only or ["floor", "decode", "prefill", "batch8", "quality"]:
        if name == "floor":
            idx, new_tokens = cases["decode"]
            for label, model in {"float32": ours, **low}.items():
                result = floor_vs_decode(model, idx, new_tokens, args.repeats)
                print(floor_report(label, result), flush=True)
                results.append({"name": "floor", "dtype": label, **result})
            continue
        if name == "quality":
            prompts = torch.randint(0, vocab, (4, 16), generator=g)
            result = quality(ours, f"random-init {args.preset}", prompts, 32)
            print(quality_report(result), flush=True)
            results.append({"name": "quality", **result})
            if args.trained:
                model, tokenizer, _ = load_model_and_tokenizer(args.trained, "cpu")
                val = truncate(load_eval_tokens(args.data, tokenizer), 20_000, tokenizer)
                prompts = val_prompts(val, 32, 16, args.seed)
                result = quality(model, args.trained, prompts, 64, val)
                print(quality_report(result), flush=True)
                results.append({"name": "quality", **result})
            continue
        idx, new_tokens = cases[name]
        runners = {"gpt2lab fp32": (run_ours, ours), "transformers": (run_theirs, theirs)}
        if name == "decode":
            runners = {
                "gpt2lab fp32": (run_ours, ours),
                **{f"gpt2lab {dtype}": (run_ours, model) for dtype, model in low.items()},
                "transformers": (run_theirs, theirs),
            }
        result = compare(name, runners, idx, new_tokens, args.repeats)
        print(report(result), flush=True)
        results.append(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
