"""Who did it: per-head ablation effects, direct logit attribution, and the logit lens.

In a pre-norm GPT the final residual stream is a sum of writes,

    x_final = embed + pos_embed + Σ_layers (Σ_heads head_write + attn_bias + mlp_out),

and the logits are W_U · LN_f(x_final). Freezing LN_f's scale σ_i at each position makes the
logits linear in the writes, so each component gets a share of a logit (direct logit
attribution, DLA): for component c at position i and direction d (a token's unembedding, or
a difference of two),

    DLA_c[i] = (γ ⊙ (x_c[i] − mean(x_c[i])) / σ_i) · d          and LN_f's bias adds β · d.

The shares add up exactly to d · logits[i] (tested). Ablation effects instead measure the
total (direct + indirect) effect of a head: the change in loss when the head is removed.

Every public function returns tensors inside a small dataclass whose `to_dict()` is plain
JSON-able data (for the web explorer).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from gpt2lab.errors import GPT2LabError
from gpt2lab.interp.interventions import ablate_heads, check_head, z_name
from gpt2lab.model import LayerNorm, device_of, eval_mode

Decode = Callable[[Sequence[int]], str]

# ---------------------------------------------------------------------------------------------
# 1. Batches and losses
# ---------------------------------------------------------------------------------------------


def padded_batch(sequences: Sequence[Sequence[int]], device=None):
    """Left-pad token lists into (idx, attention_mask, targets), each (B, T_max − 1 or T_max).

    idx = tokens[:-1] padded with 0, targets = tokens[1:] padded with −1 (ignored by the loss);
    gpt2lab counts positions over real tokens only, so padding changes no real prediction.
    """
    inputs = [list(s[:-1]) for s in sequences if len(s) > 1]
    if not inputs:
        raise GPT2LabError("need at least one text of two or more tokens")
    T = max(len(s) for s in inputs)
    idx = torch.zeros(len(inputs), T, dtype=torch.long)
    targets = torch.full((len(inputs), T), -1, dtype=torch.long)
    mask = torch.zeros(len(inputs), T, dtype=torch.long)
    for b, s in enumerate(s for s in sequences if len(s) > 1):
        n = len(s) - 1
        idx[b, T - n :] = torch.tensor(s[:-1])
        targets[b, T - n :] = torch.tensor(s[1:])
        mask[b, T - n :] = 1
    return idx.to(device), mask.to(device), targets.to(device)


@torch.no_grad()
def mean_loss(model, batch, hooks=()) -> float:
    """Mean next-token cross-entropy over the real targets of a `padded_batch`."""
    idx, mask, targets = batch
    with model.hooks(hooks):
        _, loss = model(idx, targets, attention_mask=mask)
    return float(loss)


@dataclass
class AblationEffects:
    """Δloss (ablated − clean) for every head: positive = the model needed that head."""

    delta: np.ndarray  # (n_layer, n_head)
    clean_loss: float
    method: str

    def to_dict(self) -> dict:
        return {
            "delta_loss": np.round(self.delta, 6).tolist(),
            "clean_loss": self.clean_loss,
            "method": self.method,
        }


def head_ablation_effects(
    model,
    sequences: Sequence[Sequence[int]],
    method: str = "zero",
    means: torch.Tensor | None = None,
    progress: bool = True,
) -> AblationEffects:
    """Δ mean loss over `sequences` when each head in turn is zero- or mean-ablated.

    One batched forward per head (n_layer × n_head + 1 forwards).
    """
    with eval_mode(model):
        batch = padded_batch(sequences, device_of(model))
        clean = mean_loss(model, batch)
        n_layer, n_head = model.config.n_layer, model.config.n_head
        delta = np.zeros((n_layer, n_head))
        heads = [(layer, head) for layer in range(n_layer) for head in range(n_head)]
        for layer, head in tqdm(heads, desc=f"{method}-ablating heads", disable=not progress):
            hooks = ablate_heads(model, [(layer, head)], method, means)
            delta[layer, head] = mean_loss(model, batch, hooks) - clean
    return AblationEffects(delta, clean, method)


@torch.no_grad()
def ablation_logprob_delta(
    model, tokens: Sequence[int], layer: int, head: int, method: str = "zero", means=None
) -> list[float]:
    """Per position i, Δ log p(token i+1) when (layer, head) is ablated (length T − 1)."""
    check_head(model, layer, head)
    idx = _as_idx(model, tokens)
    clean = _next_token_logprobs(model, idx)
    with model.hooks(ablate_heads(model, [(layer, head)], method, means)):
        ablated = _next_token_logprobs(model, idx)
    return (ablated - clean).tolist()


def _next_token_logprobs(model, idx: torch.Tensor) -> torch.Tensor:
    logits, _ = model(idx)
    logp = logits[0, :-1].float().log_softmax(-1)  # (T-1, V)
    return logp.gather(-1, idx[0, 1:, None])[:, 0]


# ---------------------------------------------------------------------------------------------
# 2. Direct logit attribution
# ---------------------------------------------------------------------------------------------


def component_writes(model, cache: dict[str, torch.Tensor]) -> Iterator[tuple[str, torch.Tensor]]:
    """Every write into the residual stream of batch row 0, as (name, (T, C)) in model order.

    A head's write is its z times its slice of c_proj: columns h·hs .. (h+1)·hs.
    """
    T = cache["hook_embed"].shape[1]
    yield "embed", cache["hook_embed"][0]
    yield "pos_embed", cache["hook_pos_embed"].expand_as(cache["hook_embed"])[0]  # 0 for NoPE
    for layer, block in enumerate(model.blocks):
        z = cache[z_name(layer)][0]  # (nh, T, hs)
        nh, _, hs = z.shape
        W_O = block.attn.c_proj.weight.view(-1, nh, hs)  # (C, nh, hs)
        writes = torch.einsum("htd,chd->htc", z, W_O)  # (nh, T, C)
        for head in range(nh):
            yield f"L{layer}H{head}", writes[head]
        if block.attn.c_proj.bias is not None:
            yield f"L{layer} attn bias", block.attn.c_proj.bias.expand(T, -1)
        yield f"L{layer} mlp", cache[f"blocks.{layer}.hook_mlp_out"][0]


def dla_hook_names(model) -> list[str]:
    n = model.config.n_layer
    return (
        ["hook_embed", "hook_pos_embed", f"blocks.{n - 1}.hook_resid_post"]
        + [z_name(i) for i in range(n)]
        + [f"blocks.{i}.hook_mlp_out" for i in range(n)]
    )


@dataclass
class Attribution:
    """DLA of every component at every position: values[c, i] for component names[c]."""

    names: list[str]
    values: torch.Tensor  # (n_components, T)
    targets: list[int]  # the token whose logit each position's direction reads
    contrast: str

    def head_grid(self, position: int, n_layer: int, n_head: int) -> np.ndarray:
        """(n_layer, n_head) DLA of each head at `position`."""
        index = [
            self.names.index(f"L{layer}H{h}") for layer in range(n_layer) for h in range(n_head)
        ]
        return self.values[index, position].reshape(n_layer, n_head).numpy()

    def to_dict(self) -> dict:
        return {
            "components": self.names,
            "values": np.round(self.values.numpy(), 6).tolist(),
            "targets": self.targets,
            "contrast": self.contrast,
        }


@torch.no_grad()
def direct_logit_attribution(
    model,
    tokens: Sequence[int],
    targets: Sequence[int],
    contrast: str | Sequence[int] = "mean",
) -> Attribution:
    """DLA of every component to `targets[i]` at each position i (len(targets) == len(tokens)).

    contrast 'mean': direction W_U[t] − mean_v W_U[v] (the logit relative to the average logit);
    'none': W_U[t] (the raw logit); a token list: W_U[t_i] − W_U[c_i] (a logit difference).
    The components add up to the same quantity computed from the model's own logits.
    """
    if len(targets) != len(tokens):
        raise GPT2LabError(f"{len(targets)} targets for {len(tokens)} positions")
    ln_f = model.ln_f
    if model.config.norm_placement == "post":
        raise GPT2LabError(
            "direct logit attribution needs a residual stream that is a sum of writes; "
            "a post-norm model normalises after every block"
        )
    idx = _as_idx(model, tokens)
    _, cache = model.run_with_cache(idx, names=dla_hook_names(model))
    W_U = model.lm_head.weight.float()  # (V, C)
    target_ids = torch.as_tensor(list(targets), device=W_U.device)
    direction = W_U[target_ids]  # (T, C)
    if contrast == "mean":
        direction = direction - W_U.mean(0)
    elif contrast != "none":
        direction = direction - W_U[torch.as_tensor(list(contrast), device=W_U.device)]
    names, values = [], []
    final = cache[f"blocks.{model.config.n_layer - 1}.hook_resid_post"][0].float()  # (T, C)
    for name, write in component_writes(model, cache):
        names.append(name)
        values.append((_through_final_norm(ln_f, write.float(), final) * direction).sum(-1))
    if isinstance(ln_f, LayerNorm) and ln_f.bias is not None:
        names.append("ln_f bias")
        values.append(direction @ ln_f.bias.float())
    label = contrast if isinstance(contrast, str) else "tokens"
    return Attribution(names, torch.stack(values).cpu(), list(map(int, targets)), label)


def _through_final_norm(ln_f, write: torch.Tensor, final: torch.Tensor) -> torch.Tensor:
    """γ ⊙ (write − mean(write)) / σ, with σ the frozen LN scale of the final stream (T, C)."""
    if not isinstance(ln_f, LayerNorm):
        return write
    sigma = (final.var(-1, unbiased=False, keepdim=True) + ln_f.eps).sqrt()  # (T, 1)
    return ln_f.weight.float() * (write - write.mean(-1, keepdim=True)) / sigma


@torch.no_grad()
def top_heads_per_position(
    model, tokens: Sequence[int], k: int = 3, decode: Decode | None = None
) -> list[dict]:
    """For every position: the k heads whose direct write most raised the next token's logit.

    The next token is the text's own token i+1 (for a generated text: what was sampled); at
    the last position, the model's top prediction. Logits are read against the vocabulary
    mean. Returns [{'position', 'token', 'next', 'heads': [{'layer', 'head', 'dla'}, ...]}].
    """
    idx = _as_idx(model, tokens)
    logits, _ = model(idx)
    targets = list(tokens[1:]) + [int(logits[0, -1].argmax())]
    attribution = direct_logit_attribution(model, tokens, targets)
    n_layer, n_head = model.config.n_layer, model.config.n_head
    rows = []
    for i, token in enumerate(tokens):
        grid = attribution.head_grid(i, n_layer, n_head)
        best = np.argsort(-grid, axis=None)[:k]
        rows.append(
            {
                "position": i,
                "token": _text(decode, token),
                "next": _text(decode, targets[i]),
                "predicted": i == len(tokens) - 1,
                "heads": [
                    {"layer": int(b // n_head), "head": int(b % n_head), "dla": float(grid.flat[b])}
                    for b in best
                ],
            }
        )
    return rows


# ---------------------------------------------------------------------------------------------
# 3. Logit lens and predictions
# ---------------------------------------------------------------------------------------------


@dataclass
class LogitLens:
    """Top-k next-token predictions read from the residual stream after each layer.

    stages: 'embed' (before block 0), then 'L0' .. 'L{n−1}' (after each block's output);
    the last stage equals the model's real prediction.
    """

    stages: list[str]
    top_ids: torch.Tensor  # (n_stages, T, k)
    top_probs: torch.Tensor  # (n_stages, T, k)

    def to_dict(self, decode: Decode | None = None) -> dict:
        return {
            "stages": self.stages,
            "top_ids": self.top_ids.tolist(),
            "top_probs": np.round(self.top_probs.numpy(), 5).tolist(),
            "top_tokens": [
                [[_text(decode, t) for t in row] for row in stage]
                for stage in self.top_ids.tolist()
            ],
        }


def lens_stages(n_layer: int) -> list[str]:
    """Where the logit lens reads the stream: 'embed' (before block 0), then 'L0' .. 'L{n−1}'."""
    return ["embed"] + [f"L{i}" for i in range(n_layer)]


@torch.no_grad()
def logit_lens_log_probs(model, tokens: Sequence[int]) -> torch.Tensor:
    """Next-token log-probabilities read after every stage of `lens_stages`: (n_stages, T, V).

    Stage s applies the final norm and the unembedding to the residual stream at s:
    log_softmax(lm_head(ln_f(resid_s))). The last stage is the model's own prediction.
    """
    n = model.config.n_layer
    names = ["blocks.0.hook_resid_pre"] + [f"blocks.{i}.hook_resid_post" for i in range(n)]
    _, cache = model.run_with_cache(_as_idx(model, tokens), names=names)
    return torch.stack(
        [model.lm_head(model.ln_f(cache[name][0])).float().log_softmax(-1) for name in names]
    )  # (n_stages, T, V)


@torch.no_grad()
def logit_lens(model, tokens: Sequence[int], k: int = 5) -> LogitLens:
    """The top-k tokens and their probabilities after every stage (`logit_lens_log_probs`)."""
    probs = logit_lens_log_probs(model, tokens).exp()  # (n_stages, T, V)
    top = probs.topk(min(k, probs.size(-1)), dim=-1)
    return LogitLens(lens_stages(model.config.n_layer), top.indices.cpu(), top.values.cpu())


@torch.no_grad()
def top_predictions(model, tokens: Sequence[int], k: int = 5, decode: Decode | None = None):
    """Per position, the model's k most likely next tokens: [[{'id', 'token', 'prob'}]]."""
    logits, _ = model(_as_idx(model, tokens))
    top = logits[0].float().softmax(-1).topk(min(k, logits.size(-1)), dim=-1)
    return [
        [{"id": int(t), "token": _text(decode, t), "prob": float(p)} for t, p in zip(ids, ps)]
        for ids, ps in zip(top.indices.tolist(), top.values.tolist())
    ]


def _as_idx(model, tokens: Sequence[int]) -> torch.Tensor:
    if len(tokens) == 0:
        raise GPT2LabError("empty text: nothing to look at")
    return torch.tensor([list(tokens)], device=device_of(model))


def _text(decode: Decode | None, token: int) -> str:
    return decode([int(token)]) if decode is not None else str(int(token))
