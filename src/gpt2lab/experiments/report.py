"""The report of a suite: computed from the runs' files, then drawn, then written.

`write_report(suite_dir)` = `compute(suite_dir)` (every number, as typed records: a `Report`)
→ `draw_figures` (PNGs) → `render_markdown` (report.md) and report.json (the same records).
Nothing is typed in: each number comes from the runs' metrics.jsonl, steps.jsonl,
result.json and final weights. The claims and their rules are in verdicts.py; what a run
measured in measures.py.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gpt2lab.config import GPTConfig
from gpt2lab.errors import GPT2LabError
from gpt2lab.experiments.measures import (
    PLATEAU_MARGIN,
    attention_stats,
    final_model,
    order_sensitivity,
    unigram_loss,
    val_batches,
)
from gpt2lab.experiments.runner import SUITE_FILE, write_json
from gpt2lab.experiments.verdicts import (
    CLAIMS,
    LEVEL,
    STABLE,
    Arm,
    Evidence,
    Verdict,
    assess,
    load_arms,
    mean_sd,
)

EXTRAPOLATION_FACTORS = (1, 2, 4)
"""Evaluation lengths as multiples of the training context."""
MEASURE_BATCHES = 4
"""Val batches (4 sequences each) for word order and attention statistics."""
STABILITY_VARIANTS = (
    "baseline",
    "no_layernorm",
    "no_attn_scale",
    "post_norm",
    "deep",
    "deep_no_layernorm",
)
"""Drawn step by step at the top of the lr grid (gradient norm, attention logit)."""
WARMUP_VARIANTS = ("baseline", "baseline_no_warmup", "post_norm", "post_norm_no_warmup")
DEEP_WARMUP = ("deep", "deep_post_norm", "deep_post_norm_no_warmup")

# ---------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------


@dataclass
class Scale:
    """The scale every verdict holds at."""

    preset: str
    n_layer: int
    n_head: int
    n_embd: int
    block_size: int
    vocab_size: int
    params_non_embedding: int
    params_total: int
    steps: int
    batch_size: int
    tokens_per_run: int
    lrs: list[float]
    min_lr_ratio: float
    warmup_steps: int
    data: str
    seeds: int
    unigram_loss: float


@dataclass
class ArmRow:
    """One variant's line of the results table."""

    name: str
    change: str
    reference: str
    warmup: bool
    sweep: dict[str, float]
    """{lr: final val loss of seed 0} (inf: diverged)."""
    best_lr: float | None
    largest_stable_lr: float | None
    lr_sensitivity: float
    runs: int
    planned: int
    val_loss: list[float]
    peak_grad_norm: list[float]
    peak_logit: list[float]
    diverged: list[dict[str, Any]]
    sample: str | None


@dataclass
class ClaimRecord:
    """One claim as judged: the verdict at 95% and with the Bonferroni correction."""

    claim: str
    variant: str
    reference: str
    compared: str
    """'`a` vs `b`' (and the partner pair of a difference of differences)."""
    kind: str
    measure: str
    evidence: str
    interval: str
    verdict: str
    verdict_bonferroni: str
    change: str
    figures: list[str]


@dataclass
class Report:
    scale: Scale
    wall_seconds: float | None
    arms: list[ArmRow]
    claims: list[ClaimRecord]
    claims_tested: int
    bonferroni_level: float
    extrapolation: dict[str, Any]
    figures: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Computing
# ---------------------------------------------------------------------------------------------


def scale_of(plan: dict[str, Any], vocab: int, unigram: float) -> Scale:
    b = plan["budget"]
    config = GPTConfig.preset(plan["preset"], vocab_size=vocab, **b["model"])
    block = b["block_size"] or config.block_size
    return Scale(
        preset=plan["preset"] + (f" {change_text(b['model'])}" if b["model"] else ""),
        n_layer=config.n_layer,
        n_head=config.n_head,
        n_embd=config.n_embd,
        block_size=block,
        vocab_size=vocab,
        params_non_embedding=config.num_params_estimate(non_embedding=True),
        params_total=config.num_params_estimate(non_embedding=False),
        steps=b["steps"],
        batch_size=b["batch_size"],
        tokens_per_run=b["steps"] * b["batch_size"] * block,
        lrs=list(b["lrs"]),
        min_lr_ratio=b["min_lr_ratio"],
        warmup_steps=b["warmup_steps"],
        data=b["data"],
        seeds=len(plan["seeds"]),
        unigram_loss=unigram,
    )


def change_text(overrides: dict[str, Any]) -> str:
    """{'norm_placement': 'none'} -> 'norm_placement=none'; {} -> 'GPT-2 as published';
    floats with 6 significant digits (sinusoidal_scale=0.0282843)."""
    text = [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in overrides.items()]
    return ", ".join(text) or "GPT-2 as published"


def arm_row(arm: Arm, planned: int, unigram: float) -> ArmRow:
    sample = arm.runs[0].result.get("sample") if arm.runs else None
    return ArmRow(
        name=arm.name,
        change=change_text(arm.overrides) + ("" if arm.warmup else ", no warmup"),
        reference=arm.reference,
        warmup=arm.warmup,
        sweep={f"{lr:g}": r.final_val for lr, r in sorted(arm.sweep.items())},
        best_lr=arm.best_lr,
        largest_stable_lr=arm.largest_stable_lr(unigram),
        lr_sensitivity=arm.lr_sensitivity(),
        runs=len(arm.runs),
        planned=planned,
        val_loss=arm.losses,
        peak_grad_norm=[r.peak_grad_norm for r in arm.runs],
        peak_logit=[r.peak_logit for r in arm.runs],
        diverged=[
            {"lr": lr, **(r.result.get("nonfinite") or {})}
            for lr, r in sorted(arm.sweep.items())
            if r.diverged
        ],
        sample=sample,
    )


def weight_measures(ev: Evidence, data: str, block: int) -> None:
    """From the final weights, per seed at the best lr, into `ev`: word-order sensitivity
    for the claims that report it (no positions and its reference) and attention statistics
    for the head-role claims (no softmax and its reference)."""
    order = {n for c in CLAIMS if "word_order" in c.extras for n in (c.variant, c.reference)}
    roles = {n for c in CLAIMS if c.kind == "unstable_roles" for n in (c.variant, c.reference)}
    batches = val_batches(data, block, MEASURE_BATCHES)
    for name, arm in ev.arms.items():
        if name not in order | roles:
            continue
        for run in arm.runs:
            if run.diverged:
                continue
            model = final_model(run)
            ev.n_layer[name] = model.config.n_layer
            if name in order:
                ev.order.setdefault(name, []).append(order_sensitivity(model, batches))
            if name in roles:
                ev.attention.setdefault(name, []).append(attention_stats(model, batches))


FIGURES_OF_KIND = {
    "unstable": ["lr", "stability"],
    "higher_loss": ["loss", "lr"],
    "slower": ["loss"],
    "barely_learns": ["loss"],
    "needs_warmup": ["warmup"],
    "unstable_roles": ["attention"],
}


def compared_text(claim) -> str:
    """'`post_norm` vs `baseline`', plus ', minus `x` vs `y`' for a partner pair."""
    text = f"`{claim.variant}` vs `{claim.reference}`"
    if claim.partner[0]:
        text += f", minus `{claim.partner[0]}` vs `{claim.partner[1]}`"
    return text


def claim_record(v: Verdict, strict: Verdict) -> ClaimRecord:
    figures = list(v.claim.figures) or FIGURES_OF_KIND.get(v.claim.kind, [])
    return ClaimRecord(
        claim=v.claim.text,
        variant=v.claim.variant,
        reference=v.claim.reference,
        compared=compared_text(v.claim),
        kind=v.claim.kind,
        measure=v.measure,
        evidence=v.evidence,
        interval=v.summary,
        verdict=v.verdict,
        verdict_bonferroni=strict.verdict,
        change=v.change,
        figures=figures,
    )


def compute(suite_dir: Path, extrapolation_tokens: int | None = None):
    """(Report without figures, Evidence): every number of the report. Positional
    extrapolation scores `extrapolation_tokens` val tokens per length (None: the budget's)."""
    from gpt2lab.data.prepare import read_meta

    plan = json.loads((suite_dir / SUITE_FILE).read_text())
    arms = load_arms(suite_dir, plan)
    if not arms.get("baseline") or not arms["baseline"].runs:
        raise GPT2LabError(f"{suite_dir}: no finished baseline run yet; run the suite first")
    data = plan["budget"]["data"]
    vocab = int(read_meta(data)["tokenizer"]["n_vocab"])
    scale = scale_of(plan, vocab, unigram_loss(data, vocab))
    ev = Evidence(arms, scale.steps, scale.warmup_steps, scale.unigram_loss)
    weight_measures(ev, data, scale.block_size)
    verdicts = [assess(c, ev) for c in CLAIMS if c.variant in arms]
    tested = sum(v.verdict != "not run" for v in verdicts)
    strict_level = 1 - (1 - LEVEL) / max(tested, 1)
    strict = [
        assess(c, dataclasses.replace(ev, level=strict_level)) for c in CLAIMS if c.variant in arms
    ]
    report = Report(
        scale=scale,
        wall_seconds=plan.get("wall_seconds"),
        arms=[arm_row(a, len(plan["seeds"]), scale.unigram_loss) for a in arms.values()],
        claims=[claim_record(v, s) for v, s in zip(verdicts, strict)],
        claims_tested=tested,
        bonferroni_level=strict_level,
        extrapolation=extrapolation_table(
            arms, plan, scale, extrapolation_tokens or plan["budget"]["extrapolation_tokens"]
        ),
    )
    return report, ev


# --- positional extrapolation ------------------------------------------------------------------


def extrapolation(run, data: str, block: int, tokens: int) -> dict[int, dict[str, Any]]:
    """Val loss at 1×, 2×, 4× the training context, from the run's final weights.

    For each length L: the mean loss over all positions, and over positions ≥ the training
    context (never seen in training). A learned position table has `block` rows, so the
    model refuses longer inputs: that refusal is recorded as the result.
    """
    from gpt2lab.evaluate import position_losses

    model = final_model(run)
    out: dict[int, dict[str, Any]] = {}
    for factor in EXTRAPOLATION_FACTORS:
        length = block * factor
        try:
            sums, count = position_losses(model, data, length, tokens)
        except GPT2LabError as err:
            out[length] = {"error": str(err)}
            continue
        per_pos = sums / count  # (L,)
        out[length] = {
            "loss": float(per_pos.mean()),
            "beyond": float(per_pos[block:].mean()) if length > block else None,
        }
    return out


def extrapolation_table(arms: dict[str, Arm], plan, scale: Scale, tokens: int) -> dict[str, Any]:
    """{variant: {length: {"loss": [per seed], "beyond": [...]} or {"error": msg}}} for the
    baseline (learned positions) and every variant with another positional encoding."""
    table: dict[str, Any] = {}
    for v in plan["variants"]:
        if v["name"] != "baseline" and "pos_encoding" not in v["overrides"]:
            continue
        per_length: dict[str, Any] = {}
        for r in arms[v["name"]].runs:
            if r.diverged:
                continue
            for length, res in extrapolation(r, scale.data, scale.block_size, tokens).items():
                slot = per_length.setdefault(str(length), {})
                if "error" in res:
                    slot["error"] = res["error"]
                else:
                    slot.setdefault("loss", []).append(res["loss"])
                    if res["beyond"] is not None:
                        slot.setdefault("beyond", []).append(res["beyond"])
        table[v["name"]] = per_length
    return table


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------


def band(curves: list[tuple[list[float], list[float]]], smooth: int = 1):
    """Mean, min and max over seeds at each x that any seed reached: (x, mean, lo, hi).

    smooth > 1 applies a trailing moving average of that many points to each seed first.
    """
    table: dict[float, list[float]] = {}
    for xs, ys in curves:
        ys = np.asarray(ys, float)
        if smooth > 1 and len(ys):
            k = min(smooth, len(ys))
            edge = np.array([k / min(i + 1, k) for i in range(len(ys))])
            ys = np.convolve(ys, np.ones(k) / k, mode="full")[: len(ys)] * edge
        for x, y in zip(xs, ys):
            if math.isfinite(y):
                table.setdefault(x, []).append(float(y))
    xs = sorted(table)
    return (
        xs,
        [float(np.mean(table[x])) for x in xs],
        [min(table[x]) for x in xs],
        [max(table[x]) for x in xs],
    )


def sweep_lines(arms: dict[str, Arm], names) -> dict[str, tuple[list[float], list[float]]]:
    """{variant: (lrs, seed 0's final val loss at each)} for the named arms that have a sweep."""
    return {
        n: (sorted(arms[n].sweep), [arms[n].sweep[lr].final_val for lr in sorted(arms[n].sweep)])
        for n in names
        if n in arms and arms[n].sweep
    }


def groups(arms: dict[str, Arm]) -> dict[str, list[str]]:
    """The variants compared with the baseline, and the deep ones (with `deep` itself)."""
    deep = [n for n, a in arms.items() if n == "deep" or a.reference == "deep"]
    return {"main": [n for n in arms if n not in deep], "deep": deep}


def sweep_figures(arms: dict[str, Arm], s: Scale) -> dict[str, Any]:
    """lr: final loss vs lr per variant; warmup: the same for pre/post-norm ± warmup."""
    from gpt2lab.plots.ablation import sweep_panels

    by_group = groups(arms)
    panels = {"seed 0, each variant's lr sweep": sweep_lines(arms, by_group["main"])}
    if by_group["deep"]:
        panels["deep variants"] = sweep_lines(arms, by_group["deep"])
    finite = [y for lines in panels.values() for _, ys in lines.values() for y in ys]
    finite = [y for y in finite if math.isfinite(y)]
    # from just below the best loss to ln V + 1: one huge loss would flatten the rest
    ylim = (min(finite, default=0.0) - 0.2, math.log(s.vocab_size) + 1.0)
    unigram = (s.unigram_loss, "unigram loss")
    warm = {"pre- vs post-norm, with and without warmup": sweep_lines(arms, WARMUP_VARIANTS)}
    if any(n in arms for n in DEEP_WARMUP):
        warm["deep"] = sweep_lines(arms, DEEP_WARMUP)
    return {
        "lr": sweep_panels(panels, hline=unigram, ylim=ylim),
        "warmup": sweep_panels(warm, hline=unigram, ylim=ylim),
    }


def stability_figure(arms: dict[str, Arm], top: float):
    """Every step's gradient norm and largest attention logit at the top lr, seed 0."""
    from gpt2lab.plots.ablation import band_panels

    runs = {n: arms[n].sweep[top] for n in STABILITY_VARIANTS if n in arms and top in arms[n].sweep}
    return band_panels(
        {
            f"pre-clip gradient norm, every step (lr {top:g}, seed 0)": {
                n: single_band(*r.step_values("grad_norm")) for n, r in runs.items()
            },
            "largest attention logit over layers, every step": {
                n: single_band(*r.logit_curve()) for n, r in runs.items()
            },
        },
        xlabel="step",
        ylabel="value",
        logy=True,
    )


def single_band(xs: list, ys: list):
    """One seed's curve as a band of zero width."""
    return xs, ys, ys, ys


def loss_figure(arms: dict[str, Arm], s: Scale):
    """Val loss curves at each variant's best lr (mean, band = lowest to highest seed)."""
    from gpt2lab.plots.ablation import band_panels
    from gpt2lab.plots.training import curve

    def lines(names):
        return {
            n: band([curve(r.records, "eval", "val_loss") for r in arms[n].runs])
            for n in names
            if arms[n].runs
        }

    by_group = groups(arms)
    panels = {"val loss at each variant's best lr": lines(by_group["main"])}
    if by_group["deep"]:
        panels["deep variants"] = lines(by_group["deep"])
    return band_panels(
        panels,
        xlabel="step",
        ylabel="cross-entropy (nats/token)",
        ylim=(None, math.log(s.vocab_size) + 0.5),
        width=6.5,
    )


def draw_figures(report: Report, ev: Evidence, out: Path) -> dict[str, str]:
    """lr.png, warmup.png, stability.png, loss.png, attention.png, extrapolation.png."""
    from gpt2lab.plots.ablation import band_panels, histograms

    s = report.scale
    figures = sweep_figures(ev.arms, s)
    figures["stability"] = stability_figure(ev.arms, max(s.lrs))
    figures["loss"] = loss_figure(ev.arms, s)
    if ev.attention:
        figures["attention"] = histograms(
            {
                "attention weights (visible pairs, all layers, final weights)": {
                    n: [w for stats in ev.attention[n] for w in stats.sample] for n in ev.attention
                }
            },
            xlabel="weight A_ij",
        )
    lines = {name: band(seed_curves(per)) for name, per in report.extrapolation.items()}
    if any(xs for xs, *_ in lines.values()):
        figures["extrapolation"] = band_panels(
            {"val loss at longer contexts": lines},
            xlabel="sequence length (tokens)",
            ylabel="val loss",
            vline=(s.block_size, "training context"),
            width=7.0,
        )
    files = {}
    for name, fig in figures.items():
        fig.savefig(out / f"{name}.png", dpi=80)
        files[name] = f"{name}.png"
    return files


def seed_curves(per_length: dict[str, Any]) -> list[tuple[list[int], list[float]]]:
    """{length: {"loss": [per seed]}} -> one (lengths, losses) curve per seed."""
    done = {int(L): res["loss"] for L, res in per_length.items() if "loss" in res}
    seeds = min((len(v) for v in done.values()), default=0)
    return [(list(done), [losses[i] for losses in done.values()]) for i in range(seeds)]


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def write_report(
    suite_dir: str | Path,
    report_dir: str | Path | None = None,
    extrapolation_tokens: int | None = None,
) -> Path:
    """Read the suite's runs and write report.md, report.json and PNGs; return report.md."""
    suite_dir = Path(suite_dir)
    if not (suite_dir / SUITE_FILE).is_file():
        raise GPT2LabError(f"{suite_dir} is not an ablation suite (no {SUITE_FILE})")
    out = Path(report_dir) if report_dir else suite_dir
    out.mkdir(parents=True, exist_ok=True)
    report, ev = compute(suite_dir, extrapolation_tokens)
    report.figures = draw_figures(report, ev, out)
    write_json(out / "report.json", dataclasses.asdict(report))
    path = out / "report.md"
    path.write_text(render_markdown(report))
    return path


def fmt(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if math.isinf(x):
        return "diverged"
    return f"{x:.{digits}f}"


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def lr_cell(lr: float | None) -> str:
    return "none" if lr is None else f"{lr:g}"


def render_markdown(report: Report) -> str:
    s = report.scale
    done = sum(a.runs for a in report.arms)
    planned = sum(a.planned for a in report.arms)
    wall = report.wall_seconds
    lines = [
        f"# Ablation report: {len(report.arms)} variants, lr sweep × {s.seeds} seeds, "
        f"preset {s.preset}",
        "",
        "## Scale",
        "",
        f"- model: preset `{s.preset}` ({s.n_layer} layers, {s.n_head} heads, width "
        f"{s.n_embd}, context {s.block_size}), {s.params_non_embedding:,} non-embedding "
        f"parameters ({s.params_total:,} with the {s.vocab_size}-token embedding); the `deep` "
        "variants: 3× the layers at half the width",
        f"- budget per run: {s.steps} steps × {s.batch_size} sequences × {s.block_size} "
        f"tokens = {s.tokens_per_run:,} tokens; AdamW, {s.warmup_steps} warmup steps (0 for "
        f"the `*_no_warmup` variants), cosine decay to {s.min_lr_ratio:g}× the peak; data "
        f"`{s.data}`, unigram val loss {s.unigram_loss:.3f}",
        f"- learning rates: seed 0 of every variant at each peak lr of "
        f"{', '.join(f'{lr:g}' for lr in s.lrs)}; the best lr (lowest final val loss of that "
        f"sweep) is then run with seeds 1 … {s.seeds - 1}",
        f"- runs finished at the best lr: {done} of {planned}"
        + (f"; suite wall time {wall / 60:.1f} min" if wall else ""),
        "- paired seeds: seed s of every variant sees the same batches in the same order and, "
        "where the shapes agree, starts from the same weights",
        "",
        "## Claims",
        "",
        "| claim | variant vs reference | measured | result: difference [95% interval] | verdict |",
        "|---|---|---|---|---|",
    ]
    for c in report.claims:
        lines.append(
            f"| {cell(c.claim)} | {c.compared} | {cell(c.measure)} | "
            f"{cell(c.interval) or '—'} | **{c.verdict}** |"
        )
    changed = [c for c in report.claims if c.verdict != c.verdict_bonferroni]
    lines += [
        "",
        f"How a verdict is read: per-seed differences, signed so that > 0 is what the claim "
        f"says, and a paired Student-t {LEVEL:.0%} interval for their mean. **holds** if the "
        "interval lies above 0, **does not hold** if it lies below, **inconclusive** "
        "otherwise (or with one seed). Censored steps-to-target (never reached) give lower "
        "bounds, which can only support a claim. The stability claims are judged on the lr "
        f"sweep: they hold when the variant fails (diverges, or ends less than {PLATEAU_MARGIN:g} below the unigram loss) at "
        "an lr where the reference trains.",
        "",
        f"**{report.claims_tested} claims tested.** Each interval is at {LEVEL:.0%} on its own; "
        f"with a Bonferroni correction for {report.claims_tested} claims (each interval at "
        f"{report.bonferroni_level:.2%}) "
        + (
            "these verdicts change: "
            + "; ".join(f"{c.variant}: {c.verdict} → {c.verdict_bonferroni}" for c in changed)
            if changed
            else "no verdict changes"
        )
        + f". Every verdict holds at this scale only: preset {s.preset}, {s.tokens_per_run:,} "
        f"tokens per run, lr {min(s.lrs):g}–{max(s.lrs):g}.",
        "",
        "## The claims one by one",
        "",
    ]
    for c in report.claims:
        lines += [
            f"### {c.claim}",
            "",
            f"{c.compared}. Measured: {c.measure}. {c.evidence}.",
            "",
            f"**Verdict: {c.verdict}**"
            + (f" ({c.interval})" if c.interval else "")
            + f". What would change it: {c.change}.",
            "",
        ]
        lines += [f"![{f}]({f}.png)" for f in c.figures if f in report.figures]
        lines.append("")
    lines += results_markdown(report)
    lines += extrapolation_markdown(report)
    lines += [
        "## Samples",
        "",
        'Seed 0 at the best lr, prompt "Once upon a time", temperature 0.8, top-k 40, the '
        "same sampling seed for all.",
        "",
        "| variant | sample |",
        "|---|---|",
    ]
    for a in report.arms:
        sample = a.sample or "(no sample: the run diverged or did not finish)"
        lines.append(f"| `{a.name}` | {cell(sample)} |")
    lines.append("")
    return "\n".join(lines)


def results_markdown(report: Report) -> list[str]:
    s = report.scale
    lines = [
        "## Results per variant",
        "",
        "Final val loss of seed 0 at each lr of the sweep (diverged: non-finite); the "
        f"largest stable lr ({STABLE}); lr sensitivity (Wortsman et "
        "al. 2023: mean over the sweep of min(loss, initial loss) − best loss); then, at the "
        "best lr over seeds, val loss, peak pre-clip gradient norm and peak attention logit "
        "(both over every step).",
        "",
        "| variant | change | "
        + " | ".join(f"lr {lr:g}" for lr in s.lrs)
        + " | best lr | largest stable lr | lr sensitivity | runs | val loss | peak ‖g‖ | "
        "peak logit |",
        "|---|---|" + "---|" * len(s.lrs) + "---|---|---|---|---|---|---|",
    ]
    for a in report.arms:
        sweep = [fmt(a.sweep.get(f"{lr:g}")) for lr in s.lrs]
        lines.append(
            f"| `{a.name}` | {cell(a.change)} | "
            + " | ".join(sweep)
            + f" | {lr_cell(a.best_lr)} | {lr_cell(a.largest_stable_lr)} | "
            f"{fmt(a.lr_sensitivity)} | {a.runs}/{a.planned} | {mean_sd(a.val_loss)} | "
            f"{mean_sd(a.peak_grad_norm, 2)} | {mean_sd(a.peak_logit, 1)} |"
        )
    lines.append("")
    diverged = [(a.name, d) for a in report.arms for d in a.diverged]
    if diverged:
        lines += [
            "### Divergences in the sweep",
            "",
            "| variant | lr | step | first non-finite at | layer |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {name} | {d['lr']:g} | {d.get('step', '—')} | `{d.get('where')}` | "
            f"{d.get('layer', '—')} |"
            for name, d in diverged
        ]
        lines.append("")
    lines += ["![lr sweeps](lr.png)", ""] if "lr" in report.figures else []
    return lines


def extrapolation_markdown(report: Report) -> list[str]:
    extrap, s = report.extrapolation, report.scale
    if not extrap:
        return []
    lengths = [s.block_size * f for f in EXTRAPOLATION_FACTORS]
    lines = [
        "## Positional extrapolation",
        "",
        f"Val loss (mean ± sd over seeds) at the training context ({s.block_size}) and "
        f"beyond, from each run's final weights; in brackets the loss on the positions past "
        f"{s.block_size}, which no run saw in training.",
        "",
        "| variant | " + " | ".join(f"L = {L}" for L in lengths) + " |",
        "|---|" + "---|" * len(lengths),
    ]
    for name, per_length in extrap.items():
        cells = []
        for L in lengths:
            res = per_length.get(str(L), {})
            if "error" in res:
                cells.append(f"cannot: {cell(res['error'])}")
            elif "loss" in res:
                beyond = f" ({mean_sd(res['beyond'])})" if res.get("beyond") else ""
                cells.append(f"{mean_sd(res['loss'])}{beyond}")
            else:
                cells.append("—")
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    lines.append("")
    return lines
