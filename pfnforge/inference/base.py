"""What the PFN estimators share: resolving the model (cached, per device), parameter and limit checks, the
fitted context (encoder + ensemble) and the forward pass; target validation."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted, check_random_state, column_or_1d

from pfnforge.errors import InputError
from pfnforge.inference.artifact import WEIGHTS_FILE, TrainedPFN
from pfnforge.inference.ensemble import Ensemble, FeatureReduction, FeatureTransform, informative_columns
from pfnforge.inference.loading import load_model
from pfnforge.inference.preprocess import TabularEncoder

_CACHE: dict[tuple, TrainedPFN] = {}


def resolve_model(model: Any, task: str, device: str) -> TrainedPFN:
    """``model`` as ``load_model`` takes it (or a ``TrainedPFN``), on ``device``; local models are cached."""
    if isinstance(model, TrainedPFN):
        trained = model
        if not trained.supports(task):
            raise InputError(f"the given model is a {trained.task} model and cannot do {task}")
    else:
        remote = isinstance(model, str) and model.startswith(("models:/", "runs:/"))
        path = None if remote or model is None else Path(model)
        # a retrained model written to the same path must not be served from the cache
        stamp = path / WEIGHTS_FILE if path is not None and path.is_dir() else path
        key = (str(model), task, stamp.stat().st_mtime_ns if stamp is not None and stamp.exists() else None)
        trained = _CACHE.get(key) if not remote else None
        if trained is None:
            trained = load_model(model, task=task)
            if not remote:
                _CACHE[key] = trained
    if str(device) != "cpu":  # one copy per device, kept with the model it copies
        copies = trained.__dict__.setdefault("_device_copies", {})
        if str(device) not in copies:
            import copy

            copies[str(device)] = TrainedPFN(model=copy.deepcopy(trained.model).to(device), metadata=trained.metadata)
        trained = copies[str(device)]
    return trained


class _PFNEstimator(BaseEstimator):
    _task = "classification"

    def __init__(self, model: Any = None, *, n_estimators: int = 4, random_state: Any = 0, device: str = "cpu",
                 categorical_features: list[int | str] | None = None, transforms: tuple[str, ...] = (
                     "none", "quantile", "power"), subsample_features: bool = True,
                 ignore_pretraining_limits: bool = False, inference_chunk_rows: int | None = None,
                 feature_reduction: str = "mixed", subsample_train_rows: bool = True) -> None:
        self.model = model
        self.n_estimators = n_estimators
        self.random_state = random_state
        self.device = device
        self.categorical_features = categorical_features
        self.transforms = transforms
        self.subsample_features = subsample_features
        self.ignore_pretraining_limits = ignore_pretraining_limits
        self.inference_chunk_rows = inference_chunk_rows
        self.feature_reduction = feature_reduction
        self.subsample_train_rows = subsample_train_rows

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.non_deterministic = self.random_state is None
        return tags

    def _check_params(self) -> tuple[list[FeatureTransform], FeatureReduction]:
        if not isinstance(self.n_estimators, (int, np.integer)) or self.n_estimators < 1:
            raise InputError(f"n_estimators={self.n_estimators!r} must be an integer >= 1")
        if self.inference_chunk_rows is not None and self.inference_chunk_rows < 1:
            raise InputError(f"inference_chunk_rows={self.inference_chunk_rows!r} must be None (automatic) or >= 1")
        try:
            device = torch.device(self.device)
        except (RuntimeError, TypeError):
            raise InputError(f"device={self.device!r} is not a torch device: use 'cpu', 'cuda' or 'cuda:N'") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise InputError(f"device={self.device!r}, but no CUDA device is available here: use device='cpu'")
        try:
            reduction = FeatureReduction(self.feature_reduction)
        except ValueError:
            raise InputError(f"feature_reduction={self.feature_reduction!r} is unknown: choose one of "
                             f"{', '.join(r.value for r in FeatureReduction)}") from None
        try:
            return [FeatureTransform(t) for t in self.transforms], reduction
        except ValueError:
            raise InputError(f"transforms={self.transforms!r}: each must be one of "
                             f"{', '.join(t.value for t in FeatureTransform)}") from None

    def _fit_context(self, X: Any, y: Any, num_classes: int | None) -> np.ndarray:
        transforms, reduction = self._check_params()
        self.pfn_ = resolve_model(self.model, self._task, self.device)
        self.encoder_ = TabularEncoder(categorical_features=self.categorical_features)
        x_TF = self.encoder_.fit_transform(X)
        self.n_features_in_ = x_TF.shape[1]
        if self.encoder_.feature_names is not None:
            self.feature_names_in_ = self.encoder_.feature_names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        if len(y) != len(x_TF):
            raise InputError(f"X has {len(x_TF)} rows but y has {len(y)}: pass one target per row")
        informative = informative_columns(x_TF)
        self._check_limits((len(x_TF), informative.size), num_classes)
        limits, config = self.pfn_.limits, self.pfn_.model.config
        if self.ignore_pretraining_limits:
            max_features = config.max_features or informative.size  # an uncapped model: every column
        else:
            max_features = min(limits["max_features"], config.max_features or limits["max_features"])
        max_rows = limits["max_rows"] if self.subsample_train_rows and not self.ignore_pretraining_limits else None
        max_classes = min(limits["max_classes"], config.max_classes)
        self.ensemble_ = Ensemble(x_TF, self.encoder_.categorical, num_members=int(self.n_estimators),
                                  max_features=max_features, subsample_features=self.subsample_features,
                                  transforms=tuple(transforms), num_classes=num_classes,
                                  rng=check_random_state(self.random_state),
                                  enable_scaling=self.pfn_.model.config.enable_standardization,
                                  feature_reduction=reduction, max_rows=max_rows, informative=informative,
                                  max_classes=max_classes)
        self._warn_beyond_limits(len(x_TF), informative.size, num_classes, max_rows, max_features, max_classes)
        return x_TF

    def _warn_beyond_limits(self, num_rows: int, num_features: int, num_classes: int | None, max_rows: int | None,
                            max_features: int, max_classes: int) -> None:
        """One ``UserWarning`` naming each pretraining limit the data exceeds and what the ensemble does."""
        done = []
        members = len(self.ensemble_.members)
        if max_rows is not None and num_rows > max_rows:
            done.append(f"{num_rows} training rows > the {max_rows} it was pretrained on: each of the {members} "
                        f"ensemble members learns from its own random {max_rows} (subsample_train_rows=False "
                        "refuses instead)")
        if self.subsample_features and num_features > max_features:
            done.append(f"{num_features} informative features > the {max_features} it takes: each member sees "
                        f"{max_features} of them or, with feature_reduction={self.feature_reduction!r}, principal "
                        "components (subsample_features=False refuses instead)")
        advice = ". Pass ignore_pretraining_limits=True to feed the rows and features as they are" if done else ""
        if num_classes is not None and num_classes > max_classes:
            done.append(f"{num_classes} classes > the {max_classes} of its head: each of {members} members "
                        f"predicts {max_classes} groups of classes and their code words are combined")
        if done:
            warnings.warn("this model's pretraining limits are exceeded: " + "; ".join(done) + advice + ".",
                          UserWarning, stacklevel=4)

    def _check_limits(self, shape: tuple[int, int], num_classes: int | None) -> None:
        """``shape``: training rows and informative (non-constant) features. Refuses only what the options
        say to refuse (``subsample_*=False``) or what the model cannot take at all."""
        num_rows, num_features = shape
        limits, config = self.pfn_.limits, self.pfn_.model.config
        if num_rows > limits["max_rows"] and not (self.ignore_pretraining_limits or self.subsample_train_rows):
            raise InputError(f"X has {num_rows} training rows; this model was pretrained on datasets of at most "
                             f"{limits['max_rows']} rows: pass subsample_train_rows=True (each ensemble member's "
                             f"context is a random {limits['max_rows']} of them), use a model trained on larger "
                             "datasets, or pass ignore_pretraining_limits=True to use it anyway")
        trained_features = config.max_features if self.ignore_pretraining_limits else limits["max_features"]
        if trained_features is not None and num_features > trained_features and not self.subsample_features:
            raise InputError(f"X has {num_features} informative (non-constant) features; this model takes at most "
                             f"{trained_features}: pass subsample_features=True (each ensemble member sees a random "
                             f"{trained_features}, or with feature_reduction='pca' the leading principal components), "
                             f"select features first (e.g. sklearn.feature_selection.SelectKBest(k="
                             f"{trained_features})), or use a model trained with a larger model.max_features")

    def _keep_context(self, num_classes: int | None) -> None:
        """Run the members' training rows through the model now, so ``predict`` runs only query rows."""
        with torch.inference_mode():
            self.ensemble_.context(self.pfn_.model, self.y_train_, num_classes=num_classes, device=self.device)

    def _query(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "ensemble_")
        return self.encoder_.transform(X, type(self).__name__)

    def _forward(self, x_QF: np.ndarray, y_T: np.ndarray, num_classes: int | None) -> np.ndarray:
        return self.ensemble_.predict(self.pfn_.model, y_T, x_QF, num_classes=num_classes, device=self.device,
                                      chunk_rows=self.inference_chunk_rows)


def _finite_target(y: Any, estimator: str) -> np.ndarray:
    if y is None:
        raise InputError(f"{estimator} requires y to be passed, but the target y is None")
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = column_or_1d(y, warn=True)  # scikit-learn's DataConversionWarning
    if y.ndim != 1:
        raise InputError(f"y must be 1-D (one target per row), got shape {y.shape}")
    if y.size == 0:
        raise InputError("y is empty: pass at least one training row")
    if y.dtype.kind in "fc" and not np.isfinite(y).all():
        raise InputError(f"y holds {int((~np.isfinite(y)).sum())} NaN or infinite values (Input y contains NaN "
                         "or infinity): drop those rows or impute the target")
    if y.dtype == object and any(v is None or v != v for v in y.tolist()):
        raise InputError("y holds missing values (Input y contains NaN): drop those rows or impute the target")
    return y
