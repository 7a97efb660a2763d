"""A PNG that shows what a prior makes: sample datasets, class balance, missingness, drawn hyperparameters.

It reads only the ``PriorBatch``, so it works for every prior. Layout (four columns):

- two rows of sample datasets: regression plots the feature most correlated with the target against it;
  classification plots the two features that separate the classes best, coloured by class (one feature:
  against the class index). Train rows are filled, test rows hollow;
- one row of batch summaries: class shares per dataset (or the pooled standardised targets), the missing
  mask of the dataset with the most missing values, features and rows in use, and the mean |correlation|
  between features per dataset;
- histograms (numbers) or bar counts (choices) of the drawn hyperparameters over the whole batch; pass
  64 or more datasets for them to mean something.

The summary and hyperparameter panels are drawn by ``pfnforge.preview_panels``.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from pfnforge.batch import PriorBatch
from pfnforge.preview_panels import class_shares, dataset, distinct, feature_correlation, hyperparameter, missing, sizes

_MAX_POINTS = 300  # rows drawn per sample dataset: enough to see the shape, small PNGs
_MAX_HYPER_PANELS = 12


def _relevance(x_RF: np.ndarray, y_R: np.ndarray, classes: int) -> np.ndarray:
    """(F,) how strongly each feature goes with the target: |corr| (regression) or the share of the
    feature's variance explained by the class means (classification); NaN rows are left out."""
    scores = np.zeros(x_RF.shape[1])
    for j in range(x_RF.shape[1]):
        keep = np.isfinite(x_RF[:, j])
        col, y = x_RF[keep, j], y_R[keep]
        if col.size < 3 or col.std() == 0:
            continue
        if classes:
            means = np.array([col[y == c].mean() if np.any(y == c) else col.mean() for c in range(classes)])
            counts = np.bincount(y.astype(int), minlength=classes)[:classes]
            scores[j] = float(counts @ (means - col.mean()) ** 2 / (col.size * col.var()))
        elif y.std() > 0:
            scores[j] = abs(float(np.corrcoef(col, y)[0, 1]))
    return scores


def _caption(batch: PriorBatch, b: int, names: list[str]) -> str:
    """The dataset's values of the first two hyperparameters among ``names``, choices first."""
    parts = []
    for name in sorted(names, key=lambda n: batch.hyperparameters[n].dtype != object):
        value = batch.hyperparameters[name][b]
        if isinstance(value, str):
            parts.append(f"{name}={value}")
        elif isinstance(value, (float, np.floating, int, np.integer)) and np.isfinite(value):
            parts.append(f"{name}={value:.3g}")
    return ", ".join(parts[:2])


def _scatter(ax, batch: PriorBatch, b: int, names: list[str]) -> None:
    x, y, train = dataset(batch, b)
    x, y = x[:_MAX_POINTS], y[:_MAX_POINTS]
    train = min(train, len(y))
    classes = int(batch.num_classes[b])
    order = np.argsort(-_relevance(x, y, classes), kind="stable")
    filled = {"s": 9, "linewidths": 0}
    hollow = {"s": 11, "facecolors": "none", "linewidths": 0.8}
    if classes and x.shape[1] >= 2:
        j, k = order[:2]
        colours = plt.cm.tab10(y.astype(int) % 10)
        ax.scatter(x[:train, j], x[:train, k], c=colours[:train], **filled)
        ax.scatter(x[train:, j], x[train:, k], edgecolors=colours[train:], **hollow)
        ax.set_xlabel(f"x{j}", fontsize=7, labelpad=1)
        ax.set_ylabel(f"x{k}", fontsize=7, labelpad=1)
    else:
        j = order[0]
        colours = plt.cm.tab10(y.astype(int) % 10) if classes else np.array([plt.cm.tab10(0)] * len(y))
        shown = y + np.random.default_rng(b).uniform(-0.15, 0.15, len(y)) if classes else y  # jitter classes
        if not classes and x.shape[1] == 1:
            line = np.argsort(x[:, 0])
            ax.plot(x[line, 0], y[line], color="0.8", lw=0.8, zorder=0)
        ax.scatter(x[:train, j], shown[:train], c=colours[:train], **filled)
        ax.scatter(x[train:, j], shown[train:], edgecolors=colours[train:], **hollow)
        ax.set_xlabel(f"x{j}", fontsize=7, labelpad=1)
        ax.set_ylabel("class" if classes else "y", fontsize=7, labelpad=1)
    kind = f"{classes} classes" if classes else "regression"
    ax.set_title(f"#{b} [{batch.prior[b]}] {kind}, {x.shape[1]} feat.\n{_caption(batch, b, names)}", fontsize=7,
                 pad=2)


def preview_figure(batch: PriorBatch, *, title: str, max_datasets: int = 8) -> plt.Figure:
    """The preview of ``batch`` as a matplotlib figure (close it when done)."""
    levels = {name: distinct(values) for name, values in batch.hyperparameters.items()}
    names = sorted((n for n in levels if levels[n]), key=lambda n: (levels[n] == 1, n))[:_MAX_HYPER_PANELS]
    shown = min(batch.num_datasets, max_datasets)
    sample_rows, hyper_rows = math.ceil(shown / 4), math.ceil(len(names) / 4)
    heights = [2.2] * sample_rows + [2.0] + [1.4] * hyper_rows
    gap, top, bottom = 0.74, 0.72, 0.4  # inches: titles and tick labels between rows, suptitle, last labels
    height = sum(heights) + gap * (len(heights) - 1) + top + bottom
    fig, axes = plt.subplots(len(heights), 4, figsize=(12, height), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    # fixed margins instead of tight_layout, which draws the figure once more (half the time of a preview)
    fig.subplots_adjust(left=0.05, right=0.985, bottom=bottom / height, top=1 - top / height, wspace=0.28,
                        hspace=gap / float(np.mean(heights)))
    for i, ax in enumerate(axes[:sample_rows].flat):
        varied = [n for n in names if levels[n] > 1]
        _scatter(ax, batch, i, varied) if i < shown else ax.axis("off")
    for ax, panel in zip(axes[sample_rows], (class_shares, missing, sizes, feature_correlation), strict=True):
        panel(ax, batch)
    for i, ax in enumerate(axes[sample_rows + 1:].flat):
        hyperparameter(ax, names[i], batch.hyperparameters[names[i]]) if i < len(names) else ax.axis("off")
    for ax in axes.flat:
        ax.tick_params(labelsize=6, pad=1)
    fig.suptitle(f"{title} — {batch.num_datasets} datasets; filled: train rows, hollow: test rows", fontsize=10,
                 y=1 - 0.12 / height)
    return fig


def plot_batch(batch: PriorBatch, out: Path, *, title: str, max_datasets: int = 8, dpi: int = 90) -> Path:
    """Write the preview of ``batch`` to ``out`` (PNG, 256 colours) and return ``out``."""
    fig = preview_figure(batch, title=title, max_datasets=max_datasets)
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=dpi, format="png")
    plt.close(fig)
    # a 256-colour palette keeps a plot readable at a third of the size of full RGBA
    Image.open(buffer).convert("RGB").quantize(256).save(out, format="PNG", optimize=True)
    return out
