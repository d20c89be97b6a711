"""`--dtype auto`: bfloat16 where this machine multiplies it measurably faster, else float32.

bf16 autocast pays only where the hardware has bf16 matrix units (Intel AMX or AVX512-BF16
on a CPU, tensor cores on a GPU); elsewhere the casts cost more than the matmuls gain. So on
a CPU a short probe times the matmul a training step is made of — (1024, C) · (C, 4C) at
the model's width C, a few milliseconds — in both dtypes, and bfloat16 is chosen only when
it is at least `MARGIN` times faster. A CUDA GPU takes bfloat16 when it supports it, any
other device float32; each choice comes with one line saying why:

>>> choice = DtypeChoice("float32", "bfloat16 matmul 0.6× float32 here (needs 2×)", 95.0, 57.0)
>>> choice.record()["dtype"]
'float32'

The choice is made once, when a run starts, and written into its config.yaml (so `--resume`
continues in the same dtype) and, with the measured figures, into metrics.jsonl (kind
"dtype", step 0).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch

MARGIN = 2.0
"""How much faster bf16 matmuls must be than float32 for `auto` to choose bf16 on a CPU: the
rest of a step (casts, softmax, norms, the optimizer) does not get faster, so a small matmul
gain is eaten. On the development machine (AMX) the probe measures ≈ 10×."""
PROBE_ROWS = 1024


@dataclass
class DtypeChoice:
    """What `--dtype auto` chose, why, and the probe's figures (GFLOP/s; None: not probed)."""

    dtype: str
    reason: str
    float32_gflops: float | None = None
    bfloat16_gflops: float | None = None

    def record(self) -> dict[str, Any]:
        """The metrics.jsonl record of the choice."""
        return {
            "kind": "dtype",
            "step": 0,
            "dtype": self.dtype,
            "reason": self.reason,
            "float32_gflops": self.float32_gflops,
            "bfloat16_gflops": self.bfloat16_gflops,
        }


def matmul_gflops(
    device: torch.device, dtype: torch.dtype, width: int, rows: int = PROBE_ROWS, repeats: int = 5
) -> float:
    """Best-of GFLOP/s of (rows, width) · (width, 4·width) in `dtype`: an MLP's first matmul."""
    gen = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(rows, width, device=device, generator=gen).to(dtype)
    b = torch.randn(width, 4 * width, device=device, generator=gen).to(dtype)
    a @ b  # warm-up: library dispatch, kernel selection
    best = math.inf
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * rows * width * 4 * width / max(best, 1e-9) / 1e9


def choose_dtype(device: torch.device, width: int) -> DtypeChoice:
    """bfloat16 or float32 for training a model of width `width` on `device` (see above)."""
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return DtypeChoice("bfloat16", f"{torch.cuda.get_device_name(device)} supports bf16")
        return DtypeChoice("float32", "this GPU does not support bfloat16")
    if device.type != "cpu":
        return DtypeChoice("float32", f"--dtype auto probes CPUs and CUDA GPUs, not {device.type}")
    fp32 = matmul_gflops(device, torch.float32, width)
    try:
        bf16 = matmul_gflops(device, torch.bfloat16, width)
    except RuntimeError as err:  # a build or CPU without bf16 kernels
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        return DtypeChoice("float32", f"bfloat16 matmul failed on this CPU: {first}", fp32)
    ratio = bf16 / fp32
    if ratio >= MARGIN:
        reason = f"bfloat16 matmul {ratio:.1f}× float32 on this CPU (≥ {MARGIN:g}× needed)"
        return DtypeChoice("bfloat16", reason, fp32, bf16)
    reason = f"bfloat16 matmul only {ratio:.1f}× float32 on this CPU (needs {MARGIN:g}×)"
    return DtypeChoice("float32", reason, fp32, bf16)
