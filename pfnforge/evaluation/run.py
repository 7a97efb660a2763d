"""The two evaluations end to end: datasets or prior in, tables and plots written, one MLflow run logged."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pfnforge.errors import ConfigError
from pfnforge.evaluation.datasets import load_datasets
from pfnforge.evaluation.plots import plot_posterior_gap
from pfnforge.evaluation.posterior import PosteriorConfig, evaluate_against_prior
from pfnforge.evaluation.report import log_to_mlflow, markdown_table, summary_metrics, with_stderr, write_tables
from pfnforge.evaluation.tabular import EvaluateConfig, evaluate_datasets, summarize


@dataclass(kw_only=True)
class Tracking:
    """Where the evaluation run is logged; ``tracking_uri=None`` logs nothing."""

    tracking_uri: str | None = "sqlite:///mlflow.db"
    experiment: str = "pfnforge-evaluate"
    run_name: str = "evaluate"


@dataclass(kw_only=True)
class Outcome:
    table: pd.DataFrame
    """The summary (datasets) or the per-context-size table (prior)."""
    markdown: str
    files: list[Path]
    run_id: str | None


def _log(tracking: Tracking, params: dict[str, Any], metrics: dict[str, float], files: list[Path]) -> str | None:
    if tracking.tracking_uri is None:
        return None
    try:
        return log_to_mlflow(tracking.tracking_uri, tracking.experiment, tracking.run_name,
                             {k: str(v) for k, v in params.items()}, metrics, files)
    except Exception as error:  # the files are written: losing the run is not worth losing them
        warnings.warn(f"logging the evaluation to MLflow at {tracking.tracking_uri} failed ({type(error).__name__}:"
                      f" {str(error)[:200]}); the tables and plots are in {files[0].parent}", RuntimeWarning,
                      stacklevel=2)
        return None


def evaluate_on_data(model: Any, data: str | Path, out: str | Path, config: EvaluateConfig, *,
                     target: str | None = None, task: str = "auto", tracking: Tracking | None = None,
                     progress: Callable[[str], None] | None = None) -> Outcome:
    """``model``: a ``TrainedPFN`` (used for the tasks it supports) or ``None`` (the bundled default per task)."""
    datasets = load_datasets(data, target=target, task=task)
    return _evaluate(model, datasets, out, config, {"data": str(data)}, [], tracking, progress)


def evaluate_on_suite(model: Any, suite: str | Path, out: str | Path, config: EvaluateConfig, *,
                      only: list[str] | None = None, task: str = "auto", tracking: Tracking | None = None,
                      progress: Callable[[str], None] | None = None) -> Outcome:
    """The datasets of a named suite (see ``pfnforge.evaluation.suites``), or of ``task`` only; the suite's
    table of sources and licences is written beside the scores."""
    from pfnforge.evaluation.suites import describe, load_suite, suite_datasets

    loaded = load_suite(suite)
    if task != "auto":
        names = [e.name for e in loaded.entries if e.task == task and (not only or e.name in only)]
        if not names:
            raise ConfigError(f"suite {loaded.name} has no {task} datasets" + (f" among {only}" if only else ""))
        only = names
    datasets = suite_datasets(loaded, only=only)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sources = describe(loaded)
    sources = sources[sources.dataset.isin([d.name for d in datasets])]
    (out / "datasets.md").write_text(f"Suite {loaded.name}: {loaded.description}\n\n" + markdown_table(sources))
    params = {"suite": loaded.name, **{f"package/{k}": v for k, v in loaded.packages.items()}}
    return _evaluate(model, datasets, out, config, params, [out / "datasets.md"], tracking, progress)


def _evaluate(model: Any, datasets: list, out: str | Path, config: EvaluateConfig, params: dict[str, Any],
              extra_files: list[Path], tracking: Tracking | None, progress: Callable[[str], None] | None) -> Outcome:
    tasks = {d.task for d in datasets}
    if model is None:  # the bundled default of each task
        from pfnforge.inference.loading import load_model

        models = {t: load_model(None, task=t) for t in tasks}
    else:
        models = {t: model for t in tasks if model.supports(t)}
    results = evaluate_datasets(datasets, models, config, progress)
    summary = summarize(results)
    files = write_tables(results, summary, Path(out)) + extra_files
    params = {**dataclasses.asdict(config), **params, "datasets": ",".join(d.name for d in datasets)}
    run_id = _log(tracking or Tracking(), params, summary_metrics(summary), files)
    return Outcome(table=summary, markdown=(Path(out) / "summary.md").read_text(), files=files, run_id=run_id)


def evaluate_on_prior(trained, prior, out: str | Path, config: PosteriorConfig, *,
                      tracking: Tracking | None = None) -> Outcome:
    table = evaluate_against_prior(trained, prior, config)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "posterior_gap.csv", index=False)
    reference = table.attrs["reference"]
    head = f"Reference: the {reference}." if reference else (
        f"Prior {prior.name} knows no exact posterior: the PFN against the baselines only.")
    markdown = f"{head}\n\n{markdown_table(with_stderr(table))}"
    (out / "posterior_gap.md").write_text(markdown)
    against = reference or "baselines"
    plot = plot_posterior_gap(table, out / "posterior_gap.png",
                              f"{prior.name} prior: PFN vs {against[:40]} ({config.num_datasets} datasets per size)")
    files = [out / "posterior_gap.csv", out / "posterior_gap.md", plot]
    metrics = {}
    names = [n for n in table.columns if n != "num_context" and not n.endswith("_stderr")]
    for row in table.itertuples(index=False):
        metrics.update({f"posterior/{name}/context_{row.num_context}": float(getattr(row, name)) for name in names})
    params = {**dataclasses.asdict(config), "prior": prior.name, "prior_config": repr(prior.config),
              "reference": reference}
    run_id = _log(tracking or Tracking(), params, metrics, files)
    return Outcome(table=table, markdown=markdown, files=files, run_id=run_id)
