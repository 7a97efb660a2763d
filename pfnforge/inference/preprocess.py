"""From what users pass (NumPy arrays, pandas frames, lists) to the float matrix a PFN reads: input
validation, feature names, and ordinal encoding of categorical columns (missing and unseen categories become
NaN, which the model's missing-value indicators take). Every refusal is an ``InputError`` naming the fix.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pfnforge.errors import InputError


def _is_frame(X: Any) -> bool:
    return hasattr(X, "columns") and hasattr(X, "dtypes") and hasattr(X, "iloc")


def _names_of(X: Any) -> np.ndarray | None:
    """Feature names as scikit-learn defines them: a frame's columns when they are all strings."""
    if not _is_frame(X):
        return None
    columns = list(X.columns)
    return np.asarray(columns, dtype=object) if columns and all(isinstance(c, str) for c in columns) else None


def _columns(X: Any, where: str) -> list[np.ndarray]:
    """The columns of a 2-D input, each as a 1-D array (object dtype for non-numeric ones)."""
    if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
        raise InputError(f"{where}: sparse input is not supported: pass a dense array (X.toarray())")
    if _is_frame(X):
        if X.shape[1] == 0 or X.shape[0] == 0:
            raise InputError(f"{where}: the frame is empty ({X.shape[0]} rows × {X.shape[1]} columns): "
                             "pass at least one row and one feature")
        return [X.iloc[:, j] for j in range(X.shape[1])]
    array = np.asarray(X)
    if array.dtype.kind == "c":
        raise InputError(f"{where}: Complex data not supported; pass real-valued features")
    if array.ndim != 2:
        raise InputError(f"{where}: expected a 2-D array (rows × features), got {array.ndim}-D with shape "
                         f"{array.shape}: Reshape your data, e.g. X.reshape(-1, 1) for a single feature")
    if array.shape[0] == 0 or array.shape[1] == 0:
        count = (f"0 sample(s) (shape={array.shape}) while a minimum of 1 is required" if array.shape[0] == 0
                 else f"0 feature(s) (shape={array.shape}) while a minimum of 1 is required")
        raise InputError(f"{where}: the input is empty: Found array with {count}; pass at least one row and one "
                         "feature")
    return [array[:, j] for j in range(array.shape[1])]


def _label(name: Any, index: int) -> str:
    return f"column {name!r}" if name is not None else f"column {index}"


def _is_category(column: Any) -> bool:
    return str(getattr(column, "dtype", "")) == "category"


def _as_float(column: Any, label: str, where: str) -> np.ndarray:
    values = np.asarray(column)
    if values.dtype.kind in "biuf":
        out = values.astype(np.float64)
    else:
        try:
            out = np.asarray([np.nan if v is None else v for v in values.tolist()], dtype=np.float64)
        except (TypeError, ValueError):
            raise InputError(f"{where}: {label} holds strings or other non-numeric values: declare it "
                             "categorical (categorical_features=[...] or pandas 'category' dtype) or convert it "
                             "to numbers") from None
    if np.isinf(out).any():
        raise InputError(f"{where}: {label} holds infinite values: replace them with NaN (missing) or finite "
                         "values")
    return out


@dataclass
class TabularEncoder:
    """What ``fit`` saw: feature count and names, which columns are categorical and their categories."""

    categorical_features: list[int | str] | None = None
    """Columns to ordinal-encode, by index or name (pandas 'category' columns are always categorical)."""
    num_features: int = 0
    feature_names: np.ndarray | None = None
    categorical: list[int] = field(default_factory=list)
    categories: dict[int, list[str]] = field(default_factory=dict)

    def _declared(self, names: np.ndarray | None, num_features: int) -> set[int]:
        declared = set()
        for item in self.categorical_features or []:
            if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
                if not -num_features <= int(item) < num_features:
                    raise InputError(f"categorical_features names column {item}, but X has {num_features} "
                                     "columns")
                declared.add(int(item) % num_features)
            elif names is not None and item in list(names):
                declared.add(list(names).index(item))
            else:
                known = ", ".join(map(str, names)) if names is not None else "none (X has no column names)"
                raise InputError(f"categorical_features names column {item!r}, which X does not have; "
                                 f"its columns: {known}")
        return declared

    def fit_transform(self, X: Any, where: str = "fit") -> np.ndarray:
        columns = _columns(X, where)
        self.num_features = len(columns)
        self.feature_names = _names_of(X)
        declared = self._declared(self.feature_names, self.num_features)
        self.categorical = sorted(declared | {j for j, c in enumerate(columns) if _is_category(c)})
        self.categories = {}
        for j in self.categorical:
            values = [str(v) for v in np.asarray(columns[j], dtype=object).tolist() if not _missing(v)]
            self.categories[j] = sorted(set(values))
        return self._encode(columns, where)

    def transform(self, X: Any, estimator: str, where: str = "predict") -> np.ndarray:
        self.check_names(_names_of(X), estimator)
        columns = _columns(X, where)
        if len(columns) != self.num_features:
            raise InputError(f"X has {len(columns)} features, but {estimator} is expecting {self.num_features} "
                             "features as input: pass the same columns as in fit")
        return self._encode(columns, where)

    def check_names(self, names: np.ndarray | None, estimator: str) -> None:
        fitted = self.feature_names
        if fitted is None and names is not None:
            warnings.warn(f"X has feature names, but {estimator} was fitted without feature names", UserWarning,
                          stacklevel=4)
        elif fitted is not None and names is None:
            warnings.warn(f"X does not have valid feature names, but {estimator} was fitted with feature names",
                          UserWarning, stacklevel=4)
        elif fitted is not None and names is not None and (len(names) != len(fitted) or any(names != fitted)):
            message = "The feature names should match those that were passed during fit.\n"
            unseen = sorted(set(names) - set(fitted))
            missing = sorted(set(fitted) - set(names))
            for title, items in (("Feature names unseen at fit time:\n", unseen),
                                 ("Feature names seen at fit time, yet now missing:\n", missing)):
                if items:
                    message += title + "".join(f"- {name}\n" for name in items[:5]) + ("- ...\n" * (len(items) > 5))
            if not unseen and not missing:
                message += "Feature names must be in the same order as they were in fit.\n"
            raise InputError(message)

    def _encode(self, columns: list[Any], where: str) -> np.ndarray:
        names = self.feature_names
        out = np.empty((len(columns[0]), len(columns)), dtype=np.float64)
        for j, column in enumerate(columns):
            label = _label(names[j] if names is not None else None, j)
            if j in self.categories:
                codes = {value: float(code) for code, value in enumerate(self.categories[j])}
                out[:, j] = [np.nan if _missing(v) else codes.get(str(v), np.nan)
                             for v in np.asarray(column, dtype=object).tolist()]
            else:
                if _is_category(column):
                    raise InputError(f"{where}: {label} is categorical now but was numeric in fit: pass the "
                                     "same column types as in fit")
                out[:, j] = _as_float(column, label, where)
        return out


def _missing(value: Any) -> bool:
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return True
    try:
        return bool(value != value)  # NaN, pandas NA and NaT are not equal to themselves
    except (TypeError, ValueError):
        return False
