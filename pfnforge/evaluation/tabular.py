"""A PFN against baselines on real datasets: repeated seeded train/test splits, every method fitted and
scored on the same splits, with fit and predict times. One row per (dataset, repeat, method); a method that
cannot take a dataset (e.g. beyond a PFN's limits) gets a row with its error and no scores.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from pfnforge.errors import ConfigError, PfnforgeError
from pfnforge.evaluation import baselines
from pfnforge.evaluation.datasets import Dataset
from pfnforge.evaluation.metrics import classification_scores, regression_scores

PFN_METHOD = "pfn"


@dataclass(kw_only=True)
class EvaluateConfig:
    """How ``pfnforge evaluate --data`` splits, fits and scores."""

    repeats: int = 5
    """Train/test splits per dataset, each from its own seed (>= 1)."""
    test_size: float = 0.3
    """Fraction of rows held out for scoring, in (0, 1)."""
    seed: int = 0
    """Root seed of the splits and of every method's randomness."""
    n_estimators: int = 4
    """Ensemble members of the PFN (feature/class permutations and transforms)."""
    baselines: list[str] = field(default_factory=baselines.available)
    """Baselines to compare with (default: every one installed)."""
    subsample_features: bool = True
    """On datasets wider than the PFN takes, let each ensemble member see a random subset of features."""
    ignore_pretraining_limits: bool = False
    """Let the PFN take more training rows than it was pretrained on (otherwise: an error row)."""
    subsample_train_rows: bool = True
    """Where the training split is larger than the PFN's row limit, give each ensemble member a seeded random
    subset of that many rows as its context (the baselines train on all of it); ``false``: an error row."""
    feature_reduction: str = "mixed"
    """How the PFN's members see datasets wider than it takes: ``subsample``, ``pca`` or ``mixed``."""

    def __post_init__(self) -> None:
        if self.repeats < 1:
            raise ConfigError(f"repeats={self.repeats} must be >= 1")
        if not 0 < self.test_size < 1:
            raise ConfigError(f"test_size={self.test_size} must lie in (0, 1)")
        if self.n_estimators < 1:
            raise ConfigError(f"n_estimators={self.n_estimators} must be >= 1")
        if self.feature_reduction not in ("subsample", "pca", "mixed"):
            raise ConfigError(f"feature_reduction={self.feature_reduction!r} is unknown: choose subsample, pca or "
                              "mixed")
        unknown = sorted(set(self.baselines) - set(baselines.available()))
        if unknown:
            raise ConfigError(f"baselines {unknown} are unknown or not installed: available are "
                              f"{', '.join(baselines.available())}")


def _split(dataset: Dataset, seed: int, test_size: float) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(dataset.y))
    stratify = None
    if dataset.task == "classification":
        counts = dataset.y.value_counts()
        num_test = int(np.ceil(test_size * len(rows)))
        if counts.min() >= 2 and num_test >= len(counts) and len(rows) - num_test >= len(counts):
            stratify = dataset.y.to_numpy()
    return train_test_split(rows, test_size=test_size, random_state=seed, stratify=stratify)


def _pfn(task: str, model: Any, config: EvaluateConfig, seed: int):
    from pfnforge.inference.estimators import PFNClassifier, PFNRegressor

    kind = PFNClassifier if task == "classification" else PFNRegressor
    return kind(model, n_estimators=config.n_estimators, random_state=seed,
                subsample_features=config.subsample_features, feature_reduction=config.feature_reduction,
                subsample_train_rows=config.subsample_train_rows,
                ignore_pretraining_limits=config.ignore_pretraining_limits)


def _fit_and_score(estimator: Any, dataset: Dataset, codes: np.ndarray, num_classes: int,
                   train: np.ndarray, test: np.ndarray) -> dict[str, Any]:
    x_train, x_test = dataset.x.iloc[train], dataset.x.iloc[test]
    target = codes if dataset.task == "classification" else dataset.y.to_numpy(dtype=float)
    start = time.perf_counter()
    estimator.fit(x_train, target[train])
    fitted = time.perf_counter()
    if dataset.task == "classification":
        proba = np.asarray(estimator.predict_proba(x_test), dtype=float)
        full_NK = np.zeros((len(test), num_classes))
        full_NK[:, np.asarray(estimator.classes_, dtype=int)] = proba  # classes absent from the training split: 0
        predicted = time.perf_counter()
        scores = classification_scores(codes[test], full_NK)
    else:
        prediction = estimator.predict(x_test)
        predicted = time.perf_counter()
        scores = regression_scores(target[test], prediction, target[train])
    # the training rows the method saw: for a PFN, those of each member's context (a subset beyond its limit)
    ensemble = getattr(estimator, "ensemble_", None)
    seen = ensemble.x_train_MTF.shape[1] if ensemble is not None else len(train)
    return {**scores, "num_train_rows": seen, "fit_s": fitted - start, "predict_s": predicted - fitted}


def _builders(dataset: Dataset, models: dict[str, Any], config: EvaluateConfig, seed: int) -> dict[str, Any]:
    """Method name -> a function that builds it fresh (``None``: the PFN cannot do the dataset's task)."""
    task = dataset.task
    builders: dict[str, Any] = {PFN_METHOD: partial(_pfn, task, models[task], config, seed) if task in models else None}
    for name in config.baselines:
        builders[baselines.label(name, task)] = partial(baselines.build_baseline, name, task, dataset.x, seed)
    return builders


def evaluate_datasets(datasets: list[Dataset], models: dict[str, Any], config: EvaluateConfig,
                      progress: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Score the PFN (``models[task]``: a ``TrainedPFN``; a task missing from ``models`` is skipped for the PFN)
    and the baselines on every dataset; one row per dataset, repeat and method. ``progress`` is told each
    dataset as it starts."""
    rows = []
    seeds = np.random.SeedSequence(config.seed).generate_state(config.repeats)
    for number, dataset in enumerate(datasets, 1):
        if progress is not None:
            progress(f"[{number}/{len(datasets)}] {dataset.name}: {dataset.task}, {len(dataset.y)} rows x "
                     f"{dataset.x.shape[1]} features, {config.repeats} splits x {1 + len(config.baselines)} methods")
        if dataset.task == "classification":
            classes, codes = np.unique(dataset.y.astype(str), return_inverse=True)
        else:
            classes, codes = np.array([]), np.zeros(len(dataset.y), dtype=int)
        for repeat, seed in enumerate(int(s) for s in seeds):
            train, test = _split(dataset, seed, config.test_size)
            for method, build in _builders(dataset, models, config, seed).items():
                row = {"dataset": dataset.name, "task": dataset.task, "repeat": repeat, "method": method,
                       "num_train_rows": len(train), "num_features": dataset.x.shape[1], "error": ""}
                if build is None:
                    row["error"] = f"the model cannot do {dataset.task}"
                else:
                    try:
                        row.update(_fit_and_score(build(), dataset, codes, len(classes), train, test))
                    except PfnforgeError as error:  # the PFN's limits; a baseline's failure is a bug and raises
                        if method != PFN_METHOD:
                            raise
                        row["error"] = str(error)
                rows.append(row)
    return pd.DataFrame(rows)


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over repeats per dataset and method."""
    metrics = [c for c in results.columns if c in (
        "roc_auc", "accuracy", "log_loss", "ece", "rmse", "nrmse", "r2", "fit_s", "predict_s")]
    grouped = results.groupby(["dataset", "task", "method"], sort=True)
    summary = grouped[metrics].agg(["mean", "std"])
    summary.columns = [f"{metric}_{stat}" for metric, stat in summary.columns]
    summary["repeats_scored"] = grouped[metrics[0]].count() if metrics else 0
    summary["error"] = grouped["error"].agg(lambda e: next((x for x in e if x), ""))
    return summary.reset_index()
