"""The batch-summary and hyperparameter panels of a prior preview (see ``pfnforge.preview``).

Each function draws one panel on the matplotlib axes it is given, from a ``PriorBatch`` alone.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import NullFormatter

from pfnforge.batch import PriorBatch


def dataset(batch: PriorBatch, b: int) -> tuple[np.ndarray, np.ndarray, int]:
    n, f = int(batch.num_rows[b]), int(batch.num_features[b])
    return batch.x[b, :n, :f].astype(np.float64), batch.y[b, :n].astype(np.float64), int(batch.num_train_rows[b])


def class_shares(ax, batch: PriorBatch) -> None:
    datasets = np.flatnonzero(batch.num_classes > 0)[:24]
    if datasets.size == 0:
        targets = (dataset(batch, b)[1] for b in range(batch.num_datasets))
        pooled = [(y - y.mean()) / (y.std() + 1e-12) for y in targets]
        ax.hist(np.clip(np.concatenate(pooled), -5, 5), bins=50, color="C0")
        ax.set_title("targets, standardised per dataset", fontsize=8)
        return
    for row, b in enumerate(datasets):
        y = dataset(batch, b)[1]
        shares = np.sort(np.bincount(y.astype(int), minlength=int(batch.num_classes[b])) / len(y))[::-1]
        ax.barh(row, shares, left=np.concatenate([[0], np.cumsum(shares)[:-1]]), height=0.8,
                color=plt.cm.viridis(np.linspace(0, 0.9, len(shares))), edgecolor="white", linewidth=0.3)
    ax.set_xlim(0, 1)
    ax.set_yticks([])
    ax.set_xlabel("class shares, largest first", fontsize=7)
    counts = batch.num_classes[batch.num_classes > 0]
    ax.set_title(f"class balance ({datasets.size} datasets; {counts.min()}–{counts.max()} classes)", fontsize=8)


def missing(ax, batch: PriorBatch) -> None:
    fractions = [np.isnan(dataset(batch, b)[0]).mean() for b in range(batch.num_datasets)]
    b = int(np.argmax(fractions))
    if fractions[b] == 0:
        text_panel(ax, f"no missing values\nin {batch.num_datasets} datasets", "missing values")
        return
    ax.imshow(np.isnan(dataset(batch, b)[0][:200]), aspect="auto", cmap="Greys", interpolation="nearest")
    ax.set_xlabel("feature", fontsize=7)
    ax.set_ylabel("row", fontsize=7)
    ax.set_title(f"missing (black): #{b}, {fractions[b]:.0%}; batch {np.mean(fractions):.1%}", fontsize=8)


def sizes(ax, batch: PriorBatch) -> None:
    ax.hist(batch.num_features, bins=np.arange(batch.num_features.max() + 2) + 0.5, color="C2")
    ax.set_xlabel("features in use", fontsize=7)
    rows = batch.num_rows
    ax.set_title(f"features per dataset; rows {rows.min()}–{rows.max()}", fontsize=8)


def feature_correlation(ax, batch: PriorBatch) -> None:
    values = []
    for b in range(batch.num_datasets):
        x = dataset(batch, b)[0]
        x = x[np.all(np.isfinite(x), axis=1)]
        x = x[:, x.std(axis=0) > 0] if len(x) > 2 else x[:, :0]
        if x.shape[1] >= 2:
            values.append(np.abs(np.corrcoef(x, rowvar=False))[np.triu_indices(x.shape[1], 1)].mean())
    if not values:
        text_panel(ax, "fewer than two features:\nno correlations", "mean |corr| between features")
        return
    ax.hist(values, bins=20, range=(0, 1), color="C4")
    ax.set_title("mean |corr| between features, per dataset", fontsize=8)


def hyperparameter(ax, name: str, values: np.ndarray) -> None:
    present = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if len(set(map(str, present))) == 1:
        value = present[0]
        text = f"{value:.4g}" if isinstance(value, (float, np.floating)) else str(value)
        text_panel(ax, f"{name} = {text}\nin all {len(present)} datasets", name)
        return
    if values.dtype == object or values.dtype == bool:
        kinds, counts = np.unique(np.array([str(v) for v in values if v is not None]), return_counts=True)
        ax.bar(np.arange(len(kinds)), counts, color="C1")
        ax.set_xticks(np.arange(len(kinds)), [k[:12] for k in kinds], fontsize=6, rotation=30 if len(kinds) > 3 else 0)
    else:
        finite = values[np.isfinite(values.astype(np.float64))].astype(np.float64)
        positive = finite.min() > 0 and finite.max() > 20 * finite.min()
        if values.dtype.kind in "iu" and finite.max() - finite.min() <= 40:
            bins = np.arange(finite.min(), finite.max() + 2) - 0.5
        else:
            bins = np.geomspace(finite.min(), finite.max(), 25) if positive else 25
        ax.hist(finite, bins=bins, color="C1")
        if positive:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        name += f" ({finite.size} drawn)" if finite.size < values.size else ""
    ax.set_title(name, fontsize=8)


def distinct(values: np.ndarray) -> int:
    return len({str(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))})


def text_panel(ax, text: str, title: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=8, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=8)
