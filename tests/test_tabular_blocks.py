"""The MLP, tree and tabular Numba blocks against NumPy references and their stated rates."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from pfnforge.blocks.mlp import ACTIVATION_CODES, activate_inplace, linear_combination, standardize_inplace
from pfnforge.blocks.tabular import (
    assign_classes_by_rank,
    class_counts,
    inject_missing_mcar,
    inject_missing_value_dependent,
    kumaraswamy_warp_inplace,
    ordinal_categorical_inplace,
    power_warp_inplace,
    quantize_inplace,
)
from pfnforge.blocks.tree import sample_split_thresholds, tree_forward

NUMPY_ACTIVATIONS = {
    "identity": lambda h: h, "tanh": np.tanh, "relu": lambda h: np.maximum(h, 0), "sin": np.sin,
    "sigmoid": lambda h: 1 / (1 + np.exp(-h)), "abs": np.abs, "square": np.square,
    "step": lambda h: (h > 0).astype(float), "gaussian": lambda h: np.exp(-h**2),
    "softplus": lambda h: np.log1p(np.exp(h)), "leaky_relu": lambda h: np.where(h > 0, h, 0.1 * h),
}


@pytest.mark.parametrize("name", sorted(ACTIVATION_CODES))
def test_activation_matches_numpy(name):
    h = np.linspace(-6, 6, 1001)
    out = h.copy()
    activate_inplace(out, ACTIVATION_CODES[name], np.empty(1001), np.empty(1001, dtype=np.int64))
    np.testing.assert_allclose(out, NUMPY_ACTIVATIONS[name](h), rtol=1e-12, atol=1e-14)


def test_standardize_gives_zero_mean_unit_variance_and_zeros_for_a_constant():
    values = np.random.default_rng(0).exponential(3.0, 500) + 7
    std = standardize_inplace(values)
    assert abs(values.mean()) < 1e-12 and values.std() == pytest.approx(1.0) and std > 1
    constant = np.full(10, 1e30)
    standardize_inplace(constant)
    assert np.all(constant == 0)


def test_linear_combination_matches_numpy():
    rng = np.random.default_rng(1)
    inputs = rng.standard_normal((5, 40))
    out = np.empty(40)
    linear_combination(inputs, np.array([4, 0]), np.array([0.5, -2.0]), out)
    np.testing.assert_allclose(out, 0.5 * inputs[4] - 2.0 * inputs[0])


def test_tree_forward_matches_a_python_walk_of_the_same_tree():
    rng = np.random.default_rng(2)
    inputs, depth = rng.standard_normal((3, 200)), 3
    split_input = rng.integers(0, 3, 2**depth - 1)
    thresholds = np.empty(2**depth - 1)
    sample_split_thresholds(inputs, split_input, rng.integers(0, 200, 2**depth - 1), thresholds)
    leaves = rng.standard_normal(2**depth)
    out = np.empty(200)
    tree_forward(inputs, depth, split_input, thresholds, leaves, out)
    for r in range(200):
        node = 0
        for _ in range(depth):
            node = 2 * node + (2 if inputs[split_input[node], r] > thresholds[node] else 1)
        assert out[r] == leaves[node - (2**depth - 1)]
    assert len(np.unique(out)) > 1  # thresholds drawn at data values split the rows


def test_class_counts_keep_every_class_and_follow_the_proportions():
    counts = np.empty(4, dtype=np.int64)
    class_counts(1000, np.array([0.1, 0.2, 0.3, 0.4]), counts)
    assert counts.sum() == 1000 and np.all(np.abs(counts - [100, 200, 300, 400]) <= 1)
    class_counts(5, np.array([0.97, 0.01, 0.01, 0.01]), counts)
    assert counts.sum() == 5 and np.all(counts >= 1)


def test_rank_assignment_gives_exact_class_sizes_in_value_order():
    values = np.random.default_rng(3).standard_normal(100)
    out = np.empty(100)
    assign_classes_by_rank(values, np.array([10, 60, 30]), np.array([2.0, 0.0, 1.0]), out)
    assert [np.sum(out == c) for c in (2, 0, 1)] == [10, 60, 30]
    assert values[out == 2].max() < values[out == 0].min() and values[out == 0].max() < values[out == 1].min()


def test_mcar_missing_count_is_binomial_at_the_rate():
    rng = np.random.default_rng(4)
    values = rng.standard_normal(200_000)
    missing = inject_missing_mcar(values, 0.15, rng.random(200_000))
    assert missing == np.isnan(values).sum()
    assert stats.binomtest(missing, 200_000, 0.15).pvalue > 1e-4


@pytest.mark.parametrize("strength", [1.0, -1.0, 3.0])
def test_value_dependent_missingness_keeps_the_rate_and_follows_the_value(strength):
    rng = np.random.default_rng(5)
    values = rng.lognormal(0, 1, 100_000)  # heavy right tail: probabilities of large values hit the clip at 1
    original = values.copy()
    missing = inject_missing_value_dependent(values, 0.2, strength, rng.random(100_000))
    assert stats.binomtest(missing, 100_000, 0.2).pvalue > 1e-4
    mask = np.isnan(values)
    median = np.median(original)
    high, low = mask[original > median].mean(), mask[original <= median].mean()
    assert (high > 2 * low) if strength > 0 else (low > 1.5 * high)


def test_ordinal_codes_count_the_thresholds_below():
    values = np.array([-5.0, 0.0, 0.5, 1.0, 9.0])
    ordinal_categorical_inplace(values, np.array([0.0, 1.0]))
    assert values.tolist() == [0, 0, 1, 1, 2]


def test_kumaraswamy_and_power_warps_match_their_formulas_and_keep_ranks():
    values = np.random.default_rng(6).standard_normal(300)
    unit = (values - values.min()) / (values.max() - values.min())
    kumaraswamy, power = values.copy(), values.copy()
    kumaraswamy_warp_inplace(kumaraswamy, 0.5, 3.0)
    power_warp_inplace(power, 2.5)
    np.testing.assert_allclose(kumaraswamy, 1 - (1 - unit**0.5) ** 3.0, atol=1e-12)
    np.testing.assert_allclose(power, unit**2.5, atol=1e-12)
    assert np.array_equal(np.argsort(kumaraswamy), np.argsort(values))


def test_quantize_leaves_num_levels_values_spanning_the_range():
    values = np.random.default_rng(7).uniform(-3, 5, 1000)
    lo, hi = values.min(), values.max()
    quantize_inplace(values, 5)
    np.testing.assert_allclose(np.unique(values), np.linspace(lo, hi, 5), atol=1e-12)
