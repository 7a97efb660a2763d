"""``pfnforge priors compare``: priors side by side by the meta-features of the datasets they make, how far
each is from real data, and how diverse each is.

Per dataset (its rows and features in use): features in use; mean |correlation| between features and between
features and target; mean |skew| and excess kurtosis of the features; missing share; categorical-looking share
(``pfnforge.stats``); class balance (minority over majority share) and classes; linear fit (a least-squares
linear model fitted on the training rows, scored on the test rows: R² for regression, accuracy for
classification — how linearly the task is solved); nearest-neighbour noise (``pfnforge.stats``); intrinsic
dimension (principal components for 90 % of the standardised features' variance, over the features in use).

Distance to real data: a classifier two-sample test (C2ST) on those meta-feature vectors — the ROC AUC of a
random forest telling a prior's datasets from datasets cut the same way from real tables (the ``tables``
prior over the ``--real`` suite's tables of the prior's task), 5-fold cross-validated: 0.5 means the meta-features
cannot tell them apart, 1.0 that they always can. Diversity: the mean distance between two of a prior's
datasets in meta-feature space (each meta-feature scaled by its spread over all priors and the real data).

Shapes: R rows, F features in use, T training rows.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from pfnforge.batch import PriorBatch
from pfnforge.prior import BatchShape, Prior
from pfnforge.stats import categorical_looking, nearest_neighbour_noise

FEATURES = ("features", "corr_features", "corr_target", "abs_skew", "kurtosis", "missing", "categorical",
            "class_balance", "classes", "linear_fit", "nn_noise", "intrinsic_dim")


def _filled(x_RF: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean_F = np.nan_to_num(np.nanmean(x_RF, 0))
    return np.where(np.isnan(x_RF), mean_F, x_RF)


def _linear_fit(x_RF: np.ndarray, y_R: np.ndarray, T: int, num_classes: int) -> float:
    x = _filled(x_RF)
    scale = x[:T].std(0)
    x = (x - x[:T].mean(0)) / np.where(scale > 0, scale, 1.0)
    design = np.column_stack([np.ones(len(x)), x])
    targets = np.eye(num_classes)[y_R.astype(int)] if num_classes else y_R[:, None]
    coef, *_ = np.linalg.lstsq(design[:T] + 0.0, targets[:T], rcond=None)
    predicted = design[T:] @ coef
    if num_classes:
        return float((predicted.argmax(1) == y_R[T:].astype(int)).mean())
    residual = ((y_R[T:] - predicted[:, 0]) ** 2).sum()
    total = ((y_R[T:] - y_R[T:].mean()) ** 2).sum()
    return float(1 - residual / total) if total > 0 else float("nan")


def dataset_meta_features(x_RF: np.ndarray, y_R: np.ndarray, T: int, num_classes: int) -> dict[str, float]:
    """The meta-features of one dataset (``x_RF``: its features in use)."""
    x = _filled(x_RF.astype(np.float64))
    y = y_R.astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        z = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), np.nan)
        corr_ff = np.abs(np.nan_to_num(np.corrcoef(z, rowvar=False))) if x.shape[1] > 1 else np.zeros((1, 1))
        corr_fy = np.abs(np.nan_to_num([np.corrcoef(z[:, j], y)[0, 1] for j in range(x.shape[1])]))
        skew, kurtosis = stats.skew(x, axis=0), stats.kurtosis(x, axis=0)
    F = x.shape[1]
    spectrum = np.linalg.svd(np.nan_to_num(z), compute_uv=False) ** 2
    explained = np.cumsum(spectrum) / spectrum.sum() if spectrum.sum() > 0 else np.ones(F)
    counts = np.bincount(y.astype(int), minlength=num_classes) if num_classes else np.zeros(0)
    present = counts[counts > 0]
    return {
        "features": F,
        "corr_features": float(corr_ff[np.triu_indices(F, 1)].mean()) if F > 1 else float("nan"),
        "corr_target": float(np.mean(corr_fy)),
        "abs_skew": float(np.nanmean(np.abs(skew))) if np.isfinite(skew).any() else 0.0,
        "kurtosis": float(np.nanmean(kurtosis)) if np.isfinite(kurtosis).any() else 0.0,
        "missing": float(np.isnan(x_RF).mean()),
        "categorical": float(categorical_looking(x_RF).mean()),
        "class_balance": float(present.min() / present.max()) if num_classes else float("nan"),
        "classes": float(len(present)) if num_classes else float("nan"),
        "linear_fit": _linear_fit(x_RF, y, T, num_classes),
        "nn_noise": nearest_neighbour_noise(x_RF, y, bool(num_classes)),
        "intrinsic_dim": float((np.searchsorted(explained, 0.9) + 1) / F),
    }


def batch_meta_features(batch: PriorBatch) -> pd.DataFrame:
    """One row of meta-features per dataset of ``batch``."""
    num_features = np.broadcast_to(batch.num_features, (batch.num_datasets,))
    num_classes = np.broadcast_to(batch.num_classes, (batch.num_datasets,))
    num_train_rows = np.broadcast_to(batch.num_train_rows, (batch.num_datasets,))
    return pd.DataFrame([dataset_meta_features(batch.x[b, :, :num_features[b]], batch.y[b], int(num_train_rows[b]),
                                               int(num_classes[b])) for b in range(batch.num_datasets)])


def sample_meta_features(prior: Prior, shape: BatchShape, num_batches: int, seed: int) -> pd.DataFrame:
    seeds = np.random.SeedSequence(seed).spawn(num_batches)
    return pd.concat([batch_meta_features(prior.sample(np.random.default_rng(s), shape)) for s in seeds],
                     ignore_index=True)


def c2st_auc(a: pd.DataFrame, b: pd.DataFrame, seed: int = 0) -> float:
    """Cross-validated ROC AUC of a random forest telling the rows of ``a`` from those of ``b`` (equal counts;
    an undefined meta-feature, e.g. a constant dataset's, counts as -1)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    rng = np.random.default_rng(seed)
    n = min(len(a), len(b))
    rows = pd.concat([a.iloc[rng.choice(len(a), n, replace=False)], b.iloc[rng.choice(len(b), n, replace=False)]])
    labels = np.r_[np.zeros(n), np.ones(n)]
    columns = [c for c in FEATURES if rows[c].notna().any()]
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    model = RandomForestClassifier(n_estimators=100, min_samples_leaf=2, random_state=seed, n_jobs=1)
    values = np.nan_to_num(rows[columns].to_numpy(float), nan=-1.0)
    return float(cross_val_score(model, values, labels, cv=folds, scoring="roc_auc").mean())


def diversity(frame: pd.DataFrame, scale: pd.Series) -> float:
    """Mean Euclidean distance between two datasets' meta-features, each meta-feature divided by ``scale``."""
    columns = [c for c in FEATURES if frame[c].notna().any() and scale[c] > 0]
    values = np.nan_to_num((frame[columns] / scale[columns]).to_numpy(float))
    values = values[np.random.default_rng(0).permutation(len(values))[:500]]
    distance = np.sqrt(((values[:, None, :] - values[None, :, :]) ** 2).sum(-1))
    return float(distance[np.triu_indices(len(values), 1)].mean())


def compare(priors: dict[str, Prior], real: dict[str, Prior], shape: BatchShape, num_batches: int, seed: int
            ) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Per prior (and per real-data task in ``real``, keyed ``real:<task>``): mean meta-features, C2ST AUC against
    the real data of its task, and diversity. Returns the table and every dataset's meta-features."""
    frames = {name: sample_meta_features(prior, shape, num_batches, seed) for name, prior in priors.items()}
    frames.update({f"real:{task}": sample_meta_features(prior, shape, num_batches, seed)
                   for task, prior in real.items()})
    scale = pd.concat(frames.values()).std()
    rows = []
    for name, frame in frames.items():
        row = {"prior": name, "datasets": len(frame), **frame.mean().to_dict()}
        task = "classification" if frame["classes"].notna().any() else "regression"
        if not name.startswith("real:") and f"real:{task}" in frames:
            row["c2st_auc"] = c2st_auc(frame, frames[f"real:{task}"], seed)
        row["diversity"] = diversity(frame, scale)
        rows.append(row)
    return pd.DataFrame(rows), frames
