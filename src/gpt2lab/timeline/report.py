"""timeline.md, timeline.json and timeline.png of a `Timeline` (`write_timeline`)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from gpt2lab.timeline.build import Timeline
from gpt2lab.timeline.slopes import SlopeChange


def write_timeline(timeline: Timeline, out: str | Path) -> Path:
    """timeline.png, timeline.json and timeline.md in `out` (each written atomically);
    returns timeline.md's path."""
    from gpt2lab.files import atomic_write, atomic_write_text
    from gpt2lab.plots.timeline import timeline_figure

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    c, points = timeline.curve, timeline.checkpoints
    figure = timeline_figure(
        train=(c.train_steps, c.train_losses),
        fitted=(c.fit.steps, c.fit.fitted),
        changes=[ch.step for ch in c.fit.changes],
        val=(c.val_steps, c.val_losses),
        checkpoints=([p.step for p in points], [p.val_loss for p in points]),
        role_scores={r.role: [p.role_score(r.role) for p in points] for r in points[0].roles},
        cloze=[p.cloze_accuracy for p in points],
        names=([p.said_name_loss for p in points], [p.new_name_loss for p in points]),
        log_step=c.fit.log_step,
    )
    atomic_write(out / "timeline.png", lambda tmp: figure.savefig(tmp, format="png", dpi=110))
    atomic_write_text(out / "timeline.json", json.dumps(timeline.to_dict(), indent=1) + "\n")
    return atomic_write_text(out / "timeline.md", timeline_markdown(timeline, "timeline.png"))


def slope_text(change: SlopeChange, log_step: bool) -> str:
    """'step 287: −0.0120 → −0.0030 per 100 steps' (per doubling of steps in log steps)."""
    if log_step:
        unit, scale = "per doubling of steps", math.log(2)
    else:
        unit, scale = "per 100 steps", 100.0
    return (
        f"step {change.step:.0f}: {change.slope_before * scale:+.3f} → "
        f"{change.slope_after * scale:+.3f} {unit}"
    )


def cell(text: str, limit: int | None = None) -> str:
    """Text safe in a Markdown table cell: one line, `|` escaped, cut at `limit` characters."""
    text = " ".join(text.split()).replace("|", "\\|")
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def what_changed(timeline: Timeline, change: SlopeChange) -> str:
    """One Markdown bullet: the slope change and the checkpoints on either side of it."""
    head = f"- **{slope_text(change, timeline.curve.fit.log_step)}**"
    before, after = timeline.around(change)
    if before is None or after is None:
        return head + ": no kept checkpoint on " + ("its left" if before is None else "its right")
    parts = [f"val loss {before.val_loss:.3f} → {after.val_loss:.3f}"]
    parts.append(f"cloze {before.cloze_accuracy:.2f} → {after.cloze_accuracy:.2f}")
    if before.said_name_loss is not None and after.said_name_loss is not None:
        parts.append(f"names said before {before.said_name_loss:.2f} → {after.said_name_loss:.2f}")
    parts += [f"{r.role} {r.score:.2f} → {after.role_score(r.role):.2f}" for r in before.roles]
    return f"{head}, checkpoints {before.step} → {after.step}: " + ", ".join(parts)


def name_cell(said: float | None, new: float | None) -> str:
    """'3.23 / 5.51', with '–' for a loss not measured."""
    return " / ".join("–" if v is None else f"{v:.2f}" for v in (said, new))


def timeline_markdown(timeline: Timeline, image: str) -> str:
    c, points, s = timeline.curve, timeline.checkpoints, timeline.settings
    roles = [r.role for r in points[0].roles]
    lines = [
        f"# Training timeline of `{c.run_dir}`",
        "",
        f"![loss, slope changes and probe scores per checkpoint]({image})",
        "",
        "## Slope changes of the train loss",
        "",
        f"A continuous piecewise-linear fit of the train loss ({len(c.fit.steps)} points, "
        f"{'ln(step)' if c.fit.log_step else 'step'} on the x axis), a bend kept only when it "
        "pays for itself (gpt2lab.timeline.slope_changes).",
        "",
    ]
    changes = c.fit.changes
    lines += [f"- {slope_text(ch, c.fit.log_step)}" for ch in changes] or [
        "- none: one straight segment fits the curve as well as any bent one."
    ]
    lines += ["", "## What changed around each slope change", ""]
    lines += [what_changed(timeline, ch) for ch in changes] or ["- no slope change to look at."]
    lines += [
        "",
        "## Checkpoints",
        "",
        f"val loss: {s['val_batches']} val batches of {s['batch_size']} × {s['block_size']} "
        f"tokens from `{s['data']}`; role scores: the best head per role on {s['probe_texts']} "
        f"packed texts of {s['probes']} stories probes (heads passing the threshold in "
        "brackets); cloze: the right word of agreement and object-pronoun probes more likely "
        f'than the wrong one; sample: "{cell(s["prompt"])}", seed {s["seed"]}, '
        "temperature 0.8, top-k 40; names: the loss on names already said in a held-out "
        "story / said there first (a model that copies the names it has read scores the "
        "first far lower). ◆ marks the first checkpoint after a slope change.",
        "",
        "| step | val loss | slope change | "
        + " | ".join(roles)
        + " | cloze | names: said before / first | sample |",
        "|---:|---:|---|" + "---:|" * len(roles) + "---:|---:|---|",
    ]
    for i, p in enumerate(points):
        marks = "; ".join(f"◆ {ch.step:.0f}" for ch in timeline.changes_at(i))
        scores = " | ".join(f"{r.score:.2f} ({r.heads})" for r in p.roles)
        lines.append(
            f"| {p.step} | {p.val_loss:.3f} | {marks} | {scores} | {p.cloze_accuracy:.2f} | "
            f"{name_cell(p.said_name_loss, p.new_name_loss)} | {cell(p.sample, 90)} |"
        )
    lines += ["", "## Samples", ""]
    for p in points:
        lines += [f"**step {p.step}**", "", f"> {cell(p.sample)}", ""]
    return "\n".join(lines)
