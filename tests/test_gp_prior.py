"""The GP prior samples exactly the distribution it claims, and its exact posterior is right."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import stats
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process import kernels as sk

from pfnforge.blocks.covariance import KERNEL_CODES, NO_TERM, covariance_matrix
from pfnforge.config import compose_prior_config
from pfnforge.errors import ConfigError
from pfnforge.prior import BatchShape
from pfnforge_priors.gp import GPPrior, exact_posterior
from pfnforge_priors.gp.sampler import sample_gp_targets


def _draw_fixed_x(x_FR, kernel, lengthscales, periods, outputscale, noise, num_draws, seed=0, jitter_tries=6):
    codes = np.array([KERNEL_CODES[k] for k in kernel] + [NO_TERM] * (2 - len(kernel)))
    B, (F, R) = num_draws, x_FR.shape
    rng = np.random.default_rng(seed)
    y, jitter = np.empty((B, R), np.float32), np.zeros(B)
    failed = sample_gp_targets(
        np.broadcast_to(x_FR, (B, F, R)).copy(), np.full(B, F), np.tile(codes, (B, 1)),
        np.tile(lengthscales, (B, 1)), np.tile(periods, (B, 1)), np.zeros(B, bool), np.full(B, outputscale),
        np.full(B, noise), rng.standard_normal((B, R)), 1e-8, jitter_tries, y, jitter)
    return y, jitter, failed, codes


@pytest.mark.parametrize("kernel", [("rbf", "rbf"), ("matern52", "periodic"), ("matern12", "rbf")])
def test_sample_covariance_converges_to_the_kernel(kernel):
    x_FR = np.random.default_rng(9).random((2, 5))
    ls, per = np.array([0.3, 0.8]), np.array([0.5, 0.5])
    y, jitter, failed, codes = _draw_fixed_x(x_FR, kernel, ls, per, 1.5, 0.05, 60_000)
    assert failed == -1 and np.all(jitter == 0)
    expected = covariance_matrix(x_FR, x_FR, 2, codes, ls, per, False, 1.5) + 0.05 * np.eye(5)
    # standard error of a covariance estimate is ~ sqrt(2 / n) * variance ~ 0.01 here
    np.testing.assert_allclose(np.cov(y.T.astype(np.float64)), expected, atol=0.05)
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=0.03)


def test_duplicate_inputs_without_noise_get_jitter_and_give_up_when_told():
    x_FR = np.zeros((1, 4))  # four identical points: a rank-one covariance
    _, jitter, failed, _ = _draw_fixed_x(x_FR, ("rbf",), np.array([0.5, np.nan]), np.full(2, np.nan), 1.0, 0.0, 3)
    assert failed == -1 and np.all(jitter > 0)
    _, _, failed, _ = _draw_fixed_x(x_FR, ("rbf",), np.array([0.5, np.nan]), np.full(2, np.nan), 1.0, 0.0, 3,
                                    jitter_tries=0)
    assert failed == 0


def test_marginal_variance_is_outputscale_plus_noise():
    config = compose_prior_config("gp", ["outputscale.low=2", "outputscale.high=2", "noise_variance.low=0.5",
                                         "noise_variance.high=0.5", "kernel.options=[rbf,matern32*periodic]"])
    batch = GPPrior(config).sample(np.random.default_rng(0), BatchShape(
        num_datasets=4000, num_rows=3, num_features=2, num_train_rows=1))
    assert np.var(batch.y) == pytest.approx(2.5, rel=0.05)
    assert set(batch.hyperparameters["kernel"]) == {"rbf", "matern32*periodic"}
    is_rbf = batch.hyperparameters["kernel"] == "rbf"
    assert np.all(np.isnan(batch.hyperparameters["lengthscale_1"][is_rbf]))
    assert np.all(np.isfinite(batch.hyperparameters["period_1"][~is_rbf]))


def test_variable_feature_counts_zero_the_unused_columns():
    config = compose_prior_config("gp", ["enable_variable_num_features=true"])
    batch = GPPrior(config).sample(np.random.default_rng(1), BatchShape(
        num_datasets=200, num_rows=10, num_features=4, num_train_rows=5))
    assert set(batch.num_features) == {1, 2, 3, 4}
    for b in range(200):
        assert np.all(batch.x[b, :, batch.num_features[b]:] == 0)
        assert np.all(batch.x[b, :, : batch.num_features[b]] != 0)


def test_exact_posterior_matches_scikit_learn():
    config = compose_prior_config("gp_1d_reference")
    batch = GPPrior(config).sample(np.random.default_rng(2), BatchShape(
        num_datasets=3, num_rows=30, num_features=1, num_train_rows=20))
    posterior = exact_posterior(batch)
    for b in range(3):
        kernel = sk.ConstantKernel(1.0, "fixed") * sk.RBF(0.6, "fixed") + sk.WhiteKernel(0.01, "fixed")
        gpr = GaussianProcessRegressor(kernel, alpha=1e-12, optimizer=None, normalize_y=False)
        gpr.fit(batch.x[b, :20].astype(np.float64), batch.y[b, :20].astype(np.float64))
        mean, std = gpr.predict(batch.x[b, 20:].astype(np.float64), return_std=True)
        np.testing.assert_allclose(posterior.mean[b, 20:], mean, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(posterior.variance[b, 20:], std**2, rtol=1e-6)
        expected = stats.norm.logpdf(batch.y[b, 20:].astype(np.float64), mean, std)
        np.testing.assert_allclose(posterior.log_density[b, 20:], expected, rtol=1e-6)
        assert np.all(np.isnan(posterior.mean[b, :20]))


def test_exact_posterior_is_calibrated_on_its_own_prior():
    """Probability integral transforms of held-out targets are uniform only if sampler and posterior agree."""
    config = compose_prior_config("gp", ["kernel.options=[rbf,matern12,rbf+periodic,matern52*periodic]"])
    batch = GPPrior(config).sample(np.random.default_rng(3), BatchShape(
        num_datasets=300, num_rows=24, num_features=2, num_train_rows=12))
    posterior = exact_posterior(batch)
    test = np.s_[:, 12:]
    pit = stats.norm.cdf(batch.y[test], posterior.mean[test], np.sqrt(posterior.variance[test])).ravel()
    assert stats.kstest(pit, "uniform").pvalue > 1e-3
    # a posterior that ignored the training rows would be far worse than the exact one
    prior_only = stats.norm.logpdf(batch.y[test], 0.0, np.sqrt(
        batch.hyperparameters["outputscale"] + batch.hyperparameters["noise_variance"])[:, None])
    assert posterior.mean_nll() < -prior_only.mean() - 0.2


def test_zero_training_rows_gives_the_prior_predictive():
    batch = GPPrior().sample(np.random.default_rng(4), BatchShape(
        num_datasets=2, num_rows=5, num_features=1, num_train_rows=0))
    posterior = exact_posterior(batch)
    expected = batch.hyperparameters["outputscale"] + batch.hyperparameters["noise_variance"]
    np.testing.assert_allclose(posterior.variance, np.repeat(expected[:, None], 5, axis=1))
    assert np.all(posterior.mean == 0)


def test_posterior_refuses_batches_from_other_priors():
    from pfnforge import registry

    sine = registry.load_prior_class("sine")().sample(np.random.default_rng(0), BatchShape(
        num_datasets=2, num_rows=5, num_features=1, num_train_rows=2))
    with pytest.raises(Exception, match="not drawn by the gp prior"):
        exact_posterior(sine)


def test_noise_variance_must_be_positive():
    with pytest.raises(ConfigError, match=r"noise_variance\.low=0\.0 must be > 0"):
        compose_prior_config("gp", ["noise_variance.scale=linear", "noise_variance.low=0"])


def test_ard_gives_each_feature_its_own_lengthscale_as_scikit_learn_reads_it():
    config = compose_prior_config("gp", ["ard=true", "lengthscale.low=0.5", "lengthscale.high=0.5",
                                         "outputscale.low=1", "outputscale.high=1", "noise_variance.low=0.01",
                                         "noise_variance.high=0.01"])
    batch = GPPrior(config).sample(np.random.default_rng(5), BatchShape(
        num_datasets=3, num_rows=40, num_features=2, num_train_rows=30))
    posterior = exact_posterior(batch)
    for b in range(3):
        relevance = np.array([batch.hyperparameters[f"relevance_{f}"][b] for f in range(2)])
        assert relevance.min() >= 0.25 and relevance.max() <= 4.0
        kernel = sk.RBF(0.5 * relevance, "fixed") + sk.WhiteKernel(0.01, "fixed")
        gpr = GaussianProcessRegressor(kernel, alpha=1e-12, optimizer=None, normalize_y=False)
        gpr.fit(batch.x[b, :30].astype(np.float64), batch.y[b, :30].astype(np.float64))
        mean, std = gpr.predict(batch.x[b, 30:].astype(np.float64), return_std=True)
        np.testing.assert_allclose(posterior.mean[b, 30:], mean, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(posterior.variance[b, 30:], std**2, rtol=1e-4)
    # an isotropic kernel reads the same data worse: the relevances matter
    isotropic = dataclasses.replace(batch, hyperparameters={
        k: v for k, v in batch.hyperparameters.items() if not k.startswith("relevance_")})
    assert exact_posterior(isotropic).mean_nll() > posterior.mean_nll()
    assert "relevance_0" not in GPPrior().sample(np.random.default_rng(5), BatchShape(
        num_datasets=1, num_rows=4, num_features=2, num_train_rows=2)).hyperparameters


def test_ard_samples_agree_with_the_exact_posterior():
    config = compose_prior_config("gp", ["ard=true", "kernel.options=[rbf,matern32]"])
    batch = GPPrior(config).sample(np.random.default_rng(6), BatchShape(
        num_datasets=300, num_rows=24, num_features=3, num_train_rows=12))
    posterior = exact_posterior(batch)
    pit = stats.norm.cdf(batch.y[:, 12:], posterior.mean[:, 12:], np.sqrt(posterior.variance[:, 12:])).ravel()
    assert stats.kstest(pit, "uniform").pvalue > 1e-3
