"""Reports a person can read: the heads report (report.md + grids) and the inspect folder.

`heads_report` scores every head on a text set, classifies roles, measures ablation effects,
collects the strongest examples of each role, and writes:

    report.md  scores.json  grid_<score>.png  ablation_<method>.png  behaviours_ablation.png

Given a `behaviours.BehaviourSet`, it also measures what the roles are *for* (bigram
continuation loss, the two half losses of repeated tokens, pronoun-probe accuracy) and checks
that zero-ablating each labelled head hurts its own behaviour more than any other head does.

About 470 lines for two reports; the inspect folder (below) is the natural cut into its own
module if either grows.

`inspect_text` writes, for one text: attention heatmaps, a head view (HTML), a logit-lens
table and the heads that contributed most at every position (inspect.md + inspect.json).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from gpt2lab.interp import attribution as attr
from gpt2lab.interp.behaviours import (
    BEHAVIOURS,
    LOWER_IS_BETTER,
    PARTNER_DROP,
    BehaviourSet,
    Specificity,
    ablation_specificity,
)
from gpt2lab.interp.heads import (
    ROLE_RULES,
    HeadRole,
    HeadScores,
    TextSet,
    attention_patterns,
    boundary_pattern,
    classify_heads,
    compute_head_scores,
    induction_pattern,
    previous_token_pattern,
    uniform_distance,
)
from gpt2lab.interp.html import head_view_html
from gpt2lab.interp.interventions import check_head, head_means
from gpt2lab.model import device_of

GRID_TITLES = {
    "previous_token": "previous-token score",
    "first_token": "first-token (sink) score",
    "self": "self (current-token) score",
    "duplicate_token": "duplicate-token score",
    "induction": "induction score (repeated random tokens)",
    "sentence_boundary": "sentence-boundary score",
    "mean_distance": "mean attention distance (tokens back)",
    "entropy": "attention entropy (normalised)",
    "antecedent_attention": "pronoun → antecedent: mean attention",
    "antecedent_accuracy": "pronoun → antecedent: argmax accuracy",
}


# ---------------------------------------------------------------------------------------------
# Examples of a role
# ---------------------------------------------------------------------------------------------


@dataclass
class Example:
    """One query → key attention of a head on a text, with its context."""

    text: int
    query: int
    key: int
    weight: float
    context: str

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def role_target(role: str, texts: TextSet, k: int, T: int) -> torch.Tensor:
    """(T, T) weights saying where a head of `role` should attend in text k (0 elsewhere)."""
    tokens = torch.as_tensor(texts.tokens[k])
    if role == "previous-token":
        return previous_token_pattern(T)
    if role == "induction":
        return induction_pattern(tokens)
    if role == "sentence-boundary":
        is_boundary = torch.zeros(T, dtype=torch.bool)
        is_boundary[texts.boundaries[k]] = True
        return boundary_pattern(is_boundary)
    if role == "coreference":
        P = torch.zeros(T, T)
        for p, a in texts.pronouns[k]:
            P[p, a] = 1.0
        return P
    if role == "sink":
        P = torch.zeros(T, T)
        P[1:, 0] = 1.0
        return P
    distance = (torch.arange(T)[:, None] - torch.arange(T)[None, :]).clamp_min(0).float()
    return distance / max(T - 1, 1)  # long-range: far and strong


def context_string(strings: Sequence[str], query: int, key: int, width: int = 6) -> str:
    """'… sat on the [mat] … because ⟨it⟩' — key in [brackets], query in ⟨angle brackets⟩."""

    def show(i: int) -> str:
        s = strings[i].replace("\n", "↵").replace("`", "'")
        return f"[{s}]" if i == key else f"⟨{s}⟩" if i == query else s

    start = max(0, key - width)
    if query - key <= 2 * width:
        span = "".join(show(i) for i in range(start, query + 1))
    else:
        left = "".join(show(i) for i in range(start, key + width + 1))
        span = left + " … " + "".join(show(i) for i in range(query - width, query + 1))
    return ("…" if start > 0 else "") + span


def top_examples(
    patterns: Sequence[torch.Tensor], texts: TextSet, role: str, layer: int, head: int, k: int = 5
) -> list[Example]:
    """The k strongest (text, query, key) entries of A ⊙ target for one head and role."""
    candidates = []
    for t, pattern in enumerate(patterns):
        A = pattern[layer, head]  # (T, T)
        weighted = A * role_target(role, texts, t, A.shape[-1])
        values, flat = weighted.flatten().topk(min(k, weighted.numel()))
        for v, f in zip(values.tolist(), flat.tolist()):
            if v > 0:
                q, key = divmod(f, A.shape[-1])
                candidates.append((v, t, q, key, float(A[q, key])))
    candidates.sort(reverse=True)
    return [
        Example(t, q, key, w, context_string(texts.strings[t], q, key))
        for _, t, q, key, w in candidates[:k]
    ]


# ---------------------------------------------------------------------------------------------
# The heads report
# ---------------------------------------------------------------------------------------------


@dataclass
class HeadsReport:
    scores: HeadScores
    roles: list[HeadRole]
    examples: dict[str, list[Example]]  # "layer.head role" -> examples
    ablation: attr.AblationEffects | None
    best_coreference: dict | None
    specificity: Specificity | None = None

    def to_dict(self) -> dict:
        return {
            "scores": self.scores.to_dict(),
            "roles": [r.__dict__ for r in self.roles],
            "rules": [r.__dict__ for r in ROLE_RULES],
            "examples": {k: [e.to_dict() for e in v] for k, v in self.examples.items()},
            "ablation": self.ablation.to_dict() if self.ablation else None,
            "best_coreference": self.best_coreference,
            "behaviours": self.specificity.to_dict() if self.specificity else None,
        }


def best_coreference_head(scores: HeadScores) -> dict | None:
    """The head with the highest pronoun → antecedent accuracy, against the baselines."""
    if "antecedent_accuracy" not in scores.grids:
        return None
    grid = scores.grids["antecedent_accuracy"]
    layer, head = np.unravel_index(int(np.argmax(grid)), grid.shape)
    return {
        "layer": int(layer),
        "head": int(head),
        "accuracy": float(grid[layer, head]),
        "mean_attention": float(scores.grids["antecedent_attention"][layer, head]),
        "nearest_name_baseline": scores.baseline_accuracy,
        "n_pronouns": scores.n_pronouns,
    }


def build_heads_report(
    model,
    texts: TextSet,
    *,
    ablation: str = "zero",
    n_examples: int = 5,
    progress: bool = True,
    behaviours: BehaviourSet | None = None,
) -> HeadsReport:
    """Scores, roles, role examples and, unless ablation='none', per-head Δloss and (given
    `behaviours`) the behaviours with the ablation-specificity check."""
    scores = compute_head_scores(model, texts, progress=progress)
    roles = classify_heads(scores, mean_uniform_distance=uniform_distance(texts))
    device = device_of(model)
    patterns = [
        attention_patterns(model, torch.tensor([t], device=device))[0].cpu()
        for t in tqdm(texts.tokens, desc="patterns", disable=not progress, leave=False)
    ]
    examples = {
        f"{r.layer}.{r.head} {r.role}": top_examples(
            patterns, texts, r.role, r.layer, r.head, n_examples
        )
        for r in roles
    }
    effects = None
    if ablation != "none":
        means = head_means(model, texts.tokens) if ablation == "mean" else None
        effects = attr.head_ablation_effects(model, texts.tokens, ablation, means, progress)
    specificity = None
    if behaviours is not None and ablation != "none":
        specificity = ablation_specificity(model, behaviours, roles, progress)
    return HeadsReport(scores, roles, examples, effects, best_coreference_head(scores), specificity)


def write_heads_report(report: HeadsReport, out: Path, model_name: str) -> Path:
    """report.md, scores.json and one PNG per grid in `out`; returns the report's path."""
    from gpt2lab.plots.attention import layer_head_grid

    out.mkdir(parents=True, exist_ok=True)
    images = {}
    for name, grid in report.scores.grids.items():
        fig = layer_head_grid(grid, GRID_TITLES.get(name, name), label=name)
        images[name] = f"grid_{name}.png"
        fig.savefig(out / images[name], dpi=110)
    if report.ablation is not None:
        title = f"Δloss when each head is {report.ablation.method}-ablated"
        fig = layer_head_grid(report.ablation.delta, title, label="Δloss", diverging=True)
        images["ablation"] = f"ablation_{report.ablation.method}.png"
        fig.savefig(out / images["ablation"], dpi=110)
    if report.specificity is not None:
        images["behaviours"] = "behaviours_ablation.png"
        behaviours_figure(report.specificity, report.roles).savefig(
            out / images["behaviours"], dpi=110
        )
    (out / "scores.json").write_text(json.dumps(report.to_dict(), indent=1) + "\n", "utf-8")
    path = out / "report.md"
    path.write_text(heads_markdown(report, model_name, images), encoding="utf-8")
    return path


def heads_markdown(report: HeadsReport, model_name: str, images: dict[str, str]) -> str:
    s = report.scores
    lines = [
        f"# Attention heads of `{model_name}`",
        "",
        f"Scored on {s.n_texts} texts ({s.source}); pattern scores use the `{s.measure}` "
        "measure Σ(A⊙P)/ΣA (TransformerLens convention); the induction score uses repeated "
        f"random tokens (induction loss {s.induction_loss:.3f}).",
        "",
        "## Classified heads",
        "",
    ]
    if report.roles:
        lines += ["| layer | head | role | score |", "|---:|---:|---|---:|"]
        lines += [f"| {r.layer} | {r.head} | {r.role} | {r.score:.3f} |" for r in report.roles]
    else:
        lines.append(
            "No head passes a role threshold. Small models trained for minutes on a CPU on "
            "stories alone form none; the default `gpt2lab train` (half of every batch random "
            "segments said twice, `--repeat-rows 0.5`) grows induction and previous-token heads "
            "after about 400 steps. docs/interpretability.md measures when roles do and do not "
            "form."
        )
    lines += ["", "Thresholds:", ""]
    lines += [f"- **{r.role}**: `{r.score}` ≥ {r.threshold} ({r.description})" for r in ROLE_RULES]
    best = report.best_coreference
    if best:
        baseline = best["nearest_name_baseline"]
        lines += [
            "",
            "## Pronoun → antecedent",
            "",
            f"Best head: layer {best['layer']}, head {best['head']}: argmax on the antecedent for "
            f"**{best['accuracy']:.1%}** of {best['n_pronouns']} pronouns (mean attention "
            f"{best['mean_attention']:.3f}). Baseline *attend to the nearest name*: "
            f"{baseline:.1%}"
            + (
                " (the probes put the distractor name nearer); a uniform guess between the two "
                "names: 50%."
                if baseline is not None
                else "."
            ),
        ]
    if report.ablation is not None:
        a = report.ablation
        order = np.argsort(-a.delta, axis=None)[:5]
        top = ", ".join(
            f"{head_name(divmod(int(i), a.delta.shape[1]))} ({a.delta.flat[i]:+.3f})" for i in order
        )
        lines += [
            "",
            f"## Ablation ({a.method})",
            "",
            f"Clean loss {a.clean_loss:.3f}. Heads the model needs most: {top}.",
            "",
            f"![ablation]({images['ablation']})",
        ]
    if report.specificity is not None:
        lines += behaviours_markdown(report.specificity, report.roles, images["behaviours"])
    lines += ["", "## Score grids", ""]
    lines += [f"### {GRID_TITLES.get(n, n)}\n\n![{n}]({images[n]})\n" for n in s.grids]
    lines += ["## Top examples of each role", ""]
    lines.append("Key attended to in `[brackets]`, the attending query in `⟨angle brackets⟩`.")
    for key, examples in report.examples.items():
        head, role = key.split(" ", 1)
        layer, h = head.split(".")
        lines += ["", f"### layer {layer}, head {h}: {role}", ""]
        lines += [f"- `{e.context}` — weight {e.weight:.2f}" for e in examples] or ["- (none)"]
    return "\n".join(lines) + "\n"


def head_name(head: tuple[int, int], roles: Sequence[HeadRole] = ()) -> str:
    """'L1H0', with the head's role labels when it has any: 'L1H0 (induction)'."""
    labels = [r.role for r in roles if (r.layer, r.head) == tuple(head)]
    return f"L{head[0]}H{head[1]}" + (f" ({', '.join(labels)})" if labels else "")


def behaviours_figure(spec: Specificity, roles: Sequence[HeadRole]):
    """The heads × behaviours Δ grid of a specificity check."""
    from gpt2lab.plots.behaviours import behaviour_harm_grid

    names = list(spec.delta)
    n_layer, n_head = spec.delta[names[0]].shape
    delta = np.stack([spec.delta[n].ravel() for n in names], axis=1)  # (n_layer·n_head, n_b)
    heads = [head_name((layer, head), roles) for layer in range(n_layer) for head in range(n_head)]
    return behaviour_harm_grid(
        delta,
        [n in LOWER_IS_BETTER for n in names],
        heads,
        [BEHAVIOURS[n] for n in names],
        "Δ behaviour when each head is zero-ablated (red = worse)",
    )


def behaviours_markdown(spec: Specificity, roles: Sequence[HeadRole], image: str) -> list[str]:
    """The 'Behaviours' and 'Ablation specificity' sections of report.md."""
    clean = spec.clean
    inputs = {
        "bigram_loss": f"{spec.n_bigram_targets} tokens after a non-initial word piece"
        + (f" in {spec.bigram_source}" if spec.bigram_source else ""),
        "first_half_loss": f"random tokens, first copy of {spec.rep_len}",
        "repeated_half_loss": f"the same {spec.rep_len} tokens again",
        "pronoun_accuracy": f"{spec.n_contrasts} coreference probes cut after the pronoun: "
        "antecedent's name above the distractor's",
        "pronoun_margin": "mean logit(antecedent) − logit(distractor) on the same probes",
        "said_name_loss": f"{spec.n_said_names} mentions of a name already said in one of "
        f"{spec.n_name_texts} held-out stories (its first token)",
        "new_name_loss": f"{spec.n_new_names} first mentions of a name, after the story's first",
    }
    lines = ["", "## Behaviours", "", "| behaviour | value | measured on |", "|---|---:|---|"]
    for name, value in clean.items():
        shown = f"{value:.1%}" if name == "pronoun_accuracy" else f"{value:.3f}"
        lines.append(f"| {BEHAVIOURS[name]} | {shown} | {inputs[name]} |")
    missing = [BEHAVIOURS[n] for n in BEHAVIOURS if n not in clean]
    if missing:
        lines += ["", f"Not measured (no inputs): {', '.join(missing)}."]
    lines += [
        "",
        "## Ablation specificity",
        "",
        "Each head zero-ablated in turn; Δ = ablated − clean. A check *holds* when the head "
        "whose removal hurts the role's behaviour most is labelled with the role (for "
        "induction: or is a partner of an induction head), and it hurts it strictly more than "
        "every other head.",
        "",
        *partner_lines(spec),
        "| role | labelled | behaviour | most hurt by (Δ) | most hurt by an unlabelled head (Δ) "
        "| verdict |",
        "|---|---|---|---|---|---|",
    ]
    for c in spec.checks:
        labelled = ", ".join(head_name(h) for h in c.labelled) or "—"
        if c.partners:
            labelled += " + partner " + ", ".join(head_name(h) for h in c.partners)
        top = f"{head_name(c.most_hurt, roles)} ({c.most_hurt_delta:+.3f})" if c.most_hurt else "—"
        runner = (
            f"{head_name(c.runner_up, roles)} ({c.runner_up_delta:+.3f})" if c.runner_up else "—"
        )
        lines.append(
            f"| {c.role} | {labelled} | {BEHAVIOURS[c.behaviour]} | {top} | {runner} "
            f"| **{c.verdict}** |"
        )
    return (
        lines
        + name_lines(spec, roles)
        + together_lines(spec)
        + ["", f"![behaviours under ablation]({image})"]
    )


def together_lines(spec: Specificity) -> list[str]:
    """The report's table of every behaviour with all heads of a role removed at once (none
    when no head is labelled)."""
    if not spec.together:
        return []
    names = list(spec.clean)
    lines = [
        "",
        "**Every head of a role removed at once** (Δ = ablated − clean; heads that share a job "
        "each look dispensable alone):",
        "",
        "| role removed | " + " | ".join(BEHAVIOURS[n] for n in names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for role, values in spec.together.items():
        cells = " | ".join(f"{values[n] - spec.clean[n]:+.3f}" for n in names)
        lines.append(f"| {role} | {cells} |")
    return lines


def name_lines(spec: Specificity, roles: Sequence[HeadRole], k: int = 3) -> list[str]:
    """The report's sentence on the heads the loss on said-before names needs (none when it
    was not measured): no role claims it, so the grid is read as it is."""
    if "said_name_loss" not in spec.delta:
        return []
    delta = spec.delta["said_name_loss"]  # (n_layer, n_head)
    ranked = sorted(np.ndindex(delta.shape), key=lambda h: float(delta[h]), reverse=True)[:k]
    found = ", ".join(f"{head_name(h, roles)} ({float(delta[h]):+.3f})" for h in ranked)
    return [
        "",
        f"**Names said before** (no role is checked against them): the heads whose removal "
        f"raises their loss most are {found}.",
    ]


def partner_lines(spec: Specificity) -> list[str]:
    """The report's sentence on the induction heads' partners (none when no head is labelled
    induction)."""
    if not any(c.role == "induction" and c.labelled for c in spec.checks):
        return []
    found = "; ".join(
        f"{head_name(p.head)} for {head_name(p.of)} (stripe {p.clean:.2f} → {p.ablated:.2f})"
        for p in spec.partners
    )
    return [
        f"**Induction partners** (an earlier head whose zero-ablation removes at least "
        f"{PARTNER_DROP:.0%} of an induction head's stripe): {found or 'none'}.",
        "",
    ]


# ---------------------------------------------------------------------------------------------
# Inspect one text
# ---------------------------------------------------------------------------------------------


def inspect_text(
    model,
    tokenizer,
    ids: list[int],
    out: Path,
    *,
    layer: int | None = None,
    head: int | None = None,
    top_k: int = 5,
    model_name: str = "",
) -> Path:
    """Pictures and tables of one text; returns the path of inspect.md."""
    from gpt2lab.plots.attention import attention_heatmap, layer_heads_grid, logit_lens_table

    if layer is not None:
        check_head(model, layer, head)
    out.mkdir(parents=True, exist_ok=True)
    strings = [tokenizer.decode([t]) for t in ids]
    device = device_of(model)
    patterns = attention_patterns(model, torch.tensor([ids], device=device))[0].cpu().numpy()
    written = []
    layers = [layer] if layer is not None else range(model.config.n_layer)
    for lyr in layers:
        fig = layer_heads_grid(patterns[lyr], strings, lyr)
        written.append(f"layer{lyr}_heads.png")
        fig.savefig(out / written[-1], dpi=100)
    if head is not None:
        fig = attention_heatmap(patterns[layer, head], strings, f"layer {layer}, head {head}")
        written.append(f"layer{layer}_head{head}.png")
        fig.savefig(out / written[-1], dpi=120)
    title = f"{model_name}: head view" if model_name else "head view"
    html = head_view_html(
        strings, patterns, title, layer=layer or 0, heads=[head] if head is not None else None
    )
    (out / "head_view.html").write_text(html, encoding="utf-8")

    lens = attr.logit_lens(model, ids, top_k)
    lens_data = lens.to_dict(tokenizer.decode)
    top1 = [[row[0] for row in stage] for stage in lens_data["top_tokens"]]
    fig = logit_lens_table(lens.stages, strings, top1, lens.top_probs[:, :, 0].numpy())
    fig.savefig(out / "logit_lens.png", dpi=110)
    contributors = attr.top_heads_per_position(model, ids, k=3, decode=tokenizer.decode)
    predictions = attr.top_predictions(model, ids, top_k, tokenizer.decode)

    data = {
        "model": model_name,
        "tokens": [{"id": i, "text": s} for i, s in zip(ids, strings)],
        "predictions": predictions,
        "logit_lens": lens_data,
        "top_heads": contributors,
        "pictures": written + ["logit_lens.png", "head_view.html"],
    }
    (out / "inspect.json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    path = out / "inspect.md"
    path.write_text(inspect_markdown(data, written, lens_data), encoding="utf-8")
    return path


def md_code(text: str) -> str:
    """Text as inline code that is safe in a Markdown table cell: ' a|b' -> '` a¦b`'."""
    return "`" + text.replace("`", "'").replace("|", "¦").replace("\n", "↵") + "`"


def inspect_markdown(data: dict, pictures: list[str], lens: dict) -> str:
    lines = [f"# Inspecting a text with `{data['model']}`", ""]
    lines += ["Open `head_view.html` in a browser for the interactive head view.", ""]
    lines += [f"![{p}]({p})" for p in pictures] + [
        "",
        "## Logit lens",
        "",
        "![](logit_lens.png)",
        "",
    ]
    lines += ["| after | " + " | ".join(md_code(t["text"]) for t in data["tokens"]) + " |"]
    lines += ["|---" * (len(data["tokens"]) + 1) + "|"]
    for stage, row in zip(lens["stages"], lens["top_tokens"]):
        lines.append(f"| {stage} | " + " | ".join(md_code(cell[0]) for cell in row) + " |")
    lines += [
        "",
        "## Heads that contributed most to each next token (direct logit attribution)",
        "",
    ]
    lines += ["| pos | token | next | top heads (DLA) |", "|---:|---|---|---|"]
    for row in data["top_heads"]:
        heads = ", ".join(f"L{h['layer']}H{h['head']} {h['dla']:+.2f}" for h in row["heads"])
        nxt = md_code(row["next"]) + (" (predicted)" if row["predicted"] else "")
        lines.append(f"| {row['position']} | {md_code(row['token'])} | {nxt} | {heads} |")
    return "\n".join(lines) + "\n"
