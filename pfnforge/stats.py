"""Summary statistics of many draws from a prior, to compare what it makes with real data.

Per dataset (its rows and features in use), averaged over datasets unless the key says otherwise:

- mean |Pearson correlation| between features, and between each feature and the target;
- fraction of missing entries, and the share of datasets with any;
- fraction of categorical-looking columns: at most ``max(2, min(10, rows // 5))`` distinct values, all
  integers (what ordinal or one-hot codes look like; a continuous column has as many values as rows);
- target noise: nearest-neighbour residual share, ``E[(y_i - y_nn(i))²] / (2 Var y)`` over (up to 256)
  rows with the features standardised and missing values set to the column mean. It estimates
  noise variance / total variance for a smooth function of the features (0: a noiseless function,
  about 1: a target unrelated to the features), an overestimate where rows are sparse for the number
  of features (neighbours far apart); for classification datasets, reported apart, the 1-NN label
  disagreement rate (0: labels a function of the features; 1 - Σ p_c² for labels unrelated to them);
- classes: count, majority and minority class shares;
- rows, training rows and features in use (min/median/max);
- the drawn hyperparameters (min/median/max, or counts of each choice).
"""

from __future__ import annotations

import numpy as np

from pfnforge.batch import PriorBatch


def _mean_abs_correlation(a_RK: np.ndarray, b_RM: np.ndarray) -> float:
    """Mean |Pearson correlation| between the columns of a and of b (pairs with a constant column skipped)."""
    a = (a_RK - a_RK.mean(0)) / (a_RK.std(0) + 1e-12)
    b = (b_RM - b_RM.mean(0)) / (b_RM.std(0) + 1e-12)
    corr = np.abs(a.T @ b) / a.shape[0]
    return float(np.nanmean(corr)) if corr.size else float("nan")


_NN_ROWS = 256


def categorical_looking(x_RF: np.ndarray) -> np.ndarray:
    """(F,) bool: columns with few distinct integer values (NaN ignored)."""
    limit = max(2, min(10, x_RF.shape[0] // 5))
    result = np.zeros(x_RF.shape[1], dtype=bool)
    for j in range(x_RF.shape[1]):
        col = x_RF[np.isfinite(x_RF[:, j]), j]
        result[j] = col.size > 0 and np.all(col == np.round(col)) and np.unique(col).size <= limit
    return result


def nearest_neighbour_noise(x_RF: np.ndarray, y_R: np.ndarray, classification: bool) -> float:
    """Nearest-neighbour residual share of the target (regression) or 1-NN label disagreement rate."""
    x, y = x_RF[:_NN_ROWS], y_R[:_NN_ROWS]
    if len(y) < 3 or (not classification and y.std() == 0):
        return float("nan")
    mean = np.nanmean(np.where(np.isfinite(x), x, np.nan), axis=0) if x.size else np.zeros(x.shape[1])
    x = np.where(np.isfinite(x), x, np.nan_to_num(mean))
    x = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1.0)
    squared = (x * x).sum(1)
    distance_RR = squared[:, None] + squared[None, :] - 2 * x @ x.T
    np.fill_diagonal(distance_RR, np.inf)
    neighbour = distance_RR.argmin(1)
    if classification:
        return float(np.mean(y != y[neighbour]))
    return float(np.mean((y - y[neighbour]) ** 2) / (2 * y.var()))


def _spread(values: list[int]) -> str:
    return f"{min(values)}/{int(np.median(values))}/{max(values)}"


def summarize(batches: list[PriorBatch]) -> dict[str, object]:
    """Statistics over all datasets of ``batches``; per-dataset values are averaged."""
    feature_corr, target_corr, missing, majority, minority, classes = [], [], [], [], [], []
    categorical, noise, label_noise, rows, train_rows, features = [], [], [], [], [], []
    hyper: dict[str, list[np.ndarray]] = {}
    for batch in batches:
        for b in range(batch.num_datasets):
            n, f = int(batch.num_rows[b]), int(batch.num_features[b])
            x, y = np.nan_to_num(batch.x[b, :n, :f].astype(np.float64)), batch.y[b, :n].astype(np.float64)
            missing.append(float(np.isnan(batch.x[b, :n, :f]).mean()))
            categorical.append(float(categorical_looking(batch.x[b, :n, :f]).mean()))
            is_classification = bool(batch.num_classes[b] > 0)
            (label_noise if is_classification else noise).append(
                nearest_neighbour_noise(batch.x[b, :n, :f].astype(np.float64), y, is_classification))
            rows.append(n)
            train_rows.append(int(batch.num_train_rows[b]))
            features.append(f)
            if f > 1:
                corr = np.abs(np.corrcoef(x, rowvar=False))
                feature_corr.append(float(np.nanmean(corr[np.triu_indices(f, 1)])))
            target_corr.append(_mean_abs_correlation(x, y[:, None]))
            if batch.num_classes[b] > 0:
                counts = np.bincount(y.astype(int), minlength=int(batch.num_classes[b]))
                majority.append(counts.max() / n)
                minority.append(counts.min() / n)
                classes.append(int(batch.num_classes[b]))
        for name, values in batch.hyperparameters.items():
            hyper.setdefault(name, []).append(values)
    summary: dict[str, object] = {
        "datasets": sum(b.num_datasets for b in batches),
        "classification share": len(classes) / max(sum(b.num_datasets for b in batches), 1),
        "mean |corr| between features": float(np.mean(feature_corr)) if feature_corr else float("nan"),
        "mean |corr| feature-target": float(np.nanmean(target_corr)),
        "fraction missing": float(np.mean(missing)),
        "datasets with missing values": float(np.mean(np.array(missing) > 0)),
        "fraction categorical-looking columns": float(np.mean(categorical)),
        "rows (min/median/max)": _spread(rows),
        "train rows (min/median/max)": _spread(train_rows),
        "features (min/median/max)": _spread(features),
    }
    if classes:
        summary["classes (min/median/max)"] = f"{min(classes)}/{int(np.median(classes))}/{max(classes)}"
        summary["majority class share"] = float(np.mean(majority))
        summary["minority class share"] = float(np.mean(minority))
    for key, values in (("target noise (NN residual share)", noise), ("label noise (1-NN disagreement)", label_noise)):
        if np.isfinite(values).any():
            summary[key] = float(np.nanmean(values))
    for name, parts in sorted(hyper.items()):
        values = np.concatenate(parts)
        if values.dtype == object:
            kinds, counts = np.unique(values[values != None].astype(str), return_counts=True)  # noqa: E711
            summary[f"hp {name}"] = ", ".join(f"{k}: {c}" for k, c in zip(kinds, counts, strict=True))
        else:
            finite = values[np.isfinite(values.astype(np.float64))].astype(np.float64)
            if finite.size:
                q = np.quantile(finite, [0, 0.5, 1])
                summary[f"hp {name} (min/median/max)"] = f"{q[0]:.4g}/{q[1]:.4g}/{q[2]:.4g}"
    return summary
