"""The ensemble an estimator runs: members that differ in feature order (and subset or projection), class-label
order, feature transform and (on datasets larger than the model's row limit) training-row subset; their contexts
(transformed training rows), and the chunked forward pass that averages their predictive distributions. Test rows
never attend to each other, so chunking the query rows is exact. The members' training rows run through the model
once (at ``fit``): their per-layer keys and values (the model's ``Context``) are kept with the fitted ensemble, up
to ``CONTEXT_CACHE_BYTES``, so ``predict`` only runs the query rows; a refit builds a new ensemble, and pickling
drops the cache (it is rebuilt on the next ``predict``).

Columns that are constant on the training rows carry no information and are never shown to the model (unless
every column is constant). Datasets with more informative columns than the model takes are reduced per member:
``subsample`` shows each member a random subset, ``pca`` the leading principal components of the member's
transformed, standardised training rows (TabPFN-style SVD features), ``mixed`` alternates the two over members.

Classification datasets with more classes than the model's head (K > G) are coded: each member maps the K
classes onto G groups (a balanced random code; at least ``MIN_CODED_MEMBERS`` members, more until every class
has its own code word), learns and predicts groups, and a class's probability is the
normalised geometric mean over members of its group's probability shared evenly within the group (log-linear
pooling of the members' class distributions, as error-correcting output codes do).

Legend: M members, T training rows, Q query rows of one chunk, F features a member shows the model,
K classes, G the model's classes (groups), N buckets.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from enum import Enum

import numpy as np
import torch

from pfnforge.model.api import Architecture, Context

MIN_CODED_MEMBERS = 8
"""Fewest ensemble members for a dataset with more classes than the model's head (each sees class groups)."""
CONTEXT_CACHE_BYTES = 1 << 30
"""Largest context a fitted ensemble keeps between ``predict`` calls; a larger one is recomputed per call."""


class FeatureReduction(str, Enum):
    """How a member sees a dataset with more informative columns than the model takes."""

    subsample = "subsample"
    pca = "pca"
    mixed = "mixed"


class FeatureTransform(str, Enum):
    """How a member maps numeric features before the model standardises them (categoricals stay codes)."""

    none = "none"
    quantile = "quantile"
    power = "power"


@dataclass
class Member:
    features: np.ndarray
    """Indices of the encoded columns, in the order this member shows them to the model (with ``projection``:
    the columns projected)."""
    transform: FeatureTransform
    class_permutation: np.ndarray | None
    """Model label of each original class (classification; with more classes than the model's head, the group
    of each class), ``None`` for regression."""
    rows: np.ndarray | None = None
    """Training rows this member's context holds (``None``: all)."""
    projection: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    """(mean, std, components F × K) of a principal-component reduction of ``features``, or ``None``."""


def _robust_scale(x_TF: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        center = np.nan_to_num(np.nanmedian(x_TF, axis=0))
        spread = np.nan_to_num(np.nanstd(x_TF, axis=0), nan=1.0, posinf=1.0)
    return center, np.where(spread > 0, spread, 1.0)


def _moments(x_TF: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations over the non-missing values (0 and 1 where undefined)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, std = np.nanmean(x_TF, axis=0), np.nanstd(x_TF, axis=0)
    return np.nan_to_num(mean), np.where(np.nan_to_num(std) > 0, std, 1.0)


def informative_columns(x_TF: np.ndarray) -> np.ndarray:
    """Indices of the columns that vary on these rows: two distinct values, or values and missing ones (the
    missing-value indicator then carries information). All columns where none varies."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        present_F = (~np.isnan(x_TF)).sum(0)
        spread_F = np.nanmax(x_TF, axis=0) - np.nanmin(x_TF, axis=0)
    varying = (present_F > 0) & ((np.nan_to_num(spread_F) > 0) | (present_F < len(x_TF)))
    columns = np.flatnonzero(varying)
    return columns if columns.size else np.arange(x_TF.shape[1])


def class_codes(num_classes: int, num_groups: int, num_members: int, rng: np.random.RandomState) -> list[np.ndarray]:
    """Per member, the group (< ``num_groups``) of each of ``num_classes`` classes: balanced random codes, at
    least ``MIN_CODED_MEMBERS`` of them, and more until every class has its own code word."""
    codes = [rng.permutation(num_classes) % num_groups for _ in range(max(num_members, MIN_CODED_MEMBERS))]
    while len({tuple(word) for word in np.stack(codes).T}) < num_classes:
        codes.append(rng.permutation(num_classes) % num_groups)
    return codes


class Ensemble:
    """Built at ``fit`` from the encoded training matrix; ``predict`` averages the members' distributions."""

    def __init__(self, x_train_TF: np.ndarray, categorical: list[int], *, num_members: int, max_features: int,
                 subsample_features: bool, transforms: tuple[FeatureTransform, ...], num_classes: int | None,
                 rng: np.random.RandomState, enable_scaling: bool = True,
                 feature_reduction: FeatureReduction = FeatureReduction.mixed,
                 max_rows: int | None = None, informative: np.ndarray | None = None,
                 max_classes: int | None = None) -> None:
        """``enable_scaling=False`` (models trained without standardisation, whose inputs' scale carries
        information): features reach the model as given, only reordered. ``subsample_features``: reduce
        datasets with more informative columns than ``max_features`` as ``feature_reduction`` says (otherwise
        every informative column is shown). ``max_rows``: each member's context is its own random subset of
        this many training rows where there are more (``None``: all rows); regression members share one subset,
        since averaging bar distributions needs the same targets behind every member. ``informative``: the
        result of ``informative_columns(x_train_TF)`` where the caller has it already. ``max_classes``: the
        model's classes G; more classes than that are coded onto groups (see ``class_codes``)."""
        num_train, num_features = x_train_TF.shape
        self.enable_scaling = enable_scaling
        self.numeric = np.array([j for j in range(num_features) if j not in set(categorical)], dtype=int)
        self.center, self.spread = _robust_scale(x_train_TF[:, self.numeric])
        if not enable_scaling:
            self.center, self.spread = np.zeros_like(self.center), np.ones_like(self.spread)
        if num_train < 5 or not enable_scaling:  # too few rows to fit a quantile or power map, or raw inputs
            transforms = (FeatureTransform.none,)
        self.fitted = {kind: self._fit(kind, x_train_TF) for kind in set(transforms)}
        train_by_kind = {kind: self._transformed(x_train_TF, kind) for kind in self.fitted}
        self.informative = informative_columns(x_train_TF) if informative is None else informative
        wide = self.informative.size > max_features and subsample_features
        subset = max_rows is not None and num_train > max_rows

        def draw_rows() -> np.ndarray:
            return np.sort(rng.choice(num_train, max_rows, replace=False))

        # regression members share one subset: their bucket grids coincide only if their targets do
        shared_rows = draw_rows() if subset and num_classes is None else None
        self.num_groups = num_classes
        codes = None
        if num_classes is not None and max_classes is not None and num_classes > max_classes:
            self.num_groups = max_classes
            codes = class_codes(num_classes, max_classes, num_members, rng)
            num_members = len(codes)
        self.members = []
        for m in range(num_members):
            features = self.informative[rng.permutation(self.informative.size)]
            project = wide and (feature_reduction is FeatureReduction.pca
                                or (feature_reduction is FeatureReduction.mixed and m % 2 == 1))
            if wide and not project:
                features = features[:max_features]
            permutation = codes[m] if codes is not None else rng.permutation(num_classes) if num_classes else None
            member = Member(features=features, transform=transforms[m % len(transforms)],
                            class_permutation=permutation, rows=draw_rows() if subset and num_classes else shared_rows)
            if project:
                member.projection = self._fit_projection(train_by_kind[member.transform], member, max_features, rng)
            self.members.append(member)
        raw = [self._member_features(train_by_kind[m.transform] if m.rows is None
                                     else train_by_kind[m.transform][m.rows], m) for m in self.members]
        self.train_stats = [_moments(x) for x in raw]
        # C order: a pickle round trip keeps values but not strides, and reductions follow the memory order
        self.x_train_MTF = np.ascontiguousarray(np.stack([self._standardise(x, i) for i, x in enumerate(raw)]))
        self._cached: tuple | None = None  # (model, device, y_train_T, Context)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_cached"] = None  # tensors of a model that may not travel with the pickle
        return state

    @property
    def context_nbytes(self) -> int:
        """Memory the kept context holds (0 when none is kept)."""
        cached = getattr(self, "_cached", None)
        return cached[3].nbytes if cached is not None else 0

    def context(self, model: Architecture, y_train_T: np.ndarray, *, num_classes: int | None,
                device: str | torch.device) -> Context:
        """The members' training rows (targets ``y_train_T``) run through ``model``: kept, and reused while the
        model, device and targets stay the same."""
        cached = getattr(self, "_cached", None)
        if cached is not None and cached[0] is model and cached[1] == str(device) \
                and np.array_equal(cached[2], y_train_T):
            return cached[3]
        classification = num_classes is not None
        x_train_MTF = torch.from_numpy(self.x_train_MTF).to(device)
        y_rows = [y_train_T if member.rows is None else y_train_T[member.rows] for member in self.members]
        y_rows = [member.class_permutation[y.astype(int)] if classification else y
                  for member, y in zip(self.members, y_rows, strict=True)]
        y_train_MT = torch.as_tensor(np.stack(y_rows), dtype=torch.float32, device=device)
        context = model.encode_context(x_train_MTF, y_train_MT, classification)
        self._cached = (model, str(device), y_train_T.copy(), context) \
            if context.nbytes <= CONTEXT_CACHE_BYTES else None
        return context

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

    @staticmethod
    def _fit_projection(transformed_TF: np.ndarray, member: Member, num_components: int,
                        rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean, std, components F × K) of the member's columns of all training rows under its transform: the
        leading right singular vectors of the standardised matrix (missing values at the mean), in a random
        order."""
        x_TF = transformed_TF[:, member.features]
        mean, std = _moments(x_TF)
        z_TF = np.nan_to_num((x_TF - mean) / std)
        _, _, vt_KF = np.linalg.svd(z_TF, full_matrices=False)
        components_FK = vt_KF[:min(num_components, len(vt_KF))].T
        return mean, std, components_FK[:, rng.permutation(components_FK.shape[1])]

    def _transformed(self, x_RF: np.ndarray, kind: FeatureTransform) -> np.ndarray:
        """All columns of ``x_RF`` with the numeric ones robustly scaled and mapped by the fitted ``kind``."""
        x_RF = x_RF.copy()
        scaled = (x_RF[:, self.numeric] - self.center) / self.spread
        transformer = self.fitted.get(kind)
        if transformer is not None:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                mapped = transformer.transform(scaled)
            broken = ~np.isfinite(mapped) & np.isfinite(scaled)
            scaled = np.where(broken.any(axis=0, keepdims=True), scaled, mapped)
        x_RF[:, self.numeric] = scaled
        return x_RF

    def _member_features(self, transformed_RF: np.ndarray, member: Member) -> np.ndarray:
        """What the member shows the model of rows already under its transform: its columns, or their projection."""
        x_RF = transformed_RF[:, member.features]
        if member.projection is None:
            return x_RF
        mean, std, components_FK = member.projection
        return np.nan_to_num((x_RF - mean) / std) @ components_FK

    def _standardise(self, x_RF: np.ndarray, m: int) -> np.ndarray:
        if not self.enable_scaling:
            return x_RF.astype(np.float32)
        mean, std = self.train_stats[m]
        return np.clip((x_RF - mean) / std, -1e4, 1e4).astype(np.float32)

    def member_inputs(self, x_RF: np.ndarray) -> np.ndarray:
        """(M, R, F) float32: what each member shows the model of encoded rows ``x_RF`` as query rows."""
        by_kind = {kind: self._transformed(x_RF, kind) for kind in self.fitted}  # once per transform
        return np.stack([self._standardise(self._member_features(by_kind[member.transform], member), m)
                         for m, member in enumerate(self.members)])

    def chunk_rows(self, limit: int | None) -> int:
        """Query rows per forward pass: bounds attention memory (M × Q × T scores per head) near 2^22."""
        M, T = len(self.members), self.x_train_MTF.shape[1]
        return limit or max(16, (1 << 22) // (M * max(T, 1)))

    @torch.inference_mode()
    def predict(self, model: Architecture, y_train_T: np.ndarray, x_query_QF: np.ndarray, *, num_classes: int | None,
                device: str | torch.device, chunk_rows: int | None = None) -> np.ndarray:
        """(rows, K) averaged class probabilities, or (rows, N) averaged bucket probabilities (standardised
        target units; members share the targets, so their bucket grids coincide)."""
        classification = num_classes is not None
        context = self.context(model, y_train_T, num_classes=num_classes, device=device)
        outputs, step = [], self.chunk_rows(chunk_rows)
        for start in range(0, len(x_query_QF), step):
            chunk = x_query_QF[start:start + step]
            x_query_MQF = torch.from_numpy(self.member_inputs(chunk)).to(device)
            logits_MQC = model.predict_from_context(context, x_query_MQF)
            if not classification:
                outputs.append(torch.softmax(logits_MQC.float(), -1).mean(0).double().cpu().numpy())
                continue
            probs_MQG = torch.softmax(logits_MQC[..., :self.num_groups].float(), -1)
            order_MK = torch.as_tensor(np.stack([m.class_permutation for m in self.members]), device=device)
            probs_MQK = probs_MQG.gather(-1, order_MK[:, None, :].expand(-1, len(chunk), -1))
            if self.num_groups == num_classes:  # one label per class: average the members' distributions
                outputs.append(probs_MQK.mean(0).double().cpu().numpy())
                continue
            sizes_MK = torch.stack([torch.bincount(row, minlength=self.num_groups)[row] for row in order_MK])
            log_MQK = torch.log((probs_MQK / sizes_MK[:, None, :]).double().clamp_min(1e-300))
            outputs.append(torch.softmax(log_MQK.mean(0), -1).cpu().numpy())
        return np.concatenate(outputs)
