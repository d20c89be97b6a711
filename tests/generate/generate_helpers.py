"""Helpers shared by the generate/evaluate tests (imported by name, like reference_helpers)."""

from __future__ import annotations

import torch

GPT2_VOCAB = 50257


def hf_logprobs(hf, ids: list[int]) -> torch.Tensor:
    """log_softmax of transformers' logits for one sequence: (T, V) float64."""
    with torch.inference_mode():
        return hf(torch.tensor([ids])).logits[0].double().log_softmax(-1)
