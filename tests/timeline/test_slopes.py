"""slope_changes on synthetic curves whose breakpoints are known, and its two helpers
against NumPy computed another way."""

import numpy as np
import pytest

from gpt2lab.timeline import bin_means, hinge_fit, slope_changes

STEPS = np.arange(10, 1001, 10.0)  # 100 records, as log_interval 10 over 1000 steps


def kinked(steps, knots, slopes, start=5.0):
    """A continuous piecewise-linear curve: slopes[i] between knots[i - 1] and knots[i]."""
    y = start + slopes[0] * (steps - steps[0])
    for knot, before, after in zip(knots, slopes, slopes[1:]):
        y = y + (after - before) * np.maximum(0.0, steps - knot)
    return y


@pytest.mark.parametrize("seed", range(10))
def test_a_kink_at_300_is_found_there_with_its_slopes(seed):
    noise = np.random.default_rng(seed).normal(0, 0.05, STEPS.size)
    fit = slope_changes(STEPS, kinked(STEPS, [300], [-0.004, -0.001]) + noise)
    assert len(fit.changes) == 1
    change = fit.changes[0]
    assert abs(change.step - 300) <= 40
    assert change.slope_before == pytest.approx(-0.004, rel=0.25)
    assert change.slope_after == pytest.approx(-0.001, rel=0.25)


@pytest.mark.parametrize("seed", range(20))
def test_a_straight_line_plus_noise_has_no_change(seed):
    noise = np.random.default_rng(seed).normal(0, 0.05, STEPS.size)
    assert slope_changes(STEPS, 5 - 0.002 * STEPS + noise).changes == []


def test_an_exact_line_and_a_flat_line_have_none():
    assert slope_changes(STEPS, 5 - 0.002 * STEPS).changes == []
    assert slope_changes(STEPS, np.full(STEPS.size, 2.0)).changes == []


def test_two_kinks_are_both_found_in_order():
    noise = np.random.default_rng(0).normal(0, 0.03, STEPS.size)
    y = kinked(STEPS, [250, 650], [-0.006, -0.001, -0.003]) + noise
    found = [c.step for c in slope_changes(STEPS, y).changes]
    assert len(found) == 2
    assert abs(found[0] - 250) <= 40 and abs(found[1] - 650) <= 40


def test_log_steps_find_a_kink_in_ln_step():
    """5 − 0.5·ln s, falling 0.2 per unit of ln s after s = 100: straight pieces in ln(step)."""
    steps = np.unique(np.geomspace(1, 5000, 120).round())
    x = np.log(steps)
    y = kinked(x, [np.log(100)], [-0.5, -0.2])
    y += np.random.default_rng(1).normal(0, 0.02, steps.size)
    fit = slope_changes(steps, y, log_step=True)
    assert len(fit.changes) == 1
    assert 70 <= fit.changes[0].step <= 140
    assert fit.changes[0].slope_before == pytest.approx(-0.5, rel=0.15)
    assert slope_changes(steps, 5 - 0.5 * x, log_step=True).changes == []


def test_deterministic_and_non_finite_points_are_left_out():
    noise = np.random.default_rng(3).normal(0, 0.05, STEPS.size)
    y = kinked(STEPS, [300], [-0.004, -0.001]) + noise
    holed = y.copy()
    holed[[7, 50]] = [np.nan, np.inf]
    a, b = slope_changes(STEPS, y), slope_changes(STEPS, y)
    assert a == b
    assert len(slope_changes(STEPS, holed).changes) == 1


def test_bin_means_against_reshape():
    steps, values = np.arange(600.0), np.random.default_rng(0).normal(size=600)
    s, v = bin_means(steps, values, 200)
    assert np.allclose(s, steps.reshape(200, 3).mean(1))
    assert np.allclose(v, values.reshape(200, 3).mean(1))
    s, v = bin_means(steps[:50], values[:50], 200)  # fewer points: as they are
    assert np.array_equal(v, values[:50])


def test_hinge_fit_without_knots_is_polyfit_and_a_knot_fits_a_kink_exactly():
    rng = np.random.default_rng(0)
    x, y = np.linspace(0, 1, 40), rng.normal(size=40)
    coef, rss = hinge_fit(x, y, [])
    slope, intercept = np.polyfit(x, y, 1)
    assert coef == pytest.approx([intercept, slope])
    assert rss == pytest.approx(float(((np.polyval([slope, intercept], x) - y) ** 2).sum()))
    coef, rss = hinge_fit(x, kinked(x, [0.4], [2.0, -1.0], start=1.0), [0.4])
    assert coef == pytest.approx([1.0, 2.0, -3.0]) and rss == pytest.approx(0, abs=1e-20)


def test_around_and_the_marker_pick_the_checkpoints_either_side():
    """A change at step 15 lies between checkpoints 10 and 20: 20 carries its marker, and the
    Markdown compares 10 with 20."""
    from gpt2lab.timeline import (
        CheckpointSummary,
        LossCurve,
        RoleBest,
        SlopeChange,
        SlopeFit,
        Timeline,
        what_changed,
    )

    def summary(step, loss, score):
        role = RoleBest("induction", score, 1, 0, 0.4, int(score >= 0.4))
        return CheckpointSummary(step, loss, 100, None, "text", [role], None, 0.5, {})

    change = SlopeChange(15.0, -0.1, -0.01)
    fit = SlopeFit([1.0, 30.0], [5.0, 3.0], [5.0, 3.0], [change], log_step=False)
    curve = LossCurve("run", [1, 30], [5.0, 3.0], [], [], fit, [10, 20, 30])
    timeline = Timeline(
        curve, [summary(10, 4.0, 0.1), summary(20, 3.5, 0.6), summary(30, 3.0, 0.7)]
    )
    assert [c.step for c in timeline.around(change)] == [10, 20]
    assert [timeline.changes_at(i) for i in range(3)] == [[], [change], []]
    assert what_changed(timeline, change) == (
        "- **step 15: -10.000 → -1.000 per 100 steps**, checkpoints 10 → 20: "
        "val loss 4.000 → 3.500, cloze 0.50 → 0.50, induction 0.10 → 0.60"
    )
    late = SlopeChange(35.0, -0.1, -0.01)
    assert timeline.around(late)[1] is None
    assert what_changed(timeline, late).endswith("no kept checkpoint on its right")
