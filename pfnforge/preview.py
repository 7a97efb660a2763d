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
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import NullFormatter
from PIL import Image

from pfnforge.batch import PriorBatch

_MAX_POINTS = 300  # rows drawn per sample dataset: enough to see the shape, small PNGs
_MAX_HYPER_PANELS = 12


def _dataset(batch: PriorBatch, b: int) -> tuple[np.ndarray, np.ndarray, int]:
    n, f = int(batch.num_rows[b]), int(batch.num_features[b])
    return batch.x[b, :n, :f].astype(np.float64), batch.y[b, :n].astype(np.float64), int(batch.num_train_rows[b])


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
    x, y, train = _dataset(batch, b)
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


def _class_shares(ax, batch: PriorBatch) -> None:
    datasets = np.flatnonzero(batch.num_classes > 0)[:24]
    if datasets.size == 0:
        targets = (_dataset(batch, b)[1] for b in range(batch.num_datasets))
        pooled = [(y - y.mean()) / (y.std() + 1e-12) for y in targets]
        ax.hist(np.clip(np.concatenate(pooled), -5, 5), bins=50, color="C0")
        ax.set_title("targets, standardised per dataset", fontsize=8)
        return
    for row, b in enumerate(datasets):
        y = _dataset(batch, b)[1]
        shares = np.sort(np.bincount(y.astype(int), minlength=int(batch.num_classes[b])) / len(y))[::-1]
        ax.barh(row, shares, left=np.concatenate([[0], np.cumsum(shares)[:-1]]), height=0.8,
                color=plt.cm.viridis(np.linspace(0, 0.9, len(shares))), edgecolor="white", linewidth=0.3)
    ax.set_xlim(0, 1)
    ax.set_yticks([])
    ax.set_xlabel("class shares, largest first", fontsize=7)
    counts = batch.num_classes[batch.num_classes > 0]
    ax.set_title(f"class balance ({datasets.size} datasets; {counts.min()}–{counts.max()} classes)", fontsize=8)


def _missing(ax, batch: PriorBatch) -> None:
    fractions = [np.isnan(_dataset(batch, b)[0]).mean() for b in range(batch.num_datasets)]
    b = int(np.argmax(fractions))
    if fractions[b] == 0:
        _text(ax, f"no missing values\nin {batch.num_datasets} datasets", "missing values")
        return
    ax.imshow(np.isnan(_dataset(batch, b)[0][:200]), aspect="auto", cmap="Greys", interpolation="nearest")
    ax.set_xlabel("feature", fontsize=7)
    ax.set_ylabel("row", fontsize=7)
    ax.set_title(f"missing (black): #{b}, {fractions[b]:.0%}; batch {np.mean(fractions):.1%}", fontsize=8)


def _sizes(ax, batch: PriorBatch) -> None:
    ax.hist(batch.num_features, bins=np.arange(batch.num_features.max() + 2) + 0.5, color="C2")
    ax.set_xlabel("features in use", fontsize=7)
    rows = batch.num_rows
    ax.set_title(f"features per dataset; rows {rows.min()}–{rows.max()}", fontsize=8)


def _feature_correlation(ax, batch: PriorBatch) -> None:
    values = []
    for b in range(batch.num_datasets):
        x = _dataset(batch, b)[0]
        x = x[np.all(np.isfinite(x), axis=1)]
        x = x[:, x.std(axis=0) > 0] if len(x) > 2 else x[:, :0]
        if x.shape[1] >= 2:
            values.append(np.abs(np.corrcoef(x, rowvar=False))[np.triu_indices(x.shape[1], 1)].mean())
    if not values:
        _text(ax, "fewer than two features:\nno correlations", "mean |corr| between features")
        return
    ax.hist(values, bins=20, range=(0, 1), color="C4")
    ax.set_title("mean |corr| between features, per dataset", fontsize=8)


def _hyperparameter(ax, name: str, values: np.ndarray) -> None:
    present = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if len(set(map(str, present))) == 1:
        value = present[0]
        text = f"{value:.4g}" if isinstance(value, (float, np.floating)) else str(value)
        _text(ax, f"{name} = {text}\nin all {len(present)} datasets", name)
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


def _distinct(values: np.ndarray) -> int:
    return len({str(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))})


def _text(ax, text: str, title: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=8, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=8)


def preview_figure(batch: PriorBatch, *, title: str, max_datasets: int = 8) -> plt.Figure:
    """The preview of ``batch`` as a matplotlib figure (close it when done)."""
    distinct = {name: _distinct(values) for name, values in batch.hyperparameters.items()}
    names = sorted((n for n in distinct if distinct[n]), key=lambda n: (distinct[n] == 1, n))[:_MAX_HYPER_PANELS]
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
        varied = [n for n in names if distinct[n] > 1]
        _scatter(ax, batch, i, varied) if i < shown else ax.axis("off")
    for ax, panel in zip(axes[sample_rows], (_class_shares, _missing, _sizes, _feature_correlation), strict=True):
        panel(ax, batch)
    for i, ax in enumerate(axes[sample_rows + 1:].flat):
        _hyperparameter(ax, names[i], batch.hyperparameters[names[i]]) if i < len(names) else ax.axis("off")
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
