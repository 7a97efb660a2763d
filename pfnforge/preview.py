"""A PNG grid of sample datasets: what a prior makes, at a glance."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from pfnforge.batch import PriorBatch


def _caption(batch: PriorBatch, b: int, limit: int = 4) -> str:
    parts = []
    for name, values in batch.hyperparameters.items():
        value = values[b]
        if isinstance(value, str):
            parts.append(f"{name}={value}")
        elif isinstance(value, (float, np.floating)) and np.isfinite(value) and value != 0:
            parts.append(f"{name}={value:.3g}")
        if len(parts) == limit:
            break
    return "\n".join(parts)


def plot_batch(batch: PriorBatch, out: Path, *, title: str, max_datasets: int = 9) -> Path:
    """Plot up to ``max_datasets`` datasets, feature 0 against the target, train rows filled, test hollow."""
    count = min(batch.num_datasets, max_datasets)
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), squeeze=False)
    for b, ax in enumerate(axes.flat):
        if b >= count:
            ax.axis("off")
            continue
        n_train, n_rows = batch.num_train_rows[b], batch.num_rows[b]
        x, y = batch.x[b, :n_rows, 0], batch.y[b, :n_rows]
        if batch.num_classes[b] == 0 and batch.num_features[b] == 1:
            order = np.argsort(x)
            ax.plot(x[order], y[order], color="0.75", lw=1, zorder=0)
        ax.scatter(x[:n_train], y[:n_train], s=10, color="C0", label="train")
        ax.scatter(x[n_train:], y[n_train:], s=12, facecolors="none", edgecolors="C1", label="test")
        caption = _caption(batch, b)
        if batch.prior[b] not in title:  # a mixture: say which component drew the dataset
            caption = f"[{batch.prior[b]}]\n{caption}"
        ax.set_title(caption, fontsize=7)
        ax.tick_params(labelsize=7)
    axes.flat[0].legend(fontsize=7, loc="best")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
