"""`--step-log`: every step's pre-clip gradient norm and largest attention logit per layer,
checked against a replay of the first step computed independently, and exact on resume."""

from __future__ import annotations

import json
import math

import pytest
import torch
from test_loop import StopAt

from gpt2lab.data.loader import TokenLoader
from gpt2lab.model import GPT
from gpt2lab.train import train
from gpt2lab.train.run import seed_everything


def steps_of(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "steps.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("attn_scale", [True, False])
def test_the_first_step_replayed_by_hand_gives_the_logged_norm_and_logits(tiny_config, attn_scale):
    cfg = tiny_config(step_log=True, max_steps=4, log_interval=2)
    cfg = cfg.replace(model={**cfg.model, "attn_scale": attn_scale})
    result = train(cfg)
    steps = steps_of(result.run_dir)
    assert [s["step"] for s in steps] == [1, 2, 3, 4]  # every step, not every log_interval
    metrics = [
        json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()
    ]
    logged = {r["step"]: r for r in metrics if r["kind"] == "train"}
    assert steps[1]["attn_logit_max"] == logged[2]["attn_logit_max"]

    # step 1 by hand: the same initial weights and first batch, the explicit attention path
    seed_everything(cfg.seed)
    model = GPT(cfg.model_config(vocab_size=300))
    loader = TokenLoader(cfg.data, "train", batch_size=cfg.batch_size, block_size=32, seed=cfg.seed)
    x, y = loader.next_batch()  # (B, T)
    names = [f"blocks.{i}.attn.hook_attn_scores" for i in range(2)]
    logits, cache = model.run_with_cache(x, names=names)
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
    loss.backward()
    norm = math.sqrt(sum(float(p.grad.double().square().sum()) for p in model.parameters()))
    visible = torch.ones(32, 32, dtype=torch.bool).tril()
    expect = [float(cache[n][..., visible].max()) for n in names]  # (B, nh, T, T) -> max

    assert steps[0]["loss"] == pytest.approx(float(loss.detach()), rel=1e-5)
    assert steps[0]["grad_norm"] == pytest.approx(norm, rel=1e-5)
    assert steps[0]["attn_logit_max"] == pytest.approx(expect, rel=1e-5)


def test_a_resumed_run_writes_the_same_steps_file(tiny_config):
    full = train(tiny_config(name="full", step_log=True))
    part = train(tiny_config(name="part", step_log=True), [StopAt(5)])
    assert part.step == 5
    train(tiny_config(name="part", step_log=True), resume=True)
    text = (full.run_dir / "steps.jsonl").read_text()
    assert (part.run_dir / "steps.jsonl").read_text() == text
    assert len(text.splitlines()) == 12


def test_without_the_option_there_is_no_steps_file(tiny_config):
    result = train(tiny_config(max_steps=2))
    assert not (result.run_dir / "steps.jsonl").exists()
