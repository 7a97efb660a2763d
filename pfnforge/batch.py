"""``PriorBatch``: a batch of synthetic datasets as NumPy arrays, the in-memory twin of the Arrow schema.

Shapes: B datasets, R rows, F features. Row ``r`` of dataset ``b`` is a training row when
``r < num_train_rows[b]`` and a test row when ``num_train_rows[b] <= r < num_rows[b]``; rows past
``num_rows[b]`` and feature columns past ``num_features[b]`` are padding and hold zeros.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pfnforge.errors import SchemaError

HYPERPARAMETER_DTYPES = (np.dtype(np.float64), np.dtype(np.int64), np.dtype(object), np.dtype(bool))


@dataclass(kw_only=True, eq=False)
class PriorBatch:
    """Datasets drawn from one prior call. Scalars given for per-dataset fields are broadcast to (B,)."""

    x: np.ndarray
    """(B, R, F) float32 features; NaN marks a missing value."""
    y: np.ndarray
    """(B, R) float32 targets; for classification the class index 0..num_classes-1."""
    num_rows: np.ndarray | int
    """(B,) int32 rows in use per dataset."""
    num_features: np.ndarray | int
    """(B,) int32 feature columns in use per dataset."""
    num_train_rows: np.ndarray | int
    """(B,) int32 train/test split point per dataset."""
    num_classes: np.ndarray | int
    """(B,) int32 classes per dataset; 0 marks a regression dataset."""
    prior: np.ndarray | str
    """(B,) names of the priors that drew each dataset (object array of str)."""
    hyperparameters: dict[str, np.ndarray] = field(default_factory=dict)
    """Per-dataset values actually drawn, each (B,) of float64, int64, bool or str (object, None if absent)."""

    def __post_init__(self) -> None:
        if self.x.ndim != 3 or self.x.dtype != np.float32:
            raise SchemaError(f"x must be a (B, R, F) float32 array, got {self.x.dtype} {self.x.shape}")
        B, R, F = self.x.shape
        if self.y.shape != (B, R) or self.y.dtype != np.float32:
            raise SchemaError(f"y must be a ({B}, {R}) float32 array, got {self.y.dtype} {self.y.shape}")
        for name in ("num_rows", "num_features", "num_train_rows", "num_classes"):
            setattr(self, name, _per_dataset(name, getattr(self, name), B, np.int32))
        self.prior = _per_dataset("prior", self.prior, B, object)
        if np.any(self.num_rows < 1) or np.any(self.num_rows > R):
            raise SchemaError(f"num_rows must lie in [1, {R}]")
        if np.any(self.num_features < 1) or np.any(self.num_features > F):
            raise SchemaError(f"num_features must lie in [1, {F}]")
        if np.any(self.num_train_rows < 0) or np.any(self.num_train_rows > self.num_rows):
            raise SchemaError("num_train_rows must lie in [0, num_rows] for every dataset")
        if np.any(self.num_classes < 0):
            raise SchemaError("num_classes must be >= 0 (0 marks regression)")
        for name, values in self.hyperparameters.items():
            if values.shape != (B,) or values.dtype not in HYPERPARAMETER_DTYPES:
                raise SchemaError(f"hyperparameter {name!r} must be a ({B},) array of float64, int64, bool or"
                                  f" str objects, got {values.dtype} {values.shape}")

    @property
    def num_datasets(self) -> int:
        return self.x.shape[0]

    @property
    def is_classification(self) -> np.ndarray:
        """(B,) bool: which datasets are classification tasks."""
        return self.num_classes > 0


def _per_dataset(name: str, value: np.ndarray | int | str, size: int, dtype: type) -> np.ndarray:
    array = np.asarray(value, dtype=dtype)
    if array.ndim == 0:
        return np.full(size, value, dtype=dtype)
    if array.shape != (size,):
        raise SchemaError(f"{name} must be a scalar or have shape ({size},), got {array.shape}")
    return array
