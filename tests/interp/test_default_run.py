"""The default `gpt2lab train`, shortened, grows the head roles the README promises.

Each test runs the real default path (`TrainConfig()` in an empty directory: the embedded
stories are prepared, the `stories` preset with half of every batch copying practice, a
constant learning rate) cut short, so each run is the default run's first steps exactly; then
scores the model with `gpt2lab heads`' own functions on its default probes and compares with
the same shape untrained. What forms by which step is measured in docs/interpretability.md
(rounds 6 and 8).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gpt2lab.config import GPTConfig
from gpt2lab.interp.behaviours import BehaviourSet, ablation_specificity
from gpt2lab.interp.heads import classify_heads, compute_head_scores, default_induction
from gpt2lab.interp.texts import load_text_set
from gpt2lab.model import GPT
from gpt2lab.pretrained import load_pretrained
from gpt2lab.tokenizer import get_tokenizer
from gpt2lab.train import TrainConfig, train


def shortened_default(steps: int) -> GPT:
    """The default run stopped after `steps` steps (a constant lr: the same steps as the full run)."""
    config = TrainConfig(
        max_steps=steps,
        eval_interval=steps,
        eval_iters=2,
        sample_interval=0,
        checkpoint_interval=0,
        keep_every=0,
        progress=False,
        tensorboard=False,
        name="default",
    )
    assert (config.preset, config.batch_size, config.repeat_fraction()) == ("stories", 128, 0.5)
    assert config.schedule() == "constant"
    result = train(config)
    assert result.stopped == "completed", result.stopped
    return load_pretrained(str(result.checkpoint)).eval()


def best_scores(model: GPT):
    """The best head per score on the heads command's default inputs, and the HeadScores."""
    tokenizer = get_tokenizer("data/stories-4096/tokenizer")
    texts = load_text_set(tokenizer, model.config.block_size)
    spec = default_induction(model.config.block_size)
    scores = compute_head_scores(model, texts, induction=spec, progress=False)
    return {name: float(grid.max()) for name, grid in scores.grids.items()}, scores, texts


def untrained(model: GPT) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig.from_dict({**model.config.to_dict(), "extra": {}})).eval()


def test_a_shortened_default_run_raises_the_role_scores_above_init(tmp_path, monkeypatch):
    """150 steps (about a minute): previous-token and sentence-boundary attention already rise
    above an untrained model's; induction needs the escape of steps 300–400 (the slow test)."""
    monkeypatch.chdir(tmp_path)
    model = shortened_default(150)
    trained, _, _ = best_scores(model)
    init, _, _ = best_scores(untrained(model))
    assert trained["previous_token"] > init["previous_token"] + 0.03
    assert trained["sentence_boundary"] > init["sentence_boundary"] + 0.1
    assert trained["induction"] < 0.4  # no copying yet at this budget


@pytest.mark.slow
def test_the_default_run_forms_induction_and_previous_token_heads(tmp_path, monkeypatch):
    """500 of the default's 800 steps (4 to 10 minutes on 2 cores): induction heads are
    labelled, the model copies, the previous-token score has risen on the way to its head, and
    the induction check holds (at step 500 it held in all ten constant-lr runs measured,
    round 8)."""
    monkeypatch.chdir(tmp_path)
    model = shortened_default(500)
    trained, scores, texts = best_scores(model)
    init, _, _ = best_scores(untrained(model))
    roles = classify_heads(scores)
    induction = [(r.layer, r.head) for r in roles if r.role == "induction"]
    assert induction and trained["induction"] > 0.8 > 0.1 > init["induction"]
    assert trained["previous_token"] > init["previous_token"] + 0.15
    behaviours = BehaviourSet(texts, default_induction(model.config.block_size))
    result = ablation_specificity(model, behaviours, roles, progress=False)
    clean = result.clean
    assert clean["repeated_half_loss"] < 0.3 * clean["first_half_loss"]
    # the heads copying needs: some layer-1 induction head is among the three whose removal
    # raises the repeated-half loss most
    delta = result.delta["repeated_half_loss"]
    top = sorted(np.ndindex(delta.shape), key=lambda h: -delta[h])[:3]
    assert set(top) & set(induction), (top, induction)
    verdicts = {check.role: check.verdict for check in result.checks}
    assert verdicts["induction"] == "holds", result.checks
