"""Comparing two traces point by point, relative to each reference tensor's scale."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from gpt2lab.errors import GPT2LabError
from gpt2lab.trace.points import Trace, point_order

TOLERANCES = {torch.float32: (1e-4, 1e-8), torch.float64: (1e-10, 1e-14)}
"""dtype -> default (rtol, atol). Two float32 implementations of GPT-2 agree to about 1e-6 of
each tensor's largest value (up to 5e-5 where softmaxes saturate); float64 ones to about 1e-15
(docs/verification.md). A bug smaller than float32's margin (GELU's exact erf form for its tanh
approximation moves an output by at most 4.7e-4) shows clearly in float64."""
RTOL, ATOL = TOLERANCES[torch.float32]


def _finite(value: float | None) -> float | None:
    """JSON has no inf or nan: those become null (the row's "ok" says what happened)."""
    return value if value is not None and math.isfinite(value) else None


@dataclass(frozen=True)
class PointDiff:
    """One point of two traces. `tolerance` = atol + rtol * scale, scale = max |b|."""

    name: str
    shape_a: tuple[int, ...]
    shape_b: tuple[int, ...]
    max_abs_diff: float  # inf when the shapes differ, nan when a value is nan
    scale: float
    tolerance: float
    worst_index: tuple[int, ...] | None  # where |a - b| is largest
    a_at_worst: float | None
    b_at_worst: float | None

    @property
    def ok(self) -> bool:
        return self.shape_a == self.shape_b and self.max_abs_diff <= self.tolerance

    def to_dict(self) -> dict:
        return {
            "point": self.name,
            "shape_a": list(self.shape_a),
            "shape_b": list(self.shape_b),
            "max_abs_diff": _finite(self.max_abs_diff),
            "scale": _finite(self.scale),
            "tolerance": _finite(self.tolerance),
            "worst_index": None if self.worst_index is None else list(self.worst_index),
            "a_at_worst": _finite(self.a_at_worst),
            "b_at_worst": _finite(self.b_at_worst),
            "ok": self.ok,
        }


def diff_point(name: str, a: torch.Tensor, b: torch.Tensor, rtol: float, atol: float):
    """Compare one point in float64; a shape mismatch is a divergence of its own."""
    scale = float(b.double().abs().max()) if b.numel() else 0.0
    tolerance = atol + rtol * scale
    if a.shape != b.shape:
        return PointDiff(
            name, tuple(a.shape), tuple(b.shape), math.inf, scale, tolerance, None, None, None
        )
    delta = (a.double().cpu() - b.double().cpu()).abs()
    flat = int(delta.nan_to_num(math.inf).argmax())  # a nan counts as the worst
    worst = tuple(int(i) for i in np.unravel_index(flat, tuple(delta.shape)))
    return PointDiff(
        name,
        tuple(a.shape),
        tuple(b.shape),
        float(delta.flatten()[flat]),
        scale,
        tolerance,
        worst,
        float(a[worst]),
        float(b[worst]),
    )


@dataclass
class TraceDiff:
    """Every point both traces hold, compared in execution order."""

    rows: list[PointDiff]
    only_a: list[str]  # points one side did not record (e.g. no module to tap)
    only_b: list[str]
    rtol: float
    atol: float
    label_a: str = "A"  # what each side is, for the report
    label_b: str = "B"

    @property
    def first(self) -> PointDiff | None:
        """The first point beyond tolerance, or None when all agree."""
        return next((r for r in self.rows if not r.ok), None)

    def to_dict(self) -> dict:
        first = self.first
        return {
            "a": self.label_a,
            "b": self.label_b,
            "rule": "max|a - b| <= atol + rtol * max|b|",
            "rtol": self.rtol,
            "atol": self.atol,
            "first_divergence": None if first is None else first.name,
            "points": [r.to_dict() for r in self.rows],
            "only_in_a": self.only_a,
            "only_in_b": self.only_b,
        }


def check_tolerances(rtol: float, atol: float) -> None:
    if not (0 <= rtol < math.inf and 0 <= atol < math.inf):
        raise GPT2LabError(f"tolerances must be finite and >= 0, got rtol={rtol}, atol={atol}")


def diff_traces(
    a: Trace,
    b: Trace,
    rtol: float = RTOL,
    atol: float = ATOL,
    labels: tuple[str, str] = ("A", "B"),
) -> TraceDiff:
    """Compare two traces at every point they share; b is the reference (its scale sets the
    tolerance). `labels` say what A and B are, for the report."""
    check_tolerances(rtol, atol)
    shared = sorted(set(a) & set(b), key=point_order)
    rows = [diff_point(name, a[name], b[name], rtol, atol) for name in shared]
    only_a = sorted(set(a) - set(b), key=point_order)
    only_b = sorted(set(b) - set(a), key=point_order)
    return TraceDiff(rows, only_a, only_b, rtol, atol, *labels)


def first_divergence(a: Trace, b: Trace, rtol: float = RTOL, atol: float = ATOL):
    """The first point where two traces differ beyond tolerance (a PointDiff), or None."""
    return diff_traces(a, b, rtol, atol).first
