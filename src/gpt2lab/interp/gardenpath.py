"""Garden paths: attention entropy and surprisal at the word that decides, vs a control.

For each item of `gpt2lab.data.gardenpath` (a garden-path sentence and its control), both
sentences are run through the model (after an <|endoftext|> token when the vocabulary has
one, so the first word has a context), and at the *disambiguating word* we measure:

- attention entropy: for every (layer, head), the normalised entropy of the attention row of
  the word's first token (`row_entropy`: 0 = on one token, 1 = uniform over all it sees);
  normalising by log(keys) matters, since the word sits at different positions in the two
  sentences;
- surprisal in bits, −log2 p(word | prefix), summed over the word's tokens (the chain rule
  gives the word's surprisal), read after every layer with the logit lens (ln_f and lm_head
  applied to that layer's residual stream); the last stage is the model's own prediction.

Each is taken as garden path minus control per item, then averaged over items with a standard
deviation and a seeded percentile bootstrap 95% interval over items. A model that is led up
the garden path shows Δ surprisal > 0 at the final stage. The "diffuse, then focused" story
(some heads attend more diffusely at the word of a garden path before later layers resolve it)
predicts Δ entropy > 0 in some heads of early or middle layers; the report shows which heads,
if any, have their whole interval above 0, and does not go further than that.

One file (about 400 lines) on purpose: the measurement, its summary over items and the report
that shows it share the definitions above, and none is used elsewhere.

Example (two stages of one item, in bits): garden path [9.1, 7.4], control [8.8, 3.0] ->
Δ surprisal [0.3, 4.4]: after the last layer the garden-path word is 4.4 bits less expected.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from gpt2lab.data.gardenpath import GARDEN_PATHS, GardenPath, Sentence
from gpt2lab.errors import GPT2LabError
from gpt2lab.files import atomic_write, atomic_write_text
from gpt2lab.interp.attribution import lens_stages, logit_lens_log_probs
from gpt2lab.interp.heads import attention_patterns, check_fits, row_entropy
from gpt2lab.model import device_of, eval_mode

# ---------------------------------------------------------------------------------------------
# 1. Finding the word's tokens
# ---------------------------------------------------------------------------------------------


def locate_word(
    tokenizer, sentence: Sentence, prefix: Sequence[int] = ()
) -> tuple[list[int], list[int]]:
    """(token ids of `prefix` + the sentence, positions of the tokens that hold the word).

    A token holds the word when its bytes overlap the word's span; with GPT-2's vocabulary
    ' fell' (leading space included) is one token: 'The horse raced past the barn fell.' ->
    positions [6] (7 with one prefix token).
    """
    ids = list(prefix) + tokenizer.encode(sentence.text)
    start = len(sentence.text[: sentence.start].encode("utf-8"))  # byte offsets of the word
    end = len(sentence.text[: sentence.end].encode("utf-8"))
    positions, offset = [], 0
    for i, token in enumerate(ids[len(prefix) :], start=len(prefix)):
        length = len(tokenizer.token_bytes(token))
        if offset < end and offset + length > start:
            positions.append(i)
        offset += length
    if not positions or positions[0] == 0:
        raise GPT2LabError(f"cannot measure {sentence.word!r} in {sentence.text!r}")
    return ids, positions


def start_tokens(tokenizer) -> list[int]:
    """[<|endoftext|>] when the vocabulary has it (GPT-2 and gpt2lab's BPE both do), else []."""
    return [tokenizer.eot_token] if tokenizer.eot_token is not None else []


# ---------------------------------------------------------------------------------------------
# 2. One sentence, one item
# ---------------------------------------------------------------------------------------------


@dataclass
class WordMeasure:
    """What the model does at the disambiguating word of one sentence."""

    tokens: list[str]  # the sentence's tokens as text (the start token included)
    positions: list[int]  # the word's tokens
    entropy: np.ndarray  # (n_layer, n_head) normalised entropy of the word's first token
    surprisal: np.ndarray  # (n_stages,) bits, summed over the word's tokens

    def to_dict(self) -> dict:
        return {
            "tokens": self.tokens,
            "positions": self.positions,
            "entropy": np.round(self.entropy, 6).tolist(),
            "surprisal_bits": np.round(self.surprisal, 6).tolist(),
        }


@torch.no_grad()
def measure_word(model, ids: Sequence[int], positions: Sequence[int], decode) -> WordMeasure:
    """Entropy of every head's row at positions[0], and the logit-lens surprisal of the word."""
    check_fits(model, len(ids))
    idx = torch.tensor([list(ids)], device=device_of(model))  # (1, T)
    patterns = attention_patterns(model, idx)[0]  # (L, nh, T, T)
    entropy = row_entropy(patterns)[..., positions[0]]  # (L, nh)
    log_probs = logit_lens_log_probs(model, ids)  # (S, T, V), nats
    rows = torch.tensor([p - 1 for p in positions], device=log_probs.device)  # predicting rows
    targets = torch.tensor([ids[p] for p in positions], device=log_probs.device)
    nats = -log_probs[:, rows, targets].sum(-1)  # (S,)
    return WordMeasure(
        [decode([t]) for t in ids],
        list(positions),
        entropy.cpu().numpy(),
        (nats / math.log(2)).cpu().numpy(),
    )


@dataclass
class ItemResult:
    item: GardenPath
    garden: WordMeasure
    control: WordMeasure

    @property
    def delta_entropy(self) -> np.ndarray:  # (n_layer, n_head)
        return self.garden.entropy - self.control.entropy

    @property
    def delta_surprisal(self) -> np.ndarray:  # (n_stages,)
        return self.garden.surprisal - self.control.surprisal

    def to_dict(self) -> dict:
        return {
            "name": self.item.name,
            "kind": self.item.kind,
            "note": self.item.note,
            "garden": {"text": self.item.garden.text, "word": self.item.garden.word}
            | self.garden.to_dict(),
            "control": {"text": self.item.control.text, "word": self.item.control.word}
            | self.control.to_dict(),
        }


def measure_item(model, tokenizer, item: GardenPath) -> ItemResult:
    """Both sentences of an item; their disambiguating words must be the same tokens."""
    prefix = start_tokens(tokenizer)
    (g_ids, g_pos), (c_ids, c_pos) = (
        locate_word(tokenizer, s, prefix) for s in (item.garden, item.control)
    )
    if [g_ids[p] for p in g_pos] != [c_ids[p] for p in c_pos]:
        raise GPT2LabError(
            f"item {item.name!r}: the disambiguating word is tokenised differently in the "
            "garden path and the control"
        )
    return ItemResult(
        item,
        measure_word(model, g_ids, g_pos, tokenizer.decode),
        measure_word(model, c_ids, c_pos, tokenizer.decode),
    )


# ---------------------------------------------------------------------------------------------
# 3. Over items: mean, spread, bootstrap
# ---------------------------------------------------------------------------------------------


def bootstrap_ci(
    values: np.ndarray, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval of the mean over axis 0: (N, ...) -> (lo (...), hi (...)).

    Draws N items with replacement `n_boot` times (seeded) and takes the (1 − level)/2 and
    (1 + level)/2 quantiles of the resampled means. [1, 2, 3, 4] -> about (1.75, 3.25).
    """
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(values), size=(n_boot, len(values)))  # (n_boot, N)
    means = values[draws].mean(1)  # (n_boot, ...)
    tail = (1.0 - level) / 2
    return np.quantile(means, tail, axis=0), np.quantile(means, 1 - tail, axis=0)


@dataclass
class Summary:
    """Mean over items, standard deviation (ddof 1) and a bootstrap 95% interval, same shape."""

    mean: np.ndarray
    std: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    @classmethod
    def of(cls, values: np.ndarray, seed: int, n_boot: int) -> Summary:
        values = np.asarray(values, dtype=float)  # (N, ...)
        lo, hi = bootstrap_ci(values, n_boot, seed)
        std = values.std(0, ddof=1) if len(values) > 1 else np.zeros(values.shape[1:])
        return cls(values.mean(0), std, lo, hi)

    def to_dict(self) -> dict:
        return {k: np.round(v, 6).tolist() for k, v in self.__dict__.items()}


@dataclass
class GardenPathReport:
    items: list[ItemResult]
    stages: list[str]
    delta_entropy: Summary  # (n_layer, n_head)
    delta_entropy_layer: Summary  # (n_layer,), mean over heads
    delta_surprisal: Summary  # (n_stages,)
    garden_surprisal: np.ndarray  # (n_stages,) mean over items
    control_surprisal: np.ndarray  # (n_stages,)
    seed: int

    def diffuse_heads(self) -> list[tuple[int, int]]:
        """(layer, head) whose Δ entropy interval lies wholly above 0: more diffuse on garden
        paths than on controls, item after item."""
        return [tuple(map(int, lh)) for lh in np.argwhere(self.delta_entropy.lo > 0)]

    def focused_heads(self) -> list[tuple[int, int]]:
        """(layer, head) whose Δ entropy interval lies wholly below 0."""
        return [tuple(map(int, lh)) for lh in np.argwhere(self.delta_entropy.hi < 0)]

    def to_dict(self) -> dict:
        return {
            "n_items": len(self.items),
            "stages": self.stages,
            "seed": self.seed,
            "delta_entropy": self.delta_entropy.to_dict(),
            "delta_entropy_per_layer": self.delta_entropy_layer.to_dict(),
            "delta_surprisal_bits": self.delta_surprisal.to_dict(),
            "garden_surprisal_bits": np.round(self.garden_surprisal, 6).tolist(),
            "control_surprisal_bits": np.round(self.control_surprisal, 6).tolist(),
            "diffuse_heads": self.diffuse_heads(),
            "focused_heads": self.focused_heads(),
            "items": [r.to_dict() for r in self.items],
        }


def analyse_garden_paths(
    model,
    tokenizer,
    items: Sequence[GardenPath] = GARDEN_PATHS,
    *,
    seed: int = 0,
    n_boot: int = 2000,
    progress: bool = True,
) -> GardenPathReport:
    """Measure every item (two forwards per sentence) and summarise over items."""
    if not items:
        raise GPT2LabError("no garden-path items to measure")
    with eval_mode(model):
        results = [
            measure_item(model, tokenizer, item)
            for item in tqdm(items, desc="garden paths", disable=not progress, leave=False)
        ]
    d_entropy = np.stack([r.delta_entropy for r in results])  # (N, L, nh)
    d_surprisal = np.stack([r.delta_surprisal for r in results])  # (N, S)
    return GardenPathReport(
        items=results,
        stages=lens_stages(model.config.n_layer),
        delta_entropy=Summary.of(d_entropy, seed, n_boot),
        delta_entropy_layer=Summary.of(d_entropy.mean(-1), seed, n_boot),
        delta_surprisal=Summary.of(d_surprisal, seed, n_boot),
        garden_surprisal=np.mean([r.garden.surprisal for r in results], 0),
        control_surprisal=np.mean([r.control.surprisal for r in results], 0),
        seed=seed,
    )


# ---------------------------------------------------------------------------------------------
# 4. Writing the report
# ---------------------------------------------------------------------------------------------

PICTURES = {
    "entropy": "delta_entropy.png",
    "entropy_layers": "delta_entropy_layers.png",
    "surprisal": "delta_surprisal.png",
}


def write_garden_path_report(report: GardenPathReport, out: Path, model_name: str) -> Path:
    """gardenpath.md, gardenpath.json and three PNGs in `out` (atomically); returns the .md."""
    from gpt2lab.plots.attention import layer_head_grid
    from gpt2lab.plots.gardenpath import Panel, stage_profiles

    out.mkdir(parents=True, exist_ok=True)
    d_ent, d_lay, d_sur = report.delta_entropy, report.delta_entropy_layer, report.delta_surprisal
    figures = {
        "entropy": layer_head_grid(
            d_ent.mean,
            "Δ attention entropy at the disambiguating word\n(garden path − control)",
            label="Δ normalised entropy",
            diverging=True,
        ),
        "entropy_layers": stage_profiles(
            [f"L{i}" for i in range(len(d_lay.mean))],
            [
                Panel(
                    "Δ attention entropy per layer, 95% CI over items",
                    "Δ normalised entropy (garden path − control)",
                    {"mean over heads": (d_lay.mean, d_lay.lo, d_lay.hi)},
                )
            ],
            xlabel="layer (attention of the word's first token)",
        ),
        "surprisal": stage_profiles(
            report.stages,
            [
                Panel(
                    "surprisal of the disambiguating word (logit lens)",
                    "bits, mean over items",
                    {
                        "garden path": (report.garden_surprisal, None, None),
                        "control": (report.control_surprisal, None, None),
                    },
                ),
                Panel(
                    "Δ surprisal, 95% CI over items",
                    "bits (garden path − control)",
                    {"Δ": (d_sur.mean, d_sur.lo, d_sur.hi)},
                ),
            ],
        ),
    }
    for key, fig in figures.items():
        atomic_write(
            out / PICTURES[key], lambda tmp, fig=fig: fig.savefig(tmp, dpi=110, format="png")
        )
    atomic_write_text(out / "gardenpath.json", json.dumps(report.to_dict(), indent=1) + "\n")
    return atomic_write_text(out / "gardenpath.md", garden_path_markdown(report, model_name))


def _ci(summary: Summary, index) -> str:
    return f"{summary.mean[index]:+.3f} [{summary.lo[index]:+.3f}, {summary.hi[index]:+.3f}]"


def _heads(heads: list[tuple[int, int]], summary: Summary) -> str:
    if not heads:
        return "none"
    return ", ".join(f"L{layer}H{head} ({_ci(summary, (layer, head))})" for layer, head in heads)


def garden_path_markdown(report: GardenPathReport, model_name: str) -> str:
    n = len(report.items)
    d_sur, d_ent, d_lay = report.delta_surprisal, report.delta_entropy, report.delta_entropy_layer
    positive = sum(r.delta_surprisal[-1] > 0 for r in report.items)
    lines = [
        f"# Garden paths through `{model_name}`",
        "",
        f"{n} garden-path sentences, each against a minimally different control, measured at the "
        "disambiguating word (Δ = garden path − control; mean over items, "
        f"[95% bootstrap interval over items, seed {report.seed}]).",
        "",
        f"- **Surprisal** of the word (final layer): {_ci(d_sur, -1)} bits; higher for the "
        f"garden path in {positive} of {n} items.",
        f"- **Heads more diffuse** at the word of a garden path (interval above 0): "
        f"{_heads(report.diffuse_heads(), d_ent)}.",
        f"- **Heads more focused** there (interval below 0): "
        f"{_heads(report.focused_heads(), d_ent)}.",
        "",
        "Entropy is the normalised entropy of the attention row of the word's first token "
        "(0 = on one token, 1 = uniform over the tokens it can see); surprisal is "
        "−log2 p(word | prefix), summed over the word's tokens, read after each layer by the "
        "logit lens. The numbers say where the model differs, not why: a head whose interval "
        "lies above 0 attends more diffusely on these garden paths; it is not shown to be "
        "'confused' or to resolve anything.",
        "",
        "## Per layer",
        "",
        f"![Δ surprisal]({PICTURES['surprisal']})",
        "",
        f"![Δ entropy per layer]({PICTURES['entropy_layers']})",
        "",
        "| stage | surprisal, garden path | surprisal, control | Δ surprisal (bits) | "
        "Δ entropy, mean over heads |",
        "|---|---:|---:|---:|---:|",
    ]
    for s, stage in enumerate(report.stages):
        entropy = _ci(d_lay, s - 1) if s > 0 else "—"  # 'embed' has no attention yet
        lines.append(
            f"| {stage} | {report.garden_surprisal[s]:.2f} | {report.control_surprisal[s]:.2f} "
            f"| {_ci(d_sur, s)} | {entropy} |"
        )
    lines += [
        "",
        "## Per head",
        "",
        f"![Δ entropy]({PICTURES['entropy']})",
        "",
        "## Items",
        "",
        "| item | kind | word | Δ surprisal (bits) | Δ entropy, mean over heads | garden path / control |",
        "|---|---|---|---:|---:|---|",
    ]
    for r in report.items:
        g, c = r.item.garden, r.item.control
        lines.append(
            f"| {r.item.name} | {r.item.kind} | {g.word} | {r.delta_surprisal[-1]:+.2f} | "
            f"{r.delta_entropy.mean():+.3f} | {g.text} / {c.text} |"
        )
    return "\n".join(lines) + "\n"
