"""Figures of ``pfnforge evaluate``: per-dataset scores, mean ranks with the Nemenyi critical difference,
and a PFN's NLL against its prior's reference posterior by number of context points."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pfnforge.evaluation.metrics import MAIN_METRIC, critical_difference, ranks


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def ranked_datasets(summary: pd.DataFrame, task: str) -> list[str]:
    """The datasets of ``task`` where every method has a score: the ones ranks are computed over."""
    metric = MAIN_METRIC[task]
    table = summary[summary.task == task].pivot(index="dataset", columns="method", values=f"{metric}_mean")
    return list(table.dropna(axis=0, how="any").index)


def mean_ranks(summary: pd.DataFrame, task: str) -> pd.Series:
    """Mean rank per method over the datasets of ``task`` where every method has a score."""
    metric = MAIN_METRIC[task]
    table = summary[summary.task == task].pivot(index="dataset", columns="method", values=f"{metric}_mean")
    table = table.loc[ranked_datasets(summary, task)]
    return ranks(table, metric).mean().sort_values() if len(table) else pd.Series(dtype=float)


def plot_dataset_scores(summary: pd.DataFrame, path: Path) -> Path:
    """The main metric (ROC AUC / R²) per dataset and method as points with their std over repeats; the axis
    spans the scores (not 0 to 1), so differences of a few thousandths near 1 stay visible."""
    plt = _pyplot()
    tasks = [t for t in ("classification", "regression") if (summary.task == t).any()]
    figure, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        metric = MAIN_METRIC[task]
        part = summary[summary.task == task]
        means = part.pivot(index="dataset", columns="method", values=f"{metric}_mean")
        stds = part.pivot(index="dataset", columns="method", values=f"{metric}_std").fillna(0)
        width = 0.8 / max(len(means.columns), 1)
        for i, method in enumerate(means.columns):
            ax.errorbar(np.arange(len(means)) + i * width, means[method], yerr=stds[method], fmt="o", capsize=3,
                        label=method)
        ax.set_xticks(np.arange(len(means)) + 0.4 - width / 2, means.index, rotation=30, ha="right")
        ax.grid(axis="y", alpha=0.3)
        ax.set_ylabel(metric)
        ax.set_title(f"{task}: {metric} (mean ± std over repeats)")
        ax.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_mean_ranks(summary: pd.DataFrame, path: Path) -> Path:
    """Mean rank of each method across datasets (1 = best), each with an interval of ± half the Nemenyi
    critical difference (α = 0.05): methods whose intervals overlap are not significantly different."""
    plt = _pyplot()
    tasks = [t for t in ("classification", "regression") if (summary.task == t).any()]
    figure, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 3.5), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        ranking = mean_ranks(summary, task)
        num_datasets = len(ranked_datasets(summary, task))  # where every method ran; CD and label agree
        cd = critical_difference(len(ranking), num_datasets)
        y = np.arange(len(ranking))[::-1]
        ax.errorbar(ranking.to_numpy(), y, xerr=cd / 2 if np.isfinite(cd) else None, fmt="o", capsize=4)
        ax.set_yticks(y, ranking.index)
        ax.set_xlim(0.5, max(len(ranking), 2) + 0.5)
        ax.invert_xaxis()  # best on the right, as in critical-difference diagrams
        total = int(summary[summary.task == task].dataset.nunique())
        ax.set_xlabel(f"mean rank by {MAIN_METRIC[task]} over the {num_datasets} of {total} datasets where every "
                      "method ran\n(1 = best)", fontsize=8)
        ax.set_title(f"{task} (bars: critical difference {cd:.2f})" if np.isfinite(cd) else task)
        ax.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_posterior_gap(table: pd.DataFrame, path: Path, title: str) -> Path:
    """Left: NLL per test point of the model, of the reference predictive and the oracle (where the prior has
    them) and of the baselines, by context size. Right: the gaps to the reference where there is one, else
    CRPS (regression) or accuracy (classification) of the model and the baselines."""
    plt = _pyplot()
    reference = table.attrs.get("reference")
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    x = table.num_context
    methods = ["model", *sorted({c.removesuffix("_nll") for c in table.columns
                                 if c.endswith("_nll") and c not in ("model_nll", "exact_nll", "oracle_nll")})]
    labels = {"model": "PFN"}
    for method in methods:
        left.errorbar(x, table[f"{method}_nll"], yerr=table[f"{method}_nll_stderr"], marker="o",
                      ls="-" if method == "model" else "--", label=labels.get(method, method))
    if reference is not None:
        left.errorbar(x, table.exact_nll, yerr=table.exact_nll_stderr, marker="s", label=reference[:40])
        right.errorbar(x, table.gap, yerr=table.gap_stderr, marker="o", color="tab:red", label="PFN − reference")
        if "oracle_nll" in table:
            left.errorbar(x, table.oracle_nll, yerr=table.oracle_nll_stderr, marker="^", ls=":",
                          label="oracle (true hyperparameters)")
            right.errorbar(x, table.gap_to_oracle, yerr=table.gap_to_oracle_stderr, marker="^", ls=":",
                           color="tab:grey", label="PFN − oracle")
        right.axhline(0, color="grey", lw=0.8)
        right.set_ylabel("NLL gap (nats)")
    else:
        metric = "crps" if "model_crps" in table else "accuracy"
        for method in methods:
            if f"{method}_{metric}" in table:
                right.errorbar(x, table[f"{method}_{metric}"], yerr=table[f"{method}_{metric}_stderr"], marker="o",
                               ls="-" if method == "model" else "--", label=labels.get(method, method))
        right.set_ylabel(f"{metric} per test point")
    left.set_ylabel("NLL per test point (nats)")
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xlabel("context points")
        ax.legend(fontsize=7)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
