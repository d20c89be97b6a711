"""Parameters and training memory of a GPT, from its config, checked against the real thing.

Three questions, one function each:

- how many parameters, and where? `GPTConfig.param_counts()` is the arithmetic (no tensor
  allocated, so gpt2-xl costs nothing); `module_param_counts(model)` counts the same
  components on a built module (a `meta`-device one costs no memory either). GPT-2 small:

      >>> counts = GPTConfig.preset("gpt2").param_counts()
      >>> sum(counts.values()), counts["MLP"]          # 45.5 % of all, 66.6 % of non-embedding
      (124439808, 56669184)

- how much memory does a training step need? `training_memory(config, batch, block, dtype)`:
  weights, gradients, AdamW's two moments, autocast's weight copies, the activations kept
  for backward (tensor by tensor, as this model's blocks save them) and the logits with the
  loss's gradient;
- how much does it really take? `measure_training_peak(...)` runs two AdamW steps and
  reports `torch.cuda.max_memory_allocated` on a GPU, or the growth of the peak resident
  memory of a fresh CPU process.

Imports config and model only (the model for counting on a module and for measuring).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from gpt2lab.config import GPTConfig
from gpt2lab.errors import GPT2LabError
from gpt2lab.files import atomic_write, atomic_write_text
from gpt2lab.model import GPT

COMPONENTS = (
    "token embedding",
    "position embedding",
    "attention",
    "MLP",
    "layer norm",
    "output head",
)
EMBEDDINGS = ("token embedding", "position embedding", "output head")
DTYPES = ("float32", "float64", "bfloat16", "float16")
"""As `gpt2lab train --dtype`: float32/float64 weights and math, or float32 weights under a
bfloat16/float16 autocast."""

# ---------------------------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------------------------


def component_of(name: str) -> str:
    """The component a parameter belongs to, by its name in `GPT.named_parameters()`.

    'wte.weight' -> 'token embedding'; 'blocks.3.attn.c_attn.bias' -> 'attention';
    'blocks.0.mlp.c_fc.weight' -> 'MLP'; 'blocks.0.ln_2.weight', 'ln_f.bias' -> 'layer norm'.
    """
    if name.startswith("wte."):
        return "token embedding"
    if name.startswith("wpe."):
        return "position embedding"
    if name.startswith("lm_head."):
        return "output head"
    if ".attn." in name:
        return "attention"
    if ".mlp." in name:
        return "MLP"
    if ".ln_" in name or name.startswith("ln_f."):
        return "layer norm"
    raise GPT2LabError(f"parameter {name!r} belongs to no known component")


def module_param_counts(model: nn.Module) -> dict[str, int]:
    """Parameters per component of a built model; a tied matrix counted once, under the
    token embedding (`named_parameters` yields a shared tensor once, by its first name)."""
    counts = dict.fromkeys(COMPONENTS, 0)
    for name, p in model.named_parameters():
        counts[component_of(name)] += p.numel()
    return counts


def meta_model(config: GPTConfig) -> GPT:
    """The GPT of `config` on the meta device: every shape, no memory (gpt2-xl in a blink)."""
    with torch.device("meta"):
        return GPT(config)


def non_embedding(counts: dict[str, int]) -> int:
    return sum(n for c, n in counts.items() if c not in EMBEDDINGS)


# ---------------------------------------------------------------------------------------------
# The memory estimate
# ---------------------------------------------------------------------------------------------


def dtype_bytes(dtype: str) -> tuple[int, int]:
    """(bytes of a weight, bytes of an activation) for a training dtype.

    float32 -> (4, 4); float64 -> (8, 8); bfloat16 or float16 -> (4, 2): autocast keeps
    float32 weights (and the residual stream) and computes matmuls in 16 bits.
    """
    if dtype not in DTYPES:
        raise GPT2LabError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    weight = 8 if dtype == "float64" else 4
    return weight, 2 if dtype in ("bfloat16", "float16") else weight


def activation_bytes_per_token(config: GPTConfig, dtype: str = "float32") -> dict[str, int]:
    """Bytes kept for backward per token: {'blocks': ..., 'logits and loss': ...}.

    Per block, what autograd saves (counted with torch.autograd.graph.saved_tensors_hooks in
    tests/test_params.py), C = n_embd, F = the MLP width, s / a = weight / activation bytes:

        residual stream into ln_1 and ln_2            2·C·s
        ln_1 out, q k v, attention out (fused path)   5·C·a   (the out is already (B, T, C))
        ln_2 out, GELU in, GELU out                   (C + 2F)·a
        LayerNorm mean and 1/std, attention log-sum-exp   (4 + nh)·4

    After the blocks: ln_f's input (C·s), its two statistics (8) and lm_head's input (C·a),
    then per vocabulary entry the
    logits (a), their float32 log-probabilities (4, saved by the loss) and, at the start of
    backward, two float32 gradients of the loss (8). GPT-2 small in float32: 590,592 bytes
    per token in its 12 blocks, 810,264 in the logits and loss (50,257 entries × 16).
    Counts the default block (pre-norm, dropout 0, the fused attention of training); dropout
    adds its masks and the unfused attention T×T patterns, which this does not count.
    """
    s, a = dtype_bytes(dtype)
    C, F, V = config.n_embd, config.mlp_dim, config.vocab_size
    block = 2 * C * s + (6 * C + 2 * F) * a + (4 + config.n_head) * 4
    head = C * s + 8 + C * a + V * (a + 4 + 8)
    return {"blocks": config.n_layer * block, "logits and loss": head}


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes of one training step (AdamW, gradients kept until the optimizer step)."""

    batch_size: int
    block_size: int
    dtype: str
    weights: int
    gradients: int
    optimizer: int  # AdamW's exp_avg and exp_avg_sq, in the weights' dtype
    weight_copies: int  # autocast's 16-bit copy of every matrix, kept for backward
    activations: int  # saved by the blocks for backward
    logits: int  # logits, log-probabilities and the loss gradient

    @property
    def total(self) -> int:
        return (
            self.weights
            + self.gradients
            + self.optimizer
            + self.weight_copies
            + self.activations
            + self.logits
        )

    def rows(self) -> list[tuple[str, int]]:
        """(what, bytes) in the order of a table, the total last."""
        return [
            ("weights", self.weights),
            ("gradients", self.gradients),
            ("AdamW moments", self.optimizer),
            ("autocast weight copies", self.weight_copies),
            ("activations (blocks)", self.activations),
            ("logits and loss", self.logits),
            ("total", self.total),
        ]

    def to_dict(self) -> dict:
        return {**asdict(self), "total": self.total}


def training_memory(
    config: GPTConfig, batch_size: int, block_size: int, dtype: str = "float32"
) -> MemoryEstimate:
    """The memory of one training step of `batch_size` × `block_size` tokens.

    The total is the peak with gradients alive while the activations are (the case of
    gradient accumulation, or of `zero_grad(set_to_none=False)`); with `set_to_none=True`
    (the trainer's) the first micro-batch needs up to `gradients` less.

    >>> m = training_memory(GPTConfig.preset("gpt2"), 8, 1024)
    >>> round(m.total / 2**30, 1)   # GiB: 1.9 weights, gradients, AdamW; 10.7 activations
    12.5
    """
    if batch_size < 1 or block_size < 1:
        raise GPT2LabError("batch size and block size must be at least 1")
    counts = config.param_counts()
    n_params = sum(counts.values())
    s, a = dtype_bytes(dtype)
    matrices = counts["token embedding"] + counts["output head"]
    matrices += config.n_layer * (4 * config.n_embd**2 + 2 * config.n_embd * config.mlp_dim)
    tokens = batch_size * block_size
    per_token = activation_bytes_per_token(config, dtype)
    return MemoryEstimate(
        batch_size=batch_size,
        block_size=block_size,
        dtype=dtype,
        weights=n_params * s,
        gradients=n_params * s,
        optimizer=2 * n_params * s,
        weight_copies=matrices * a if uses_autocast(dtype) else 0,
        activations=tokens * per_token["blocks"],
        logits=tokens * per_token["logits and loss"],
    )


def largest_batch(
    config: GPTConfig, budget_bytes: int, block_size: int, dtype: str = "float32"
) -> int:
    """The largest batch of `block_size`-token sequences whose step fits `budget_bytes`
    (0 when not even one does). GPT-2 small in 16 GiB at 1024 tokens: 10 in float32, 14 in bfloat16."""
    one = training_memory(config, 1, block_size, dtype)
    fixed = one.total - one.activations - one.logits
    per_sequence = one.activations + one.logits
    return max(0, math.floor((budget_bytes - fixed) / per_sequence))


# ---------------------------------------------------------------------------------------------
# Measuring a real step
# ---------------------------------------------------------------------------------------------


def training_steps(
    config: GPTConfig,
    batch_size: int,
    block_size: int,
    dtype: str,
    device: torch.device,
    steps: int = 2,
    seed: int = 0,
) -> None:
    """Build the model on `device` and take `steps` AdamW steps on random tokens, gradients
    kept between steps (the case `training_memory` counts). Two steps: AdamW's moments
    exist only after the first."""
    weight = torch.float64 if dtype == "float64" else torch.float32
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, config.vocab_size, (batch_size, block_size), generator=g).to(device)
    y = torch.randint(0, config.vocab_size, (batch_size, block_size), generator=g).to(device)
    torch.manual_seed(seed)
    model = GPT(config).to(device=device, dtype=weight).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    autocast = torch.autocast(
        device.type, dtype=getattr(torch, dtype), enabled=uses_autocast(dtype)
    )
    for _ in range(steps):
        with autocast:
            _, loss = model(x, y)
        loss.backward()
        optimizer.step()


def uses_autocast(dtype: str) -> bool:
    """bfloat16 and float16 train under autocast (float32 weights, 16-bit matmuls)."""
    weight, activation = dtype_bytes(dtype)
    return activation < weight


def measure_training_peak(
    config: GPTConfig,
    batch_size: int,
    block_size: int,
    dtype: str = "float32",
    device: str = "cpu",
    seed: int = 0,
) -> int:
    """Peak bytes of two training steps, measured.

    cuda: `torch.cuda.max_memory_allocated` above what was allocated before the model.
    cpu: a fresh Python process takes the steps and reports how far its peak resident set rose
    above its resident set before them (`cpu_probe`), after one warm-up step of a 1-layer
    model has loaded the kernels. The
    process runs with glibc's mmap threshold fixed at 64 KiB so freed tensors go back to the
    system at once, as they do on a GPU; what remains is allocator overhead and the kernels'
    scratch buffers (a few MB).
    """
    dtype_bytes(dtype)  # a bad dtype is an error here, not in the child
    if torch.device(device).type == "cuda":
        dev = torch.device(device)
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        before = torch.cuda.memory_allocated(dev)
        training_steps(config, batch_size, block_size, dtype, dev, seed=seed)
        torch.cuda.synchronize(dev)
        return torch.cuda.max_memory_allocated(dev) - before
    if torch.device(device).type != "cpu":
        raise GPT2LabError(f"memory is measured on cpu or cuda, not {device}")
    job = json.dumps([config.to_dict(), batch_size, block_size, dtype, seed])
    env = {
        **os.environ,
        "MALLOC_MMAP_THRESHOLD_": "65536",
        "MALLOC_TRIM_THRESHOLD_": "0",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
    }
    code = f"from gpt2lab.params import cpu_probe; cpu_probe({job!r})"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise GPT2LabError(f"the measuring process failed: {last}")
    return int(done.stdout.strip().splitlines()[-1])


def cpu_probe(job: str) -> None:
    """The child of `measure_training_peak` on CPU: prints how far its peak resident set rose
    above its resident set just before the steps, in bytes.

    On Linux the kernel's high-water mark is reset first (`/proc/self/clear_refs` ← 5), so a
    peak left by the imports (which can be higher than the steps' own, e.g. when the parent's
    torch.compile left inductor settings in the environment) does not hide the steps' peak.
    Elsewhere `ru_maxrss` is read, which cannot be reset.
    """
    config, batch_size, block_size, dtype, seed = json.loads(job)
    config = GPTConfig.from_dict(config)
    cpu = torch.device("cpu")
    warm = GPTConfig(vocab_size=16, block_size=8, n_layer=1, n_head=1, n_embd=8)
    training_steps(warm, 1, 8, dtype, cpu, seed=seed)  # kernels and their one-off buffers
    before = reset_peak_rss()
    training_steps(config, batch_size, block_size, dtype, cpu, seed=seed)
    print(peak_rss() - before)


def reset_peak_rss() -> int:
    """Reset the peak resident set to the current one where the OS allows it (Linux); returns
    the bytes the peak is measured from (the current resident set, or the old peak)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return _proc_status_bytes("VmRSS")
    except OSError:
        return peak_rss()


def peak_rss() -> int:
    """The process's peak resident set in bytes (VmHWM on Linux, else ru_maxrss)."""
    try:
        return _proc_status_bytes("VmHWM")
    except OSError:
        import resource

        unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit


def _proc_status_bytes(field: str) -> int:
    """A 'kB' line of /proc/self/status in bytes: 'VmHWM:  123456 kB' -> 126418944."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise OSError(f"no {field} in /proc/self/status")


# ---------------------------------------------------------------------------------------------
# The report: params.md, params.json, params.png
# ---------------------------------------------------------------------------------------------


def params_report(
    config: GPTConfig,
    batch_size: int,
    block_size: int,
    dtype: str = "float32",
    budget_gib: float = 16.0,
    measured: int | None = None,
) -> dict:
    """Everything the report shows, JSON-able: counts from the config and from a meta-device
    module (they must agree), shares, the memory estimate, the largest batch that fits
    `budget_gib`, and the measured peak when given."""
    counts = config.param_counts()
    on_module = module_param_counts(meta_model(config))
    if on_module != counts:
        raise AssertionError(f"config arithmetic {counts} != module {on_module}")
    total, inner = sum(counts.values()), non_embedding(counts)
    memory = training_memory(config, batch_size, block_size, dtype)
    budget = int(budget_gib * 2**30)
    fits = {d: largest_batch(config, budget, block_size, d) for d in ("float32", "bfloat16")}
    return {
        "config": config.to_dict(),
        "params": counts,
        "total": total,
        "non_embedding": inner,
        "mlp_share_of_non_embedding": counts["MLP"] / inner if inner else 0.0,
        "mlp_share_of_total": counts["MLP"] / total,
        "memory": memory.to_dict(),
        "memory_rows": memory.rows(),
        "budget_gib": budget_gib,
        "largest_batch_in_budget": fits,
        "measured_peak": measured,
    }


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**28 else f"{n / 2**20:.1f} MiB"


def params_markdown(report: dict, name: str) -> str:
    counts, total, inner = report["params"], report["total"], report["non_embedding"]
    m = report["memory"]
    lines = [f"# Parameters and memory of {name}", "", "![](params.png)", ""]
    lines += ["| component | parameters | % of all | % of non-embedding |", "|---|---:|---:|---:|"]
    for c, n in counts.items():
        share = "" if c in EMBEDDINGS or not inner else f"{n / inner:.1%}"
        lines.append(f"| {c} | {n:,} | {n / total:.1%} | {share} |")
    lines += [
        f"| **total** | **{total:,}** | 100% | |",
        f"| non-embedding | {inner:,} | {inner / total:.1%} | 100% |",
        "",
        "Counted from the config (arithmetic) and on the module built on the meta device: equal. "
        + (
            "The output head is tied to the token embedding (counted once)."
            if not counts["output head"]
            else ""
        ),
        "",
        f"The MLPs hold **{report['mlp_share_of_non_embedding']:.1%}** of the non-embedding "
        f"parameters and **{report['mlp_share_of_total']:.1%}** of all.",
        "",
        f"## Training memory: batch {m['batch_size']} × {m['block_size']} tokens, {m['dtype']}",
        "",
        "| what | bytes | |",
        "|---|---:|---:|",
    ]
    lines += [f"| {what} | {n:,} | {_gib(n)} |" for what, n in report["memory_rows"]]
    lines += [
        "",
        "AdamW, gradients alive with the activations (gradient accumulation; the trainer's "
        "`set_to_none` spares up to the gradients' share on its first micro-batch). "
        "Activations are what autograd keeps for backward in the default block (fused "
        "attention, dropout 0); dropout > 0 adds masks and T×T patterns not counted here.",
        "",
    ]
    fits = report["largest_batch_in_budget"]
    lines.append(
        f"Largest batch of {m['block_size']}-token sequences whose step fits "
        f"{report['budget_gib']:g} GiB: **{fits['float32']}** in float32, "
        f"**{fits['bfloat16']}** with bfloat16 autocast."
    )
    if report["measured_peak"] is not None:
        measured = report["measured_peak"]
        lines += [
            "",
            f"Measured peak of two AdamW steps: {measured:,} bytes ({_gib(measured)}), "
            f"{measured / m['total']:.2f}× the estimate.",
        ]
    return "\n".join(lines) + "\n"


def write_params_report(report: dict, out: str | os.PathLike, name: str) -> Path:
    """params.md, params.json and params.png in `out` (written atomically); the .md's path."""
    from gpt2lab.plots.params import params_figure  # matplotlib only when drawing

    out = Path(out)
    fig = params_figure(
        report["params"], report["memory_rows"][:-1], f"{name}: {report['total']:,} parameters"
    )
    atomic_write(out / "params.png", lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    atomic_write_text(out / "params.json", json.dumps(report, indent=1) + "\n")
    return atomic_write_text(out / "params.md", params_markdown(report, name))
