"""The tensors fine-tuning reads: a seeded held-out validation split of one table (stratified for
classification), the table preprocessed exactly as an estimator does at ``fit`` (a ``PFNClassifier`` /
``PFNRegressor`` fitted on the fine-tune rows builds the encoder and the ensemble; each ensemble member is one
*view*: feature order, class order, feature transform), the random context/query splits of a step, and the
validation loss.

Targets are what the model reads: class labels in each view's class order (or group, for more classes than
the model's head), or targets standardised by the fine-tune rows' mean and spread, as ``PFNRegressor`` does.

Legend: V views, N fine-tune rows, P validation rows, C validation context rows (N, at most the model's row
limit), B splits of one step, R rows of a split, F features a view shows the model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from sklearn.utils import _safe_indexing
from sklearn.utils.multiclass import type_of_target

from pfnforge.errors import InputError
from pfnforge.inference.artifact import TrainedPFN
from pfnforge.inference.base import _finite_target
from pfnforge.inference.estimators import PFNClassifier, PFNRegressor
from pfnforge.model.api import Architecture

MIN_VALIDATION_ROWS = 10
"""Fewest held-out rows a validation loss is computed on (fewer: too noisy to stop early by)."""
MIN_FINETUNE_ROWS = 10
"""Fewest rows left to fine-tune on (every step splits them into context and query rows)."""


@dataclass
class FinetuneData:
    """One table, preprocessed, as the model reads it."""

    x_VNF: torch.Tensor
    y_VN: torch.Tensor
    x_VPF: torch.Tensor
    y_VP: torch.Tensor
    context_rows_C: torch.Tensor
    """The fine-tune rows the validation rows are predicted from (all, or a seeded subset of the row limit)."""
    num_classes: int
    """Labels the model tells apart (0: regression)."""
    max_rows: int
    """Rows of one context/query split: the fine-tune rows, at most the model's pretraining row limit."""

    def to(self, device: torch.device) -> FinetuneData:
        return FinetuneData(x_VNF=self.x_VNF.to(device), y_VN=self.y_VN.to(device), x_VPF=self.x_VPF.to(device),
                            y_VP=self.y_VP.to(device), context_rows_C=self.context_rows_C.to(device),
                            num_classes=self.num_classes, max_rows=self.max_rows)

    def num_classes_of(self, num_datasets: int) -> torch.Tensor:
        """(B,) the labels per dataset, as ``Architecture.test_log_likelihood`` takes them."""
        return torch.full((num_datasets,), self.num_classes, dtype=torch.long, device=self.y_VN.device)


def split_rows(y: np.ndarray, fraction: float, seed: int, *, task: str) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the fine-tune and validation rows: a seeded split, stratified for classification; refused
    where either part would be too small."""
    num_rows = len(y)
    num_validation = math.ceil(fraction * num_rows)  # as train_test_split rounds a float test_size
    if num_validation < MIN_VALIDATION_ROWS or num_rows - num_validation < MIN_FINETUNE_ROWS:
        raise InputError(f"{num_rows} rows with validation_fraction={fraction} leave {num_rows - num_validation} "
                         f"rows to fine-tune on and {num_validation} to validate on; fine-tuning needs at least "
                         f"{MIN_FINETUNE_ROWS} and {MIN_VALIDATION_ROWS}: pass more rows or change "
                         "validation_fraction")
    stratify = None
    if task == "classification":
        if type_of_target(y) not in ("binary", "multiclass"):
            raise InputError(f"y is a {type_of_target(y)} target, not class labels: fine-tune with task='regression'")
        labels, counts = np.unique(y, return_counts=True)
        if len(labels) < 2:
            raise InputError(f"y has one class ({labels[0]}); a classifier needs at least two classes")
        rare = labels[counts < 2]
        if rare.size:
            raise InputError(f"class(es) {', '.join(map(str, rare[:5]))} have one row each: a stratified validation "
                             "split needs at least 2 rows of every class (one to fine-tune on, one to validate "
                             "on): drop those rows or add more")
        stratify = y
    try:
        return train_test_split(np.arange(num_rows), test_size=num_validation, random_state=seed, stratify=stratify)
    except ValueError as error:  # e.g. fewer validation rows than classes
        raise InputError(f"cannot split {num_rows} rows into fine-tune and validation parts ({error}): pass more "
                         "rows or a larger validation_fraction") from None


def prepare(trained: TrainedPFN, X: Any, y: Any, *, task: str, validation_fraction: float, num_views: int,
            seed: int, estimator_params: Mapping[str, Any]) -> FinetuneData:
    """The table split and preprocessed into ``num_views`` views (``estimator_params``: how the estimator
    preprocesses, e.g. ``categorical_features``; its ``model``, ``n_estimators``, ``random_state`` and
    ``device`` are set here)."""
    estimator_class = PFNClassifier if task == "classification" else PFNRegressor
    y = _finite_target(y, estimator_class.__name__)
    split_seed, view_seed, context_seed = np.random.SeedSequence(seed).generate_state(3)
    fit_rows, validation_rows = split_rows(y, validation_fraction, int(split_seed), task=task)
    params = {**estimator_params, "model": trained, "n_estimators": num_views, "random_state": int(view_seed),
              "device": "cpu"}
    estimator = estimator_class(**params).fit(_safe_indexing(X, fit_rows), y[fit_rows])
    y_fit, y_validation = y[fit_rows], y[validation_rows]
    encode = estimator.encoder_.transform
    x_VNF = estimator.ensemble_.member_inputs(encode(_safe_indexing(X, fit_rows), estimator_class.__name__))
    x_VPF = estimator.ensemble_.member_inputs(encode(_safe_indexing(X, validation_rows), estimator_class.__name__))
    if task == "classification":
        unseen = sorted(set(y_validation.tolist()) - set(estimator.classes_.tolist()), key=str)
        if unseen:
            raise InputError(f"class(es) {', '.join(map(str, unseen[:5]))} appear only in the validation split: "
                             "add rows of them or drop them")
        order_VK = np.stack([member.class_permutation for member in estimator.ensemble_.members])
        y_VN = order_VK[:, np.searchsorted(estimator.classes_, y_fit)]
        y_VP = order_VK[:, np.searchsorted(estimator.classes_, y_validation)]
        num_classes = int(estimator.ensemble_.num_groups)
    else:
        y_VN = np.tile(estimator.y_train_, (len(x_VNF), 1))
        y_VP = np.tile((y_validation.astype(np.float64) - estimator.y_mean_) / estimator.y_std_, (len(x_VPF), 1))
        num_classes = 0
    max_rows = min(len(fit_rows), int(trained.limits["max_rows"]))
    context_rows_C = np.sort(np.random.default_rng(context_seed).permutation(len(fit_rows))[:max_rows])
    return FinetuneData(x_VNF=torch.from_numpy(x_VNF), y_VN=torch.as_tensor(y_VN, dtype=torch.float32),
                        x_VPF=torch.from_numpy(x_VPF), y_VP=torch.as_tensor(y_VP, dtype=torch.float32),
                        context_rows_C=torch.from_numpy(context_rows_C), num_classes=num_classes,
                        max_rows=max_rows)


def sample_splits(generator: torch.Generator, data: FinetuneData, num_datasets: int,
                  query_fraction: tuple[float, float]) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``num_datasets`` random context/query splits of the fine-tune rows, each in a random view: (B, R, F)
    features, (B, R) targets and the number of context rows T (the first T of each split)."""
    V, N = data.y_VN.shape
    R = data.max_rows
    low, high = query_fraction
    fraction = low + (high - low) * float(torch.rand((), generator=generator))
    num_query = min(max(round(fraction * R), 1), R - 1)
    views_B1 = torch.randint(V, (num_datasets, 1), generator=generator).to(data.y_VN.device)
    rows_BR = torch.rand(num_datasets, N, generator=generator).argsort(1)[:, :R].to(data.y_VN.device)
    return data.x_VNF[views_B1, rows_BR], data.y_VN[views_B1, rows_BR], R - num_query


@torch.no_grad()
def validation_loss(model: Architecture, data: FinetuneData) -> float:
    """Mean NLL of the validation rows (every view) given the validation context rows."""
    model.eval()
    x_VCF, y_VC = data.x_VNF[:, data.context_rows_C], data.y_VN[:, data.context_rows_C]
    V, C, P = x_VCF.shape[0], x_VCF.shape[1], data.x_VPF.shape[1]
    step = max(16, (1 << 22) // (V * C))  # query rows per pass: bounds the V × P × C attention scores
    total = 0.0
    for start in range(0, P, step):  # chunks of query rows: they never attend to each other, so this is exact
        x_VRF = torch.cat([x_VCF, data.x_VPF[:, start:start + step]], 1)
        y_VR = torch.cat([y_VC, data.y_VP[:, start:start + step]], 1)
        total -= float(model.test_log_likelihood(x_VRF, y_VR, C, data.num_classes_of(V)).double().sum())
    return total / (V * P)
