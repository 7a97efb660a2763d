from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from pfnforge.errors import ConfigError
from pfnforge.hyperpriors import Choice, IntRange, Range, Scale


def test_log_range_is_log_uniform():
    draws = Range(low=0.01, high=10.0, scale=Scale.log).sample(np.random.default_rng(0), 20_000)
    assert draws.min() >= 0.01 and draws.max() <= 10.0
    # log10 of a log-uniform draw on [0.01, 10] is uniform on [-2, 1]
    assert stats.kstest(np.log10(draws), stats.uniform(loc=-2, scale=3).cdf).pvalue > 1e-3
    # and a linear draw is not log-uniform
    linear = Range(low=0.01, high=10.0).sample(np.random.default_rng(0), 20_000)
    assert stats.kstest(np.log10(linear), stats.uniform(loc=-2, scale=3).cdf).pvalue < 1e-6


def test_fixed_range_returns_its_value():
    assert np.all(Range(low=0.6, high=0.6, scale=Scale.log).sample(np.random.default_rng(1), 10) == 0.6)


def test_int_range_is_inclusive_and_uniform():
    draws = IntRange(low=2, high=5).sample(np.random.default_rng(0), 40_000)
    counts = np.bincount(draws, minlength=6)[2:]
    assert counts.sum() == 40_000 and set(np.unique(draws)) == {2, 3, 4, 5}
    assert stats.chisquare(counts).pvalue > 1e-3


def test_choice_follows_weights():
    choice = Choice(options=["a", "b", "c"], weights=[1.0, 2.0, 7.0])
    draws = choice.sample(np.random.default_rng(0), 50_000)
    counts = np.array([(draws == o).sum() for o in "abc"])
    assert stats.chisquare(counts, 50_000 * np.array([0.1, 0.2, 0.7])).pvalue > 1e-3


@pytest.mark.parametrize(("make", "fragment"), [
    (lambda: Range(low=2.0, high=1.0), "above high"),
    (lambda: Range(low=0.0, high=1.0, scale=Scale.log), "log-scale range needs low > 0"),
    (lambda: Range(low=float("nan"), high=1.0), "finite"),
    (lambda: IntRange(low=3, high=1), "above high"),
    (lambda: Choice(options=[]), "at least one option"),
    (lambda: Choice(options=["a", "b"], weights=[1.0]), "one weight per option"),
    (lambda: Choice(options=["a"], weights=[0.0]), "positive sum"),
])
def test_invalid_hyperpriors_fail_with_a_named_reason(make, fragment):
    with pytest.raises(ConfigError, match=fragment):
        make()


def test_range_check_names_the_field_and_bound():
    with pytest.raises(ConfigError, match=r"lengthscale\.low=-1.0 must be > 0"):
        Range(low=-1.0, high=1.0).check("lengthscale", above=0.0)
    Range(low=0.5, high=1.0).check("lengthscale", above=0.0, at_most=1.0)
