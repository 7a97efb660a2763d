"""Scores of ``pfnforge evaluate``: ROC AUC (one-vs-rest for multiclass), accuracy, log loss and expected
calibration error for classification; RMSE, normalised RMSE and R² for regression; ranks of methods across
datasets and the Nemenyi critical difference between mean ranks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

HIGHER_IS_BETTER = {"roc_auc": True, "accuracy": True, "log_loss": False, "ece": False, "rmse": False, "nrmse": False,
                    "r2": True}
MAIN_METRIC = {"classification": "roc_auc", "regression": "r2"}
"""The metric per-dataset plots and ranks use."""
_NEMENYI_Q05 = {2: 1.960, 3: 2.344, 4: 2.569, 5: 2.728, 6: 2.850, 7: 2.949, 8: 3.031, 9: 3.102, 10: 3.164}
"""Critical values q_0.05 of the studentised range / sqrt(2) for k methods (Demšar, 2006)."""


def expected_calibration_error(y_true: np.ndarray, proba_NK: np.ndarray, num_bins: int = 15) -> float:
    """Top-label ECE: over equal-width confidence bins, the row-weighted mean |accuracy - confidence|."""
    confidence_N = proba_NK.max(1)
    correct_N = (proba_NK.argmax(1) == y_true).astype(float)
    bins_N = np.minimum((confidence_N * num_bins).astype(int), num_bins - 1)
    total = 0.0
    for b in np.unique(bins_N):
        in_bin = bins_N == b
        total += in_bin.sum() * abs(correct_N[in_bin].mean() - confidence_N[in_bin].mean())
    return float(total / len(y_true))


def classification_scores(y_true: np.ndarray, proba_NK: np.ndarray) -> dict[str, float]:
    """``y_true``: class indices into the columns of ``proba_NK`` (all classes of the training split)."""
    from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

    proba_NK = np.clip(np.asarray(proba_NK, dtype=float), 1e-12, 1.0)
    proba_NK = proba_NK / proba_NK.sum(1, keepdims=True)
    labels = np.arange(proba_NK.shape[1])
    present = np.unique(y_true)
    if len(present) < 2:
        roc_auc = float("nan")  # a test split with one class has no ROC curve
    elif proba_NK.shape[1] == 2:
        roc_auc = float(roc_auc_score(y_true, proba_NK[:, 1]))
    else:  # one-vs-rest over the classes present in the test split, macro-averaged
        roc_auc = float(np.mean([roc_auc_score(y_true == k, proba_NK[:, k]) for k in present]))
    return {"roc_auc": roc_auc, "accuracy": float(accuracy_score(y_true, proba_NK.argmax(1))),
            "log_loss": float(log_loss(y_true, proba_NK, labels=labels)),
            "ece": expected_calibration_error(y_true, proba_NK)}


def regression_scores(y_true: np.ndarray, prediction: np.ndarray, y_train: np.ndarray | None = None
                      ) -> dict[str, float]:
    """RMSE, R² and nRMSE: the RMSE divided by the standard deviation of the training targets (``y_train``; the
    test targets' without it), so that predicting the training mean scores about 1 on any scale."""
    y_true, prediction = np.asarray(y_true, dtype=float), np.asarray(prediction, dtype=float)
    residual = y_true - prediction
    total = ((y_true - y_true.mean()) ** 2).sum()
    rmse = float(np.sqrt(np.mean(residual**2)))
    scale = float(np.std(y_true if y_train is None else np.asarray(y_train, dtype=float)))
    return {"rmse": rmse, "nrmse": rmse / scale if scale > 0 else float("nan"),
            "r2": float(1 - (residual**2).sum() / total) if total > 0 else float("nan")}


def ranks(scores: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Rank of each method (columns) on each dataset (rows) by ``metric``: 1 is best, ties share the mean."""
    return scores.rank(axis=1, ascending=not HIGHER_IS_BETTER[metric], method="average")


def critical_difference(num_methods: int, num_datasets: int) -> float:
    """Nemenyi critical difference (α = 0.05) between two mean ranks; NaN outside the tabulated range."""
    q = _NEMENYI_Q05.get(num_methods)
    if q is None or num_datasets < 1:
        return float("nan")
    return q * float(np.sqrt(num_methods * (num_methods + 1) / (6 * num_datasets)))
