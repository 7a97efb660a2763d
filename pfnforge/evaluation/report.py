"""What ``pfnforge evaluate`` leaves behind: tables (CSV and Markdown), plots, and an MLflow run holding the
scores as metrics and the tables and plots as artifacts."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from pfnforge.evaluation.metrics import MAIN_METRIC
from pfnforge.evaluation.plots import mean_ranks, plot_dataset_scores, plot_mean_ranks, ranked_datasets

TABLE_COLUMNS = {"classification": ("roc_auc", "accuracy", "log_loss", "ece"),
                 "regression": ("nrmse", "rmse", "r2")}
MEAN_COLUMNS = {"classification": ("roc_auc", "log_loss", "accuracy"), "regression": ("nrmse", "r2")}
"""The scale-free metrics averaged over datasets (RMSE is not: it carries each dataset's units)."""


def markdown_table(frame: pd.DataFrame, digits: int = 4) -> str:
    """A GitHub Markdown table of ``frame`` (no extra dependency)."""
    def cell(value) -> str:
        if isinstance(value, float):
            return "" if np.isnan(value) else f"{value:.{digits}g}"
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + " --- |" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def with_stderr(table: pd.DataFrame) -> pd.DataFrame:
    """Each ``X`` column with an ``X_stderr`` beside it as one ``mean ± stderr`` text column."""
    result = pd.DataFrame(index=table.index)
    for column in table.columns:
        if column.endswith("_stderr"):
            continue
        if f"{column}_stderr" in table:
            result[column] = [f"{m:.4g} ± {s:.2g}" for m, s in zip(table[column], table[f"{column}_stderr"],
                                                                    strict=True)]
        else:
            result[column] = table[column]
    return result


def score_table(summary: pd.DataFrame, task: str) -> pd.DataFrame:
    """Per dataset and method: the task's metrics (mean ± std over repeats), times, and any error."""
    part = summary[summary.task == task]
    table = part[["dataset", "method"]].copy()
    for metric in (*TABLE_COLUMNS[task], "fit_s", "predict_s"):
        mean, std = part[f"{metric}_mean"], part[f"{metric}_std"].fillna(0)
        table[metric] = [("" if np.isnan(m) else f"{m:.4g} ± {s:.2g}") for m, s in zip(mean, std, strict=True)]
    table["error"] = part["error"].str.slice(0, 80)
    return table


def mean_scores(summary: pd.DataFrame, task: str) -> pd.DataFrame:
    """Per method: the mean over the datasets where every method ran of each scale-free metric, the mean rank,
    and the median fit + predict seconds per split."""
    part = summary[(summary.task == task) & summary.dataset.isin(ranked_datasets(summary, task))]
    if part.empty:
        return pd.DataFrame()
    grouped = part.groupby("method")
    table = pd.DataFrame({metric: grouped[f"{metric}_mean"].mean() for metric in MEAN_COLUMNS[task]})
    table["mean_rank"] = mean_ranks(summary, task)
    table["median_fit_predict_s"] = (part.fit_s_mean + part.predict_s_mean).groupby(part.method).median()
    return table.sort_values("mean_rank").reset_index()


def failures(summary: pd.DataFrame, task: str) -> pd.DataFrame:
    """(dataset, method, error) of every method that has no score on a dataset of ``task``."""
    part = summary[summary.task == task]
    metric = MAIN_METRIC[task]
    failed = part[part[f"{metric}_mean"].isna()]
    errors = failed["error"] if "error" in failed else pd.Series("no score", index=failed.index)
    return pd.DataFrame({"dataset": failed.dataset, "method": failed.method,
                         "error": errors.fillna("no score").astype(str).str.slice(0, 200)}).reset_index(drop=True)


def write_tables(results: pd.DataFrame, summary: pd.DataFrame, out: Path) -> list[Path]:
    """results.csv (every split), summary.csv, summary.md (per task: scores, then mean ranks), and plots."""
    out.mkdir(parents=True, exist_ok=True)
    results.to_csv(out / "results.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    sections = []
    for task in ("classification", "regression"):
        if not (summary.task == task).any():
            continue
        ranking = mean_ranks(summary, task)
        sections.append(f"## {task}\n\n" + markdown_table(score_table(summary, task)))
        ranked = ranked_datasets(summary, task)
        total = int(summary[summary.task == task].dataset.nunique())
        if len(ranking):
            sections.append(f"Means over the {len(ranked)} of {total} datasets where every method ran; mean rank "
                            f"by {MAIN_METRIC[task]} (1 = best):\n\n" + markdown_table(mean_scores(summary, task)))
        else:
            sections.append(f"No mean ranks: every method ran on none of the {total} datasets.\n")
        failed = failures(summary, task)
        if len(failed):
            sections.append(f"Failures ({len(failed)}; their datasets are left out of the ranks):\n\n"
                            + markdown_table(failed))
    (out / "summary.md").write_text("\n".join(sections))
    plots = [plot_dataset_scores(summary, out / "scores.png"), plot_mean_ranks(summary, out / "ranks.png")]
    return [out / "results.csv", out / "summary.csv", out / "summary.md", *plots]


def summary_metrics(summary: pd.DataFrame) -> dict[str, float]:
    """MLflow metrics: ``<dataset>/<method>/<metric>`` means, and ``rank/<task>/<method>`` mean ranks."""
    metrics = {}
    for row in summary.itertuples(index=False):
        for metric in (*TABLE_COLUMNS[row.task], "fit_s", "predict_s"):
            value = getattr(row, f"{metric}_mean")
            if np.isfinite(value):
                metrics[f"{row.dataset}/{row.method}/{metric}"] = float(value)
    for task in ("classification", "regression"):
        if (summary.task == task).any():
            for method, rank in mean_ranks(summary, task).items():
                metrics[f"rank/{task}/{method}"] = float(rank)
            for row in mean_scores(summary, task).itertuples(index=False):
                for metric in MEAN_COLUMNS[task]:
                    if np.isfinite(getattr(row, metric)):
                        metrics[f"mean/{task}/{row.method}/{metric}"] = float(getattr(row, metric))
    return metrics


def log_to_mlflow(tracking_uri: str, experiment: str, run_name: str, params: dict[str, str],
                  metrics: dict[str, float], artifacts: list[Path]) -> str:
    """One MLflow run (through the client: no global MLflow state is touched); returns its id."""
    import time

    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    run_id = client.create_run(experiment_id, run_name=run_name).info.run_id
    now = int(time.time() * 1000)
    items = [Metric(re.sub(r"[^\w\-. /]", "_", key), value, now, 0) for key, value in metrics.items()]
    for start in range(0, len(items), 1000):
        client.log_batch(run_id, metrics=items[start:start + 1000])
    client.log_batch(run_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()])
    for path in artifacts:
        client.log_artifact(run_id, str(path))
    client.set_terminated(run_id)
    return run_id
