"""What a person reads: one line per point, the verdict, trace.md and trace.json."""

from __future__ import annotations

import json
from pathlib import Path

from gpt2lab.files import atomic_write, atomic_write_text
from gpt2lab.trace.diff import PointDiff, TraceDiff
from gpt2lab.trace.points import POINT_LAYOUTS


def format_shape(row: PointDiff) -> str:
    shape = lambda s: "×".join(map(str, s)) or "scalar"  # noqa: E731
    if row.shape_a == row.shape_b:
        return shape(row.shape_a)
    return f"A {shape(row.shape_a)} / B {shape(row.shape_b)}"


def describe(row: PointDiff) -> str:
    """One line about a point: 'blocks.0.attn.scores 2×4×8×8: max |Δ| 3.1e-01 > tolerance
    1.2e-06 at (0, 1, 5, 3): A 0.4121, B 0.1030'."""
    if row.shape_a != row.shape_b:
        return f"{row.name}: shapes differ ({format_shape(row)})"
    verdict = "<=" if row.ok else ">"
    text = (
        f"{row.name} {format_shape(row)}: max |Δ| {row.max_abs_diff:.2e} {verdict} tolerance "
        f"{row.tolerance:.2e}"
    )
    if row.worst_index is not None:
        text += f" at {row.worst_index}: A {row.a_at_worst:.6g}, B {row.b_at_worst:.6g}"
    return text


def summary(diff: TraceDiff) -> str:
    """The line the command prints: the first divergence, or that every point agrees."""
    first = diff.first
    if first is not None:
        return "first divergence: " + describe(first)
    if not diff.rows:
        return "no point in common to compare"
    worst = max(diff.rows, key=lambda r: r.max_abs_diff / r.tolerance)
    return (
        f"all {len(diff.rows)} points agree; closest to its tolerance: {worst.name} "
        f"(max |Δ| {worst.max_abs_diff:.2e}, tolerance {worst.tolerance:.2e})"
    )


def trace_markdown(diff: TraceDiff, setup: str) -> str:
    """trace.md: what was compared, the verdict, and one table row per point."""
    lines = [
        "# Layer-by-layer diff",
        "",
        f"- A: {diff.label_a}",
        f"- B: {diff.label_b}",
        f"- {setup}",
        f"- A point agrees when max |A - B| ≤ atol + rtol · max |B| "
        f"(rtol {diff.rtol:g}, atol {diff.atol:g}).",
        "",
        f"**{summary(diff)}**",
        "",
        "![max |Δ| / tolerance per point](trace.png)",
        "",
        "| point | shape | max \\|Δ\\| | tolerance | ok |",
        "|---|---|---:|---:|:---:|",
    ]
    for r in diff.rows:
        mark = "yes" if r.ok else "**NO**"
        lines.append(
            f"| `{r.name}` | {format_shape(r)} | {r.max_abs_diff:.2e} | {r.tolerance:.2e} | "
            f"{mark} |"
        )
    for side, names in (("A", diff.only_a), ("B", diff.only_b)):
        if names:
            lines += ["", f"Recorded by {side} only (not compared): {', '.join(names)}."]
    lines += [
        "",
        "Layouts (B batch, T tokens, nh heads, hs head size, C width, F MLP width, V vocabulary):",
        "",
    ]
    lines += [f"- `{point}`: {layout}" for point, layout in POINT_LAYOUTS.items()]
    return "\n".join(lines) + "\n"


def write_trace_report(diff: TraceDiff, out: Path, setup: str) -> tuple[Path, Path]:
    """trace.md, trace.json and trace.png in `out` (an existing folder), each written
    atomically; returns the paths of the first two."""
    from gpt2lab.plots.trace import trace_figure  # matplotlib only when drawing

    record = diff.to_dict() | {"setup": setup}
    fig = trace_figure(
        [r.name for r in diff.rows],
        [r.max_abs_diff for r in diff.rows],
        [r.tolerance for r in diff.rows],
        f"{diff.label_a} vs {diff.label_b}",
    )
    atomic_write(out / "trace.png", lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    return (
        atomic_write_text(out / "trace.md", trace_markdown(diff, setup)),
        atomic_write_text(out / "trace.json", json.dumps(record, indent=1) + "\n"),
    )
