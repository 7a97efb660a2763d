"""The exact GP posterior predictive of each dataset's test rows given the hyperparameters it was drawn with.

It reads the kernel and hyperparameters recorded in the batch: ``N(mean, variance)`` of each held-out noisy
target given the training rows. When the prior's hyperparameters are fixed this is the Bayes-optimal
predictive; when they are drawn it is an oracle that knows each draw, and the Bayes-optimal predictive
integrates over them (``marginal.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve_triangular

from pfnforge.batch import PriorBatch
from pfnforge.blocks.covariance import covariance_matrix
from pfnforge.errors import SchemaError
from pfnforge_priors.gp.expression import KernelExpression


@dataclass(kw_only=True, eq=False)
class GPPosterior:
    """Marginal predictive per row; NaN on rows that are not test rows."""

    mean: np.ndarray
    """(B, R) predictive mean."""
    variance: np.ndarray
    """(B, R) predictive variance of the noisy target."""
    log_density: np.ndarray
    """(B, R) log N(y | mean, variance) of the observed test targets."""

    def mean_nll(self) -> float:
        """Mean negative log-density per test row over the batch."""
        return float(-np.nanmean(self.log_density))


def relevance_factors(batch: PriorBatch, b: int) -> np.ndarray:
    """(F,) float32 ARD factors of dataset ``b``'s features: the sampler divides the float32 inputs by them."""
    F = batch.x.shape[2]
    return np.array([batch.hyperparameters[f"relevance_{f}"][b] for f in range(F)], dtype=np.float32)


def exact_posterior(batch: PriorBatch) -> GPPosterior:
    """Condition each dataset's GP on its training rows and score its test rows."""
    required = {"kernel", "outputscale", "noise_variance", "jitter", "lengthscale_0", "period_0"}
    missing = required - batch.hyperparameters.keys()
    if missing:
        raise SchemaError(f"exact_posterior needs GP hyperparameters {sorted(missing)}: "
                          "the batch was not drawn by the gp prior")
    hp = batch.hyperparameters
    num_slots = sum(1 for name in hp if name.startswith("lengthscale_"))
    shape = batch.y.shape
    mean, variance, log_density = (np.full(shape, np.nan) for _ in range(3))
    for b in range(batch.num_datasets):
        expression = KernelExpression.parse(hp["kernel"][b])
        lengthscales = np.array([hp[f"lengthscale_{t}"][b] for t in range(num_slots)])
        periods = np.array([hp[f"period_{t}"][b] for t in range(num_slots)])
        n_train, n_rows = int(batch.num_train_rows[b]), int(batch.num_rows[b])
        x_FR = batch.x[b, :n_rows].T
        if "relevance_0" in hp:  # ARD: a lengthscale per feature is the shared one on rescaled features
            x_FR = x_FR / relevance_factors(batch, b)[:, None]
        x_FR = x_FR.astype(np.float64)
        y_R = batch.y[b, :n_rows].astype(np.float64)

        def k(xa_FR, xb_FR, b=b, e=expression, ls=lengthscales, per=periods):
            return covariance_matrix(np.ascontiguousarray(xa_FR), np.ascontiguousarray(xb_FR),
                                     int(batch.num_features[b]), e.codes(num_slots), ls, per, e.is_product,
                                     float(hp["outputscale"][b]))

        noise = hp["noise_variance"][b] + hp["jitter"][b]
        test = slice(n_train, n_rows)
        prior_variance = hp["outputscale"][b] + noise
        if n_train == 0:
            mean[b, test], variance[b, test] = 0.0, prior_variance
        else:
            factor = cho_factor(k(x_FR[:, :n_train], x_FR[:, :n_train]) + noise * np.eye(n_train), lower=True)
            cross_TN = k(x_FR[:, test], x_FR[:, :n_train])
            mean[b, test] = cross_TN @ cho_solve(factor, y_R[:n_train])
            v_NT = solve_triangular(factor[0], cross_TN.T, lower=True)
            variance[b, test] = prior_variance - np.einsum("nt,nt->t", v_NT, v_NT)
        residual = y_R[test] - mean[b, test]
        log_density[b, test] = -0.5 * (np.log(2 * np.pi * variance[b, test]) + residual**2 / variance[b, test])
    return GPPosterior(mean=mean, variance=variance, log_density=log_density)
