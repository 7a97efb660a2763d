"""Datasets for ``pfnforge evaluate``: every CSV or Parquet file of a directory is one dataset (target = the
last column, or the column named by ``--target``), with its task told from the target; and a writer of
scikit-learn's bundled datasets as such a directory, for trying the command.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pfnforge.errors import ConfigError

SUFFIXES = (".csv", ".parquet", ".pq")
MAX_CLASSES_FOR_INTEGER_TARGET = 30
"""An integer target with at most this many distinct values is a classification target."""


@dataclass(kw_only=True)
class Dataset:
    """One evaluation dataset: features (non-numeric columns as pandas categoricals) and target."""

    name: str
    x: pd.DataFrame
    y: pd.Series
    task: str
    """``classification`` or ``regression``."""


def infer_task(y: pd.Series, where: str) -> str:
    """Strings, booleans, categoricals and integers with few distinct values: classification; numbers:
    regression."""
    if isinstance(y.dtype, pd.CategoricalDtype) or y.dtype == bool or not pd.api.types.is_numeric_dtype(y):
        return "classification"
    if pd.api.types.is_integer_dtype(y) and y.nunique() <= MAX_CLASSES_FOR_INTEGER_TARGET:
        return "classification"
    return "regression"


def _read(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    except Exception as error:
        raise ConfigError(f"dataset {path} cannot be read ({type(error).__name__}: {str(error)[:200]})") from error


def prepare(frame: pd.DataFrame, name: str, *, target: str | None = None, task: str = "auto") -> Dataset:
    """Split a frame into features and target; validate the target for ``task`` (auto: inferred)."""
    if frame.shape[1] < 2 or len(frame) < 4:
        raise ConfigError(f"dataset {name} has {len(frame)} rows and {frame.shape[1]} columns: it needs at least "
                          "4 rows, one feature column and the target")
    target = frame.columns[-1] if target is None else target
    if target not in frame.columns:
        raise ConfigError(f"dataset {name} has no target column {target!r}: its columns are "
                          f"{list(frame.columns)[:20]}; pass --target or make the target the last column")
    y = frame[target]
    if y.isna().any():
        raise ConfigError(f"dataset {name}: the target {target!r} has {int(y.isna().sum())} missing values; drop "
                          "those rows first")
    task = infer_task(y, name) if task == "auto" else task
    if task == "regression":
        if not pd.api.types.is_numeric_dtype(y) or y.dtype == bool:
            raise ConfigError(f"dataset {name}: the target {target!r} is not numeric ({y.dtype}, e.g. "
                              f"{y.iloc[0]!r}); a regression target must be numbers (or use --task classification)")
        if not np.isfinite(y.to_numpy(dtype=float)).all():
            raise ConfigError(f"dataset {name}: the target {target!r} holds inf; drop or clip those rows")
    elif task != "classification":
        raise ConfigError(f"task={task!r} is unknown: choose auto, classification or regression")
    elif y.nunique() < 2:
        raise ConfigError(f"dataset {name}: the target {target!r} has a single class; nothing to classify")
    x = frame.drop(columns=[target])
    for column in x.columns:
        if not pd.api.types.is_numeric_dtype(x[column]) or x[column].dtype == bool:
            x[column] = x[column].astype("category")
    return Dataset(name=name, x=x, y=y.reset_index(drop=True), task=task)


def load_datasets(directory: str | Path, *, target: str | None = None, task: str = "auto") -> list[Dataset]:
    """Every CSV/Parquet file in ``directory``, sorted by name."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"--data {directory} is not a directory: point it at a directory of CSV/Parquet files "
                          "(write an example one with `pfnforge evaluate --write-example-data DIR`)")
    paths = sorted(p for p in directory.iterdir() if p.suffix.lower() in SUFFIXES)
    if not paths:
        raise ConfigError(f"{directory} holds no datasets (files ending in {', '.join(SUFFIXES)}); write an example "
                          "set with `pfnforge evaluate --write-example-data DIR`")
    return [prepare(_read(path), path.stem, target=target, task=task) for path in paths]


def write_example_data(directory: str | Path, *, max_rows: int = 1000, seed: int = 0) -> list[Path]:
    """scikit-learn's bundled datasets as CSV files (target last, at most ``max_rows`` rows each): iris, wine,
    breast_cancer, digits (classification), diabetes (regression)."""
    from sklearn import datasets

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written = []
    for name in ("iris", "wine", "breast_cancer", "digits", "diabetes"):
        bunch = getattr(datasets, f"load_{name}")(as_frame=True)
        frame = bunch.frame.rename(columns={bunch.target.name: "target"})
        if len(frame) > max_rows:
            frame = frame.iloc[np.sort(rng.choice(len(frame), max_rows, replace=False))]
        path = directory / f"{name}.csv"
        frame.to_csv(path, index=False)
        written.append(path)
    return written
