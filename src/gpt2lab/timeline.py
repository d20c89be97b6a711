"""The training timeline: what changed at step N (`gpt2lab timeline runs/NAME`).

A run trained with `--keep-every N` keeps a checkpoint every N steps. The timeline puts, for
each kept checkpoint, side by side:

    val loss      recomputed from the checkpoint: the run's first `eval_iters` val batches of
                  batch_size × block_size tokens, in order — the trainer's own evaluation, so
                  at a step that was evaluated it equals metrics.jsonl's val_loss (for a run
                  of one process in float32; a multi-GPU run evaluated other batches per rank)
    sample        the run's sample prompt continued as training does (temperature 0.8, top-k
                  40, the run's seed): the text samples.txt holds at that step, if one was due
    head roles    for each role of `interp.heads.ROLE_RULES`, the best score any head reaches
                  on the stories probes, and how many heads pass the role's threshold
    cloze         `evaluate.cloze_score` on the same probes: the right word (" were" / " was",
                  " her" / " him") more likely than the wrong one

and, over the whole train-loss curve, the steps where its slope changed (`slope_changes`).

    >>> timeline = build_timeline("runs/NAME")                       # doctest: +SKIP
    >>> [(c.step, round(c.val_loss, 2)) for c in timeline.checkpoints]  # doctest: +SKIP
    [(50, 4.12), (100, 3.31), ...]

`loss_curve(run)` (cheap: metrics.jsonl only) and `checkpoint_summary(run, step)` (seconds:
one checkpoint) are the two halves, for a viewer that fills a step slider lazily;
`build_timeline` is both, and `write_timeline` its timeline.md, timeline.json, timeline.png.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gpt2lab.errors import GPT2LabError

# ---------------------------------------------------------------------------------------------
# 1. Where the slope of a loss curve changes (pure NumPy)
# ---------------------------------------------------------------------------------------------

KNOT_PRICE = 3.0
"""A knot (a slope change) is kept when it lowers n·ln(RSS) by more than KNOT_PRICE·ln(n):
BIC's price for its two parameters (where, and by how much) is 2·ln(n); the knot's place is
also searched among n candidates, which BIC does not count, hence the stricter 3 (on a straight
line plus Gaussian noise, 2 finds a spurious knot in about 3 of 100 seeds, 3 in none)."""


@dataclass(frozen=True)
class SlopeChange:
    """Two fitted segments meet at `step`; slopes in loss per step (or per unit of ln step
    when the fit was in log steps)."""

    step: float
    slope_before: float
    slope_after: float

    @property
    def ratio(self) -> float:
        """slope_after / slope_before: 0.25 = the descent slowed to a quarter."""
        return self.slope_after / self.slope_before if self.slope_before else math.inf


@dataclass
class SlopeFit:
    """The curve as fitted: the (binned) points, the continuous piecewise-linear fit through
    them, and where its segments meet."""

    steps: list[float]
    smoothed: list[float]
    fitted: list[float]
    changes: list[SlopeChange]
    log_step: bool


def bin_means(steps, values, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Finite (step, value) points, averaged in consecutive bins of (nearly) equal count so
    that at most `max_points` remain (fewer points are returned as they are).

    A bin mean lowers the noise without making neighbours correlated, as a moving average or
    an EMA would (and correlated residuals make every wiggle look significant to a fit).
    bin_means([1, 2, 3, 4], [4, 2, 3, 1], 2) -> ([1.5, 3.5], [3.0, 2.0]).
    """
    steps, values = np.asarray(steps, dtype=float), np.asarray(values, dtype=float)
    finite = np.isfinite(steps) & np.isfinite(values)
    steps, values = steps[finite], values[finite]
    if len(steps) <= max_points:
        return steps, values
    edges = np.linspace(0, len(steps), max_points + 1).round().astype(int)
    pairs = list(zip(edges[:-1], edges[1:]))
    return (
        np.array([steps[a:b].mean() for a, b in pairs]),
        np.array([values[a:b].mean() for a, b in pairs]),
    )


def hinge_design(x: np.ndarray, knots: list[float]) -> np.ndarray:
    """(n, 2 + K) columns 1, x, max(0, x − knot_k): a line that bends at each knot."""
    return np.column_stack([np.ones_like(x), x, *[np.maximum(0.0, x - k) for k in knots]])


def hinge_fit(x: np.ndarray, y: np.ndarray, knots: list[float]) -> tuple[np.ndarray, float]:
    """Least squares of y = a + b·x + Σ_k d_k·max(0, x − knot_k): a line that bends by d_k at
    each knot, continuous. Returns (coefficients [a, b, d_1, …], residual sum of squares)."""
    design = hinge_design(x, knots)  # (n, 2 + K)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)  # (2 + K,)
    residual = y - design @ coef  # (n,)
    return coef, float(residual @ residual)


def best_knot(
    u: np.ndarray, y: np.ndarray, knots: list[float], min_points: int
) -> tuple[float, float] | None:
    """(rss, knot): the point of `u` that, added to `knots`, fits best while leaving at least
    `min_points` points between any two knots and the ends; None when no point is free."""
    n, best = len(u), None
    for i in range(min_points, n - min_points):
        marks = np.sort(np.searchsorted(u, [*knots, u[i]]))
        if np.diff(np.concatenate([[0], marks, [n]])).min() < min_points:
            continue
        _, rss = hinge_fit(u, y, [*knots, float(u[i])])
        if best is None or rss < best[0]:
            best = (rss, float(u[i]))
    return best


def refine_knots(
    u: np.ndarray, y: np.ndarray, knots: list[float], min_points: int
) -> tuple[list[float], float]:
    """Move each knot in turn to its best place given the others, until none moves (at most
    10 rounds): a knot placed first between two true bends moves onto one of them."""
    knots = list(knots)
    for _ in range(10):
        moved = False
        for j in range(len(knots)):
            others = knots[:j] + knots[j + 1 :]
            _, place = best_knot(u, y, others, min_points) or (None, knots[j])
            moved |= place != knots[j]
            knots[j] = place
        if not moved:
            break
    return sorted(knots), hinge_fit(u, y, knots)[1]


def slope_changes(
    steps,
    losses,
    *,
    log_step: bool = False,
    max_points: int = 200,
    min_points: int = 5,
    max_changes: int = 5,
) -> SlopeFit:
    """Where the loss curve's slope changes: a continuous piecewise-linear fit, knots added
    while each pays for itself.

    1. smoothing: `bin_means` to at most `max_points` points (the records as they are when
       fewer); with `log_step` the x axis is ln(step) (a loss that falls by the same amount
       per doubling of steps is then a straight line);
    2. knots: the best new knot (`best_knot`: the smallest residual sum of squares of
       `hinge_fit`, at least `min_points` points from the ends and the other knots), then
       every knot moved to its best place given the others (`refine_knots`); kept if the
       fit lowered n·ln(RSS) by more than KNOT_PRICE·ln(n); repeated at most `max_changes`
       times. Noise below 1e-6 of the curve's magnitude counts as none.

    Deterministic (no random start). Example: 100 points of 5 − 0.004·s, bending to slope
    −0.001 at s = 300, plus N(0, 0.05) noise -> one change near step 300 (−0.004 -> −0.001);
    a straight line plus the same noise -> none (tests/timeline/test_slopes.py).
    """
    s, y = bin_means(steps, losses, max_points)
    if log_step:
        keep = s > 0
        s, y = s[keep], y[keep]
    x = np.log(s) if log_step else s
    n = len(x)
    if n < 2:
        return SlopeFit(s.tolist(), y.tolist(), y.tolist(), [], log_step)
    x0, width = x[0], max(x[-1] - x[0], 1e-12)
    u = (x - x0) / width  # [0, 1]: a well-conditioned design
    floor = n * (1e-6 * max(float(np.ptp(y)), float(np.abs(y).max()), 1e-12)) ** 2
    knots: list[float] = []
    _, rss = hinge_fit(u, y, knots)
    while len(knots) < max_changes:
        found = best_knot(u, y, knots, min_points)
        if found is None:
            break
        candidate, candidate_rss = refine_knots(u, y, [*knots, found[1]], min_points)
        gain = n * math.log(max(rss, floor) / max(candidate_rss, floor))
        if gain <= KNOT_PRICE * math.log(n):
            break
        knots, rss = candidate, candidate_rss
    coef, _ = hinge_fit(u, y, knots)
    slopes = np.cumsum(coef[1:]) / width  # slope of each segment, per unit of x
    changes = [
        SlopeChange(
            float(np.exp(x0 + k * width) if log_step else x0 + k * width),
            float(slopes[i]),
            float(slopes[i + 1]),
        )
        for i, k in enumerate(knots)
    ]
    fitted = hinge_design(u, knots) @ coef  # (n,)
    return SlopeFit(s.tolist(), y.tolist(), fitted.tolist(), changes, log_step)


# ---------------------------------------------------------------------------------------------
# 2. A run's curve and checkpoints (cheap: files only)
# ---------------------------------------------------------------------------------------------


@dataclass
class LossCurve:
    """metrics.jsonl's train and val losses, the slope fit, and the kept checkpoint steps."""

    run_dir: str
    train_steps: list[int]
    train_losses: list[float]
    val_steps: list[int]
    val_losses: list[float]
    fit: SlopeFit
    checkpoint_steps: list[int]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data: the fields, `fit` and its `changes` as dicts too."""
        return asdict(self)


def checkpoint_dirs(run_dir: Path) -> dict[int, Path]:
    """{step: directory} of a run's complete step_* checkpoints, oldest first (best/ is one of
    them under another name, so it is left out); none is a GPT2LabError."""
    from gpt2lab.train.checkpoint import STEP_DIR, step_dirs

    found = {
        int(STEP_DIR.match(d.name).group(1)): d
        for d in step_dirs(Path(run_dir) / "checkpoints")
        if (d / "config.json").is_file()
    }
    if not found:
        raise GPT2LabError(
            f"training run {run_dir} has no step checkpoints; train it with --keep-every N"
        )
    return found


def loss_curve(run_dir: str | Path, *, log_step: bool = False) -> LossCurve:
    """The run's curves from metrics.jsonl and its slope changes (`slope_changes` on the
    train loss); no model is loaded."""
    from gpt2lab.train.metrics import find_run, read_metrics

    run_dir = find_run(run_dir)
    steps = sorted(checkpoint_dirs(run_dir))
    records = read_metrics(run_dir)
    train = [(r["step"], r["loss"]) for r in records if r["kind"] == "train"]
    val = [(r["step"], r["val_loss"]) for r in records if r["kind"] == "eval"]
    if len(train) < 2:
        raise GPT2LabError(f"{run_dir}/metrics.jsonl has fewer than 2 train-loss records")
    return LossCurve(
        str(run_dir),
        [s for s, _ in train],
        [v for _, v in train],
        [s for s, _ in val],
        [v for _, v in val],
        slope_changes(*zip(*train), log_step=log_step),
        steps,
    )


# ---------------------------------------------------------------------------------------------
# 3. One checkpoint
# ---------------------------------------------------------------------------------------------


@dataclass
class TimelineInputs:
    """What every checkpoint is measured on, made once per timeline (`make_inputs`)."""

    tokenizer: Any
    texts: Any  # interp.heads.TextSet: the packed stories probes
    cloze_records: list[dict]
    data: Path
    batch_size: int
    block_size: int
    val_batches: int
    prompt: str
    sample_tokens: int
    seed: int
    n_probes: int


def run_config(run_dir: Path):
    """The run's TrainConfig, from its config.yaml."""
    from gpt2lab.options import load_yaml
    from gpt2lab.train.config import TrainConfig, apply_overrides

    return apply_overrides(TrainConfig(), load_yaml(Path(run_dir) / "config.yaml"))


def val_data(run_dir: Path, data: str | Path | None, config_data: str) -> Path:
    """The prepared data to take val batches from: `data`, else the run's own as written in
    its config (relative to here, then to the folder above runs/)."""
    from gpt2lab.data.prepared import DataSpec

    if data is not None:
        candidates = [Path(data)]
    else:
        candidates = [Path(config_data), Path(run_dir).resolve().parent.parent / config_data]
    for path in candidates:
        if DataSpec.exists(path):
            return path
    raise GPT2LabError(
        f"no prepared data at {candidates[0]} for the val loss; pass --data DIR "
        "(the data the run was trained on)"
    )


def make_inputs(
    run_dir: str | Path,
    *,
    prompt: str | None = None,
    seed: int | None = None,
    probes: int = 200,
    data: str | Path | None = None,
    val_batches: int | None = None,
    sample_tokens: int | None = None,
) -> TimelineInputs:
    """The fixed inputs of every checkpoint's measurements. Defaults are the run's own:
    prompt = sample_prompt, seed = its seed, sample_tokens, val_batches = eval_iters, and its
    data, batch_size and block_size; `probes` stories probe examples (seed 0, as `gpt2lab
    heads`)."""
    from gpt2lab.data.prepared import read_data_spec
    from gpt2lab.evaluate import read_probe_records
    from gpt2lab.interp.texts import packed_probe_text_set
    from gpt2lab.pretrained import read_config, tokenizer_for
    from gpt2lab.train.metrics import find_run

    if probes < 1:
        raise GPT2LabError(f"--probes must be at least 1, got {probes}")
    for name, value in (("val_batches", val_batches), ("sample_tokens", sample_tokens)):
        if value is not None and value < 1:
            raise GPT2LabError(f"{name} must be at least 1, got {value}")
    run_dir = find_run(run_dir)
    first = next(iter(checkpoint_dirs(run_dir).values()))
    model_config = read_config(first)
    tokenizer = tokenizer_for(first, model_config.vocab_size)
    cfg = run_config(run_dir)
    path = val_data(run_dir, data, cfg.data)
    if read_data_spec(path).tokenizer_identity != tokenizer.identity:
        raise GPT2LabError(f"{path} was prepared with another tokenizer than the run's")
    context = min(model_config.block_size, 256)
    return TimelineInputs(
        tokenizer=tokenizer,
        texts=packed_probe_text_set(tokenizer, probes, 0, context),
        cloze_records=read_probe_records(None, probes, 0),
        data=path,
        batch_size=cfg.batch_size,
        block_size=cfg.block_size or model_config.block_size,
        val_batches=val_batches or cfg.eval_iters,
        prompt=cfg.sample_prompt if prompt is None else prompt,
        sample_tokens=sample_tokens or cfg.sample_tokens,
        seed=cfg.seed if seed is None else seed,
        n_probes=probes,
    )


def val_loss(model, inputs: TimelineInputs) -> tuple[float, int]:
    """(mean cross-entropy in nats, tokens scored) over the first `val_batches` val batches,
    in order, in float32: the trainer's `evaluate` for one process."""
    import torch

    from gpt2lab.data.loader import TokenLoader
    from gpt2lab.evaluate import token_losses
    from gpt2lab.model import device_of, eval_mode

    loader = TokenLoader(
        inputs.data,
        "val",
        batch_size=inputs.batch_size,
        block_size=inputs.block_size,
        mode="sequential",
    )
    total, count = 0.0, 0
    with torch.inference_mode(), eval_mode(model):
        for _, (x, y) in zip(range(inputs.val_batches), loader):
            losses = token_losses(model, x.to(device_of(model)), y.to(device_of(model)))  # (B, T)
            total += float(losses.double().sum())
            count += y.numel()
    return total / count, count


@dataclass(frozen=True)
class RoleBest:
    """The best head for one role: its score, where it is, and how many heads pass."""

    role: str
    score: float
    layer: int
    head: int
    threshold: float
    heads: int
    """Heads `classify_heads` gives this role (≥ threshold; a sink is never long-range)."""


def best_roles(scores, texts) -> list[RoleBest]:
    """One `RoleBest` per rule of ROLE_RULES whose score was measured."""
    from gpt2lab.interp.heads import ROLE_RULES, classify_heads, relative_distance
    from gpt2lab.interp.heads import uniform_distance as uniform

    grids = dict(scores.grids)
    grids["relative_distance"] = relative_distance(scores, uniform(texts))
    roles = classify_heads(scores, mean_uniform_distance=uniform(texts))
    found = []
    for rule in ROLE_RULES:
        if rule.score not in grids:
            continue
        grid = grids[rule.score]  # (n_layer, n_head)
        layer, head = np.unravel_index(int(np.argmax(grid)), grid.shape)
        count = sum(r.role == rule.role for r in roles)
        found.append(
            RoleBest(
                rule.role, float(grid[layer, head]), int(layer), int(head), rule.threshold, count
            )
        )
    return found


@dataclass
class CheckpointSummary:
    """One checkpoint's measurements (see the module docstring)."""

    step: int
    val_loss: float
    val_tokens: int
    train_loss: float | None
    """The logged train loss of the last record at or before this step."""
    sample: str
    roles: list[RoleBest]
    induction_loss: float | None
    cloze_accuracy: float
    cloze_by_kind: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data: the fields, `roles` as a list of dicts."""
        return asdict(self)

    def role_score(self, role: str) -> float | None:
        return next((r.score for r in self.roles if r.role == role), None)


def summarize_model(model, step: int, inputs: TimelineInputs, train_loss: float | None = None):
    """A `CheckpointSummary` of a loaded model (what `checkpoint_summary` does after loading)."""
    from gpt2lab.evaluate import cloze_score
    from gpt2lab.interp.heads import compute_head_scores
    from gpt2lab.train.callbacks import sample_text

    loss, tokens = val_loss(model, inputs)
    sample = sample_text(model, inputs.tokenizer, inputs.prompt, inputs.sample_tokens, inputs.seed)
    scores = compute_head_scores(model, inputs.texts, progress=False)
    cloze = cloze_score(model, inputs.tokenizer, inputs.cloze_records)
    return CheckpointSummary(
        step=step,
        val_loss=loss,
        val_tokens=tokens,
        train_loss=train_loss,
        sample=sample,
        roles=best_roles(scores, inputs.texts),
        induction_loss=scores.induction_loss,
        cloze_accuracy=cloze["accuracy"],
        cloze_by_kind={k: v["accuracy"] for k, v in cloze["by_kind"].items()},
    )


def checkpoint_summary(
    run_dir: str | Path,
    step: int,
    *,
    inputs: TimelineInputs | None = None,
    device: Any = "cpu",
    **settings,
) -> CheckpointSummary:
    """Load checkpoint `step` of a run and measure it. `inputs` (`make_inputs`) is made here
    from `settings` (make_inputs' keywords) when not given; a timeline makes it once."""
    from gpt2lab.model import resolve_device
    from gpt2lab.pretrained import load_pretrained
    from gpt2lab.train.metrics import find_run, read_metrics

    run_dir = find_run(run_dir)
    directories = checkpoint_dirs(run_dir)
    if step not in directories:
        raise GPT2LabError(
            f"{run_dir} has no checkpoint at step {step} (kept: {', '.join(map(str, directories))})"
        )
    inputs = inputs or make_inputs(run_dir, **settings)
    device = resolve_device(device) if isinstance(device, str) else device
    model = load_pretrained(directories[step], device=device)
    logged = [
        r["loss"] for r in read_metrics(run_dir) if r["kind"] == "train" and r["step"] <= step
    ]
    return summarize_model(model, step, inputs, logged[-1] if logged else None)


# ---------------------------------------------------------------------------------------------
# 4. The whole timeline
# ---------------------------------------------------------------------------------------------


@dataclass
class Timeline:
    curve: LossCurve
    checkpoints: list[CheckpointSummary]
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (what timeline.json holds and a viewer reads): {"curve":
        LossCurve.to_dict(), "checkpoints": [CheckpointSummary.to_dict(), …], "settings"}."""
        return asdict(self)

    def changes_at(self, index: int) -> list[SlopeChange]:
        """The slope changes after checkpoint index − 1 and up to checkpoint `index`: the
        checkpoint that first shows what the change did."""
        step = self.checkpoints[index].step
        before = self.checkpoints[index - 1].step if index else -math.inf
        return [c for c in self.curve.fit.changes if before < c.step <= step]

    def around(self, change: SlopeChange):
        """(the last checkpoint before the change, the first at or after it); None where
        there is none: what to compare to see what the change did."""
        before = [c for c in self.checkpoints if c.step < change.step]
        after = [c for c in self.checkpoints if c.step >= change.step]
        return (before[-1] if before else None, after[0] if after else None)


def build_timeline(
    run_dir: str | Path,
    *,
    inputs: TimelineInputs | None = None,
    log_step: bool = False,
    device: Any = "cpu",
    progress: bool = False,
    **settings,
) -> Timeline:
    """`loss_curve` plus a `checkpoint_summary` of every kept step checkpoint, oldest first
    (one tqdm step per checkpoint). `inputs` is made from `settings` (make_inputs' keywords:
    prompt, seed, probes, data, val_batches, sample_tokens) when not given."""
    from tqdm.auto import tqdm

    curve = loss_curve(run_dir, log_step=log_step)
    inputs = inputs or make_inputs(curve.run_dir, **settings)
    summaries = [
        checkpoint_summary(curve.run_dir, step, inputs=inputs, device=device)
        for step in tqdm(curve.checkpoint_steps, desc="checkpoints", disable=not progress)
    ]
    used = {
        "prompt": inputs.prompt,
        "seed": inputs.seed,
        "sample_tokens": inputs.sample_tokens,
        "probes": inputs.n_probes,
        "probe_texts": len(inputs.texts),
        "data": str(inputs.data),
        "val_batches": inputs.val_batches,
        "batch_size": inputs.batch_size,
        "block_size": inputs.block_size,
        "log_step": log_step,
    }
    return Timeline(curve, summaries, used)


def timeline_data(run_dir: str | Path, **options) -> dict[str, Any]:
    """`build_timeline(run_dir, **options).to_dict()`: the JSON a viewer's step slider reads."""
    return build_timeline(run_dir, **options).to_dict()


# ---------------------------------------------------------------------------------------------
# 5. timeline.md, timeline.json, timeline.png
# ---------------------------------------------------------------------------------------------


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
    parts += [f"{r.role} {r.score:.2f} → {after.role_score(r.role):.2f}" for r in before.roles]
    return f"{head}, checkpoints {before.step} → {after.step}: " + ", ".join(parts)


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
        "temperature 0.8, top-k 40. ◆ marks the first checkpoint after a slope change.",
        "",
        "| step | val loss | slope change | " + " | ".join(roles) + " | cloze | sample |",
        "|---:|---:|---|" + "---:|" * len(roles) + "---:|---|",
    ]
    for i, p in enumerate(points):
        marks = "; ".join(f"◆ {ch.step:.0f}" for ch in timeline.changes_at(i))
        scores = " | ".join(f"{r.score:.2f} ({r.heads})" for r in p.roles)
        lines.append(
            f"| {p.step} | {p.val_loss:.3f} | {marks} | {scores} | {p.cloze_accuracy:.2f} | "
            f"{cell(p.sample, 90)} |"
        )
    lines += ["", "## Samples", ""]
    for p in points:
        lines += [f"**step {p.step}**", "", f"> {cell(p.sample)}", ""]
    return "\n".join(lines)
