"""The fast float32 normals are standard normal, independent, and a pure function of the generator."""

from __future__ import annotations

import numpy as np
from scipy import stats

from pfnforge.blocks.dense import standard_normal_f32


def test_draws_are_standard_normal():
    z = standard_normal_f32(np.random.default_rng(0), 400_001).astype(np.float64)
    assert z.shape == (400_001,)
    assert stats.kstest(z, "norm").pvalue > 1e-3
    se = 1 / np.sqrt(z.size)  # the first four moments within 5 standard errors
    assert abs(z.mean()) < 5 * se and abs(z.var() - 1) < 5 * se * np.sqrt(2)
    assert abs(np.mean(z**3)) < 5 * se * np.sqrt(15) and abs(np.mean(z**4) - 3) < 5 * se * np.sqrt(96)
    assert 4.0 < np.abs(z).max() < 7.0  # tails reach where 400k normals reach


def test_both_halves_are_independent_normals():
    z = standard_normal_f32(np.random.default_rng(1), (200_000,)).astype(np.float64)
    cos_half, sin_half = z[:100_000], z[100_000:]  # the two normals made from each 64-bit word
    assert stats.kstest(sin_half, "norm").pvalue > 1e-3 and stats.kstest(cos_half, "norm").pvalue > 1e-3
    assert abs(np.corrcoef(cos_half, sin_half)[0, 1]) < 0.015
    assert abs(np.corrcoef(cos_half**2, sin_half**2)[0, 1]) < 0.015  # the radius is not shared visibly
    assert abs(np.corrcoef(z[:-1], z[1:])[0, 1]) < 0.015


def test_same_generator_state_gives_same_bytes_and_advances_it():
    first, second = np.random.default_rng(5), np.random.default_rng(5)
    a, b = standard_normal_f32(first, (3, 7, 5)), standard_normal_f32(second, (3, 7, 5))
    assert a.dtype == np.float32 and a.shape == (3, 7, 5) and a.flags.c_contiguous
    assert a.tobytes() == b.tobytes()
    assert standard_normal_f32(first, 105).tobytes() != a.tobytes()  # the generator moved on
    assert standard_normal_f32(np.random.default_rng(6), (3, 7, 5)).tobytes() != a.tobytes()


def test_odd_and_empty_sizes():
    assert standard_normal_f32(np.random.default_rng(0), 0).shape == (0,)
    assert np.isfinite(standard_normal_f32(np.random.default_rng(0), 1)).all()
    assert standard_normal_f32(np.random.default_rng(0), (2, 3, 1)).shape == (2, 3, 1)
