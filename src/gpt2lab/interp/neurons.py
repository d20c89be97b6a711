"""MLP neurons: what makes each one fire, and what it writes.

A *neuron* is one of the F = mlp_dim hidden units of a block's MLP; its *activation* at a
position is the value after the nonlinearity, the hook point `blocks.{L}.mlp.hook_post`
(shape (B, T, F)). For GPT-2 small, F = 3072 per layer; for the `tiny` preset, 512.

    x ──ln_2──> c_fc ──GELU──> h = hook_post (F numbers) ──c_proj──> + residual stream
                                    │
                  neuron n fires h[n]; it adds h[n] · W_out[n] to the stream

Three views of a neuron, each a function below:

- *Inputs*: its top-activating contexts over a text set (`scan_neurons` streams over the texts
  keeping a running top-k per neuron, so GPT-2's 12 × 3072 neurons never need every
  activation in memory), its mean, and how often it is positive (density).
- *Outputs*: the vocabulary directions it writes, `W_out[n] · W_U` (`output_logits`): the
  tokens whose logits its firing raises most and lowers most, ignoring every later layer.
- *One position*: the most active neurons at one token (`neurons_of_token`).

Example, the default `stories` model (`gpt2lab train`, 400 steps), layer 1, neuron 275: its
top contexts read "… ate four purple⟦ grapes⟧ and drank …", "… about a⟦ nut⟧ and some
yogurt …", "… twelve quick⟦ crackers⟧ and …" (the current token in ⟦ ⟧); 19 of its top 20
tokens are foods, and `gpt2lab.interp.neuron_labels` labels it `food` (and `noun`, `plural`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from gpt2lab.errors import GPT2LabError
from gpt2lab.interp.heads import TextSet
from gpt2lab.interp.interventions import check_head
from gpt2lab.model import LayerNorm, device_of, eval_mode

BATCH_SIZE = 8
"""Texts per forward pass: GPT-2 small at 256 tokens keeps 8 × 12 × 256 × 3072 floats (300 MB)."""

# ---------------------------------------------------------------------------------------------
# 1. Activations
# ---------------------------------------------------------------------------------------------


def mlp_hook(layer: int) -> str:
    """The hook point holding layer `layer`'s neuron activations: 'blocks.2.mlp.hook_post'."""
    return f"blocks.{layer}.mlp.hook_post"


def check_layers(model, layers: int | Sequence[int] | None) -> list[int]:
    """Every layer when None, else the given layer(s), each checked to exist."""
    if layers is None:
        return list(range(model.config.n_layer))
    layers = [layers] if isinstance(layers, int) else list(layers)
    for layer in layers:
        check_head(model, layer)
    return layers


@torch.no_grad()
def neuron_activations(
    model, ids: Sequence[int], layers: int | Sequence[int] | None = None
) -> torch.Tensor:
    """Activations of every neuron of `layers` on one text: (L, T, F) float32 on the CPU.

    Read from `blocks.{L}.mlp.hook_post` in one forward pass (dropout off).
    """
    _, acts = next(activation_batches(model, [ids], check_layers(model, layers)))
    return acts


@torch.no_grad()
def activation_batches(
    model,
    sequences: Sequence[Sequence[int]],
    layers: list[int],
    batch_size: int = BATCH_SIZE,
    progress: bool = False,
    desc: str = "neurons",
) -> Iterator[tuple[list[int], torch.Tensor]]:
    """(lengths, activations (L, ΣT, F)) for every `batch_size` texts, the texts' tokens one
    after another along the middle dimension, in order.

    Texts of a batch are padded on the right to the longest: a causal model's position t sees
    only positions ≤ t, so the padding changes no real token's activation.
    """
    names = [mlp_hook(layer) for layer in layers]
    device = device_of(model)
    starts = range(0, len(sequences), batch_size)
    with eval_mode(model):
        for start in tqdm(starts, desc=desc, disable=not progress, leave=False):
            batch = [list(ids) for ids in sequences[start : start + batch_size]]
            lengths = [len(ids) for ids in batch]
            idx = torch.zeros(len(batch), max(1, *lengths), dtype=torch.long)  # (B, T)
            for b, ids in enumerate(batch):
                idx[b, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            _, cache = model.run_with_cache(idx.to(device), names=names)
            acts = torch.stack([cache[name] for name in names], 1).float().cpu()  # (B, L, T, F)
            yield lengths, torch.cat([a[:, :n] for a, n in zip(acts, lengths)], 1)  # (L, ΣT, F)


# ---------------------------------------------------------------------------------------------
# 2. Streaming scan: running top-k per neuron, mean, density
# ---------------------------------------------------------------------------------------------


def merge_top_k(
    values: torch.Tensor, index: torch.Tensor, new_values: torch.Tensor, new_index: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the k = values.shape[-1] largest of two lists, ties going to the smaller index.

    values, index: (..., k), sorted by value (descending) then index (ascending);
    new_values, new_index: (..., n) with indices larger than any in `index`, ascending.
    A stable descending sort keeps equal values in their order of arrival, which is index order.

    values [3, 1], index [0, 1]; new [1, 5], new index [2, 3] -> values [5, 3], index [3, 0];
    with new [3, 0] instead -> [3, 3] at [0, 2] (the older 3 first).
    """
    k = values.shape[-1]
    all_values = torch.cat([values, new_values], dim=-1)  # (..., k + n)
    all_index = torch.cat([index, new_index], dim=-1)
    order = torch.sort(all_values, dim=-1, descending=True, stable=True).indices[..., :k]
    return all_values.gather(-1, order), all_index.gather(-1, order)


@dataclass
class NeuronScan:
    """What `scan_neurons` keeps of every neuron of `layers` over a text set.

    values: (L, F, k) the k largest activations, descending (−inf where the set has < k tokens).
    text, position: (L, F, k) where each was (−1 where empty). Ties: the earlier token first.
    mean: (L, F) mean activation over all tokens; density: (L, F) fraction of tokens > 0.
    """

    layers: list[int]
    values: np.ndarray
    text: np.ndarray
    position: np.ndarray
    mean: np.ndarray
    density: np.ndarray
    n_tokens: int

    @property
    def n_neurons(self) -> int:
        return self.values.shape[1]

    def row(self, layer: int) -> int:
        """The row of `layer` in the arrays."""
        if layer not in self.layers:
            raise GPT2LabError(f"layer {layer} was not scanned (scanned: {self.layers})")
        return self.layers.index(layer)

    def top(self, layer: int, neuron: int) -> list[tuple[int, int, float]]:
        """(text, position, activation) of the neuron's top activations, strongest first."""
        r = self.row(layer)
        entries = zip(self.text[r, neuron], self.position[r, neuron], self.values[r, neuron])
        return [(int(t), int(p), float(v)) for t, p, v in entries if t >= 0]


@torch.no_grad()
def scan_neurons(
    model,
    texts: TextSet,
    layers: int | Sequence[int] | None = None,
    k: int = 20,
    progress: bool = False,
) -> NeuronScan:
    """Run the model over every text once; keep each neuron's top-k, mean and density.

    Memory is O(L · F · k) whatever the number of texts: each batch's activations are merged
    into the running top-k (`merge_top_k`) and dropped.
    """
    if k < 1:
        raise GPT2LabError(f"top-k must be at least 1, got {k}")
    layers = check_layers(model, layers)
    L, F = len(layers), model.config.mlp_dim
    values = torch.full((L, F, k), -torch.inf)
    index = torch.full((L, F, k), -1, dtype=torch.long)  # global token number: offset + position
    total = torch.zeros(L, F, dtype=torch.float64)
    positive = torch.zeros(L, F, dtype=torch.long)
    offsets = [0]
    for lengths, acts in activation_batches(model, texts.tokens, layers, progress=progress):
        acts = acts.transpose(1, 2)  # (L, F, ΣT)
        N = acts.shape[-1]
        new_index = torch.arange(offsets[-1], offsets[-1] + N).expand(F, N)
        for r in range(L):  # one layer at a time: the sort's memory is 1/L of the batch's
            values[r], index[r] = merge_top_k(values[r], index[r], acts[r], new_index)
        total += acts.sum(-1, dtype=torch.float64)
        positive += (acts > 0).sum(-1)
        for n in lengths:
            offsets.append(offsets[-1] + n)
    n_tokens = offsets[-1]
    if n_tokens == 0:
        raise GPT2LabError("no tokens to scan neurons on")
    found = index >= 0
    text = np.searchsorted(np.array(offsets), index.numpy(), side="right") - 1
    position = index.numpy() - np.array(offsets)[text.clip(0)]
    return NeuronScan(
        layers=layers,
        values=values.numpy(),
        text=np.where(found, text, -1),
        position=np.where(found, position, -1),
        mean=(total / n_tokens).float().numpy(),
        density=(positive.double() / n_tokens).float().numpy(),
        n_tokens=n_tokens,
    )


# ---------------------------------------------------------------------------------------------
# 3. Top-activating contexts
# ---------------------------------------------------------------------------------------------


@dataclass
class NeuronExample:
    """One top activation: where (text, position), how strong, and the context around it."""

    text: int
    position: int
    activation: float
    token: str
    context: str

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def highlight(strings: Sequence[str], position: int, width: int = 6) -> str:
    """The tokens around `position`, that token in ⟦ ⟧; newlines as ↵, … where text is cut.

    strings ['The', ' big', ' dog', ' ran', '.'], position 2, width 1 -> '… big⟦ dog⟧ ran…'
    """
    start, end = max(0, position - width), min(len(strings), position + width + 1)

    def show(i: int) -> str:
        s = strings[i].replace("\n", "↵")
        return f"⟦{s}⟧" if i == position else s

    body = "".join(show(i) for i in range(start, end))
    return ("…" if start > 0 else "") + body + ("…" if end < len(strings) else "")


def top_examples(
    scan: NeuronScan, texts: TextSet, layer: int, neuron: int, k: int | None = None, width: int = 6
) -> list[NeuronExample]:
    """The neuron's k strongest activations (all that were kept when None), with contexts."""
    return [
        NeuronExample(t, p, v, texts.strings[t][p], highlight(texts.strings[t], p, width))
        for t, p, v in scan.top(layer, neuron)[:k]
    ]


def top_token_strings(scan: NeuronScan, texts: TextSet) -> list[list[list[str]]]:
    """[layer row][neuron] -> the token strings at its top-k activations, strongest first."""
    return [
        [[texts.strings[t][p] for t, p, _ in scan.top(layer, n)] for n in range(scan.n_neurons)]
        for layer in scan.layers
    ]


# ---------------------------------------------------------------------------------------------
# 4. Activation distributions of chosen neurons
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def neuron_values(
    model, texts: TextSet, neurons: Sequence[tuple[int, int]], progress: bool = False
) -> np.ndarray:
    """Every activation of the (layer, neuron) pairs over the text set: (N tokens, n pairs).

    One forward pass per batch of texts, whatever the number of layers the pairs come from.
    """
    layers = sorted({layer for layer, _ in neurons})
    rows = torch.as_tensor([layers.index(layer) for layer, _ in neurons], dtype=torch.long)
    columns = torch.as_tensor([neuron for _, neuron in neurons], dtype=torch.long)
    batches = activation_batches(model, texts.tokens, layers, progress=progress, desc="values")
    values = [acts[rows, :, columns].t() for _, acts in batches]  # (n, ΣT) -> (ΣT, n)
    return torch.cat(values).numpy()


def activation_histogram(values: np.ndarray, bins: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Histogram of one neuron's activations: (counts (bins,), edges (bins + 1,)).

    The bins span the neuron's own range (min to max), so a neuron that fires rarely shows a
    tall bar near 0 and a long thin tail: the shape of a sparse, selective unit.
    """
    return np.histogram(np.asarray(values, dtype=np.float64), bins=bins)


# ---------------------------------------------------------------------------------------------
# 5. What a neuron writes: W_out[n] · W_U
# ---------------------------------------------------------------------------------------------


def output_weights(model, layer: int) -> torch.Tensor:
    """W_out of a layer: (F, C), row n the direction neuron n adds to the residual stream.

    gpt2lab's c_proj is an `nn.Linear` (weight (out=C, in=F)), so W_out is its transpose; HF's
    GPT-2 stores c_proj as a Conv1D whose weight already is (in=F, out=C).
    """
    check_head(model, layer)
    return model.blocks[layer].mlp.c_proj.weight.detach().t()  # (F, C)


@torch.no_grad()
def output_logits(model, layer: int, neurons: Sequence[int]) -> torch.Tensor:
    """How much each token's logit moves per unit of activation: (n neurons, V).

    logits_n = W_U · (γ ⊙ (w − mean(w))) with w = W_out[n], γ = ln_f's scale. The final
    LayerNorm is folded in as it acts on a small write: it subtracts the mean over the C
    dimensions and multiplies by γ; its division by σ (the same positive number for every
    token, depending on the whole residual stream) and its bias (the same for every neuron)
    are left out, so the ranking of tokens is exact and the scale is per unit of σ. A model
    without a final LayerNorm (post-norm, no-norm switches) uses W_U · w as it is. Later
    layers are ignored (this is the *direct* effect).
    """
    w = output_weights(model, layer)[list(neurons)].float()  # (n, C)
    if isinstance(model.ln_f, LayerNorm):
        w = model.ln_f.weight.float() * (w - w.mean(-1, keepdim=True))
    return w @ model.lm_head.weight.float().t()  # (n, V)


@dataclass
class OutputTokens:
    """The tokens a neuron promotes (top) and suppresses (bottom): (token id, logit) pairs."""

    top: list[tuple[int, float]]
    bottom: list[tuple[int, float]]


def output_tokens(model, layer: int, neuron: int, k: int = 10) -> OutputTokens:
    """The k tokens whose logits neuron `neuron` of `layer` raises most and lowers most."""
    logits = output_logits(model, layer, [neuron])[0].cpu()  # (V,)
    k = min(k, logits.numel())
    top, bottom = logits.topk(k), (-logits).topk(k)
    return OutputTokens(
        top=list(zip(top.indices.tolist(), top.values.tolist())),
        bottom=list(zip(bottom.indices.tolist(), (-bottom.values).tolist())),
    )


# ---------------------------------------------------------------------------------------------
# 6. The neurons of one token
# ---------------------------------------------------------------------------------------------


def neurons_of_token(
    model, ids: Sequence[int], position: int, k: int = 10, layers: int | Sequence[int] | None = None
) -> list[tuple[int, int, float]]:
    """The k most active neurons (layer, neuron, activation) at one position of a text,
    strongest first; ties go to the lower layer, then the lower neuron."""
    if not 0 <= position < len(ids):
        raise GPT2LabError(f"position {position} is out of range: the text has {len(ids)} tokens")
    layers = check_layers(model, layers)
    acts = neuron_activations(model, ids, layers)[:, position]  # (L, F)
    order = torch.sort(acts.flatten(), descending=True, stable=True).indices[:k]
    F = acts.shape[1]
    return [(layers[int(i) // F], int(i) % F, float(acts.flatten()[i])) for i in order]
