"""Scores of a PFN on held-out datasets of a prior that need no exact posterior, beside simple baselines fitted
to each dataset's context: NLL per test point for every task; for regression also the CRPS and the coverage of
the central 50 % and 90 % predictive intervals; for classification the accuracy.

Baselines (each on one dataset's context rows at a time; missing feature values filled with the context's
column means):

- ``knn``: the k = ⌈√T⌉ nearest context rows (standardised features). Regression: a normal with the
  neighbours' mean and variance, plus the context's variance over k so that few neighbours are never certain.
  Classification: the neighbours' class frequencies with one pseudo-count per class.
- ``gp`` (regression): scikit-learn's GP with a constant × RBF + white-noise kernel, its hyperparameters fitted
  by maximum marginal likelihood on the context, targets normalised.
- ``logistic`` (classification): L2-regularised logistic regression, mixed 99:1 with the uniform distribution
  over the dataset's classes (a class absent from the context keeps some probability).

CRPS is computed from ``QUANTILE_LEVELS`` predictive quantiles for the PFN and the baselines alike (twice the
mean pinball loss over the levels), so the two are scored by the same rule.

Legend: B datasets, R rows, T context rows, Q test rows (or quantile levels where named so), F features,
C classes.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from scipy import stats

from pfnforge.errors import ConfigError

QUANTILE_LEVELS = (np.arange(100) + 0.5) / 100
"""Levels at which CRPS is integrated (midpoint rule)."""
BASELINES = {"regression": ("knn", "gp"), "classification": ("knn", "logistic")}


def check_baselines(names: list[str], task: str) -> None:
    unknown = sorted(set(names) - set(BASELINES[task]))
    if unknown:
        raise ConfigError(f"prior baselines {unknown} are unknown for {task}: choose from "
                          f"{', '.join(BASELINES[task])}")


def quantile_crps(quantiles_NL: np.ndarray, y_N: np.ndarray) -> np.ndarray:
    """(N,) CRPS from quantiles at ``QUANTILE_LEVELS``: 2 · mean over levels of the pinball loss."""
    diff_NL = y_N[:, None] - quantiles_NL
    pinball_NL = np.maximum(QUANTILE_LEVELS * diff_NL, (QUANTILE_LEVELS - 1) * diff_NL)
    return 2 * pinball_NL.mean(1)


def _interval_coverage(quantiles_NL: np.ndarray, y_N: np.ndarray, mass: float) -> np.ndarray:
    """(N,) whether y lies in the central interval of ``mass`` (read off the quantile grid)."""
    low = np.interp((1 - mass) / 2, QUANTILE_LEVELS, np.arange(len(QUANTILE_LEVELS)))
    high = np.interp((1 + mass) / 2, QUANTILE_LEVELS, np.arange(len(QUANTILE_LEVELS)))

    def at(index: float) -> np.ndarray:
        below, weight = int(np.floor(index)), index - np.floor(index)
        above = min(below + 1, len(QUANTILE_LEVELS) - 1)
        return (1 - weight) * quantiles_NL[:, below] + weight * quantiles_NL[:, above]

    return ((y_N >= at(low)) & (y_N <= at(high))).astype(float)


def regression_row_scores(quantiles_NL: np.ndarray, log_density_N: np.ndarray, y_N: np.ndarray
                          ) -> dict[str, np.ndarray]:
    """Per test row: nll, crps, coverage_50, coverage_90."""
    return {"nll": -log_density_N, "crps": quantile_crps(quantiles_NL, y_N),
            "coverage_50": _interval_coverage(quantiles_NL, y_N, 0.5),
            "coverage_90": _interval_coverage(quantiles_NL, y_N, 0.9)}


def _gaussian(mean_N: np.ndarray, std_N: np.ndarray, y_N: np.ndarray) -> dict[str, np.ndarray]:
    std_N = np.maximum(std_N, 1e-9)
    quantiles_NL = mean_N[:, None] + std_N[:, None] * stats.norm.ppf(QUANTILE_LEVELS)[None, :]
    return regression_row_scores(quantiles_NL, stats.norm.logpdf(y_N, mean_N, std_N), y_N)


def pfn_scores(trained, x_BRF: np.ndarray, y_BR: np.ndarray, T: int, num_classes_B: np.ndarray
               ) -> dict[str, np.ndarray]:
    """(B, Q) per-row scores of the PFN's predictive for the test rows (rows T onward)."""
    from pfnforge.inference.distribution import bar_quantiles

    model = trained.model
    x, y = torch.from_numpy(x_BRF), torch.from_numpy(y_BR)
    classify = bool(num_classes_B[0] > 0)
    with torch.no_grad():
        logits, y_mean_B1, y_std_B1 = model(x, y, T, classify)
        logits = logits.float()
        y_test_BQ = y[:, T:]
        if classify:
            mask = torch.arange(logits.shape[-1])[None, None, :] >= torch.as_tensor(num_classes_B)[:, None, None]
            log_probs = torch.log_softmax(logits.masked_fill(mask, float("-inf")), -1)
            log_likelihood = log_probs.gather(-1, y_test_BQ.long().unsqueeze(-1)).squeeze(-1)
            correct = (log_probs.argmax(-1) == y_test_BQ.long()).double()
            return {"nll": -log_likelihood.double().numpy(), "accuracy": correct.numpy()}
        z_BQ = (y_test_BQ - y_mean_B1) / y_std_B1
        log_density = (model.bar.log_density(logits, z_BQ) - torch.log(y_std_B1)).double().numpy()
        B, Q = y_test_BQ.shape
        probs = torch.softmax(logits, -1).reshape(B * Q, -1)
        z_quantiles = bar_quantiles(model.bar, probs, torch.from_numpy(QUANTILE_LEVELS)).double()
        quantiles = (y_mean_B1.double()[:, :, None] + y_std_B1.double()[:, :, None]
                     * z_quantiles.reshape(B, Q, -1)).numpy()
    scores = regression_row_scores(quantiles.reshape(B * Q, -1), log_density.reshape(-1),
                                   y_test_BQ.double().numpy().reshape(-1))
    return {name: values.reshape(B, Q) for name, values in scores.items()}


def _impute_standardise(x_train_TF: np.ndarray, x_test_QF: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        mean_F = np.nan_to_num(np.nanmean(x_train_TF, 0))
        std_F = np.nan_to_num(np.nanstd(x_train_TF, 0))
    std_F = np.where(std_F > 0, std_F, 1.0)
    fill = lambda x: (np.where(np.isnan(x), mean_F, x) - mean_F) / std_F  # noqa: E731
    return fill(x_train_TF), fill(x_test_QF)


def _knn_neighbours(x_train_TF: np.ndarray, x_test_QF: np.ndarray) -> np.ndarray:
    k = int(np.ceil(np.sqrt(len(x_train_TF))))
    distance_QT = ((x_test_QF[:, None, :] - x_train_TF[None, :, :]) ** 2).sum(-1)
    return np.argsort(distance_QT, axis=1, kind="stable")[:, :k]


def _baseline_regression(name: str, x_train_TF, y_train_T, x_test_QF, y_test_Q, seed: int):
    if name == "knn":
        neighbours_QK = _knn_neighbours(x_train_TF, x_test_QF)
        values_QK = y_train_T[neighbours_QK]
        k = values_QK.shape[1]
        spread = y_train_T.var() if len(y_train_T) > 1 else 1.0
        variance_Q = values_QK.var(1) + max(spread, 1e-12) / k
        return _gaussian(values_QK.mean(1), np.sqrt(variance_Q), y_test_Q)
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    kernel = ConstantKernel(1.0, (1e-3, 1e3)) * RBF(1.0, (1e-2, 1e2)) + WhiteKernel(0.1, (1e-6, 1e1))
    gp = GaussianProcessRegressor(kernel, normalize_y=len(y_train_T) > 1, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gp.fit(x_train_TF, y_train_T)
        mean_Q, std_Q = gp.predict(x_test_QF, return_std=True)
    return _gaussian(mean_Q, std_Q, y_test_Q)


def _baseline_classification(name: str, x_train_TF, y_train_T, x_test_QF, y_test_Q, num_classes: int):
    labels_T = y_train_T.astype(int)
    if name == "knn":
        neighbours_QK = _knn_neighbours(x_train_TF, x_test_QF)
        counts_QC = np.stack([(labels_T[neighbours_QK] == c).sum(1) for c in range(num_classes)], 1) + 1.0
        probs_QC = counts_QC / counts_QC.sum(1, keepdims=True)
    else:
        present = np.unique(labels_T)
        probs_QC = np.zeros((len(x_test_QF), num_classes))
        if len(present) == 1:
            probs_QC[:, present[0]] = 1.0
        else:
            from sklearn.linear_model import LogisticRegression

            model = LogisticRegression(max_iter=500).fit(x_train_TF, labels_T)
            probs_QC[:, model.classes_] = model.predict_proba(x_test_QF)
        probs_QC = 0.99 * probs_QC + 0.01 / num_classes
    labels_Q = y_test_Q.astype(int)
    return {"nll": -np.log(probs_QC[np.arange(len(labels_Q)), labels_Q]),
            "accuracy": (probs_QC.argmax(1) == labels_Q).astype(float)}


def baseline_scores(name: str, x_BRF: np.ndarray, y_BR: np.ndarray, T: int, num_classes_B: np.ndarray,
                    num_features_B: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """(B, Q) per-row scores of baseline ``name`` fitted to each dataset's first T rows."""
    rows: dict[str, list[np.ndarray]] = {}
    for b in range(len(x_BRF)):
        F = int(num_features_B[b])
        x_train, x_test = _impute_standardise(x_BRF[b, :T, :F].astype(np.float64), x_BRF[b, T:, :F].astype(np.float64))
        y_train, y_test = y_BR[b, :T].astype(np.float64), y_BR[b, T:].astype(np.float64)
        if num_classes_B[b] > 0:
            scores = _baseline_classification(name, x_train, y_train, x_test, y_test, int(num_classes_B[b]))
        else:
            scores = _baseline_regression(name, x_train, y_train, x_test, y_test, seed + b)
        for key, values in scores.items():
            rows.setdefault(key, []).append(values)
    return {key: np.stack(values) for key, values in rows.items()}
