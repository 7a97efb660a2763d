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
of its test rows. Where it exceeds ``target_error``, the next pass integrates over a box narrowed to where
the posterior's weight lay (a sharp posterior, e.g. at low noise and many points), or with twice the points.
Periodic kernels make the posterior over the period multimodal, beyond this scheme in seconds: there
``marginal_is_affordable`` is false and callers fall back to the oracle.

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
    max_zooms: int = 3
    """How many times a dataset's integration box may narrow to where its hyperparameters' posterior lies
    (points with at least ``ZOOM_WEIGHT`` of the largest weight, plus a point spacing) to reach ``target_error``:
    a sharp posterior gets the same number of points in a smaller box."""
    max_doublings: int = 1
    """How many times a dataset's points may double where narrowing does not help; its error is reported
    either way."""
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
        if not self.target_error > 0 or self.max_doublings < 0 or self.max_zooms < 0:
            raise ConfigError(f"target_error={self.target_error} must be > 0, and max_zooms={self.max_zooms} and "
                              f"max_doublings={self.max_doublings} >= 0")


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
    if config.ard:
        ranges.append(config.relevance)
    if any(t == "periodic" for option in config.kernel.options for t in KernelExpression.parse(option).terms):
        ranges.append(config.period)
    return len(config.kernel.options) > 1 or any(not r.is_fixed for r in ranges)


MAX_TRAIN_ROWS = 256
"""Most training rows a dataset may have for the marginal reference (one eigendecomposition of the
training kernel per shape point: O(T³) each)."""


MAX_ARD_FEATURES = 3
"""Most features a dataset may have for the marginal reference under ``ard`` with drawn relevances (each one
more dimension of the quasi-random shape points)."""


def marginal_is_affordable(config: GPConfig, batch: PriorBatch) -> bool:
    """Whether ``marginal_posterior`` reaches its error in seconds per dataset: no periodic term (its period
    makes the posterior over the shape multimodal, beyond a few dozen quasi-random points) and at most
    ``MAX_TRAIN_ROWS`` training rows."""
    periodic = any(t == "periodic" for o in config.kernel.options for t in KernelExpression.parse(o).terms)
    few_relevances = (not config.ard or config.relevance.is_fixed
                      or int(np.max(batch.num_features)) <= MAX_ARD_FEATURES)
    return not periodic and few_relevances and int(np.max(batch.num_train_rows)) <= MAX_TRAIN_ROWS


def _grid(value: Range, num_points: int, shift: float, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quantiles (a shifted midpoint grid over ``box`` = [low, high] of the unit interval, tent-transformed:
    O(n^-2) for smooth integrands) and the range's values there; one point when the range is fixed."""
    if value.is_fixed:
        return np.array([0.5]), np.array([value.low])
    t = (np.arange(num_points) + shift) / num_points
    u = box[0] + (box[1] - box[0]) * (1.0 - np.abs(2.0 * t - 1.0))
    return u, value.at_quantile(u)


def _shape_dims(config: GPConfig, expression: KernelExpression, num_features: int) -> list[tuple[str, int]]:
    """The drawn shape hyperparameters of one kernel option: (name, term) of each lengthscale and period, and
    (``relevance``, feature) of each ARD factor."""
    periodic = [t for t, name in enumerate(expression.terms) if name == "periodic"]
    return ([("lengthscale", t) for t in range(len(expression.terms))] if not config.lengthscale.is_fixed
            else []) + ([("period", t) for t in periodic] if not config.period.is_fixed else []) + (
        [("relevance", f) for f in range(num_features)] if config.ard and not config.relevance.is_fixed else [])


def _shape_points(config: GPConfig, expression: KernelExpression, num_slots: int, num_points: int,
                  rng: np.random.Generator, box_D2: np.ndarray,
                  num_features: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(N, slots) lengthscales and periods of a scrambled Sobol sample over ``box_D2`` (NaN in unused slots),
    (N, num_features) ARD factors (ones without ``ard``) and its (N, D) quantiles."""
    num_terms = len(expression.terms)
    periodic = [t for t, name in enumerate(expression.terms) if name == "periodic"]
    dims = _shape_dims(config, expression, num_features)
    n = num_points if dims else 1
    lengthscales, periods = np.full((n, num_slots), np.nan), np.full((n, num_slots), np.nan)
    lengthscales[:, :num_terms] = config.lengthscale.low
    periods[:, periodic] = config.period.low
    relevances = np.full((n, num_features), config.relevance.low if config.ard else 1.0)
    u_ND = np.empty((n, 0))
    if dims:
        u_ND = box_D2[:, 0] + (box_D2[:, 1] - box_D2[:, 0]) * qmc.Sobol(len(dims), scramble=True, seed=rng).random(n)
        for d, (name, t) in enumerate(dims):
            target = {"lengthscale": lengthscales, "period": periods, "relevance": relevances}[name]
            target[:, t] = getattr(config, name).at_quantile(u_ND[:, d])
    return lengthscales, periods, relevances, u_ND


def _option_log_terms(x_FR: np.ndarray, y_R: np.ndarray, num_train: int, num_features: int,
                      expression: KernelExpression, num_slots: int, lengthscales_NS: np.ndarray,
                      periods_NS: np.ndarray, relevances_NF: np.ndarray, outputscale_P: np.ndarray,
                      noise_P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For one kernel option: log p(D | θ) (N, P) and log p(y_q | D, θ) (N, P, Q) at every point."""
    codes = expression.codes(num_slots)
    N, T, Q = len(lengthscales_NS), num_train, x_FR.shape[1] - num_train
    eigenvalues_NT, y_NT, cross_NTQ = np.zeros((N, T)), np.zeros((N, T)), np.zeros((N, T, Q))
    if T:
        k_train = np.empty((N, T, T))
        k_cross = np.empty((N, T, Q))
        for i in range(N):
            scaled_FR = x_FR.copy()
            scaled_FR[:num_features] /= relevances_NF[i][:, None]
            train, test = scaled_FR[:, :num_train], np.ascontiguousarray(scaled_FR[:, num_train:])
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


@dataclass(kw_only=True)
class _Box:
    """The part of the unit cube of quantiles a pass integrates over: [low, high] per drawn dimension."""

    scale: np.ndarray
    """(2, 2): outputscale and noise variance."""
    shape: list[np.ndarray]
    """Per kernel option, (D, 2) for its drawn lengthscales and periods."""


@dataclass(kw_only=True)
class _Pass:
    """One randomised point set's estimate, and where its weight lay (to narrow the next pass's box)."""

    log_evidence: float
    """log E[p(D | θ)] over the box."""
    log_predictive_Q: np.ndarray
    """log E[p(D | θ) p(y_q | D, θ)] over the box, per test row."""
    num_points: int
    weights: dict[tuple, tuple[np.ndarray, np.ndarray]]
    """Per drawn dimension: the points' quantiles and the log of their (marginal) posterior weights."""


def _replicate(x_FR: np.ndarray, y_R: np.ndarray, num_train: int, num_features: int, config: GPConfig,
               num_shape_points: int, num_scale_points: int, rng: np.random.Generator, box: _Box) -> _Pass:
    """One randomised point set over ``box``."""
    shifts = rng.random(2)
    u_outputscale_G, outputscale_G = _grid(config.outputscale, num_scale_points, shifts[0], box.scale[0])
    u_noise_H, noise_H = _grid(config.noise_variance, num_scale_points, shifts[1], box.scale[1])
    outputscale_P, noise_P = (a.ravel() for a in np.meshgrid(outputscale_G, noise_H, indexing="ij"))
    evidence_O, predictive_OQ, scale_OP, num_points, weights = [], [], [], 0, {}
    for k, (option, log_weight) in enumerate(zip(config.kernel.options, np.log(config.kernel.probabilities()),
                                                 strict=True)):
        expression = KernelExpression.parse(option)
        lengthscales, periods, relevances, u_ND = _shape_points(config, expression, config.num_term_slots,
                                                                num_shape_points, rng, box.shape[k], num_features)
        evidence_NP, predictive_NPQ = _option_log_terms(x_FR, y_R, num_train, num_features, expression,
                                                        config.num_term_slots, lengthscales, periods, relevances,
                                                        outputscale_P, noise_P)
        num_points += evidence_NP.size
        weight_NP = log_weight + evidence_NP - np.log(evidence_NP.size)
        evidence_O.append(_logsumexp(weight_NP))
        predictive_OQ.append(_logsumexp(weight_NP[:, :, None] + predictive_NPQ, axis=(0, 1)))
        scale_OP.append(_logsumexp(weight_NP, axis=0))
        weight_N = _logsumexp(weight_NP, axis=1)
        for d in range(u_ND.shape[1]):
            weights[("shape", k, d)] = (u_ND[:, d], weight_N)
    scale_GH = _logsumexp(np.stack(scale_OP), axis=0).reshape(len(u_outputscale_G), len(u_noise_H))
    weights[("scale", 0)] = (u_outputscale_G, _logsumexp(scale_GH, axis=1))
    weights[("scale", 1)] = (u_noise_H, _logsumexp(scale_GH, axis=0))
    return _Pass(log_evidence=float(_logsumexp(np.array(evidence_O))),
                 log_predictive_Q=_logsumexp(np.stack(predictive_OQ), axis=0), num_points=num_points,
                 weights=weights)


ZOOM_WEIGHT = 1e-6
"""A narrowed box keeps every point whose posterior weight is at least this share of the largest (a Gaussian's
±5.3 standard deviations), plus one point spacing on either side."""


def _narrowed(box: _Box, passes: list[_Pass], config: GPConfig, num_shape: int, num_scale: int) -> _Box | None:
    """The box where the passes' posterior weight lies, or ``None`` when that is not at least a third
    narrower in some dimension (more points help then, a smaller box does not)."""
    new = _Box(scale=box.scale.copy(), shape=[b.copy() for b in box.shape])
    narrower = False
    for key in passes[0].weights:
        u = np.concatenate([p.weights[key][0] for p in passes])
        log_w = np.concatenate([p.weights[key][1] for p in passes])
        kept = u[log_w >= log_w.max() + np.log(ZOOM_WEIGHT)]
        bounds = box.scale[key[1]] if key[0] == "scale" else box.shape[key[1]][key[2]]
        dims = 1 if key[0] == "scale" else len(box.shape[key[1]])
        spacing = (bounds[1] - bounds[0]) / (num_scale if key[0] == "scale" else num_shape ** (1 / dims))
        low, high = max(bounds[0], kept.min() - spacing), min(bounds[1], kept.max() + spacing)
        narrower |= high - low < (bounds[1] - bounds[0]) * 2 / 3
        (new.scale[key[1]] if key[0] == "scale" else new.shape[key[1]][key[2]])[:] = low, high
    return new if narrower else None


def _dataset(x_FR: np.ndarray, y_R: np.ndarray, num_train: int, num_features: int, config: GPConfig,
             options: MarginalConfig, rng: np.random.Generator) -> tuple[np.ndarray, float, int]:
    """(Q,) marginal log density of one dataset's test rows, its Monte Carlo error and the points used. Where
    the error exceeds ``options.target_error`` the next pass narrows the box to where the posterior lies
    (up to ``max_zooms`` times) or, where that does not narrow it, doubles the points (``max_doublings``)."""
    num_shape, num_scale = options.num_shape_points, options.num_scale_points
    box = _Box(scale=np.array([[0.0, 1.0], [0.0, 1.0]]),
               shape=[np.tile([0.0, 1.0], (len(_shape_dims(config, KernelExpression.parse(o), num_features)), 1))
                      for o in config.kernel.options])
    zooms = doublings = 0
    while True:
        passes = [_replicate(x_FR, y_R, num_train, num_features, config, num_shape, num_scale, rng, box)
                  for _ in range(options.num_replicates)]
        evidence_K = np.array([p.log_evidence for p in passes])
        predictive_KQ = np.stack([p.log_predictive_Q for p in passes])
        estimate_K = (predictive_KQ - evidence_K[:, None]).mean(1) if predictive_KQ.shape[1] else 0 * evidence_K
        error = float(estimate_K.std(ddof=1) / np.sqrt(len(estimate_K)))
        if error <= options.target_error:
            break
        narrowed = _narrowed(box, passes, config, num_shape, num_scale) if zooms < options.max_zooms else None
        if narrowed is not None:
            box, zooms = narrowed, zooms + 1
        elif doublings < options.max_doublings:
            num_shape, num_scale, doublings = 2 * num_shape, 2 * num_scale, doublings + 1
        else:
            break
    log_density_Q = _logsumexp(predictive_KQ, axis=0) - _logsumexp(evidence_K)
    return log_density_Q, error, sum(p.num_points for p in passes)


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
