"""The Numba building blocks against NumPy/SciPy/scikit-learn references."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.gaussian_process import kernels as sk

from pfnforge.blocks.covariance import KERNEL_CODES, NO_TERM, covariance_matrix
from pfnforge.blocks.fastexp import exp_nonpositive_inplace
from pfnforge.blocks.linalg import cholesky_inplace, cholesky_matvec


def test_fast_exp_matches_numpy_to_a_few_ulp():
    values = -np.concatenate([np.linspace(0, 700, 200_001), np.random.default_rng(0).exponential(5, 10_000)])
    out = values.copy()
    exp_nonpositive_inplace(out, out.size, np.empty(out.size, dtype=np.int64))
    expected = np.exp(values)
    assert np.max(np.abs(out - expected) / expected) < 5e-16
    assert out[0] == 1.0


def test_fast_exp_clamps_far_tails_to_tiny_values():
    out = np.array([-800.0, -1e300])
    exp_nonpositive_inplace(out, 2, np.empty(2, dtype=np.int64))
    assert np.all(out > 0) and np.all(out < 1e-300)


def _reference(name: str, lengthscale: float, period: float):
    return {
        "rbf": sk.RBF(lengthscale),
        "matern12": sk.Matern(lengthscale, nu=0.5),
        "matern32": sk.Matern(lengthscale, nu=1.5),
        "matern52": sk.Matern(lengthscale, nu=2.5),
        "periodic": sk.ExpSineSquared(lengthscale, period),
    }[name]


@pytest.mark.parametrize("name", sorted(KERNEL_CODES))
def test_base_kernels_match_scikit_learn(name):
    rng = np.random.default_rng(1)
    F = 1 if name == "periodic" else 3  # scikit-learn's periodic kernel uses the Euclidean distance
    xa, xb = rng.random((7, F)), rng.random((5, F))
    ours = covariance_matrix(xa.T.copy(), xb.T.copy(), F, np.array([KERNEL_CODES[name]]), np.array([0.4]),
                             np.array([0.7]), False, 1.7)
    np.testing.assert_allclose(ours, 1.7 * _reference(name, 0.4, 0.7)(xa, xb), rtol=1e-12, atol=1e-14)


def test_periodic_kernel_is_a_product_over_features_and_positive_definite():
    rng = np.random.default_rng(6)
    x = rng.random((40, 3))
    ours = covariance_matrix(x.T.copy(), x.T.copy(), 3, np.array([KERNEL_CODES["periodic"]]), np.array([0.8]),
                             np.array([0.6]), False, 1.0)
    per_feature = [_reference("periodic", 0.8, 0.6)(x[:, [f]]) for f in range(3)]
    np.testing.assert_allclose(ours, np.prod(per_feature, axis=0), rtol=1e-12, atol=1e-14)
    assert np.linalg.eigvalsh(ours).min() > -1e-10


@pytest.mark.parametrize("is_product", [False, True])
def test_sums_average_and_products_multiply(is_product):
    rng = np.random.default_rng(2)
    x = rng.random((6, 1))
    codes = np.array([KERNEL_CODES["matern32"], KERNEL_CODES["periodic"], NO_TERM])
    ours = covariance_matrix(x.T.copy(), x.T.copy(), 1, codes, np.array([0.5, 0.9, np.nan]),
                             np.array([np.nan, 0.3, np.nan]), is_product, 2.0)
    a, b = _reference("matern32", 0.5, 1.0)(x), _reference("periodic", 0.9, 0.3)(x)
    np.testing.assert_allclose(ours, 2.0 * (a * b if is_product else (a + b) / 2), rtol=1e-12, atol=1e-14)
    assert np.allclose(np.diag(ours), 2.0)


def test_only_the_first_num_features_count():
    rng = np.random.default_rng(3)
    x = rng.random((5, 4))
    codes, ls, per = np.array([0]), np.array([0.5]), np.array([np.nan])
    full = covariance_matrix(x[:, :2].T.copy(), x[:, :2].T.copy(), 2, codes, ls, per, False, 1.0)
    masked = covariance_matrix(x.T.copy(), x.T.copy(), 2, codes, ls, per, False, 1.0)
    np.testing.assert_array_equal(full, masked)


def test_cholesky_inplace_factors_the_leading_block_and_reports_failure():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((6, 6))
    spd = a @ a.T + 6 * np.eye(6)
    buffer = np.full((8, 8), 99.0)
    buffer[:6, :6] = np.triu(spd) + np.tril(np.full((6, 6), -5.0), -1)  # the strict lower part is ignored
    work = buffer.copy()
    assert cholesky_inplace(work, 6) == 0  # leading block of a larger buffer (lda = 8)
    np.testing.assert_allclose(np.triu(work[:6, :6]), np.linalg.cholesky(spd).T, rtol=1e-12)
    assert np.all(work[6:] == 99.0) and np.all(work[:6, :6][np.tril_indices(6, -1)] == -5.0)
    singular = np.ones((3, 3))
    assert cholesky_inplace(singular, 3) == 2  # the order-2 minor is the first that is not positive


def test_cholesky_matvec_applies_l_from_its_transpose():
    rng = np.random.default_rng(5)
    a = rng.standard_normal((5, 5))
    spd = a @ a.T + 5 * np.eye(5)
    work = np.triu(spd) + np.tril(np.full((5, 5), np.nan), -1)  # NaN below: must never be read
    assert cholesky_inplace(work, 5) == 0
    z = rng.standard_normal(5)
    out = np.empty(5)
    cholesky_matvec(work, z, 5, out)
    np.testing.assert_allclose(out, np.linalg.cholesky(spd) @ z, rtol=1e-12)


def test_numba_cache_is_keyed_by_the_block_sources(tmp_path):
    """A cached prior kernel inlines the blocks, so their source hash names the cache directory."""
    import hashlib
    import os
    import subprocess
    import sys
    from pathlib import Path

    import pfnforge.blocks

    digest = hashlib.sha256()
    for source in sorted(Path(pfnforge.blocks.__file__).parent.glob("*.py")):
        digest.update(source.read_bytes())
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"} | {"XDG_CACHE_HOME": str(tmp_path)}
    code = ("import numpy as np; from pfnforge_priors.gp import GPPrior; from pfnforge.prior import BatchShape;"
            "GPPrior().sample(np.random.default_rng(0), BatchShape(num_datasets=2, num_rows=8, num_features=1,"
            " num_train_rows=4))")
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    cache = tmp_path / "pfnforge" / "numba" / digest.hexdigest()[:16]
    assert any(cache.rglob("*sample_gp_targets*.nbi"))
