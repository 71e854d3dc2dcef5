"""The verdict rules of keras_bnreg/studies/stats.py on numbers whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from keras_bnreg.studies import stats


def slopes_with(mean, half_width, n=5):
    """n slopes whose mean and 95% half width are exactly `mean` and `half_width`."""
    base = np.linspace(-1.0, 1.0, n)
    base = base / stats.confidence_half_width(base)
    return mean + half_width * base


@pytest.mark.parametrize(
    ("mean", "half_width", "verdict"),
    [
        (0.001, 0.004, "no trend larger than delta"),
        (-0.004, 0.004, "no trend larger than delta"),
        (0.030, 0.010, "increases by at least delta"),
        (-0.030, 0.010, "decreases by at least delta"),
        (-0.006, 0.0043, "undecided"),  # CI [-0.0103, -0.0017] straddles -0.0091
        (0.009, 0.001, "undecided"),
    ],
)
def test_trend_verdict_is_an_equivalence_test_against_the_smallest_effect(
    mean, half_width, verdict
):
    result = stats.trend_verdict(slopes_with(mean, half_width), 0.0091)
    assert result["slope_mean"] == pytest.approx(mean)
    assert result["slope_ci95"] == pytest.approx(half_width)
    assert result["verdict"] == verdict
    assert (result["seeds_needed"] is not None) == (verdict == "undecided" and mean != 0.009)


def test_undecided_names_the_seeds_that_would_decide():
    result = stats.trend_verdict(slopes_with(-0.006, 0.0043), 0.0091)
    needed = result["seeds_needed"]
    spread = np.std(slopes_with(-0.006, 0.0043), ddof=1)
    t = scipy_stats.t.ppf(0.975, needed - 1)
    assert t * spread / np.sqrt(needed) < 0.0091 - 0.006  # that many would decide
    t_fewer = scipy_stats.t.ppf(0.975, needed - 2)
    assert t_fewer * spread / np.sqrt(needed - 1) >= 0.0091 - 0.006  # one fewer would not
    assert "about" in stats.describe_trend(result) and "seeds" in stats.describe_trend(result)
    on_the_edge = stats.trend_verdict(slopes_with(0.0091, 0.001), 0.0091)
    assert on_the_edge["seeds_needed"] is None
    assert "more than 100 seeds" in stats.describe_trend(on_the_edge)


def test_no_data_and_a_single_seed():
    assert stats.trend_verdict([], 0.01)["verdict"] == "no data"
    assert stats.trend_verdict([0.5], 0.01)["verdict"] == "undecided"


@pytest.mark.parametrize("true_slope", [0.0, 0.002, -0.03, 0.05])
def test_verdicts_agree_on_two_disjoint_seed_sets_of_the_same_size(true_slope):
    """The claims' trend verdicts cannot flip between two seed sets (or two machines whose
    rounding differs) for effects well inside or well outside delta: simulated slopes with
    the spread of the real accuracy slopes (about 0.0035 per log unit across 5 seeds)."""
    delta = 0.01 / np.log(3)
    rng = np.random.default_rng(0)
    agree = 0
    for _ in range(200):
        first, second = true_slope + 0.0035 * rng.standard_normal((2, 10))
        verdicts = {stats.trend_verdict(s, delta)["verdict"] for s in (first, second)}
        agree += len(verdicts) == 1
    assert agree >= 190  # at least 95% of pairs of 10-seed sets give the same verdict


@pytest.mark.parametrize(("true_slope", "paper_slope"), [(0.0, -2.0), (-0.99, -2.0), (-2.0, -2.0)])
def test_table_verdicts_agree_on_two_disjoint_seed_sets(true_slope, paper_slope):
    """The slope rule of the table verdicts, on simulated per-seed slopes with the spread of
    the real ones (about 0.01-0.04 across 5 seeds)."""
    rng = np.random.default_rng(1)
    agree = 0
    for _ in range(200):
        first, second = true_slope + 0.03 * rng.standard_normal((2, 5))
        agree += stats.slope_matches(first, paper_slope) == stats.slope_matches(second, paper_slope)
    assert agree >= 190
