"""Statistics with known answers: IQM, bootstrap CIs, paired differences, ties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from leaderboard_helpers import stored_entry

from leaderboard.standings import compute_standings
from leaderboard.stats import (
    N_RESAMPLES,
    Interval,
    bootstrap_ci,
    iqm,
    paired_difference,
    rank_with_ties,
)


def test_leaderboard_intervals_are_ten_thousand_resample_percentile_bootstraps():
    """What docs/leaderboard.md and the page footnote say: 95% percentile bootstrap, 10,000
    resamples, seed 0, computed here independently and compared with the standings."""
    successes = list(np.random.default_rng(5).random(100) < 0.6)
    returns = list(np.random.default_rng(6).normal(0.3, 0.4, size=100))
    idx = np.random.default_rng(0).integers(0, 100, size=(10_000, 100))

    def independent(values) -> tuple[float, float, float]:
        x = np.asarray(values, dtype=float)
        low, high = np.quantile(x[idx].mean(axis=1), [0.025, 0.975])
        return x.mean(), low, high

    (standings,) = compute_standings([stored_entry("a", "sft", successes, returns)])
    (entry,) = standings.entries
    for interval, values in ((entry.success, successes), (entry.mean_return, returns)):
        assert (interval.estimate, interval.low, interval.high) == pytest.approx(
            independent(values), abs=1e-12
        )
    assert N_RESAMPLES == 10_000
    assert bootstrap_ci(returns, n_resamples=9_999) != bootstrap_ci(returns)


@pytest.mark.parametrize(
    "values, expected",
    [
        ([1, 2, 3, 4, 5, 6, 7, 8], 4.5),  # middle half: 3, 4, 5, 6
        ([5.0], 5.0),
        ([0, 0, 0, 100], 0.0),  # one quarter cut from each end: 0, 0
        ([-1000, 1, 2, 3, 1000, 4, 5, 6], 3.5),  # outliers go, order does not matter
    ],
)
def test_iqm_known_values(values, expected):
    assert iqm(values) == pytest.approx(expected)


def test_bootstrap_of_a_constant_is_that_constant():
    ci = bootstrap_ci([0.25] * 37)
    assert (ci.estimate, ci.low, ci.high) == (0.25, 0.25, 0.25)


@pytest.mark.parametrize("p, n", [(0.5, 500), (0.9, 500), (0.2, 200)])
def test_success_ci_matches_the_normal_approximation(p, n):
    k = round(p * n)
    ci = bootstrap_ci(np.r_[np.ones(k), np.zeros(n - k)])
    half = 1.959964 * math.sqrt(p * (1 - p) / n)
    assert ci.estimate == pytest.approx(p)
    assert ci.low == pytest.approx(p - half, abs=0.006)
    assert ci.high == pytest.approx(p + half, abs=0.006)


def test_bootstrap_is_deterministic_and_seeded():
    x = np.random.default_rng(3).normal(size=300)
    assert bootstrap_ci(x) == bootstrap_ci(x)
    assert bootstrap_ci(x, seed=1) != bootstrap_ci(x, seed=2)


def test_iqm_ci_is_robust_to_an_outlier():
    x = np.r_[np.linspace(0, 1, 99), 1e6]
    mean_ci, iqm_ci = bootstrap_ci(x), bootstrap_ci(x, "iqm")
    assert mean_ci.width > 1000  # the outlier dominates the mean
    assert iqm_ci.high < 1.0 and iqm_ci.estimate == pytest.approx(0.5, abs=0.01)


def test_paired_difference_of_a_constant_shift_is_exact():
    a = np.random.default_rng(0).normal(size=200)
    d = paired_difference(a, a - 0.1)
    assert (d.estimate, d.low, d.high) == pytest.approx((0.1, 0.1, 0.1))


def test_pairing_narrows_the_interval_when_episodes_share_difficulty():
    rng = np.random.default_rng(1)
    difficulty = rng.normal(size=400)
    a = difficulty + 0.1 + 0.05 * rng.normal(size=400)
    b = difficulty + 0.05 * rng.normal(size=400)
    paired = paired_difference(a, b)
    unpaired_half = 1.96 * math.sqrt(a.var() / 400 + b.var() / 400)
    assert paired.excludes_zero() and paired.estimate == pytest.approx(0.1, abs=0.02)
    assert paired.width < unpaired_half  # far narrower than the unpaired interval


def test_paired_difference_needs_equal_lengths():
    with pytest.raises(ValueError, match="same length"):
        paired_difference([1, 2], [1, 2, 3])


@pytest.mark.parametrize(
    "bad, message",
    [
        ([], r"non-empty 1-d sequence of numbers, got shape \(0,\)"),
        ([[1, 2]], r"non-empty 1-d sequence of numbers, got shape \(1, 2\)"),
        ([1.0, float("nan")], "values must be finite numbers"),
    ],
)
def test_bad_samples_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        bootstrap_ci(bad)


def test_ties_when_intervals_overlap():
    a, b, c = Interval(0.9, 0.85, 0.95), Interval(0.8, 0.7, 0.86), Interval(0.2, 0.1, 0.3)
    assert a.overlaps(b) and not a.overlaps(c)
    assert rank_with_ties([a, b, c]) == [(1, [1]), (1, [0]), (3, [])]
    # Touching endpoints count as overlapping.
    assert Interval(0.5, 0.4, 0.5).overlaps(Interval(0.6, 0.5, 0.7))


def test_kept_resample_indices_give_the_intervals_of_a_fresh_draw(monkeypatch):
    """A board draws its resample indices once and keeps them; every interval is still the
    one a fresh draw gives, to the bit."""
    from leaderboard import stats

    rng = np.random.default_rng(7)
    values, other = rng.normal(size=500), rng.normal(size=500)
    kept = [stats.bootstrap_ci(values, "iqm"), stats.paired_difference(values, other)]
    monkeypatch.setattr(stats, "_KEPT_CELLS", 0)  # nothing kept: every interval draws
    fresh = [stats.bootstrap_ci(values, "iqm"), stats.paired_difference(values, other)]
    assert kept == fresh
