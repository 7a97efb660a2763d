"""The hyperparameter-marginal GP posterior predictive: the Bayes-optimal answer on a GP prior that draws
its hyperparameters per dataset.

A predictor that sees only the data can at best give ``p(y* | x*, D) = ∫ p(y* | x*, D, θ) p(θ | D) dθ``,
where θ is the kernel option, its lengthscales and periods, the outputscale and the noise variance. With
``θ = θ(u)`` for ``u`` uniform on the unit cube (each hyperprior's inverse CDF), Bayes' rule gives

    p(y* | D) = E_u[p(D | θ(u)) p(y* | D, θ(u))] / E_u[p(D | θ(u))],

a ratio of two integrals over the unit cube, estimated with one point set. Each kernel option gets its own
points, weighted by the option's probability.

Points: the kernel's shape (lengthscales, periods) at a scrambled Sobol sample; outputscale and noise
variance on a randomly shifted midpoint grid; every shape point with every grid point. The product is
cheap: for one shape the unit-outputscale kernel matrix ``K = U Λ Uᵀ`` is diagonalised once, and for every
(outputscale s, noise variance n) ``s K + n I = U (s Λ + n) Uᵀ``, so the marginal likelihood and each test
point's predictive cost O(T) more per grid point.

Error: the whole point set is drawn ``num_replicates`` times (new scrambling, new shift). The estimate
pools every point; its Monte Carlo error is the standard deviation of the replicates' estimates over the
square root of their number (randomised quasi-Monte Carlo), reported per dataset for the mean log density
of its test rows.

Legend: N shape points, P scale-grid points (outputscale × noise), T training rows, Q test rows, K replicates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.stats import qmc

from pfnforge.batch import PriorBatch
from pfnforge.blocks.covariance import covariance_matrix
from pfnforge.errors import ConfigError
from pfnforge.hyperpriors import Range
from pfnforge_priors.gp.expression import KernelExpression

if TYPE_CHECKING:
    from pfnforge_priors.gp.prior import GPConfig

LOG_2PI = float(np.log(2 * np.pi))


@dataclass(kw_only=True)
class MarginalConfig:
    """How densely the hyperprior is integrated. On the 1-D hyperprior recipe the defaults give a dataset's
    mean test log density a Monte Carlo error of about 1e-4 to 1e-3 nats; datasets above ``target_error``
    are redone with more points."""

    num_shape_points: int = 32
    """Sobol points over the kernel's lengthscales and periods, per kernel option and replicate (a power of 2)."""
    num_scale_points: int = 16
    """Grid points per drawn scale hyperparameter (outputscale, noise variance), per replicate."""
    num_replicates: int = 8
    """Independent randomisations of the point set; their spread is the reported error (>= 2)."""
    target_error: float = 0.005
    """Monte Carlo error (nats) a dataset's mean test log density should stay within: where it does not, the
    dataset is redone with twice the points per dimension."""
    max_doublings: int = 2
    """How many times a dataset's points may double to reach ``target_error``; its error is reported either way."""
    seed: int = 0
    """Seed of the randomisations: the same seed gives the same estimate."""

    def __post_init__(self) -> None:
        n = self.num_shape_points
        if n < 1 or n & (n - 1):
            raise ConfigError(f"num_shape_points={n} must be a power of 2 (a balanced Sobol sample)")
        if self.num_scale_points < 1:
            raise ConfigError(f"num_scale_points={self.num_scale_points} must be >= 1")
        if self.num_replicates < 2:
            raise ConfigError(f"num_replicates={self.num_replicates} must be >= 2: their spread is the error")
        if not self.target_error > 0 or self.max_doublings < 0:
            raise ConfigError(f"target_error={self.target_error} must be > 0 and max_doublings="
                              f"{self.max_doublings} >= 0")


@dataclass(kw_only=True, eq=False)
class MarginalPosterior:
    """The marginal predictive's log density per row (NaN off the test rows) and its Monte Carlo error."""

    log_density: np.ndarray
    """(B, R) log p(y | x, D) of each test row, NaN elsewhere."""
    mc_error: np.ndarray
    """(B,) standard error of each dataset's mean test-row log density."""
    num_points: np.ndarray
    """(B,) hyperparameter points each dataset's estimate used, all replicates together."""

    def mean_nll(self) -> float:
        """Mean negative log density per test row over the batch."""
        return float(-np.nanmean(self.log_density))

    def mean_nll_error(self) -> float:
        """Monte Carlo standard error of the batch's mean NLL per dataset."""
        return float(np.sqrt(np.sum(self.mc_error**2)) / len(self.mc_error))


def _logsumexp(a: np.ndarray, axis=None) -> np.ndarray:
    """log Σ exp(a) over ``axis``, stable for large |a| (plain NumPy: scipy's version costs more per call than
    the sums here)."""
    peak = np.max(a, axis=axis, keepdims=True)
    return np.log(np.sum(np.exp(a - peak), axis=axis)) + np.squeeze(peak, axis=axis)


def draws_hyperparameters(config: GPConfig) -> bool:
    """Whether a ``GPConfig`` draws any hyperparameter (more than one kernel option or a non-fixed range)."""
    ranges = [config.lengthscale, config.outputscale, config.noise_variance]
    if any(t == "periodic" for option in config.kernel.options for t in KernelExpression.parse(option).terms):
        ranges.append(config.period)
    return len(config.kernel.options) > 1 or any(not r.is_fixed for r in ranges)


def _grid(value: Range, num_points: int, shift: float) -> np.ndarray:
    """The range at a shifted midpoint grid of quantiles; one value when it is fixed."""
    if value.is_fixed:
        return np.array([value.low])
    u = (np.arange(num_points) + shift) / num_points
    return value.at_quantile(1.0 - np.abs(2.0 * u - 1.0))  # the tent transform: O(n^-2) for smooth integrands


def _shape_points(config: GPConfig, expression: KernelExpression, num_slots: int, num_points: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(N, slots) lengthscales and periods of the shape points (NaN in unused slots)."""
    num_terms = len(expression.terms)
    periodic = [t for t, name in enumerate(expression.terms) if name == "periodic"]
    dims = ([("lengthscale", t) for t in range(num_terms)] if not config.lengthscale.is_fixed else []) + \
           ([("period", t) for t in periodic] if not config.period.is_fixed else [])
    n = num_points if dims else 1
    lengthscales, periods = np.full((n, num_slots), np.nan), np.full((n, num_slots), np.nan)
    lengthscales[:, :num_terms] = config.lengthscale.low
    periods[:, periodic] = config.period.low
    if dims:
        u_ND = qmc.Sobol(len(dims), scramble=True, seed=rng).random(n)
        for d, (name, t) in enumerate(dims):
            target = lengthscales if name == "lengthscale" else periods
            target[:, t] = getattr(config, name).at_quantile(u_ND[:, d])
    return lengthscales, periods


def _option_log_terms(x_FR: np.ndarray, y_R: np.ndarray, num_train: int, num_features: int,
                      expression: KernelExpression, num_slots: int, lengthscales_NS: np.ndarray,
                      periods_NS: np.ndarray, outputscale_P: np.ndarray,
                      noise_P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For one kernel option: log p(D | θ) (N, P) and log p(y_q | D, θ) (N, P, Q) at every point."""
    train, test = x_FR[:, :num_train], x_FR[:, num_train:]
    codes = expression.codes(num_slots)
    N, T, Q = len(lengthscales_NS), num_train, x_FR.shape[1] - num_train
    eigenvalues_NT, y_NT, cross_NTQ = np.zeros((N, T)), np.zeros((N, T)), np.zeros((N, T, Q))
    if T:
        k_train = np.empty((N, T, T))
        k_cross = np.empty((N, T, Q))
        for i in range(N):
            args = (num_features, codes, lengthscales_NS[i], periods_NS[i], expression.is_product, 1.0)
            k_train[i] = covariance_matrix(train, train, *args)
            k_cross[i] = covariance_matrix(train, test, *args)
        eigenvalues_NT, U_NTT = np.linalg.eigh(k_train)
        np.maximum(eigenvalues_NT, 0.0, out=eigenvalues_NT)
        y_NT = np.einsum("nts,t->ns", U_NTT, y_R[:T])
        cross_NTQ = np.einsum("nts,ntq->nsq", U_NTT, k_cross)
    denominator_NPT = outputscale_P[None, :, None] * eigenvalues_NT[:, None, :] + noise_P[None, :, None]
    inverse_NPT = 1.0 / denominator_NPT
    log_evidence_NP = -0.5 * ((inverse_NPT @ (y_NT**2)[:, :, None])[..., 0]
                              + np.log(denominator_NPT).sum(-1) + T * LOG_2PI)
    mean_NPQ = outputscale_P[None, :, None] * (inverse_NPT @ (y_NT[:, :, None] * cross_NTQ))
    explained_NPQ = outputscale_P[None, :, None] ** 2 * (inverse_NPT @ cross_NTQ**2)
    variance_NPQ = np.maximum((outputscale_P + noise_P)[None, :, None] - explained_NPQ, noise_P[None, :, None])
    residual_NPQ = y_R[None, None, T:] - mean_NPQ
    log_predictive_NPQ = -0.5 * (LOG_2PI + np.log(variance_NPQ) + residual_NPQ**2 / variance_NPQ)
    return log_evidence_NP, log_predictive_NPQ


def _replicate(x_FR: np.ndarray, y_R: np.ndarray, num_train: int, num_features: int, config: GPConfig,
               num_shape_points: int, num_scale_points: int, rng: np.random.Generator) -> tuple[float, np.ndarray, int]:
    """One randomised point set: log E[p(D | θ)], (Q,) log E[p(D | θ) p(y_q | D, θ)], and its number of points."""
    shifts = rng.random(2)
    outputscale_G = _grid(config.outputscale, num_scale_points, shifts[0])
    noise_G = _grid(config.noise_variance, num_scale_points, shifts[1])
    outputscale_P, noise_P = (a.ravel() for a in np.meshgrid(outputscale_G, noise_G, indexing="ij"))
    evidence_O, predictive_OQ, num_points = [], [], 0
    for option, log_weight in zip(config.kernel.options, np.log(config.kernel.probabilities()), strict=True):
        expression = KernelExpression.parse(option)
        lengthscales, periods = _shape_points(config, expression, config.num_term_slots, num_shape_points, rng)
        evidence_NP, predictive_NPQ = _option_log_terms(x_FR, y_R, num_train, num_features, expression,
                                                        config.num_term_slots, lengthscales, periods,
                                                        outputscale_P, noise_P)
        num_points += evidence_NP.size
        log_mean = np.log(evidence_NP.size)
        evidence_O.append(log_weight + _logsumexp(evidence_NP) - log_mean)
        predictive_OQ.append(log_weight + _logsumexp(evidence_NP[:, :, None] + predictive_NPQ, axis=(0, 1))
                             - log_mean)
    return float(_logsumexp(np.array(evidence_O))), _logsumexp(np.stack(predictive_OQ), axis=0), num_points


def _dataset(x_FR: np.ndarray, y_R: np.ndarray, num_train: int, num_features: int, config: GPConfig,
             options: MarginalConfig, rng: np.random.Generator) -> tuple[np.ndarray, float, int]:
    """(Q,) marginal log density of one dataset's test rows, its Monte Carlo error and the points used,
    doubling the points until the error is within ``options.target_error``."""
    num_shape, num_scale = options.num_shape_points, options.num_scale_points
    for doubling in range(options.max_doublings + 1):
        replicates = [_replicate(x_FR, y_R, num_train, num_features, config, num_shape, num_scale, rng)
                      for _ in range(options.num_replicates)]
        evidence_K = np.array([r[0] for r in replicates])
        predictive_KQ = np.stack([r[1] for r in replicates])
        estimate_K = (predictive_KQ - evidence_K[:, None]).mean(1) if predictive_KQ.shape[1] else 0 * evidence_K
        error = float(estimate_K.std(ddof=1) / np.sqrt(len(estimate_K)))
        if error <= options.target_error or doubling == options.max_doublings:
            break
        num_shape, num_scale = 2 * num_shape, 2 * num_scale
    log_density_Q = _logsumexp(predictive_KQ, axis=0) - _logsumexp(evidence_K)
    return log_density_Q, error, sum(r[2] for r in replicates)


def marginal_posterior(batch: PriorBatch, config: GPConfig,
                       options: MarginalConfig | None = None) -> MarginalPosterior:
    """The marginal predictive of every dataset's test rows under the hyperpriors of ``config``, integrating
    over the hyperparameters instead of reading the drawn ones."""
    options = options or MarginalConfig()
    log_density = np.full(batch.y.shape, np.nan)
    mc_error, num_points = np.zeros(batch.num_datasets), np.zeros(batch.num_datasets, dtype=np.int64)
    for b in range(batch.num_datasets):
        n_train, n_rows = int(batch.num_train_rows[b]), int(batch.num_rows[b])
        x_FR = np.ascontiguousarray(batch.x[b, :n_rows].T, dtype=np.float64)
        y_R = batch.y[b, :n_rows].astype(np.float64)
        rng = np.random.default_rng(np.random.SeedSequence([options.seed, b]))
        log_density[b, n_train:n_rows], mc_error[b], num_points[b] = _dataset(
            x_FR, y_R, n_train, int(batch.num_features[b]), config, options, rng)
    return MarginalPosterior(log_density=log_density, mc_error=mc_error, num_points=num_points)
