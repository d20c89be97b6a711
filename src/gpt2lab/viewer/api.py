"""What the explorer computes: tokens, next-token predictions, attention, head roles, MLP
neurons and embedding spaces.

`Explorer` wraps one model and its tokenizer. Every model call goes through one lock: hooks
are global state on the model (see hooks.py), so two requests running forwards at once could
see each other's ablations. Each method returns plain JSON-able data for `server.py`.

The numbers come from the library, never recomputed here: attention patterns are read at
`blocks.{L}.attn.hook_pattern` with `run_with_cache`, ablations are
`interp.interventions.ablate_heads` hooks on `hook_z`, and head roles are
`interp.heads.compute_head_scores` + `classify_heads` on the `stories` probe texts, neurons
are `interp.neurons_report.build_neurons_report` (scan + category labels) on packed probe
texts, and the embedding views are `interp.embeddings`' PCA of the token table, the position
table and the residual stream at words of stories texts.

The file holds one class because one lock guards every model call it makes (over 400 lines).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gpt2lab.errors import GPT2LabError
from gpt2lab.interp.embeddings import (
    GROUPS,
    Occurrences,
    collect_residuals,
    label_in_group,
    pca,
    points,
    position_tables,
    word_tokens,
)
from gpt2lab.interp.heads import (
    ROLE_RULES,
    TextSet,
    classify_heads,
    compute_head_scores,
    uniform_distance,
)
from gpt2lab.interp.interventions import ablate_heads, check_head
from gpt2lab.interp.neurons import (
    activation_histogram,
    check_layers,
    neuron_values,
    neurons_of_token,
    output_tokens,
    top_examples,
)
from gpt2lab.interp.neurons_report import NeuronsReport, build_neurons_report, shown_neurons
from gpt2lab.interp.texts import packed_probe_text_set, probe_text_set
from gpt2lab.model import context_limit, device_of


class TooLong(GPT2LabError):
    """A text over the explorer's caps (the server answers 413)."""


@dataclass(frozen=True)
class Limits:
    """Caps that keep one request from tying up the server.

    max_tokens: longest text in tokens (also at most the model's context when positions are
        learned); max_chars: longest text before tokenising; max_top_k: predictions per
        position; thumb_size: side of the all-heads thumbnails (patterns are average-pooled
        down to it); probe_texts: stories texts the head roles are scored on; neuron_texts:
        stories probe examples (packed to ≤ 256 tokens) the neurons are scanned on, once;
        neuron_top_k: top activations kept per neuron; max_token_neurons: neurons listed for
        one token; embedding_words: word occurrences whose residual stream is read, once;
        timeline_probes: stories probes each checkpoint's head roles and cloze are scored on.
    """

    max_tokens: int = 1024
    max_chars: int = 20_000
    max_top_k: int = 20
    thumb_size: int = 48
    probe_texts: int = 24
    neuron_texts: int = 48
    neuron_top_k: int = 20
    max_token_neurons: int = 50
    embedding_words: int = 600
    timeline_probes: int = 24


DEFAULT_LIMITS = Limits()
Head = tuple[int, int]
CONTEXT_TOKENS = 9  # tokens of text shown before a prediction
CONTINUATION_BYTES = frozenset(bytes([b]) for b in range(0x80, 0xC0))
EXAMPLE_WIDTH = 8  # tokens shown either side of a neuron's top activation
OUTPUT_TOKENS = 10  # tokens a neuron promotes / suppresses, shown
MAX_CACHED_NEURONS = 256  # neuron details (their histograms cost a pass over the texts)


class Explorer:
    """One model + tokenizer behind a lock; the JSON API's computations."""

    def __init__(
        self, model, tokenizer, *, name: str = "", limits: Limits = DEFAULT_LIMITS
    ) -> None:
        if tokenizer.n_vocab > model.config.vocab_size:
            raise GPT2LabError(
                f"the tokenizer has {tokenizer.n_vocab} tokens but the model only "
                f"{model.config.vocab_size}; pass the model's own tokenizer"
            )
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.limits = limits
        self.lock = threading.Lock()
        self._heads: dict | None = None
        self._neurons: NeuronIndex | None = None
        self._neuron_details: dict[tuple[int, int], dict] = {}
        self._word_tokens: list | None = None
        self._residuals: Occurrences | None = None

    # --- text -> tokens -------------------------------------------------------------------------

    @property
    def max_tokens(self) -> int:
        """The cap on tokens: the explorer's, and the context when positions are learned."""
        config = self.model.config
        limit = context_limit(config)
        return self.limits.max_tokens if limit is None else min(self.limits.max_tokens, limit)

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`; a typed `<|endoftext|>` is the special token."""
        if len(text) > self.limits.max_chars:
            raise TooLong(
                f"text is {len(text)} characters; the explorer takes at most "
                f"{self.limits.max_chars}"
            )
        ids = self.tokenizer.encode(text, allowed_special="all")
        if not ids:
            raise GPT2LabError("empty text: type something to look at")
        if len(ids) > self.max_tokens:
            raise TooLong(
                f"text is {len(ids)} tokens; the explorer takes at most {self.max_tokens}"
            )
        return ids

    def token_text(self, token: int) -> str:
        """The text of one token id (ids past the tokenizer's vocabulary show as <id>)."""
        if token >= self.tokenizer.n_vocab:
            return f"<{token}>"
        return self.tokenizer.decode([token])

    def tokens(self, ids: Sequence[int]) -> list[dict]:
        return [{"id": int(t), "text": self.token_text(t)} for t in ids]

    def context_start(self, ids: Sequence[int], i: int) -> int:
        """Where the context shown for position i starts: CONTEXT_TOKENS back, then further
        back while that token begins inside a character (a UTF-8 continuation byte)."""
        start = max(0, i + 1 - CONTEXT_TOKENS)
        while start > 0 and self.tokenizer.token_bytes(ids[start])[:1] in CONTINUATION_BYTES:
            start -= 1
        return start

    def check_heads(self, heads: Sequence[Head]) -> list[Head]:
        """The (layer, head) pairs, deduplicated; a GPT2LabError for one that does not exist."""
        unique = sorted(set(map(tuple, heads)))
        for layer, head in unique:
            check_head(self.model, layer, head)
        return unique

    # --- model calls ----------------------------------------------------------------------------

    def _device(self) -> torch.device:
        return device_of(self.model)

    @torch.no_grad()
    def _run(self, ids: list[int], ablate: list[Head], names=None):
        """One forward (under the lock) with `ablate` zeroed: (logits (T, V), cache)."""
        idx = torch.tensor([ids], device=self._device())  # (1, T)
        hooks = ablate_heads(self.model, ablate, "zero") if ablate else []
        with self.lock, self.model.hooks(hooks):
            logits, cache = self.model.run_with_cache(idx, names=names or [])
        return logits[0].float(), cache

    def info(self) -> dict:
        config = self.model.config
        return {
            "name": self.name,
            "n_layer": config.n_layer,
            "n_head": config.n_head,
            "n_embd": config.n_embd,
            "block_size": config.block_size,
            "vocab_size": config.vocab_size,
            "n_params": self.model.num_params(non_embedding=False),
            "max_tokens": self.max_tokens,
            "max_chars": self.limits.max_chars,
            "max_top_k": self.limits.max_top_k,
            "tokenizer": self.tokenizer.name,
        }

    def tokenize(self, text: str) -> dict:
        return {"tokens": self.tokens(self.encode(text))}

    def predict(self, text: str, k: int = 5, ablate: Sequence[Head] = ()) -> dict:
        """Top-k next tokens at every position, and with `ablate` zeroed, how they change.

        Each position's *target* is the text's next token, or, at the last position, the
        model's own top prediction; `delta` is Δ log p(target) = ablated − clean.
        """
        ids = self.encode(text)
        heads = self.check_heads(ablate)
        k = min(k, self.limits.max_top_k, self.model.config.vocab_size)
        clean_logits, _ = self._run(ids, [])
        targets = ids[1:] + [int(clean_logits[-1].argmax())]
        clean = next_token_view(clean_logits, targets, k)
        ablated = next_token_view(self._run(ids, heads)[0], targets, k) if heads else None
        positions = []
        for i, token in enumerate(ids):
            row = {
                "position": i,
                "token": self.tokens([token])[0],
                "target": self.tokens([targets[i]])[0],
                "target_is_prediction": i == len(ids) - 1,
                "top": self._top(clean, i),
                "context_start": (start := self.context_start(ids, i)),
                "context": self.tokenizer.decode(ids[start : i + 1]),
                "logprob": clean.logprob[i],
            }
            if ablated is not None:
                row["ablated_top"] = self._top(ablated, i)
                row["ablated_logprob"] = ablated.logprob[i]
                row["delta"] = ablated.logprob[i] - clean.logprob[i]
            positions.append(row)
        return {"ablated": [list(h) for h in heads], "positions": positions}

    def _top(self, view: NextTokenView, i: int) -> list[dict]:
        return [
            {"id": t, "text": self.token_text(t), "prob": p}
            for t, p in zip(view.top_ids[i], view.top_probs[i])
        ]

    def attention(self, text: str, layer: int, head: int, ablate: Sequence[Head] = ()) -> dict:
        """Head (layer, head)'s pattern (T, T) and thumbnails of every head of the layer."""
        check_head(self.model, layer, head)
        ids = self.encode(text)
        heads = self.check_heads(ablate)
        name = f"blocks.{layer}.attn.hook_pattern"
        _, cache = self._run(ids, heads, names=[name])
        patterns = cache[name][0].float().cpu()  # (nh, T, T)
        return {
            "layer": layer,
            "head": head,
            "tokens": self.tokens(ids),
            "pattern": rounded(patterns[head]),
            "thumbnails": rounded(pool_patterns(patterns, self.limits.thumb_size)),
        }

    # --- head roles -------------------------------------------------------------------------------

    def heads(self) -> dict:
        """Score grids and roles of every head, computed once on the stories probe texts.

        Once computed, the answer needs no lock (so it never waits behind model calls).
        """
        if self._heads is None:
            with self.lock:
                if self._heads is None:  # another request may have computed it meanwhile
                    self._heads = self._score_heads()
        return self._heads

    def _score_heads(self) -> dict:
        texts = probe_text_set(self.tokenizer, self.limits.probe_texts, max_tokens=self.max_tokens)
        scores = compute_head_scores(self.model, texts, progress=False)
        roles = classify_heads(scores, mean_uniform_distance=uniform_distance(texts))
        return {
            **scores.to_dict(),
            "roles": [
                {"layer": r.layer, "head": r.head, "role": r.role, "score": r.score} for r in roles
            ],
            "rules": [
                {
                    "role": r.role,
                    "score": r.score,
                    "threshold": r.threshold,
                    "description": r.description,
                }
                for r in ROLE_RULES
            ],
        }

    # --- neurons -------------------------------------------------------------------------------

    def neuron_index(self) -> NeuronIndex:
        """Every MLP neuron scanned over the packed stories probes and labelled with word
        categories: computed once, on first call (later calls need no lock)."""
        if self._neurons is None:
            with self.lock:
                if self._neurons is None:
                    context = min(self.max_tokens, 256)
                    texts = packed_probe_text_set(
                        self.tokenizer, self.limits.neuron_texts, 0, context
                    )
                    report = build_neurons_report(
                        self.model, texts, self.tokenizer.decode, k=self.limits.neuron_top_k, show=0
                    )
                    self._neurons = NeuronIndex(texts, report)
        return self._neurons

    def neurons(self, layer: int) -> dict:
        """Every neuron of `layer`: its top activation, mean, density, strongest token and
        labels; `order` lists them labelled first (`neurons_report.shown_neurons`)."""
        check_layers(self.model, layer)
        index = self.neuron_index()
        scan, labels = index.report.scan, index.report.labels
        r = scan.row(layer)
        return {
            "layer": layer,
            "n_neurons": scan.n_neurons,
            "n_texts": index.report.n_texts,
            "n_tokens": scan.n_tokens,
            "top_k": scan.values.shape[-1],
            "source": index.report.source,
            "order": shown_neurons(scan, labels, layer, scan.n_neurons),
            "selectivity": index.report.selectivity[r].to_dict(),
            "neurons": [
                {
                    "neuron": n,
                    "max": float(scan.values[r, n, 0]),
                    "mean": float(scan.mean[r, n]),
                    "density": float(scan.density[r, n]),
                    "top_token": index.texts.strings[scan.text[r, n, 0]][scan.position[r, n, 0]],
                    "labels": [lb.to_dict() for lb in labels.get((layer, n), [])],
                }
                for n in range(scan.n_neurons)
            ],
        }

    def neuron(self, layer: int, neuron: int) -> dict:
        """One neuron: its top examples (tokens around each, the activating one marked), the
        histogram of its activations over the scanned texts, and the tokens it writes."""
        check_layers(self.model, layer)
        if not 0 <= neuron < self.model.config.mlp_dim:
            raise GPT2LabError(
                f"neuron {neuron} is out of range: layers have {self.model.config.mlp_dim} neurons"
            )
        key = (layer, neuron)
        if key not in self._neuron_details:
            index = self.neuron_index()
            with self.lock:
                values = neuron_values(self.model, index.texts, [key])[:, 0]  # (N tokens,)
                out = output_tokens(self.model, layer, neuron, k=OUTPUT_TOKENS)
            if len(self._neuron_details) >= MAX_CACHED_NEURONS:
                self._neuron_details.pop(next(iter(self._neuron_details)))
            self._neuron_details[key] = self._neuron_detail(index, layer, neuron, values, out)
        return self._neuron_details[key]

    def _neuron_detail(self, index: NeuronIndex, layer: int, neuron: int, values, out) -> dict:
        scan = index.report.scan
        r = scan.row(layer)
        examples = []
        for e in top_examples(scan, index.texts, layer, neuron, width=EXAMPLE_WIDTH):
            strings = index.texts.strings[e.text]
            start = max(0, e.position - EXAMPLE_WIDTH)
            window = strings[start : e.position + EXAMPLE_WIDTH + 1]
            examples.append({**e.to_dict(), "tokens": window, "index": e.position - start})
        counts, edges = activation_histogram(values)
        written = [
            [{"id": t, "text": self.token_text(t), "logit": v} for t, v in side]
            for side in (out.top, out.bottom)
        ]
        return {
            "layer": layer,
            "neuron": neuron,
            "max": float(scan.values[r, neuron, 0]),
            "mean": float(scan.mean[r, neuron]),
            "density": float(scan.density[r, neuron]),
            "labels": [lb.to_dict() for lb in index.report.labels.get((layer, neuron), [])],
            "examples": examples,
            "histogram": {"counts": counts.tolist(), "edges": edges.tolist()},
            "promotes": written[0],
            "suppresses": written[1],
        }

    def token_neurons(self, text: str, position: int, k: int = 10) -> dict:
        """The k most active neurons (all layers) at one position of `text`, with labels."""
        ids = self.encode(text)
        k = min(k, self.limits.max_token_neurons)
        labels = self.neuron_index().report.labels
        with self.lock:
            found = neurons_of_token(self.model, ids, position, k)
        return {
            "position": position,
            "token": self.tokens([ids[position]])[0],
            "neurons": [
                {
                    "layer": layer,
                    "neuron": n,
                    "activation": value,
                    "labels": [lb.category for lb in labels.get((layer, n), [])],
                }
                for layer, n, value in found
            ],
        }

    # --- embeddings ------------------------------------------------------------------------------

    def embeddings(self, space: str, layer: int = 0, group: str = "part of speech") -> dict:
        """A 2-D PCA of one embedding space, each point with its word (or position) and its
        category in `group` ('other' when it has none or several there).

        space: 'tokens' (rows of wte of the known words), 'positions' (wpe; the sinusoidal
        table when positions are not learned), 'sinusoidal', or 'resid' (the residual stream
        at word occurrences of stories texts after `layer` blocks: 0 is the embedding).
        """
        if group not in GROUPS:
            raise GPT2LabError(
                f"unknown category group {group!r}; choose one of {', '.join(GROUPS)}"
            )
        layers = ["embed"] + [f"block {i}" for i in range(self.model.config.n_layer)]
        if space == "resid" and not 0 <= layer < len(layers):
            raise GPT2LabError(
                f"layer {layer} is out of range: the residual stream has layers 0..{len(layers) - 1}"
                f" ({', '.join(layers)})"
            )
        rows, labels, categories, table = self._space(space, layer, group)
        fit = pca(rows, 2)
        present = set(categories)
        return {
            "space": space,
            "table": table,
            "layer": layer,
            "layers": layers,
            "group": group,
            "groups": {g: list(cs) for g, cs in GROUPS.items()},
            "categories": [c for c in GROUPS[group] if c in present]
            + (["other"] if None in present else []),
            "explained": fit.explained.tolist(),
            "points": points(fit.coords, labels, categories),
        }

    def _space(self, space: str, layer: int, group: str):
        """(rows (n, C), labels, categories, table name) of one space."""
        if space == "tokens":
            if self._word_tokens is None:
                self._word_tokens = word_tokens(self.tokenizer, self.model.config.vocab_size)
            ids = [t for t, _, _ in self._word_tokens]
            rows = self.model.wte.weight.detach()[ids].double().cpu().numpy()  # (n, C)
            labels = [text for _, text, _ in self._word_tokens]
            return rows, labels, [label_in_group(c, group) for *_, c in self._word_tokens], "wte"
        if space in ("positions", "sinusoidal"):
            tables = position_tables(self.model)
            table = "learned" if space == "positions" and "learned" in tables else "sinusoidal"
            labels = [str(p) for p in range(len(tables[table]))]
            return tables[table], labels, [None] * len(labels), table
        if self._residuals is None:
            with self.lock:
                if self._residuals is None:
                    self._residuals = collect_residuals(
                        self.model,
                        self.tokenizer,
                        n_words=self.limits.embedding_words,
                        context=min(self.max_tokens, 256),
                    )
        occ = self._residuals
        categories = [label_in_group(c, group) for c in occ.categories]
        return occ.vectors[layer], occ.words, categories, occ.layers[layer]


@dataclass
class NeuronIndex:
    """The scanned text set and the neurons report built on it (scan, labels, selectivity)."""

    texts: TextSet
    report: NeuronsReport


# ---------------------------------------------------------------------------------------------
# Pure helpers
# ---------------------------------------------------------------------------------------------


@dataclass
class NextTokenView:
    """Per position: the top-k token ids and probabilities, and log p(target)."""

    top_ids: list[list[int]]
    top_probs: list[list[float]]
    logprob: list[float]


def next_token_view(logits: torch.Tensor, targets: Sequence[int], k: int) -> NextTokenView:
    """(T, V) logits -> top-k and log p(targets[i]) at each position i."""
    logp = F.log_softmax(logits.float(), dim=-1)  # (T, V)
    top = logp.topk(k, dim=-1)  # (T, k)
    target_logp = logp.gather(-1, torch.tensor(list(targets), device=logp.device)[:, None])
    return NextTokenView(
        top.indices.tolist(),
        [[round(p, 6) for p in row] for row in top.values.exp().tolist()],
        target_logp[:, 0].tolist(),
    )


def pool_patterns(patterns: torch.Tensor, size: int) -> torch.Tensor:
    """(nh, T, T) -> (nh, t, t) with t = min(T, size), by adaptive average pooling.

    Thumbnails stay small however long the text: T = 300 with size 48 gives 48 × 48 cells,
    each the mean of a ~6 × 6 block of the pattern.
    """
    T = patterns.shape[-1]
    if T <= size:
        return patterns
    return F.adaptive_avg_pool2d(patterns, (size, size))


def rounded(x: torch.Tensor, digits: int = 4) -> list:
    """A tensor as nested lists rounded to `digits` decimals (smaller JSON, same picture)."""
    return torch.round(x.double(), decimals=digits).tolist()
