"""The report of a suite: numbers from the runs' metrics files, verdicts from a stated rule.

`write_report(suite_dir)` reads OUT/suite.json and every finished run's metrics.jsonl and
result.json, and writes report.md, report.json and the figures. Nothing in it is typed in:
each number is computed here from those files. The runs, the verdict rule and the claims are
in verdicts.py; here: positional extrapolation, the figures and the Markdown. (About 450
lines: one report, its sections in the order report.md shows them.)
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from gpt2lab.config import GPTConfig
from gpt2lab.errors import GPT2LabError
from gpt2lab.experiments.runner import SUITE_FILE, write_json
from gpt2lab.experiments.verdicts import (
    CLAIMS,
    RULES,
    TARGET_SLACK,
    Run,
    assess,
    band,
    depth_band,
    load_runs,
    mean_sd,
)
from gpt2lab.plots.training import curve

EXTRAPOLATION_FACTORS = (1, 2, 4)
"""Evaluation lengths as multiples of the training context."""
EXTRAPOLATION_TOKENS = 8192
"""Val tokens scored at each length and run (the same number for every length)."""


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
