"""The report of a suite: numbers from the runs' metrics files, verdicts from a stated rule.

`write_report(suite_dir)` reads OUT/suite.json and every finished run's metrics.jsonl and
result.json, and writes report.md, report.json and the figures. Nothing in it is typed in:
each number is computed here from those files.

How a claim is judged (the same rule for all, using the spread over seeds):

    d  = mean(variant) − mean(reference) − margin       signed so that d > 0 is the claim
    s  = pooled standard deviation of the two samples   (a fixed reference has none)
    holds            if d >  2·s
    does not hold    if d < −2·s
    inconclusive     otherwise, or with fewer than 2 seeds (no spread to judge by)

>>> judge([3.2, 3.3, 3.4], [3.0, 3.0, 3.1])[2]
'holds'
>>> judge([3.0, 3.5, 2.5], [3.0, 3.0, 3.1])[2]
'inconclusive'
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gpt2lab.config import GPTConfig
from gpt2lab.errors import GPT2LabError
from gpt2lab.experiments.runner import SUITE_FILE, read_result, run_name, write_json
from gpt2lab.plots.training import curve, layer_matrix
from gpt2lab.train.metrics import read_metrics

TARGET_SLACK = 0.10
"""'Steps to target': steps to reach the baseline's mean final val loss plus 10%."""
EXPLODE_DECADES = 1.0
"""'Gradients explode': a peak pre-clip gradient norm at least 10× (1 decade) the baseline's."""
BARELY_LEARNS = 0.5
"""'Barely learns': less than half of the baseline's drop from the uniform loss ln(V)."""
EXTRAPOLATION_FACTORS = (1, 2, 4)
"""Evaluation lengths as multiples of the training context."""
EXTRAPOLATION_TOKENS = 8192
"""Val tokens scored at each length and run (the same number for every length)."""


# ---------------------------------------------------------------------------------------------
# The verdict rule
# ---------------------------------------------------------------------------------------------


def pooled_sd(a: list[float], b: list[float]) -> float:
    """sqrt(((na−1)·var(a) + (nb−1)·var(b)) / (na + nb − 2)); a single value adds no spread.

    >>> round(pooled_sd([1.0, 3.0], [2.0, 2.0]), 4)     # sqrt((2 + 0) / 2)
    1.0
    """
    dof = len(a) + len(b) - 2
    if dof <= 0:
        return math.nan
    ss = sum((x - np.mean(a)) ** 2 for x in a) + sum((x - np.mean(b)) ** 2 for x in b)
    return math.sqrt(ss / dof)


def judge(variant: list[float], reference: list[float], margin: float = 0.0):
    """(d, s, verdict) for the claim 'variant exceeds reference by more than margin'.

    A non-finite value is a run that diverged: if every variant run is +inf and every
    reference run finite, the claim holds; any other mix of infinities is inconclusive.
    """
    a, b = np.asarray(variant, float), np.asarray(reference, float)
    if len(a) == 0 or len(b) == 0:
        return math.nan, math.nan, "inconclusive"
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        if np.isposinf(a).all() and np.isfinite(b).all():
            return math.inf, math.nan, "holds"
        return math.nan, math.nan, "inconclusive"
    d = float(a.mean() - b.mean() - margin)
    s = pooled_sd(list(a), list(b))
    if len(a) < 2 or not math.isfinite(s):
        return d, s, "inconclusive"
    if d > 2 * s:
        return d, s, "holds"
    if d < -2 * s:
        return d, s, "does not hold"
    return d, s, "inconclusive"


# ---------------------------------------------------------------------------------------------
# What one run measured
# ---------------------------------------------------------------------------------------------


@dataclass
class Run:
    """One finished (variant, seed) run, read back from its directory."""

    variant: str
    seed: int
    directory: Path
    result: dict[str, Any]
    records: list[dict[str, Any]]

    @property
    def diverged(self) -> bool:
        return self.result["stopped"] == "nonfinite"

    @property
    def final_val(self) -> float:
        """The last evaluation at the final step; +inf for a run that diverged."""
        if self.diverged:
            return math.inf
        steps, values = curve(self.records, "eval", "val_loss")
        return values[-1] if steps and steps[-1] == self.result["step"] else math.inf

    @property
    def peak_grad_norm(self) -> float:
        """Largest pre-clip global gradient norm of any step (inf/NaN count as inf)."""
        norms = [r["grad_norm"] for r in self.records if r["kind"] in ("train", "nonfinite")]
        return max((n if math.isfinite(n) else math.inf for n in norms), default=math.nan)

    def steps_to(self, target: float, budget: int) -> float:
        """First step where the val curve reaches `target` (linear between evaluations);
        `budget` when it never does (a lower bound of the true value)."""
        steps, values = curve(self.records, "eval", "val_loss")
        prev_step, prev_value = 0, math.inf
        for step, value in zip(steps, values):
            if value <= target:
                if not math.isfinite(prev_value):
                    return float(step)
                return prev_step + (prev_value - target) / (prev_value - value) * (step - prev_step)
            prev_step, prev_value = step, value
        return float(budget)


def load_runs(suite_dir: Path, plan: dict[str, Any]) -> dict[str, list[Run]]:
    """{variant: finished runs, by seed}; unfinished or failed runs are left out."""
    runs: dict[str, list[Run]] = {}
    for v in plan["variants"]:
        found = []
        for seed in plan["seeds"]:
            directory = suite_dir / "runs" / run_name(v["name"], seed)
            result = read_result(directory)
            if result is not None:
                found.append(Run(v["name"], seed, directory, result, read_metrics(directory)))
        runs[v["name"]] = found
    return runs


# ---------------------------------------------------------------------------------------------
# Claims
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    text: str
    variant: str
    test: str
    """diverges | explodes | higher_loss | slower | barely_learns (see TESTS)."""
    diagnose: bool = False
    """Draw this variant's gradient-norm and activation-RMS curves (they explain the outcome)."""


CLAIMS = (
    Claim("removing layer norm makes training diverge", "no_layernorm", "diverges", True),
    Claim(
        "no 1/sqrt(d) attention scaling makes gradients explode", "no_attn_scale", "explodes", True
    ),
    Claim("no positional encoding gives a higher loss (and word salad)", "no_pos", "higher_loss"),
    Claim("ReLU trains slower than GELU", "relu", "slower"),
    Claim("sigmoid barely learns", "sigmoid", "barely_learns"),
    Claim("pre-norm beats post-norm", "post_norm", "higher_loss"),
    Claim(
        "GPT-2's scaled init converges faster than PyTorch's default", "torch_init", "slower", True
    ),
    Claim("learned positions converge faster than sinusoidal", "sinusoidal", "slower"),
    Claim("fewer heads (equal width) is worse", "fewer_heads", "higher_loss"),
)

RULES = {
    "diverges": "holds if every seed (≥ 2) goes non-finite, does not hold if none does",
    "explodes": "log10 peak pre-clip ‖g‖ − baseline's − 1 (10×) > 2σ",
    "higher_loss": "final val loss − baseline's > 2σ",
    "slower": f"steps to baseline loss +{TARGET_SLACK:.0%} − baseline's > 2σ",
    "barely_learns": f"{BARELY_LEARNS} − share of baseline's loss drop from ln V > 2σ",
}


@dataclass
class Verdict:
    claim: Claim
    evidence: str
    verdict: str
    values: dict[str, list[float]] = field(default_factory=dict)


def mean_sd(values: list[float], digits: int = 3) -> str:
    """'3.412 ± 0.021' (sample sd over seeds); infinities are counted as diverged runs.

    >>> mean_sd([3.0, 3.5, 4.0]), mean_sd([3.0, float("inf")]), mean_sd([120.0], 0)
    ('3.500 ± 0.500', '3.000, 1/2 diverged', '120')
    """
    if not values:
        return "—"
    a = np.asarray(values, float)
    if not np.isfinite(a).all():
        finite = a[np.isfinite(a)]
        kept = f"{finite.mean():.{digits}f}, " if len(finite) else ""
        return f"{kept}{len(a) - len(finite)}/{len(a)} diverged"
    sd = f" ± {a.std(ddof=1):.{digits}f}" if len(a) > 1 else ""
    return f"{a.mean():.{digits}f}{sd}"


def assess(claim: Claim, runs: dict[str, list[Run]], ctx: dict[str, Any]) -> Verdict:
    """Measure the claim's evidence from the runs and apply its rule."""
    mine, base = runs.get(claim.variant, []), runs.get("baseline", [])
    if not mine or not base:
        return Verdict(claim, "not run", "not run")
    if claim.test == "diverges":
        k = sum(r.diverged for r in mine)
        where = ", ".join(
            f"s{r.seed} at step {r.result['nonfinite']['step']} ({r.result['nonfinite']['where']})"
            for r in mine
            if r.diverged and r.result.get("nonfinite")
        )
        verdict = "inconclusive"
        if len(mine) >= 2 and k in (0, len(mine)):
            verdict = "holds" if k else "does not hold"
        loss = mean_sd([r.final_val for r in mine])
        text = f"{k}/{len(mine)} seeds diverged{': ' + where if where else ''}; val loss {loss}"
        return Verdict(claim, text, verdict, {"diverged": [float(r.diverged) for r in mine]})
    if claim.test == "explodes":
        a = [math.log10(r.peak_grad_norm) for r in mine]
        b = [math.log10(r.peak_grad_norm) for r in base]
        d, s, verdict = judge(a, b, EXPLODE_DECADES)
        text = (
            f"peak ‖g‖ {mean_sd([r.peak_grad_norm for r in mine])} vs baseline "
            f"{mean_sd([r.peak_grad_norm for r in base])}; log10 ratio "
            f"{np.mean(a) - np.mean(b):+.2f} decades (2σ = {2 * s:.2f})"
        )
        return Verdict(claim, text, verdict, {"variant": a, "baseline": b})
    if claim.test == "higher_loss":
        a, b = [r.final_val for r in mine], [r.final_val for r in base]
        d, s, verdict = judge(a, b)
        text = f"val loss {mean_sd(a)} vs {mean_sd(b)} (Δ {d:+.3f}, 2σ = {2 * s:.3f})"
        return Verdict(claim, text, verdict, {"variant": a, "baseline": b})
    if claim.test == "slower":
        target, budget = ctx["target"], ctx["steps"]
        a = [r.steps_to(target, budget) for r in mine]
        b = [r.steps_to(target, budget) for r in base]
        d, s, verdict = judge(a, b)
        text = (
            f"steps to val loss {target:.3f}: {mean_sd(a, 0)} vs {mean_sd(b, 0)} "
            f"(Δ {d:+.1f}, 2σ = {2 * s:.1f}; {budget} = not reached)"
        )
        return Verdict(claim, text, verdict, {"variant": a, "baseline": b})
    if claim.test == "barely_learns":
        uniform, drop = ctx["uniform_loss"], ctx["uniform_loss"] - ctx["baseline_loss"]
        share = [(uniform - r.final_val) / drop for r in mine]
        d, s, verdict = judge([-x for x in share], [-BARELY_LEARNS])
        text = (
            f"share of the baseline's loss drop from ln V = {uniform:.3f}: {mean_sd(share)} "
            f"(threshold {BARELY_LEARNS}, 2σ = {2 * s:.3f})"
        )
        return Verdict(claim, text, verdict, {"share": share})
    raise GPT2LabError(f"unknown claim test {claim.test!r}")


# ---------------------------------------------------------------------------------------------
# Curves over seeds
# ---------------------------------------------------------------------------------------------


def band(curves: list[tuple[list[float], list[float]]], smooth: int = 1):
    """Mean, min and max over seeds at each x that any seed reached: (x, mean, lo, hi).

    smooth > 1 applies a trailing moving average of that many points to each seed first.
    """
    table: dict[float, list[float]] = {}
    for xs, ys in curves:
        ys = np.asarray(ys, float)
        if smooth > 1 and len(ys):
            kernel = np.ones(min(smooth, len(ys))) / min(smooth, len(ys))
            ys = np.convolve(ys, kernel, mode="full")[: len(ys)] * _edge(len(ys), len(kernel))
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


def _edge(n: int, k: int) -> np.ndarray:
    """Rescale the first k−1 points of a 'full' convolution (fewer points were averaged)."""
    return np.array([k / min(i + 1, k) for i in range(n)])


def depth_band(runs: list[Run], layers: list[str], key: str, which: int, field_name=None):
    """A monitor statistic by depth at monitor record `which` (0 first, −1 last); x is the
    index in `layers` (embed, block0, …, final)."""
    per_seed = []
    for r in runs:
        steps, found, values = layer_matrix(r.records, key, field_name)
        if steps:
            per_seed.append(([layers.index(name) for name in found], list(values[:, which])))
    return band(per_seed)


# ---------------------------------------------------------------------------------------------
# Positional extrapolation
# ---------------------------------------------------------------------------------------------


def extrapolation(run: Run, data: str, block: int, tokens: int) -> dict[int, dict[str, Any]]:
    """Val loss at 1×, 2×, 4× the training context, from the run's final weights.

    For each length L: the mean loss over all positions, and over positions ≥ the training
    context (never seen in training). A learned position table has `block` rows, so the
    model refuses longer inputs: that refusal is recorded as the result.
    """
    from gpt2lab.evaluate import position_losses
    from gpt2lab.pretrained import load_pretrained
    from gpt2lab.train.checkpoint import latest

    model = load_pretrained(latest(run.directory / "checkpoints"))
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


# ---------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------


def scale_of(plan: dict[str, Any], vocab: int) -> dict[str, Any]:
    """Preset shape, parameter counts, steps and tokens: the scale every verdict holds at."""
    b = plan["budget"]
    config = GPTConfig.preset(plan["preset"], vocab_size=vocab)
    block = b["block_size"] or config.block_size
    return {
        "preset": plan["preset"],
        "n_layer": config.n_layer,
        "n_head": config.n_head,
        "n_embd": config.n_embd,
        "block_size": block,
        "vocab_size": vocab,
        "params_non_embedding": config.num_params_estimate(non_embedding=True),
        "params_total": config.num_params_estimate(non_embedding=False),
        "steps": b["steps"],
        "batch_size": b["batch_size"],
        "tokens_per_run": b["steps"] * b["batch_size"] * block,
        "lr": b["lr"],
        "min_lr": b["min_lr"],
        "warmup_steps": b["warmup_steps"],
        "data": b["data"],
    }


def write_report(
    suite_dir: str | Path,
    report_dir: str | Path | None = None,
    extrapolation_tokens: int = EXTRAPOLATION_TOKENS,
) -> Path:
    """Read the suite's runs and write report.md, report.json and PNGs; return report.md."""
    from gpt2lab.data.prepare import read_meta

    suite_dir = Path(suite_dir)
    if not (suite_dir / SUITE_FILE).is_file():
        raise GPT2LabError(f"{suite_dir} is not an ablation suite (no {SUITE_FILE})")
    out = Path(report_dir) if report_dir else suite_dir
    out.mkdir(parents=True, exist_ok=True)
    plan = json.loads((suite_dir / SUITE_FILE).read_text())
    runs = load_runs(suite_dir, plan)
    if not runs.get("baseline"):
        raise GPT2LabError(f"{suite_dir}: no finished baseline run yet; run the suite first")
    vocab = int(read_meta(plan["budget"]["data"])["tokenizer"]["n_vocab"])
    scale = scale_of(plan, vocab)
    baseline_loss = float(np.mean([r.final_val for r in runs["baseline"]]))
    ctx = {
        "target": baseline_loss * (1 + TARGET_SLACK),
        "steps": scale["steps"],
        "uniform_loss": math.log(vocab),
        "baseline_loss": baseline_loss,
    }
    verdicts = [assess(c, runs, ctx) for c in CLAIMS if c.variant in runs]
    rows = variant_rows(plan, runs, ctx)
    extrap = extrapolation_table(plan, runs, scale, extrapolation_tokens)
    figures = draw_figures(runs, verdicts, extrap, scale, out)
    report = {
        "scale": scale,
        "wall_seconds": plan.get("wall_seconds"),
        "target_loss": ctx["target"],
        "variants": rows,
        "claims": [
            {
                "claim": v.claim.text,
                "variant": v.claim.variant,
                "rule": RULES[v.claim.test],
                "evidence": v.evidence,
                "verdict": v.verdict,
                "values": v.values,
            }
            for v in verdicts
        ],
        "extrapolation": extrap,
        "figures": figures,
    }
    write_json(out / "report.json", report)
    path = out / "report.md"
    path.write_text(render_markdown(plan, report, runs))
    return path


def change_text(overrides: dict[str, Any]) -> str:
    """{'norm_placement': 'none'} -> 'norm_placement=none'; {} -> 'GPT-2 as published'."""
    return ", ".join(f"{k}={v}" for k, v in overrides.items()) or "GPT-2 as published"


def variant_rows(plan, runs: dict[str, list[Run]], ctx) -> list[dict[str, Any]]:
    """One row per variant: runs, divergences, final val loss/perplexity and ratios."""
    base = runs["baseline"]
    base_loss = float(np.mean([r.final_val for r in base]))
    rows = []
    for v in plan["variants"]:
        mine = runs[v["name"]]
        losses = [r.final_val for r in mine]
        mean_loss = float(np.mean(losses)) if losses else math.nan
        rows.append(
            {
                "name": v["name"],
                "label": change_text(v["overrides"]),
                "runs": len(mine),
                "planned": len(plan["seeds"]),
                "diverged": [
                    {"seed": r.seed, **(r.result.get("nonfinite") or {})}
                    for r in mine
                    if r.diverged
                ],
                "val_loss": losses,
                "val_loss_mean": mean_loss,
                "val_ppl_mean": math.exp(min(mean_loss, 700.0)) if losses else math.nan,
                "loss_ratio": mean_loss / base_loss if losses else math.nan,
                "ppl_ratio": math.exp(min(mean_loss - base_loss, 700.0)) if losses else math.nan,
                "steps_to_target": [r.steps_to(ctx["target"], ctx["steps"]) for r in mine],
                "peak_grad_norm": [r.peak_grad_norm for r in mine],
                "sample": mine[0].result.get("sample") if mine else None,
            }
        )
    return rows


def extrapolation_table(plan, runs: dict[str, list[Run]], scale, tokens: int) -> dict[str, Any]:
    """{variant: {length: {"loss": [per seed], "beyond": [...]} or {"error": msg}}} for the
    baseline (learned positions) and every variant with another positional encoding."""
    table: dict[str, Any] = {}
    for v in plan["variants"]:
        if v["name"] != "baseline" and "pos_encoding" not in v["overrides"]:
            continue
        per_length: dict[str, Any] = {}
        for r in runs[v["name"]]:
            if r.diverged:
                continue
            measured = extrapolation(r, scale["data"], scale["block_size"], tokens)
            for length, res in measured.items():
                slot = per_length.setdefault(str(length), {})
                if "error" in res:
                    slot["error"] = res["error"]
                else:
                    slot.setdefault("loss", []).append(res["loss"])
                    if res["beyond"] is not None:
                        slot.setdefault("beyond", []).append(res["beyond"])
        table[v["name"]] = per_length
    return table


def draw_figures(runs, verdicts, extrap, scale, out: Path) -> dict[str, str]:
    """loss.png, grad_norm.png, depth.png, extrapolation.png; returns {name: file}."""
    from gpt2lab.plots.ablation import band_panels

    finished = {name: rs for name, rs in runs.items() if rs}
    losses = {
        "train loss (moving average of 5 logs)": {
            n: band([curve(r.records, "train", "loss") for r in rs], smooth=5)
            for n, rs in finished.items()
        },
        "val loss": {
            n: band([curve(r.records, "eval", "val_loss") for r in rs])
            for n, rs in finished.items()
        },
    }
    lowest = min((min(lo) for p in losses.values() for _, _, lo, _ in p.values() if lo), default=0)
    figures = {
        "loss": band_panels(
            losses,
            xlabel="step",
            ylabel="cross-entropy (nats/token)",
            # from just below the best loss to ln V + 1: a huge first loss would flatten all
            ylim=(lowest - 0.2, math.log(scale["vocab_size"]) + 1.0),
        )
    }
    diagnosed = ["baseline"] + [v.claim.variant for v in verdicts if v.claim.diagnose]
    diagnosed = [n for n in diagnosed if n in finished]
    figures["grad_norm"] = band_panels(
        {
            "global gradient norm before clipping": {
                n: band([curve(r.records, "train", "grad_norm") for r in finished[n]])
                for n in diagnosed
            }
        },
        xlabel="step",
        ylabel="‖g‖₂",
        logy=True,
        width=7.0,
    )
    layers = ["embed", *(f"block{i}" for i in range(scale["n_layer"])), "final"]
    panels = {
        title: {n: depth_band(finished[n], layers, key, which, field_name) for n in diagnosed}
        for title, key, field_name, which in (
            ("residual RMS, first monitor step", "act", "rms", 0),
            ("residual RMS, last monitor step", "act", "rms", -1),
            ("gradient norm, last monitor step", "grad_norm", None, -1),
        )
    }
    if any(xs for panel in panels.values() for xs, *_ in panel.values()):
        figures["depth"] = band_panels(
            panels, xlabel="depth", ylabel="value", logy=True, xticklabels=layers, width=4.5
        )
    lines = {name: band(seed_curves(per_length)) for name, per_length in extrap.items()}
    if any(xs for xs, *_ in lines.values()):
        figures["extrapolation"] = band_panels(
            {"val loss at longer contexts": lines},
            xlabel="sequence length (tokens)",
            ylabel="val loss",
            vline=(scale["block_size"], "training context"),
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
# Markdown
# ---------------------------------------------------------------------------------------------


def fmt(x: float, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if math.isinf(x):
        return "diverged"
    return f"{x:.{digits}f}"


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(plan: dict[str, Any], report: dict[str, Any], runs) -> str:
    s = report["scale"]
    wall = report["wall_seconds"]
    done = sum(r["runs"] for r in report["variants"])
    planned = sum(r["planned"] for r in report["variants"])
    lines = [
        f"# Ablation report: {len(plan['variants'])} variants × {len(plan['seeds'])} seeds, "
        f"preset {s['preset']}",
        "",
        "## Scale",
        "",
        f"- model: preset `{s['preset']}` ({s['n_layer']} layers, {s['n_head']} heads, width "
        f"{s['n_embd']}, context {s['block_size']}), {s['params_non_embedding']:,} non-embedding "
        f"parameters ({s['params_total']:,} with the {s['vocab_size']}-token embedding)",
        f"- budget per run: {s['steps']} steps × {s['batch_size']} sequences × "
        f"{s['block_size']} tokens = {s['tokens_per_run']:,} tokens; AdamW, lr {s['lr']:g} with "
        f"{s['warmup_steps']} warmup steps and cosine decay to {s['min_lr']:g}; data `{s['data']}`",
        f"- runs finished: {done} of {planned}"
        + (f"; suite wall time {wall / 60:.1f} min" if wall else ""),
        "- every variant used the same data, tokens, steps and lr schedule; seeds "
        f"{', '.join(map(str, plan['seeds']))} set the initial weights and the batch order",
        "",
        "## Claims",
        "",
        "| claim | variant | measured (mean ± sd over seeds) | rule | verdict |",
        "|---|---|---|---|---|",
    ]
    for c in report["claims"]:
        lines.append(
            f"| {cell(c['claim'])} | `{c['variant']}` | {cell(c['evidence'])} | "
            f"{cell(c['rule'])} | **{c['verdict']}** |"
        )
    lines += [
        "",
        "Verdict rule: d = mean(variant) − mean(reference) − margin, signed so that d > 0 is "
        "what the claim says; σ = pooled standard deviation over seeds. **holds** if d > 2σ, "
        "**does not hold** if d < −2σ, otherwise **inconclusive at this scale** (also with one "
        "seed). A diverged run counts as infinite loss and as never reaching a target.",
        "",
        "## Results per variant",
        "",
        "| variant | change | runs | diverged | final val loss | perplexity | loss / baseline "
        "| ppl / baseline | steps to target | peak ‖g‖ |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["variants"]:
        lines.append(
            f"| `{r['name']}` | {cell(r['label'])} | {r['runs']}/{r['planned']} | "
            f"{len(r['diverged'])} | {mean_sd(r['val_loss'])} | {fmt(r['val_ppl_mean'], 2)} | "
            f"{fmt(r['loss_ratio'])} | {fmt(r['ppl_ratio'])} | "
            f"{mean_sd(r['steps_to_target'], 0)} | {mean_sd(r['peak_grad_norm'], 2)} |"
        )
    lines += [
        "",
        f"Steps to target: steps until the val loss reaches the baseline's mean final val loss "
        f"+{TARGET_SLACK:.0%} ({fmt(report['target_loss'])}), interpolated "
        f"between evaluations; {s['steps']} means never reached.",
        "",
    ]
    diverged = [(r["name"], d) for r in report["variants"] for d in r["diverged"]]
    if diverged:
        lines += [
            "## Divergences",
            "",
            "| run | step | first non-finite at | layer |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {name}-s{d['seed']} | {d.get('step', '—')} | `{d.get('where')}` | "
            f"{d.get('layer', '—')} |"
            for name, d in diverged
        ]
        lines.append("")
    lines += [
        "## Loss curves",
        "",
        "Mean over seeds; the band spans the lowest and highest seed.",
        "",
        "![loss curves](loss.png)",
        "",
    ]
    lines += [
        "## Gradients and activations",
        "",
        "For the baseline and the variants whose claims are about stability (no layer "
        "norm, no scaling, init): the pre-clip gradient norm per step, and, from the "
        "layer monitor, the residual-stream RMS and the gradient norm by depth.",
        "",
        "![gradient norm](grad_norm.png)",
        "",
    ]
    if "depth" in report["figures"]:
        lines += ["![by depth](depth.png)", ""]
    lines += extrapolation_markdown(report, s)
    lines += [
        "## Samples",
        "",
        f'Seed {plan["seeds"][0]}\'s final weights, prompt "Once upon a time", '
        "temperature 0.8, top-k 40, the same sampling seed for all.",
        "",
        "| variant | sample |",
        "|---|---|",
    ]
    for r in report["variants"]:
        sample = r["sample"] if r["sample"] else "(no sample: the run diverged or did not finish)"
        lines.append(f"| `{r['name']}` | {cell(sample)} |")
    lines.append("")
    return "\n".join(lines)


def extrapolation_markdown(report: dict[str, Any], s: dict[str, Any]) -> list[str]:
    extrap = report["extrapolation"]
    if not extrap:
        return []
    lengths = [s["block_size"] * f for f in EXTRAPOLATION_FACTORS]
    lines = [
        "## Positional extrapolation",
        "",
        f"Val loss (mean ± sd over seeds) at the training context ({s['block_size']}) and "
        f"beyond, from each run's final weights; in brackets the loss on the positions past "
        f"{s['block_size']}, which no run saw in training.",
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
    if "extrapolation" in report["figures"]:
        lines += ["", "![extrapolation](extrapolation.png)"]
    lines.append("")
    return lines
