"""The hyperparameter-marginal GP reference: exact where nothing is drawn, equal to brute-force quadrature and
to slice sampling where something is, never better on average than the oracle that knows the draws, and
better than any single plug-in guess."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.special import logsumexp

from pfnforge import registry
from pfnforge.config import compose_prior_config
from pfnforge.errors import ConfigError
from pfnforge.hyperpriors import Range, Scale
from pfnforge.prior import BatchShape
from pfnforge_priors.gp import GPPrior, exact_posterior
from pfnforge_priors.gp.marginal import MarginalConfig, draws_hyperparameters, marginal_posterior
from pfnforge_priors.gp.mcmc import slice_sampling_posterior

FIXED = registry.build_prior(compose_prior_config("gp_1d_reference")).config
HYPERPRIORS = dataclasses.replace(FIXED, lengthscale=Range(low=0.2, high=1.0, scale=Scale.log),
                                  outputscale=Range(low=0.5, high=2.0, scale=Scale.log),
                                  noise_variance=Range(low=1e-3, high=0.1, scale=Scale.log))


def _batch(config, num_train: int, num_datasets: int = 16, num_test: int = 10, seed: int = 0):
    return GPPrior(config).sample(np.random.default_rng([seed, num_train]), BatchShape(
        num_datasets=num_datasets, num_rows=num_train + num_test, num_features=1, num_train_rows=num_train))


def _mean_test(log_density_BR: np.ndarray, num_train: int) -> np.ndarray:
    return log_density_BR[:, num_train:].mean(1)


@pytest.mark.parametrize("num_train", [0, 1, 7])
def test_a_point_mass_hyperprior_gives_the_exact_posterior(num_train):
    batch = _batch(FIXED, num_train)
    marginal = marginal_posterior(batch, FIXED)
    np.testing.assert_allclose(marginal.log_density, exact_posterior(batch).log_density, atol=1e-9)
    assert not draws_hyperparameters(FIXED) and draws_hyperparameters(HYPERPRIORS)
    prior = GPPrior(FIXED)
    assert prior.reference(batch).name == "exact GP posterior" and prior.oracle_log_likelihood(batch) is None


def test_one_drawn_lengthscale_matches_brute_force_quadrature_within_the_reported_error():
    config = dataclasses.replace(FIXED, lengthscale=Range(low=0.05, high=2.0, scale=Scale.log))
    T = 6
    batch = _batch(config, T, num_datasets=6)
    marginal = marginal_posterior(batch, config)
    # brute force, in plain NumPy: 4,000 lengthscales at the midpoints of the hyperprior's quantiles, each with
    # the RBF GP's evidence and test predictive written out
    lengthscale_L = config.lengthscale.at_quantile((np.arange(4000) + 0.5) / 4000)
    noise, outputscale = config.noise_variance.low, config.outputscale.low
    for b in range(batch.num_datasets):
        x_R, y_R = batch.x[b, :, 0].astype(np.float64), batch.y[b].astype(np.float64)
        k_LRR = outputscale * np.exp(-((x_R[:, None] - x_R[None, :]) ** 2) / (2 * lengthscale_L[:, None, None] ** 2))
        train_LTT = k_LRR[:, :T, :T] + noise * np.eye(T)
        alpha_LT = np.linalg.solve(train_LTT, y_R[:T])
        log_evidence_L = -0.5 * (alpha_LT @ y_R[:T] + np.linalg.slogdet(train_LTT)[1] + T * np.log(2 * np.pi))
        mean_LQ = np.einsum("ltq,lt->lq", k_LRR[:, :T, T:], alpha_LT)
        variance_LQ = outputscale + noise - np.einsum(
            "ltq,ltq->lq", k_LRR[:, :T, T:], np.linalg.solve(train_LTT, k_LRR[:, :T, T:]))
        log_predictive_LQ = -0.5 * (np.log(2 * np.pi * variance_LQ) + (y_R[T:] - mean_LQ) ** 2 / variance_LQ)
        brute_Q = logsumexp(log_evidence_L[:, None] + log_predictive_LQ, axis=0) - logsumexp(log_evidence_L)
        difference = marginal.log_density[b, T:].mean() - brute_Q.mean()
        assert abs(difference) <= 4 * marginal.mc_error[b] + 1e-6, (b, difference, marginal.mc_error[b])
    assert marginal.mc_error.max() <= MarginalConfig().target_error


def test_the_marginal_is_worse_than_the_oracle_and_better_than_a_plug_in_guess_on_average():
    T = 8
    batch = _batch(HYPERPRIORS, T, num_datasets=96, seed=1)
    prior = GPPrior(HYPERPRIORS)
    reference = prior.reference(batch)
    assert reference.name == "hyperparameter-marginal GP posterior"
    marginal_nll = -_mean_test(reference.log_density, T).mean()
    oracle_nll = -_mean_test(prior.oracle_log_likelihood(batch), T).mean()
    medians = {"lengthscale_0": np.sqrt(0.2), "outputscale": 1.0, "noise_variance": 1e-2}
    plug_in = dataclasses.replace(batch, hyperparameters={
        **batch.hyperparameters, **{k: np.full(batch.num_datasets, v) for k, v in medians.items()}})
    plug_in_nll = -_mean_test(exact_posterior(plug_in).log_density, T).mean()
    assert oracle_nll < marginal_nll < plug_in_nll
    assert reference.mc_error.max() <= MarginalConfig().target_error


def test_two_seeds_agree_within_the_reported_errors():
    T = 20
    batch = _batch(HYPERPRIORS, T, num_datasets=12, seed=2)
    first, second = (marginal_posterior(batch, HYPERPRIORS, MarginalConfig(seed=s)) for s in (0, 1))
    difference_B = _mean_test(first.log_density, T) - _mean_test(second.log_density, T)
    assert np.all(np.abs(difference_B) <= 5 * np.hypot(first.mc_error, second.mc_error) + 1e-9)
    assert not np.array_equal(first.log_density, second.log_density)  # the seeds did draw other points


def test_slice_sampling_agrees_with_the_quadrature():
    T = 5
    batch = _batch(HYPERPRIORS, T, num_datasets=12, seed=3)
    marginal = marginal_posterior(batch, HYPERPRIORS)
    mcmc = slice_sampling_posterior(batch, HYPERPRIORS, num_samples=150, num_chains=6, seed=4)
    difference_B = _mean_test(mcmc.log_density, T) - _mean_test(marginal.log_density, T)
    combined = np.sqrt(np.sum(marginal.mc_error**2 + mcmc.mc_error**2)) / len(difference_B)
    assert abs(difference_B.mean()) <= 4 * combined + 1e-3
    assert np.all(np.abs(difference_B) < 0.1)
    assert mcmc.num_evaluations > 150 * 3  # three coordinates per sweep, at least one evaluation each


def test_bad_settings_are_refused_with_the_fix():
    with pytest.raises(ConfigError, match="power of 2"):
        MarginalConfig(num_shape_points=12)
    with pytest.raises(ConfigError, match="num_replicates"):
        MarginalConfig(num_replicates=1)
    two_kernels = dataclasses.replace(HYPERPRIORS, kernel=dataclasses.replace(HYPERPRIORS.kernel,
                                                                              options=["rbf", "matern32"]))
    with pytest.raises(ConfigError, match="one kernel option"):
        slice_sampling_posterior(_batch(two_kernels, 3, num_datasets=2), two_kernels, num_samples=2)


def test_a_periodic_prior_has_no_marginal_reference_but_keeps_its_oracle():
    periodic = dataclasses.replace(HYPERPRIORS, kernel=dataclasses.replace(HYPERPRIORS.kernel,
                                                                           options=["rbf", "rbf+periodic"]))
    batch = _batch(periodic, 4, num_datasets=2)
    prior = GPPrior(periodic)
    assert prior.reference(batch) is None  # its multimodal period would need far more points than seconds allow
    np.testing.assert_array_equal(prior.oracle_log_likelihood(batch), exact_posterior(batch).log_density)


def test_ard_on_one_feature_integrates_like_a_drawn_lengthscale():
    """With one feature and a fixed lengthscale of 1, an ARD factor drawn from R is a lengthscale drawn from R."""
    ard = dataclasses.replace(FIXED, ard=True, lengthscale=Range(low=1.0, high=1.0),
                              relevance=Range(low=0.2, high=1.0, scale=Scale.log))
    isotropic = dataclasses.replace(FIXED, lengthscale=Range(low=0.2, high=1.0, scale=Scale.log))
    T = 8
    batch = _batch(ard, T, num_datasets=8, seed=3)
    assert draws_hyperparameters(ard) and GPPrior(ard).reference(batch).name == "hyperparameter-marginal GP posterior"
    first, second = marginal_posterior(batch, ard), marginal_posterior(batch, isotropic)
    difference_B = _mean_test(first.log_density, T) - _mean_test(second.log_density, T)
    assert np.all(np.abs(difference_B) <= 5 * np.hypot(first.mc_error, second.mc_error) + 1e-6)
    wide = GPPrior(ard).sample(np.random.default_rng(0), BatchShape(num_datasets=2, num_rows=12, num_features=4,
                                                                   num_train_rows=8))
    assert GPPrior(ard).reference(wide) is None  # four drawn relevances: beyond the quadrature, the oracle stays
    assert GPPrior(ard).oracle_log_likelihood(wide) is not None
    with pytest.raises(ConfigError, match="ard=true"):
        slice_sampling_posterior(batch, ard, num_samples=8)
