"""Slice sampling over a GP prior's hyperparameters: an estimate of the marginal posterior predictive that
shares no code path with the quadrature of ``marginal.py``, and the MCMC baseline a PFN is timed against.

Each chain moves in the unit cube of the hyperpriors' quantiles, where the hyperprior is uniform and the
target is the marginal likelihood ``p(D | θ(u))``; one coordinate at a time, by slice sampling with
shrinkage from the whole interval [0, 1] (Neal 2003, valid on a bounded interval without stepping out). All
chains of all datasets move together: each shrinkage step is one batched likelihood evaluation of the chains
still searching. After a burn-in, every sweep's state contributes ``p(y | D, θ)`` to each test row's
predictive; the chains are independent, so the spread of their estimates is the Monte Carlo error.

Legend: B datasets, C chains per dataset, M = B·C chains, T training rows, Q test rows, D sampled dimensions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pfnforge.batch import PriorBatch
from pfnforge.blocks.covariance import covariance_matrix
from pfnforge.errors import ConfigError
from pfnforge_priors.gp.expression import KernelExpression

if TYPE_CHECKING:
    from pfnforge_priors.gp.prior import GPConfig

LOG_2PI = float(np.log(2 * np.pi))


@dataclass(kw_only=True, eq=False)
class MCMCPosterior:
    """The sampled predictive's log density per row (NaN off the test rows), its error and its cost."""

    log_density: np.ndarray
    """(B, R) log of the mean of p(y | D, θ_s) over kept samples and chains, NaN off the test rows."""
    mc_error: np.ndarray
    """(B,) standard error of each dataset's mean test-row log density, from the spread of its chains."""
    seconds: float
    """Wall time of the whole run (all datasets and chains)."""
    num_evaluations: float
    """Likelihood evaluations per chain (mean over chains), burn-in included."""


class _Target:
    """The hyperparameters of one kernel option as a point of the unit cube, and their likelihood."""

    def __init__(self, config: GPConfig) -> None:
        if len(config.kernel.options) != 1:
            raise ConfigError(f"slice sampling covers one kernel option, the prior has {config.kernel.options}: "
                              "pass prior.kernel.options=[ONE] (the quadrature reference covers several)")
        if config.ard:
            raise ConfigError("slice sampling does not cover per-feature lengthscales (ard=true): the quadrature "
                              "reference (marginal_posterior) does, up to 3 features")
        self.config = config
        self.expression = KernelExpression.parse(config.kernel.options[0])
        self.num_slots = config.num_term_slots
        self.codes = self.expression.codes(self.num_slots)
        terms = range(len(self.expression.terms))
        self.dims = [(n, t) for n, t in [("lengthscale", t) for t in terms]
                     + [("period", t) for t in terms if self.expression.terms[t] == "periodic"]
                     + [("outputscale", 0), ("noise_variance", 0)] if not getattr(config, n).is_fixed]

    def values(self, u_MD: np.ndarray) -> dict[str, np.ndarray]:
        """Per chain: (M, slots) lengthscales and periods, (M,) outputscale and noise variance."""
        M, config = len(u_MD), self.config
        num_terms = len(self.expression.terms)
        out = {"lengthscale": np.full((M, self.num_slots), np.nan), "period": np.full((M, self.num_slots), np.nan)}
        out["lengthscale"][:, :num_terms] = config.lengthscale.low
        for t in range(num_terms):
            if self.expression.terms[t] == "periodic":
                out["period"][:, t] = config.period.low
        out["outputscale"] = np.full((M, 1), config.outputscale.low)
        out["noise_variance"] = np.full((M, 1), config.noise_variance.low)
        for d, (name, t) in enumerate(self.dims):
            out[name][:, t] = getattr(config, name).at_quantile(u_MD[:, d])
        return out

    def evaluate(self, x_MFR: np.ndarray, y_MR: np.ndarray, num_train: int, num_features_M: np.ndarray,
                 u_MD: np.ndarray, with_predictive: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """log p(D | θ(u)) (M,) and, if asked, log p(y_q | D, θ(u)) (M, Q)."""
        M, T = len(u_MD), num_train
        theta = self.values(u_MD)
        k_MRR = np.empty((M, x_MFR.shape[2], x_MFR.shape[2]))
        for m in range(M):
            k_MRR[m] = covariance_matrix(x_MFR[m], x_MFR[m], int(num_features_M[m]), self.codes,
                                         theta["lengthscale"][m], theta["period"][m], self.expression.is_product,
                                         float(theta["outputscale"][m, 0]))
        noise_M = theta["noise_variance"][:, 0]
        k_train = k_MRR[:, :T, :T] + noise_M[:, None, None] * np.eye(T)
        factor_MTT = np.linalg.cholesky(k_train)
        alpha_MT = np.linalg.solve(k_train, y_MR[:, :T, None])[..., 0]
        log_evidence_M = -0.5 * (np.einsum("mt,mt->m", y_MR[:, :T], alpha_MT)
                                 + 2 * np.log(np.diagonal(factor_MTT, axis1=1, axis2=2)).sum(1) + T * LOG_2PI)
        if not with_predictive:
            return log_evidence_M, None
        cross_MTQ = k_MRR[:, :T, T:]
        mean_MQ = np.einsum("mtq,mt->mq", cross_MTQ, alpha_MT)
        v_MTQ = np.linalg.solve(factor_MTT, cross_MTQ)
        variance_MQ = (theta["outputscale"] + noise_M[:, None]) - (v_MTQ**2).sum(1)
        variance_MQ = np.maximum(variance_MQ, noise_M[:, None])
        residual_MQ = y_MR[:, T:] - mean_MQ
        return log_evidence_M, -0.5 * (LOG_2PI + np.log(variance_MQ) + residual_MQ**2 / variance_MQ)


def slice_sampling_posterior(batch: PriorBatch, config: GPConfig, *, num_samples: int, num_chains: int = 4,
                             num_burn_in: int | None = None, seed: int = 0) -> MCMCPosterior:
    """The marginal predictive of every dataset's test rows under the hyperpriors of ``config`` (a ``GPConfig``
    with one kernel option) from ``num_chains`` slice-sampling chains of ``num_samples`` kept sweeps each,
    after ``num_burn_in`` sweeps (default: a quarter of ``num_samples``, at least 5)."""
    if num_samples < 1 or num_chains < 2:
        raise ConfigError(f"num_samples={num_samples} must be >= 1 and num_chains={num_chains} >= 2 "
                          "(the chains' spread is the error)")
    train_rows = set(np.atleast_1d(batch.num_train_rows).tolist())
    if len(train_rows) != 1 or set(np.atleast_1d(batch.num_rows).tolist()) != {batch.y.shape[1]}:
        raise ConfigError("slice sampling needs one number of rows and of training rows per batch: sample the "
                          "batch with one BatchShape")
    started = time.perf_counter()
    target = _Target(config)
    num_burn_in = max(5, num_samples // 4) if num_burn_in is None else num_burn_in
    T, R, B, C, D = train_rows.pop(), batch.y.shape[1], batch.num_datasets, num_chains, len(target.dims)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    x_MFR = np.repeat(np.ascontiguousarray(batch.x.transpose(0, 2, 1), dtype=np.float64), C, axis=0)
    y_MR = np.repeat(batch.y.astype(np.float64), C, axis=0)
    num_features_M = np.repeat(np.asarray(batch.num_features), C)
    u_MD = rng.random((B * C, D))
    log_evidence_M, _ = target.evaluate(x_MFR, y_MR, T, num_features_M, u_MD)
    evaluations = float(B * C)
    predictive_MQ = np.full((B * C, R - T), -np.inf)
    for sweep in range(num_burn_in + num_samples):
        for d in range(D):
            level_M = log_evidence_M - rng.exponential(size=B * C)
            low_M, high_M = np.zeros(B * C), np.ones(B * C)
            searching = np.arange(B * C)
            while len(searching):
                proposal_M = u_MD[searching].copy()
                proposal_M[:, d] = low_M[searching] + rng.random(len(searching)) * (high_M - low_M)[searching]
                value_M, _ = target.evaluate(x_MFR[searching], y_MR[searching], T, num_features_M[searching],
                                             proposal_M)
                evaluations += len(searching)
                accepted = value_M > level_M[searching]
                done = searching[accepted]
                u_MD[done], log_evidence_M[done] = proposal_M[accepted], value_M[accepted]
                rejected = searching[~accepted]
                below = proposal_M[~accepted, d] < u_MD[rejected, d]
                low_M[rejected[below]] = proposal_M[~accepted, d][below]
                high_M[rejected[~below]] = proposal_M[~accepted, d][~below]
                searching = rejected
        if sweep >= num_burn_in and R > T:
            _, log_predictive_MQ = target.evaluate(x_MFR, y_MR, T, num_features_M, u_MD, with_predictive=True)
            predictive_MQ = np.logaddexp(predictive_MQ, log_predictive_MQ)
    predictive_BCQ = predictive_MQ.reshape(B, C, R - T) - np.log(num_samples)
    pooled_BQ = np.log(np.exp(predictive_BCQ - predictive_BCQ.max(1, keepdims=True)).mean(1)) \
        + predictive_BCQ.max(1)
    log_density = np.full((B, R), np.nan)
    log_density[:, T:] = pooled_BQ
    chain_BC = predictive_BCQ.mean(2) if R > T else np.zeros((B, C))
    return MCMCPosterior(log_density=log_density, mc_error=chain_BC.std(1, ddof=1) / np.sqrt(C),
                         seconds=time.perf_counter() - started, num_evaluations=evaluations / (B * C))
