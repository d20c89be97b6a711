"""The neurons report: selective neurons per layer, and a close look at the notable ones.

`build_neurons_report` scans every MLP neuron of the chosen layers over a text set
(`neurons.scan_neurons`), labels them with word categories (`neuron_labels`), counts the
selective ones per layer, and picks up to `show` neurons per layer to describe in full: top
contexts, activation histogram, the tokens they write. `write_neurons_report` writes

    report.md  neurons.json  selectivity.png  categories.png  histograms_layer<L>.png

each atomically (a reader never sees half a file).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gpt2lab.data.categories import GROUPS
from gpt2lab.files import atomic_write, atomic_write_text
from gpt2lab.interp import neuron_labels as nl
from gpt2lab.interp import neurons as nr
from gpt2lab.interp.heads import TextSet
from gpt2lab.interp.report import md_code

Decode = Callable[[list[int]], str]


@dataclass
class NeuronDetail:
    """Everything the report says about one neuron."""

    layer: int
    neuron: int
    max: float
    mean: float
    density: float
    labels: list[nl.CategoryLabel]
    examples: list[nr.NeuronExample]
    promotes: list[tuple[str, float]]  # (token, logit per unit activation), largest first
    suppresses: list[tuple[str, float]]  # most negative first
    histogram: tuple[np.ndarray, np.ndarray]  # counts (bins,), edges (bins + 1,)

    def to_dict(self) -> dict:
        counts, edges = self.histogram
        return {
            "layer": self.layer,
            "neuron": self.neuron,
            "max": self.max,
            "mean": self.mean,
            "density": self.density,
            "labels": [label.to_dict() for label in self.labels],
            "examples": [e.to_dict() for e in self.examples],
            "promotes": [list(p) for p in self.promotes],
            "suppresses": [list(p) for p in self.suppresses],
            "histogram": {"counts": counts.tolist(), "edges": edges.tolist()},
        }


@dataclass
class NeuronsReport:
    scan: nr.NeuronScan
    source: str
    n_texts: int
    labels: dict[tuple[int, int], list[nl.CategoryLabel]]
    selectivity: list[nl.LayerSelectivity]
    details: list[NeuronDetail]

    def to_dict(self) -> dict:
        s = self.scan
        return {
            "source": self.source,
            "n_texts": self.n_texts,
            "n_tokens": s.n_tokens,
            "top_k": s.values.shape[-1],
            "rule": {"min_share": nl.MIN_SHARE, "min_lift": nl.MIN_LIFT, "min_words": nl.MIN_WORDS},
            "layers": s.layers,
            "n_neurons": s.n_neurons,
            "selectivity": [x.to_dict() for x in self.selectivity],
            "labels": [
                {"layer": layer, "neuron": neuron, **label.to_dict()}
                for (layer, neuron), found in sorted(self.labels.items())
                for label in found
            ],
            "neurons": [d.to_dict() for d in self.details],
            "stats": {
                "max": s.values[..., 0].round(4).tolist(),
                "mean": s.mean.round(4).tolist(),
                "density": s.density.round(4).tolist(),
            },
        }


def shown_neurons(
    scan: nr.NeuronScan,
    labels: dict[tuple[int, int], list[nl.CategoryLabel]],
    layer: int,
    n: int,
) -> list[int]:
    """Up to n neurons of a layer worth a close look: those with a word-category label carried
    by several words first (the most selective, by lift, first), then any labelled one (by
    lift), then the most strongly activated."""
    top = scan.values[scan.row(layer), :, 0]  # (F,)

    def key(neuron: int) -> tuple:
        found = labels.get((layer, neuron), [])
        beyond = [lb for lb in found if lb.group != nl.TOKEN_GROUP and lb.words >= nl.MIN_WORDS]
        best = max((lb.lift for lb in beyond or found), default=0.0)
        return (not beyond, not found, -best, -top[neuron], neuron)

    return sorted(range(scan.n_neurons), key=key)[:n]


def build_neurons_report(
    model,
    texts: TextSet,
    decode: Decode,
    *,
    layers: int | Sequence[int] | None = None,
    k: int = 20,
    show: int = 6,
    n_examples: int = 5,
    progress: bool = False,
) -> NeuronsReport:
    """Scan, label, count; then the details of up to `show` neurons per layer."""
    scan = nr.scan_neurons(model, texts, layers, k, progress)
    rates = nl.base_rates(s for strings in texts.strings for s in strings)
    labels = nl.label_neurons(nr.top_token_strings(scan, texts), scan.layers, rates)
    selectivity = nl.selectivity_by_layer(labels, scan.layers, scan.n_neurons)
    chosen = [(layer, n) for layer in scan.layers for n in shown_neurons(scan, labels, layer, show)]
    values = nr.neuron_values(model, texts, chosen, progress) if chosen else None
    details = []
    for i, (layer, neuron) in enumerate(chosen):
        out = nr.output_tokens(model, layer, neuron, k=8)
        r = scan.row(layer)
        details.append(
            NeuronDetail(
                layer=layer,
                neuron=neuron,
                max=float(scan.values[r, neuron, 0]),
                mean=float(scan.mean[r, neuron]),
                density=float(scan.density[r, neuron]),
                labels=labels.get((layer, neuron), []),
                examples=nr.top_examples(scan, texts, layer, neuron, n_examples),
                promotes=[(decode([t]), v) for t, v in out.top],
                suppresses=[(decode([t]), v) for t, v in out.bottom],
                histogram=nr.activation_histogram(values[:, i]),
            )
        )
    return NeuronsReport(scan, texts.source, len(texts), labels, selectivity, details)


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def save_png(fig, path: Path) -> None:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))


def write_neurons_report(report: NeuronsReport, out: Path, model_name: str) -> Path:
    """report.md, neurons.json and the pictures in `out`; returns the report's path."""
    from gpt2lab.plots.neurons import activation_histograms, category_heatmap, selectivity_bars

    out.mkdir(parents=True, exist_ok=True)
    layers = report.scan.layers
    sel = report.selectivity
    panels = {
        "neurons with a label in each group": {
            g: [x.fraction(g) for x in sel] for g in nl.LABEL_GROUPS
        },
        f"… a label carried by ≥ {nl.MIN_WORDS} different words (beyond one token)": {
            g: [x.fraction(g, beyond_word=True) for x in sel] for g in GROUPS
        },
    }
    save_png(selectivity_bars(layers, panels), out / "selectivity.png")
    categories = [c for g in GROUPS.values() for c in g]
    counts = np.array([[x.by_category[c] for c in categories] for x in sel])
    title = "neurons labelled with each word category"
    names = [category_name(c) for c in categories]
    save_png(category_heatmap(layers, names, counts, title), out / "categories.png")
    for layer in layers:
        hists = [
            (f"L{d.layer} n{d.neuron} {label_text(d.labels, short=True)}", *d.histogram)
            for d in report.details
            if d.layer == layer
        ]
        if hists:
            save_png(activation_histograms(hists), out / f"histograms_layer{layer}.png")
    atomic_write_text(out / "neurons.json", json.dumps(report.to_dict(), indent=1) + "\n")
    return atomic_write_text(out / "report.md", neurons_markdown(report, model_name))


def category_name(category: str) -> str:
    """The part of speech 'number' (five, three) reads 'numeral', apart from the group
    'number' (singular, plural); every other category reads as it is."""
    return "numeral" if category == "number" else category


def label_name(label: nl.CategoryLabel) -> str:
    """How a label reads: 'animal', 'numeral', "token 'the'"."""
    if label.group == nl.TOKEN_GROUP:
        return f"token {label.category!r}"
    return category_name(label.category)


def label_text(labels: Sequence[nl.CategoryLabel], short: bool = False) -> str:
    """'noun 0.90 ×4.5 (7 words), animal 0.80 ×16 (6 words)'; short: 'noun, animal'."""
    if short:
        return ", ".join(label_name(lb) for lb in labels[:3])
    return ", ".join(
        f"{label_name(lb)} {lb.share:.2f} ×{lb.lift:.1f}"
        + (f" ({lb.words} words)" if lb.group != nl.TOKEN_GROUP else "")
        for lb in labels
    )


def selectivity_table(selectivity: Sequence[nl.LayerSelectivity]) -> list[str]:
    """One row per layer: neurons with any label, then per group 'all (beyond one word)'."""
    head = "| layer | neurons | any label | " + " | ".join(nl.LABEL_GROUPS) + " |"
    lines = [head, "|---:" * (3 + len(nl.LABEL_GROUPS)) + "|"]
    for x in selectivity:
        cells = [f"{x.by_group[nl.TOKEN_GROUP]} ({x.fraction(nl.TOKEN_GROUP):.1%})"]
        cells += [f"{x.by_group[g]} ({x.fraction(g):.1%}) · {x.beyond_word[g]}" for g in GROUPS]
        any_label = f"{x.selective} ({x.selective / x.n_neurons:.1%})"
        lines.append(f"| {x.layer} | {x.n_neurons} | {any_label} | " + " | ".join(cells) + " |")
    return lines


def neurons_markdown(report: NeuronsReport, model_name: str) -> str:
    s = report.scan
    lines = [
        f"# MLP neurons of `{model_name}`",
        "",
        f"Scanned {len(s.layers)} layer(s) × {s.n_neurons} neurons over {report.n_texts} texts "
        f"({s.n_tokens} tokens; {report.source}), keeping each neuron's top {s.values.shape[-1]} "
        "activations (`blocks.L.mlp.hook_post`, after the GELU).",
        "",
        "## Selective neurons per layer",
        "",
        f"A neuron is labelled with a category when at least {nl.MIN_SHARE:.0%} of its top "
        f"activations fall on tokens of that category (share) and that share is at least "
        f"{nl.MIN_LIFT:g}× the category's share of all tokens (lift). Categories come from the "
        "stories grammar's word lists (`gpt2lab.data.categories`); *token identity* is one "
        "word. Cells: neurons with a label in the group (% of the layer) · of those, how many "
        f"hold the label over ≥ {nl.MIN_WORDS} different words (not one token in disguise).",
        "",
        *selectivity_table(report.selectivity),
        "",
        "![selective neurons per layer](selectivity.png)",
        "",
        "![labels per category](categories.png)",
        "",
    ]
    for layer in s.layers:
        details = [d for d in report.details if d.layer == layer]
        lines += [f"## Layer {layer}", ""]
        if not details:
            continue
        lines += [
            "| neuron | max | mean | density | labels | writes (top tokens of W_out·W_U) |",
            "|---:|---:|---:|---:|---|---|",
        ]
        for d in details:
            writes = " ".join(md_code(t) for t, _ in d.promotes[:5])
            lines.append(
                f"| {d.neuron} | {d.max:.2f} | {d.mean:.3f} | {d.density:.1%} | "
                f"{label_text(d.labels) or '—'} | {writes} |"
            )
        lines += ["", f"![histograms](histograms_layer{layer}.png)", ""]
        for d in details:
            lines += [f"### Layer {layer}, neuron {d.neuron}", ""]
            lines += [f"- {md_code(e.context)} — {e.activation:.2f}" for e in d.examples]
            promotes = ", ".join(f"{md_code(t)} {v:+.2f}" for t, v in d.promotes)
            suppresses = ", ".join(f"{md_code(t)} {v:+.2f}" for t, v in d.suppresses)
            lines += ["", f"Promotes: {promotes}", "", f"Suppresses: {suppresses}", ""]
    lines += [
        "The current token of each example is in ⟦ ⟧. *Writes*: the direct effect of the "
        "neuron on the logits, W_U·(γ ⊙ (W_out[n] − mean)) through the final LayerNorm's scale "
        "γ, per unit of activation and of the residual stream's σ (`interp/neurons.py`).",
    ]
    return "\n".join(lines) + "\n"
