"""--keep-every: checkpoints at multiples of N are written and never pruned by keep_last."""

import random

import pytest
from train_helpers import without_timing

from gpt2lab.train import train
from gpt2lab.train.checkpoint import pruned_steps


def kept_by_definition(steps, keep_last, keep_every):
    """The rule spelled out as sets: the newest max(keep_last, 1), plus every multiple."""
    newest = set(sorted(steps)[-max(keep_last, 1) :]) if steps else set()
    multiples = {s for s in steps if keep_every and s % keep_every == 0}
    return newest | multiples


@pytest.mark.parametrize("case", range(60))
def test_pruned_steps_matches_the_rule_as_sets(case):
    rng = random.Random(case)
    steps = sorted(rng.sample(range(1, 400), rng.randint(0, 12)))
    keep_last, keep_every = rng.randint(0, 5), rng.choice([0, 0, 1, 7, 50, 100])
    pruned = pruned_steps(steps, keep_last, keep_every)
    assert set(pruned) == set(steps) - kept_by_definition(steps, keep_last, keep_every)
    assert pruned == sorted(pruned)


def test_default_keeps_todays_behaviour():
    assert pruned_steps([200, 400, 600, 800], keep_last=3) == [200]
    assert pruned_steps([200, 400], keep_last=0) == [200]  # the newest always stays
    assert pruned_steps([], keep_last=3, keep_every=5) == []


def test_a_run_writes_and_keeps_every_multiple_and_trains_the_same(tiny_config):
    """keep_every=4 with checkpoint_interval 6 and keep_last 1: step 4, 8, 12 (the end) stay,
    6 is pruned; the losses are those of the run without it (keep_every is not trajectory)."""
    plain = train(tiny_config(name="plain", keep_last=1))
    kept = train(tiny_config(name="kept", keep_last=1, keep_every=4))
    names = sorted(p.name for p in (kept.run_dir / "checkpoints").iterdir())
    assert names == ["best", "step_000004", "step_000008", "step_000012"]
    assert without_timing(kept.run_dir) == without_timing(plain.run_dir)
