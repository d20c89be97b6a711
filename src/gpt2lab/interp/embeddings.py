"""Embedding spaces: what the token table, the position table and the residual stream hold.

Three views, each a 2-D PCA a person can look at, and one number per layer a test can check:

- token embeddings (rows of wte) of the words whose category the stories grammar knows,
  coloured by a category group (part of speech, gender, number, meaning);
- position embeddings: the learned table (rows of wpe) next to the sinusoidal table of the
  same size (the model's own `SinusoidalPositions`), as PCA coloured by position and as the
  position × position cosine-similarity matrix;
- the residual stream at the words of stories texts, layer by layer (layer 0 = token +
  position embedding, layer i = the output of block i), and a linear probe per layer and
  group: how well a multinomial logistic regression reads the category from the vector,
  tested on words it never saw in training, next to the majority-class baseline.

Held-out *words*, not held-out occurrences: with occurrences, the same word sits on both sides
of the split and a probe can score by recognising the word (at layer 0 the vector *is* the
word's embedding), which says nothing about whether the category is linearly there.

>>> X = np.array([[0.0, 0.0], [2.0, 0.0], [4.0, 0.1]])
>>> fit = pca(X, 1)
>>> np.round(fit.coords[:, 0], 2), round(float(fit.explained[0]), 4)
(array([-2.,  0.,  2.]), 0.9992)
"""

from __future__ import annotations

import json
import math
import os
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from gpt2lab.data.categories import GROUPS, categories_of
from gpt2lab.data.stories import generate_text, locate, token_starts
from gpt2lab.errors import GPT2LabError
from gpt2lab.files import atomic_write, atomic_write_text
from gpt2lab.model import SinusoidalPositions, device_of, eval_mode

# ---------------------------------------------------------------------------------------------
# PCA
# ---------------------------------------------------------------------------------------------


@dataclass
class PCA:
    """coords (n, k): the rows projected on the top k principal axes; components (k, d);
    explained (k,): the share of the total variance along each axis; mean (d,)."""

    coords: np.ndarray
    components: np.ndarray
    explained: np.ndarray
    mean: np.ndarray


def pca(X: np.ndarray, k: int = 2) -> PCA:
    """Principal components of the rows of X (n, d) by the SVD of the centred matrix (float64).

    Each axis's sign is fixed so that its largest-magnitude loading is positive: the same
    data always gives the same picture.
    """
    X = torch.as_tensor(np.asarray(X), dtype=torch.float64)  # (n, d)
    mean = X.mean(0)  # (d,)
    U, S, Vh = torch.linalg.svd(X - mean, full_matrices=False)  # (n, r), (r,), (r, d)
    k = min(k, S.numel())
    sign = torch.sign(Vh[:k].gather(1, Vh[:k].abs().argmax(1, keepdim=True)))  # (k, 1)
    components = Vh[:k] * sign  # (k, d)
    variance = S**2
    total = variance.sum()
    explained = variance[:k] / total if total > 0 else torch.zeros(k, dtype=torch.float64)
    return PCA(
        coords=((X - mean) @ components.T).numpy(),  # (n, k)
        components=components.numpy(),
        explained=explained.numpy(),
        mean=mean.numpy(),
    )


def cosine_matrix(X: np.ndarray) -> np.ndarray:
    """(n, n) cosine similarity of the rows of X (n, d); a zero row has similarity 0."""
    X = np.asarray(X, dtype=np.float64)
    norms = np.linalg.norm(X, axis=1, keepdims=True)  # (n, 1)
    unit = np.divide(X, norms, out=np.zeros_like(X), where=norms > 0)
    return unit @ unit.T


# ---------------------------------------------------------------------------------------------
# The token and position tables
# ---------------------------------------------------------------------------------------------


def label_in_group(categories: tuple[str, ...], group: str) -> str | None:
    """The one category of `group` among `categories`, None when there is none or several.

    ('noun', 'plural', 'animal'), 'number' -> 'plural'; ('pronoun',), 'gender' -> None.
    """
    inside = [c for c in categories if c in GROUPS[group]]
    return inside[0] if len(inside) == 1 else None


def word_tokens(tokenizer, vocab_size: int) -> list[tuple[int, str, tuple[str, ...]]]:
    """(id, text, categories) of every token below vocab_size that is a known word or
    punctuation: ' dogs' -> (…, ' dogs', ('noun', 'plural', 'animal'))."""
    found = []
    for token in range(min(vocab_size, tokenizer.n_vocab)):
        text = tokenizer.decode([token])
        cats = categories_of(text)
        if cats and "\ufffd" not in text:
            found.append((token, text, cats))
    return found


def position_tables(model) -> dict[str, np.ndarray]:
    """{'learned': wpe rows (T, C) when the model has them, 'sinusoidal': the fixed table of
    the same size}, both float64. T is the model's block_size."""
    config = model.config
    positions = torch.arange(config.block_size)[None]  # (1, T)
    tables = {"sinusoidal": SinusoidalPositions(config.n_embd)(positions)[0].double().numpy()}
    if isinstance(model.wpe, torch.nn.Embedding):
        tables = {"learned": model.wpe.weight.detach().double().cpu().numpy(), **tables}
    return tables


# ---------------------------------------------------------------------------------------------
# Words in text and the residual stream there
# ---------------------------------------------------------------------------------------------

WORD = re.compile(r"\w+(?:'\w+)?|[^\w\s]")


@dataclass
class Occurrences:
    """Words of stories texts where the residual stream was read.

    vectors: (L + 1, n, C) float32 — layer 0 is token + position embedding, layer i the
    output of block i; words and categories: one per occurrence (the vector is read at the
    word's last token, which has seen all of it); tokens and positions: that token's id and
    its position in the window the model read."""

    vectors: np.ndarray
    words: list[str]
    categories: list[tuple[str, ...]]
    tokens: list[int] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    layers: list[str] = field(default_factory=list)


def word_positions(tokenizer, text: str) -> tuple[list[int], list[tuple[int, str]]]:
    """(token ids, [(index of the word's last token, word)]) for every word and punctuation
    mark of `text` that has a category: 'The dogs ran.' -> [(1, 'dogs'), (2, 'ran'), (3, '.')]
    with GPT-2's tokenizer ('The' is a determiner too)."""
    ids = tokenizer.encode(text)
    starts = token_starts(tokenizer, ids)
    found = []
    for m in WORD.finditer(text):
        if categories_of(m.group()):
            found.append((locate(text, m.span(), starts)["token_end"] - 1, m.group()))
    return ids, found


def residual_hooks(n_layer: int) -> list[str]:
    return [
        "hook_embed",
        "hook_pos_embed",
        *(f"blocks.{i}.hook_resid_post" for i in range(n_layer)),
    ]


def collect_residuals(
    model,
    tokenizer,
    *,
    n_words: int = 3000,
    max_per_word: int = 12,
    seed: int = 0,
    context: int | None = None,
    progress: bool = False,
) -> Occurrences:
    """The residual stream at up to `n_words` word occurrences of stories texts (seed `seed`),
    at most `max_per_word` of each distinct word (so 'the' and '.' do not crowd out the rest).

    The text is cut into windows of `context` tokens (default: the model's block size, at
    most 256), each run once; a word is read where its window put it.
    """
    config = model.config
    context = min(config.block_size, context or 256)
    device = device_of(model)
    names = residual_hooks(config.n_layer)
    per_word: Counter[str] = Counter()
    layers: list[list[np.ndarray]] = [[] for _ in range(config.n_layer + 1)]
    words, cats, tokens, positions = [], [], [], []
    bar = tqdm(total=n_words, desc="words", unit="word", disable=not progress)
    chunk = 0
    with eval_mode(model), torch.no_grad():
        while len(words) < n_words:
            text = generate_text(20_000, seed=seed * 1_000_003 + chunk)
            chunk += 1
            ids, found = word_positions(tokenizer, text)
            for start in range(0, len(ids) - 1, context):
                window = [(t - start, w) for t, w in found if start <= t < start + context]
                window = [(t, w) for t, w in window if per_word[w] < max_per_word]
                if not window:
                    continue
                idx = torch.tensor([ids[start : start + context]], device=device)  # (1, T)
                _, cache = model.run_with_cache(idx, names=names)
                stream = [cache["hook_embed"] + cache["hook_pos_embed"]]  # (1, T, C)
                stream += [cache[n] for n in names[2:]]
                keep = []
                for t, w in window:
                    if per_word[w] < max_per_word and len(words) < n_words:
                        per_word[w] += 1
                        keep.append(t)
                        tokens.append(ids[start + t])
                        positions.append(t)
                        words.append(w)
                        cats.append(categories_of(w))
                at = torch.tensor(keep, device=device)
                for layer, x in zip(layers, stream):
                    layer.append(x[0, at].float().cpu().numpy())  # (k, C)
                bar.update(len(keep))
                if len(words) >= n_words:
                    break
            if chunk > 50 and len(words) < n_words:
                break  # every distinct word is used up: fewer occurrences than asked
    bar.close()
    return Occurrences(
        vectors=np.stack([np.concatenate(layer) for layer in layers]),  # (L + 1, n, C)
        words=words,
        categories=cats,
        tokens=tokens,
        positions=positions,
        layers=["embed"] + [f"block {i}" for i in range(config.n_layer)],
    )


# ---------------------------------------------------------------------------------------------
# Linear probes
# ---------------------------------------------------------------------------------------------


def split_by_word(
    words: list[str], labels: list[str], test_fraction: float = 0.3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (train, test) masks over the occurrences, splitting distinct *words*: for each
    label, a `test_fraction` of its words (at least one) is held out, at least one kept.
    Labels with a single distinct word cannot be tested on an unseen word and are left out."""
    by_label: dict[str, list[str]] = defaultdict(list)
    for w, y in dict(zip((w.lower() for w in words), labels)).items():  # 'The' is 'the'
        by_label[y].append(w)
    rng = random.Random(seed)
    test_words, train_words = set(), set()
    for y in sorted(by_label):
        ws = sorted(by_label[y])
        if len(ws) < 2:
            continue
        rng.shuffle(ws)
        n_test = min(len(ws) - 1, max(1, round(test_fraction * len(ws))))
        test_words.update(ws[:n_test])
        train_words.update(ws[n_test:])
    return (
        np.array([w.lower() in train_words for w in words]),
        np.array([w.lower() in test_words for w in words]),
    )


def fit_logistic(
    X: np.ndarray, y: np.ndarray, n_classes: int, l2: float = 1e-3, max_iter: int = 200
) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression, full-batch L-BFGS in float64, deterministic.

    Minimises mean cross-entropy + l2/2 · ||W||² (the bias is not penalised) over W (d, K),
    b (K,). The same objective as scikit-learn's LogisticRegression(C=1 / (n · l2)).
    """
    Xt = torch.as_tensor(X, dtype=torch.float64)  # (n, d)
    yt = torch.as_tensor(y, dtype=torch.long)  # (n,)
    W = torch.zeros(X.shape[1], n_classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [W, b], max_iter=max_iter, tolerance_grad=1e-9, tolerance_change=1e-12,
        line_search_fn="strong_wolfe",
    )  # fmt: skip

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(Xt @ W + b, yt) + 0.5 * l2 * (W**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return W.detach().numpy(), b.detach().numpy()


@dataclass
class ProbeResult:
    """One probe: held-out accuracy and the majority-class baseline on the same test set."""

    layer: str
    group: str
    accuracy: float
    baseline: float
    n_train: int
    n_test: int
    classes: list[str]


def probe(
    X: np.ndarray, words: list[str], labels: list[str | None], *, seed: int = 0, l2: float = 1e-3
) -> tuple[float, float, int, int, list[str]] | None:
    """(accuracy, baseline, n_train, n_test, classes) of a probe reading `labels` from X (n, d),
    tested on held-out words; None when fewer than two labels can be tested.

    Features are standardised with the training set's mean and deviation. The baseline always
    answers the training set's most common label.
    """
    have = [i for i, y in enumerate(labels) if y is not None]
    words_l = [words[i] for i in have]
    labels_l = [labels[i] for i in have]
    train, test = split_by_word(words_l, labels_l, seed=seed)
    classes = sorted({labels_l[i] for i in np.flatnonzero(train)})
    if len(classes) < 2 or not test.any():
        return None
    index = {c: k for k, c in enumerate(classes)}
    used = train | test  # labels of a single word are in neither
    X = np.asarray(X, dtype=np.float64)[have][used]  # (m, d)
    y = np.array([index[c] for c, u in zip(labels_l, used) if u])  # (m,)
    train, test = train[used], test[used]
    mean, std = X[train].mean(0), X[train].std(0) + 1e-8
    Z = (X - mean) / std
    W, b = fit_logistic(Z[train], y[train], len(classes), l2=l2)
    predicted = (Z[test] @ W + b).argmax(1)
    majority = np.bincount(y[train], minlength=len(classes)).argmax()
    return (
        float((predicted == y[test]).mean()),
        float((y[test] == majority).mean()),
        int(train.sum()),
        int(test.sum()),
        classes,
    )


def layer_probes(occ: Occurrences, *, seed: int = 0, progress: bool = False) -> list[ProbeResult]:
    """A probe for every (layer, group) that has at least two testable labels."""
    results = []
    jobs = [(li, g) for li in range(len(occ.layers)) for g in GROUPS]
    for li, group in tqdm(jobs, desc="probes", disable=not progress):
        labels = [label_in_group(c, group) for c in occ.categories]
        found = probe(occ.vectors[li], occ.words, labels, seed=seed)
        if found is not None:
            results.append(ProbeResult(occ.layers[li], group, *found))
    return results


# ---------------------------------------------------------------------------------------------
# The analysis, as the report and the explorer see it
# ---------------------------------------------------------------------------------------------


def points(coords: np.ndarray, labels: list[str], categories: list[str | None]) -> list[dict]:
    """[{'x', 'y', 'label', 'category'}] for a scatter plot (category None -> 'other')."""
    return [
        {"x": round(float(x), 5), "y": round(float(y), 5), "label": lab, "category": c or "other"}
        for (x, y), lab, c in zip(coords[:, :2], labels, categories)
    ]


MAX_COSINE_SIDE = 128
"""The JSON keeps every k-th row and column of a position cosine matrix, at most this many."""


@dataclass
class EmbeddingAnalysis:
    """Everything `gpt2lab embeddings` shows; `to_dict()` is the JSON the explorer reads."""

    model: str
    group: str
    tokens: dict  # {'points': [...], 'explained': [pc1, pc2]}
    positions: dict  # {'learned'|'sinusoidal': {'points', 'explained', 'cosine' (T, T)}}
    residual: dict  # {layer: {'points', 'explained'}}
    probes: list[ProbeResult]
    n_words: int
    seed: int

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "group": self.group,
            "groups": {g: list(cs) for g, cs in GROUPS.items()},
            "tokens": self.tokens,
            "positions": {
                kind: {
                    **v,
                    "cosine": np.round(v["cosine"][::step, ::step], 4).tolist(),
                    "cosine_step": step,
                }
                for kind, v in self.positions.items()
                for step in [math.ceil(len(v["cosine"]) / MAX_COSINE_SIDE)]
            },
            "residual": self.residual,
            "probes": [p.__dict__ for p in self.probes],
            "n_words": self.n_words,
            "seed": self.seed,
        }


def analyse_embeddings(
    model,
    tokenizer,
    *,
    group: str = "part of speech",
    n_words: int = 3000,
    seed: int = 0,
    model_name: str = "",
    progress: bool = False,
) -> EmbeddingAnalysis:
    """The three PCA views coloured by `group`, and the probes of every group at every layer.

    The explorer calls this and sends `.to_dict()`; `write_embeddings_report` draws it.
    """
    if group not in GROUPS:
        raise GPT2LabError(f"unknown category group {group!r}; choose one of {', '.join(GROUPS)}")
    wte = model.wte.weight.detach().cpu()
    table = word_tokens(tokenizer, model.config.vocab_size)
    if len(table) < 3:
        raise GPT2LabError("the tokenizer has fewer than 3 tokens that are known words")
    fit = pca(wte[[t for t, _, _ in table]].numpy(), 2)
    tokens = {
        "points": points(
            fit.coords, [s for _, s, _ in table], [label_in_group(c, group) for *_, c in table]
        ),
        "explained": fit.explained.tolist(),
    }
    positions = {}
    for kind, rows in position_tables(model).items():
        fit = pca(rows, 2)
        labels = [str(p) for p in range(len(rows))]
        positions[kind] = {
            "points": points(fit.coords, labels, labels),
            "explained": fit.explained.tolist(),
            "cosine": cosine_matrix(rows),
        }
    occ = collect_residuals(model, tokenizer, n_words=n_words, seed=seed, progress=progress)
    if len(occ.words) < 10:
        raise GPT2LabError(f"only {len(occ.words)} known words found in the stories texts")
    labels = [label_in_group(c, group) for c in occ.categories]
    residual = {}
    for name, X in zip(occ.layers, occ.vectors):
        fit = pca(X, 2)
        residual[name] = {
            "points": points(fit.coords, occ.words, labels),
            "explained": fit.explained.tolist(),
        }
    return EmbeddingAnalysis(
        model=model_name,
        group=group,
        tokens=tokens,
        positions=positions,
        residual=residual,
        probes=layer_probes(occ, seed=seed, progress=progress),
        n_words=len(occ.words),
        seed=seed,
    )


# ---------------------------------------------------------------------------------------------
# The report: embeddings.md, embeddings.json and four pictures
# ---------------------------------------------------------------------------------------------


def neighbour_cosine(cosine: np.ndarray, gap: int) -> float:
    """Mean cosine similarity of positions `gap` apart: the mean of the gap-th diagonal."""
    return float(np.diagonal(cosine, gap).mean()) if gap < len(cosine) else float("nan")


def probe_table(probes: list[ProbeResult], layers: list[str]) -> list[str]:
    """Markdown rows: a layer per row, 'accuracy (baseline)' per group."""
    groups = [g for g in GROUPS if any(p.group == g for p in probes)]
    cell = {(p.layer, p.group): p for p in probes}
    lines = ["| layer | " + " | ".join(groups) + " |", "|---" + "|---:" * len(groups) + "|"]
    for layer in layers:
        row = [
            f"{cell[layer, g].accuracy:.1%} ({cell[layer, g].baseline:.1%})"
            if (layer, g) in cell
            else "–"
            for g in groups
        ]
        lines.append(f"| {layer} | " + " | ".join(row) + " |")
    sizes = {g: next(p for p in probes if p.group == g) for g in groups}
    lines += ["", "| group | classes | train / test occurrences |", "|---|---|---:|"]
    lines += [
        f"| {g} | {', '.join(p.classes)} | {p.n_train} / {p.n_test} |" for g, p in sizes.items()
    ]
    return lines


def embeddings_markdown(a: EmbeddingAnalysis) -> str:
    layers = list(a.residual)
    ev = a.tokens["explained"]
    lines = [
        f"# Embedding spaces of {a.model}",
        "",
        f"Coloured by **{a.group}** (categories of the stories grammar, "
        "`gpt2lab.data.categories`); grey points have no single category in that group.",
        "",
        "## Token embeddings",
        "",
        f"PCA of the rows of `wte` for the {len(a.tokens['points'])} tokens that are known "
        f"words or punctuation; the two axes hold {ev[0]:.1%} and {ev[1]:.1%} of the variance.",
        "",
        "![](tokens.png)",
        "",
        "## Position embeddings",
        "",
        "![](positions.png)",
        "",
        "| table | PCA axes 1+2 | cosine, neighbours (gap 1) | gap 8 | gap 64 |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind, v in a.positions.items():
        c = v["cosine"]
        gaps = " | ".join(f"{neighbour_cosine(c, g):.3f}" for g in (1, 8, 64))
        lines.append(f"| {kind} | {sum(v['explained']):.1%} | {gaps} |")
    lines += [
        "",
        "## The residual stream, layer by layer",
        "",
        f"{a.n_words} word occurrences of stories texts (seed {a.seed}, at most 12 of any "
        "word), read at each word's last token. Layer `embed` is token + position embedding, "
        "`block i` the output of block i.",
        "",
        "![](residual.png)",
        "",
        "## Linear probes",
        "",
        "A multinomial logistic regression per layer and group (standardised features, L2 "
        "1e-3, full-batch L-BFGS), trained on 70% of the distinct words of each category and "
        "tested on the other 30%: words it never saw. Cells: accuracy (majority-class "
        "baseline on the same test words).",
        "",
        "![](probes.png)",
        "",
        *probe_table(a.probes, layers),
    ]
    return "\n".join(lines) + "\n"


def write_embeddings_report(analysis: EmbeddingAnalysis, out: str | os.PathLike) -> Path:
    """embeddings.md, embeddings.json, tokens.png, positions.png, residual.png, probes.png in
    `out`, each written atomically; returns the path of embeddings.md."""
    from gpt2lab.plots.embeddings import (  # matplotlib only when drawing
        category_scatter,
        position_tables_figure,
        probe_figure,
    )

    out = Path(out)
    order = GROUPS[analysis.group]

    def scatter(view: dict) -> tuple[np.ndarray, list[str]]:
        coords = np.array([[p["x"], p["y"]] for p in view["points"]]).reshape(-1, 2)
        return coords, [p["category"] for p in view["points"]]

    ev = analysis.tokens["explained"]
    figures = {
        "tokens.png": category_scatter(
            {f"wte: PC1 {ev[0]:.0%}, PC2 {ev[1]:.0%}": scatter(analysis.tokens)},
            order,
            f"{analysis.model}: token embeddings by {analysis.group}",
        ),
        "positions.png": position_tables_figure(
            {
                kind: (scatter(v)[0], v["cosine"], sum(v["explained"]))
                for kind, v in analysis.positions.items()
            }
        ),
        "residual.png": category_scatter(
            {name: scatter(v) for name, v in analysis.residual.items()},
            order,
            f"{analysis.model}: residual stream at words, by {analysis.group}",
        ),
        "probes.png": probe_figure(
            list(analysis.residual),
            {
                g: (
                    [p.accuracy for p in analysis.probes if p.group == g],
                    [p.baseline for p in analysis.probes if p.group == g],
                )
                for g in GROUPS
                if any(p.group == g for p in analysis.probes)
            },
        ),
    }
    for name, fig in figures.items():
        atomic_write(out / name, lambda tmp, fig=fig: fig.savefig(tmp, dpi=100, format="png"))
    atomic_write_text(out / "embeddings.json", json.dumps(analysis.to_dict()) + "\n")
    return atomic_write_text(out / "embeddings.md", embeddings_markdown(analysis))
