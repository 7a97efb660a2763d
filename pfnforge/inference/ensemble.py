"""The ensemble an estimator runs: members that differ in feature order (and subset), class-label order and
feature transform, their contexts (transformed training rows), and the chunked forward pass that averages
their predictive distributions. Test rows never attend to each other, so chunking the query rows is exact.

Legend: M members, T training rows, Q query rows of one chunk, F features a member shows the model,
K classes, N buckets.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from enum import Enum

import numpy as np
import torch

from pfnforge.model.pfn import PFN


class FeatureTransform(str, Enum):
    """How a member maps numeric features before the model standardises them (categoricals stay codes)."""

    none = "none"
    quantile = "quantile"
    power = "power"


@dataclass
class Member:
    features: np.ndarray
    """Indices of the encoded columns, in the order this member shows them to the model."""
    transform: FeatureTransform
    class_permutation: np.ndarray | None
    """Model label of each original class (classification), ``None`` for regression."""


def _robust_scale(x_TF: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        center = np.nan_to_num(np.nanmedian(x_TF, axis=0))
        spread = np.nan_to_num(np.nanstd(x_TF, axis=0), nan=1.0, posinf=1.0)
    return center, np.where(spread > 0, spread, 1.0)


class Ensemble:
    """Built at ``fit`` from the encoded training matrix; ``predict`` averages the members' distributions."""

    def __init__(self, x_train_TF: np.ndarray, categorical: list[int], *, num_members: int, max_features: int,
                 subsample_features: bool, transforms: tuple[FeatureTransform, ...], num_classes: int | None,
                 rng: np.random.RandomState, enable_scaling: bool = True) -> None:
        """``enable_scaling=False`` (models trained without standardisation, whose inputs' scale carries
        information): features reach the model as given, only reordered."""
        num_train, num_features = x_train_TF.shape
        self.enable_scaling = enable_scaling
        self.numeric = np.array([j for j in range(num_features) if j not in set(categorical)], dtype=int)
        self.center, self.spread = _robust_scale(x_train_TF[:, self.numeric])
        if not enable_scaling:
            self.center, self.spread = np.zeros_like(self.center), np.ones_like(self.spread)
        if num_train < 5 or not enable_scaling:  # too few rows to fit a quantile or power map, or raw inputs
            transforms = (FeatureTransform.none,)
        self.fitted = {kind: self._fit(kind, x_train_TF) for kind in set(transforms)}
        self.members = []
        for m in range(num_members):
            features = rng.permutation(num_features)
            if num_features > max_features and subsample_features:
                features = features[:max_features]
            permutation = rng.permutation(num_classes) if num_classes else None
            self.members.append(Member(features=features, transform=transforms[m % len(transforms)],
                                       class_permutation=permutation))
        self.train_stats: list[tuple[np.ndarray, np.ndarray]] = []
        raw = [self._member_features(x_train_TF, member) for member in self.members]
        for x in raw:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mean, std = np.nanmean(x, axis=0), np.nanstd(x, axis=0)
            self.train_stats.append((np.nan_to_num(mean), np.where(np.nan_to_num(std) > 0, std, 1.0)))
        self.x_train_MTF = np.stack([self._standardise(x, i) for i, x in enumerate(raw)])

    def _fit(self, kind: FeatureTransform, x_TF: np.ndarray):
        if kind is FeatureTransform.none or self.numeric.size == 0:
            return None
        from sklearn.preprocessing import PowerTransformer, QuantileTransformer

        scaled = (x_TF[:, self.numeric] - self.center) / self.spread
        transformer = (QuantileTransformer(n_quantiles=min(1000, len(x_TF)), output_distribution="normal",
                                           subsample=10**9, random_state=0)
                       if kind is FeatureTransform.quantile else PowerTransformer(method="yeo-johnson"))
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            try:
                return transformer.fit(scaled)
            except (ValueError, FloatingPointError, np.linalg.LinAlgError):
                return None  # this member then sees the robustly scaled values

    def _member_features(self, x_RF: np.ndarray, member: Member) -> np.ndarray:
        x_RF = x_RF.copy()
        scaled = (x_RF[:, self.numeric] - self.center) / self.spread
        transformer = self.fitted.get(member.transform)
        if transformer is not None:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                mapped = transformer.transform(scaled)
            broken = ~np.isfinite(mapped) & np.isfinite(scaled)
            scaled = np.where(broken.any(axis=0, keepdims=True), scaled, mapped)
        x_RF[:, self.numeric] = scaled
        return x_RF[:, member.features]

    def _standardise(self, x_RF: np.ndarray, m: int) -> np.ndarray:
        if not self.enable_scaling:
            return x_RF.astype(np.float32)
        mean, std = self.train_stats[m]
        return np.clip((x_RF - mean) / std, -1e4, 1e4).astype(np.float32)

    def chunk_rows(self, limit: int | None) -> int:
        """Query rows per forward pass: bounds attention memory (M × Q × T scores per head) near 2^22."""
        M, T = len(self.members), self.x_train_MTF.shape[1]
        return limit or max(16, (1 << 22) // (M * max(T, 1)))

    @torch.inference_mode()
    def predict(self, model: PFN, y_train_T: np.ndarray, x_query_QF: np.ndarray, *, num_classes: int | None,
                device: str | torch.device, chunk_rows: int | None = None) -> np.ndarray:
        """(rows, K) averaged class probabilities, or (rows, N) averaged bucket probabilities (standardised
        target units; members share the targets, so their bucket grids coincide)."""
        classification = num_classes is not None
        x_train_MTF = torch.from_numpy(self.x_train_MTF).to(device)
        M, T, _ = x_train_MTF.shape
        y_rows = [member.class_permutation[y_train_T.astype(int)] if classification else y_train_T
                  for member in self.members]
        y_train_MT = torch.as_tensor(np.stack(y_rows), dtype=torch.float32, device=device)
        outputs, step = [], self.chunk_rows(chunk_rows)
        for start in range(0, len(x_query_QF), step):
            chunk = x_query_QF[start:start + step]
            x_query_MQF = torch.from_numpy(np.stack([self._standardise(self._member_features(chunk, member), m)
                                                     for m, member in enumerate(self.members)])).to(device)
            x_MRF = torch.cat([x_train_MTF, x_query_MQF], 1)
            y_MR = torch.cat([y_train_MT, torch.zeros(M, len(chunk), device=device)], 1)
            logits_MQC, _, _ = model(x_MRF, y_MR, T, classification)
            if classification:
                probs_MQK = torch.softmax(logits_MQC[..., :num_classes].float(), -1)
                order_MK = torch.as_tensor(np.stack([m.class_permutation for m in self.members]), device=device)
                probs_MQK = probs_MQK.gather(-1, order_MK[:, None, :].expand_as(probs_MQK))
            else:
                probs_MQK = torch.softmax(logits_MQC.float(), -1)
            outputs.append(probs_MQK.mean(0).double().cpu().numpy())
        return np.concatenate(outputs)
