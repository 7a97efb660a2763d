"""Summary statistics of many draws from a prior, to compare what it makes with real data."""

from __future__ import annotations

import numpy as np

from pfnforge.batch import PriorBatch


def _mean_abs_correlation(a_RK: np.ndarray, b_RM: np.ndarray) -> float:
    """Mean |Pearson correlation| between the columns of a and of b (pairs with a constant column skipped)."""
    a = (a_RK - a_RK.mean(0)) / (a_RK.std(0) + 1e-12)
    b = (b_RM - b_RM.mean(0)) / (b_RM.std(0) + 1e-12)
    corr = np.abs(a.T @ b) / a.shape[0]
    return float(np.nanmean(corr)) if corr.size else float("nan")


def summarize(batches: list[PriorBatch]) -> dict[str, object]:
    """Statistics over all datasets of ``batches``; per-dataset values are averaged."""
    feature_corr, target_corr, missing, majority, classes = [], [], [], [], []
    hyper: dict[str, list[np.ndarray]] = {}
    for batch in batches:
        for b in range(batch.num_datasets):
            n, f = int(batch.num_rows[b]), int(batch.num_features[b])
            x, y = np.nan_to_num(batch.x[b, :n, :f].astype(np.float64)), batch.y[b, :n].astype(np.float64)
            missing.append(float(np.isnan(batch.x[b, :n, :f]).mean()))
            if f > 1:
                corr = np.abs(np.corrcoef(x, rowvar=False))
                feature_corr.append(float(np.nanmean(corr[np.triu_indices(f, 1)])))
            target_corr.append(_mean_abs_correlation(x, y[:, None]))
            if batch.num_classes[b] > 0:
                counts = np.bincount(y.astype(int), minlength=int(batch.num_classes[b]))
                majority.append(counts.max() / n)
                classes.append(int(batch.num_classes[b]))
        for name, values in batch.hyperparameters.items():
            hyper.setdefault(name, []).append(values)
    summary: dict[str, object] = {
        "datasets": sum(b.num_datasets for b in batches),
        "classification share": len(classes) / max(sum(b.num_datasets for b in batches), 1),
        "mean |corr| between features": float(np.mean(feature_corr)) if feature_corr else float("nan"),
        "mean |corr| feature-target": float(np.nanmean(target_corr)),
        "fraction missing": float(np.mean(missing)),
    }
    if classes:
        summary["classes (min/median/max)"] = f"{min(classes)}/{int(np.median(classes))}/{max(classes)}"
        summary["majority class share"] = float(np.mean(majority))
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
