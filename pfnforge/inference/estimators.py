"""scikit-learn estimators over a trained PFN: ``fit`` validates, encodes, builds the ensemble and runs its
training rows through the model once (keeping their per-layer keys and values), ``predict`` /
``predict_proba`` run only the query rows. With no ``model``, the bundled default
(``PFNClassifier().fit(X, y).predict_proba(X_test)`` works offline).

Constructor parameters (both estimators):
- ``model``: anything ``pfnforge.inference.loading.load_model`` takes (None: bundled default, a ``.ckpt``, a
  model directory, ``models:/NAME/VERSION`` / ``models:/NAME@ALIAS`` / ``runs:/ID/model``) or a ``TrainedPFN``;
- ``n_estimators``: ensemble members (feature order, class order and transform differ per member);
- ``random_state``, ``device`` (``cpu``, ``cuda``), ``categorical_features`` (indices or names to
  ordinal-encode; pandas ``category`` columns always are), ``transforms`` (cycled over members: ``none``,
  ``quantile``, ``power``), ``subsample_features`` (more features than the model takes: each member sees a
  random subset, or see ``feature_reduction``), ``feature_reduction`` (how: ``subsample`` a random subset per
  member, ``pca`` the leading principal components, ``mixed`` (default) alternating the two over members),
  ``subsample_train_rows`` (more training rows than the model was pretrained on: each member's context is its
  own random subset of that many; regression members share one), ``ignore_pretraining_limits`` (allow more
  rows/features than pretraining saw), ``inference_chunk_rows`` (query rows per forward pass; None:
  memory-bounded automatic). Columns constant on the training rows are never shown to the model and do not
  count against its feature limit.

Fitted attributes: ``n_features_in_``, ``feature_names_in_`` (frames with string columns), ``classes_``.

``fine_tune(X, y, **options)`` adapts the model's weights to one dataset first (see
``pfnforge.inference.finetune``), then fits on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets

from pfnforge.errors import InputError
from pfnforge.inference.base import _finite_target, _PFNEstimator, resolve_model
from pfnforge.inference.distribution import bar_mean, bar_quantiles
from pfnforge.model.api import target_scale

if TYPE_CHECKING:
    from pfnforge.inference.finetune import FinetuneConfig


class _FineTunable(_PFNEstimator):
    """What both estimators add to fitting: fine-tuning the model's weights on the data first."""

    def fine_tune(self, X: Any, y: Any, config: FinetuneConfig | None = None, **fields: Any) -> _FineTunable:
        """Fine-tune the model on (X, y) (``pfnforge.inference.finetune``: a held-out validation split, early
        stopping, the best weights), make the result this estimator's ``model`` and fit on all of (X, y).
        ``config``: a ``FinetuneConfig``; ``fields``: its fields to change (``max_steps=50``). Sets
        ``finetune_result_`` and ``finetune_history_`` (step, training and validation loss)."""
        from pfnforge.inference.finetune import finetune, finetune_config

        trained = resolve_model(self.model, self._task, "cpu")
        result = finetune(trained, X, y, finetune_config(config, fields), task=self._task,
                          estimator_params=self.get_params())
        self.set_params(model=result.trained)
        self.finetune_result_, self.finetune_history_ = result, result.history
        return self.fit(X, y)


class PFNClassifier(ClassifierMixin, _FineTunable):
    """Class probabilities from one forward pass of a classification PFN, averaged over the ensemble."""

    _task = "classification"

    def fit(self, X: Any, y: Any) -> PFNClassifier:
        y = _finite_target(y, type(self).__name__)
        try:
            check_classification_targets(y)
        except ValueError as error:
            raise InputError(f"{error}: y looks like a regression target; use PFNRegressor") from None
        self.classes_, y_encoded = np.unique(y, return_inverse=True)
        num_classes = len(self.classes_)
        if num_classes < 2:
            raise InputError(f"y has one class ({self.classes_[0]}); a classifier needs at least two classes")
        self._fit_context(X, y, num_classes)
        self.y_train_ = y_encoded.astype(np.float64)
        self._keep_context(num_classes)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        x_QF = self._query(X)
        probs_QK = self._forward(x_QF, self.y_train_, len(self.classes_))
        return probs_QK / probs_QK.sum(1, keepdims=True)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        return np.log(np.clip(self.predict_proba(X), 1e-300, None))

    def predict(self, X: Any) -> np.ndarray:
        probs_QK = self.predict_proba(X)
        return self.classes_[np.argmax(probs_QK, axis=1)]


class PFNRegressor(RegressorMixin, _FineTunable):
    """Predictive mean, median or quantiles of a regression PFN's bar distribution, averaged over the ensemble
    in the model's bucket grid and mapped back to the target's units."""

    _task = "regression"

    def fit(self, X: Any, y: Any) -> PFNRegressor:
        y = _finite_target(y, type(self).__name__)
        if y.dtype.kind not in "biuf":
            try:
                y = y.astype(np.float64)
            except (TypeError, ValueError):
                raise InputError("y holds non-numeric values: a regression target must be numbers") from None
        y = y.astype(np.float64)
        self._fit_context(X, y, None)
        if not self.pfn_.model.config.enable_standardization:  # the model reads targets in their own units
            self.y_mean_, self.y_std_, self.y_train_, self._z_shift, self._z_scale = 0.0, 1.0, y, 0.0, 1.0
            self._keep_context(None)
            return self
        # standardise in float64 here (the model does it again in float32, where huge targets would overflow),
        # scaled first by the largest magnitude so that neither 1e200 (squares overflow) nor 1e-200 (squares
        # underflow) loses the spread
        magnitude = float(np.max(np.abs(y)))
        magnitude = magnitude if magnitude > 0 and np.isfinite(magnitude) else 1.0
        self.y_mean_ = float(np.mean(y / magnitude)) * magnitude
        y_std = float(np.std(y / magnitude)) * magnitude
        self.y_std_ = y_std if y_std > 0 and np.isfinite(y_std) else 1.0
        self.y_train_ = (y - self.y_mean_) / self.y_std_
        # the model's own standardisation of the already standardised targets, over the rows in the members'
        # (shared) context
        rows = self.ensemble_.members[0].rows
        context = self.y_train_ if rows is None else self.y_train_[rows]
        shift_11, scale_11 = target_scale(torch.from_numpy(context)[None], self.pfn_.model.config)
        self._z_shift, self._z_scale = float(shift_11), float(scale_11)
        self._keep_context(None)
        return self

    def predict(self, X: Any, output: str = "mean", quantiles: Any = (0.1, 0.5, 0.9)) -> np.ndarray:
        """``output``: ``mean`` or ``median`` (shape (rows,)), or ``quantiles`` (shape (rows, len(quantiles)))."""
        if output not in ("mean", "median", "quantiles"):
            raise InputError(f"output={output!r} is unknown: choose mean, median or quantiles")
        levels = np.atleast_1d(np.asarray(quantiles, dtype=np.float64))
        if output == "quantiles" and (levels.ndim != 1 or not ((levels > 0) & (levels < 1)).all()):
            raise InputError(f"quantiles={quantiles!r}: each level must lie strictly between 0 and 1")
        probs_QN = torch.from_numpy(self._forward(self._query(X), self.y_train_, None))
        bar = self.pfn_.model.bar.cpu()
        if output == "mean":
            z = bar_mean(bar, probs_QN).double().numpy()
        else:
            z = bar_quantiles(bar, probs_QN, torch.tensor([0.5] if output == "median" else levels)).double().numpy()
            z = z[:, 0] if output == "median" else z
        return self.y_mean_ + self.y_std_ * (self._z_shift + self._z_scale * z)
