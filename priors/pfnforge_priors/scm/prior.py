"""``scm``: TabPFN-style structural causal models over tabular data.

Per dataset: the hyperparameters are drawn from their hyperpriors (``SCMConfig``), then a random DAG
(``graph.sample_graph``) whose nodes are random MLP units or random decision trees over their parents, with
per-node noise; its nodes are evaluated in causal order (``mechanisms.evaluate_graph``). The target is read
from one node (regression: standardised; classification: cut by rank into 2..10 classes whose sizes span
the drawn imbalance, labels in random order), the features from others, then made to look like real
tables: ordinal categorical codes, Kumaraswamy/power warps, quantisation, missing values (MCAR or
value-dependent). Every per-dataset value drawn travels in ``hyperparameters``.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from pfnforge.batch import PriorBatch
from pfnforge.blocks.tabular import assign_classes_by_rank, class_counts
from pfnforge.errors import ConfigError
from pfnforge.prior import BatchShape, Prior, PriorConfig, Task
from pfnforge_priors.scm.config import SCMConfig
from pfnforge_priors.scm.graph import SCMGraph, sample_graph
from pfnforge_priors.scm.mechanisms import (
    MCAR,
    NO_MISSING,
    VALUE_DEPENDENT,
    evaluate_graph,
    inject_outliers,
    write_features,
)

MISSINGNESS = {NO_MISSING: "none", MCAR: "mcar", VALUE_DEPENDENT: "value_dependent"}
META_LEVEL = ("num_latent_nodes", "num_parents", "weight_scale", "noise_std")
"""The hyperpriors that ``meta_hyperpriors`` narrows per batch."""


class SCMPrior(Prior):
    """Random DAGs of MLP and tree mechanisms, read out as realistic tables; classification or regression."""

    name: ClassVar[str] = "scm"
    task: ClassVar[Task] = Task.mixed  # per instance: what the config asks for
    Config: ClassVar[type[PriorConfig]] = SCMConfig

    def __init__(self, config: SCMConfig | None = None) -> None:
        super().__init__(config)
        self.task = Task.classification if self.config.classification else Task.regression

    def emits_missing_values(self) -> bool:
        return self.config.emits_missing_values()

    def sample(self, rng: np.random.Generator, shape: BatchShape) -> PriorBatch:
        return self.sample_with_graphs(rng, shape)[0]

    def sample_with_graphs(self, rng: np.random.Generator, shape: BatchShape) -> tuple[PriorBatch, list[SCMGraph]]:
        """The batch, and the graph each dataset was drawn from (which node is the target, which the features)."""
        cfg: SCMConfig = self.config
        B, R, F = shape.num_datasets, shape.num_rows, shape.num_features
        if cfg.classification and cfg.num_classes.low > R:
            raise ConfigError(f"{R} rows cannot hold num_classes.low={cfg.num_classes.low} classes: use more rows"
                              " or lower num_classes.low")
        extra = np.random.default_rng(rng.integers(2**63))  # outliers, redundant columns, label noise
        hyperpriors = {name: getattr(cfg, name) for name in META_LEVEL}
        if cfg.meta_hyperpriors:
            hyperpriors = {name: hyperprior.narrowed(rng) for name, hyperprior in hyperpriors.items()}
            cfg = dataclasses.replace(cfg, **hyperpriors)
        h = {name: getattr(cfg, name).sample(rng, B) for name in ("num_latent_nodes", "num_root_nodes", "num_parents")}
        for name in ("irrelevant_fraction", "target_position", "tree_fraction", "weight_scale", "noise_std",
                     "categorical_fraction", "warp_fraction", "quantize_fraction", "heteroscedastic_fraction",
                     "heavy_tailed_noise_fraction", "redundant_fraction", "outlier_rate"):
            h[name] = getattr(cfg, name).sample(rng, B)
        num_features = np.minimum(cfg.num_features.sample(rng, B), F).astype(np.int32)
        num_classes = np.minimum(cfg.num_classes.sample(rng, B), R).astype(np.int32) if cfg.classification else 0
        if cfg.classification:
            h["class_imbalance"] = cfg.class_imbalance.sample(rng, B)
            h["label_noise"] = cfg.label_noise.sample(rng, B)
        has_missing = (rng.random(B) < cfg.missing_dataset_probability) & cfg.emits_missing_values()
        h["missing_rate"] = np.where(has_missing, cfg.missing_rate.sample(rng, B), 0.0)
        dependent = rng.random(B) < cfg.value_dependent_probability
        missing = np.where(has_missing, np.where(dependent, VALUE_DEPENDENT, MCAR), NO_MISSING)

        x_BRF = np.zeros((B, R, F), dtype=np.float32)
        y_BR = np.empty((B, R), dtype=np.float32)
        num_categorical = np.zeros(B, dtype=np.int64)
        graphs = []
        for b in range(B):
            graph = sample_graph(
                rng, cfg, num_features=int(num_features[b]), num_latent=int(h["num_latent_nodes"][b]),
                num_roots=int(h["num_root_nodes"][b]), max_parents=int(h["num_parents"][b]),
                irrelevant_fraction=h["irrelevant_fraction"][b], target_position=h["target_position"][b],
                tree_fraction=h["tree_fraction"][b], weight_scale=h["weight_scale"][b],
                noise_std=h["noise_std"][b], num_rows=R, heteroscedastic_fraction=h["heteroscedastic_fraction"][b],
                heavy_tailed_fraction=h["heavy_tailed_noise_fraction"][b])
            values_NR = np.empty((graph.num_nodes, R))
            evaluate_graph(rng, graph.parent_offsets, graph.parents, graph.weights, graph.kind, graph.code, graph.gain,
                           graph.shift, graph.noise_std, graph.noise_df, graph.heteroscedastic, graph.tree_depth,
                           graph.split_offsets, graph.split_input, graph.split_row, graph.leaf_offsets,
                           graph.leaf_value, values_NR)
            categorical = self._write_features(rng, graph, values_NR, b, h, int(missing[b]), x_BRF[b])
            num_categorical[b] = int(categorical.sum())
            _corrupt_features(extra, x_BRF[b, :, :len(categorical)], categorical, h["outlier_rate"][b],
                              h["redundant_fraction"][b])
            target_R = values_NR[graph.target]
            if cfg.classification:
                y_BR[b] = _classes(rng, target_R, int(num_classes[b]), h["class_imbalance"][b])
                _flip_labels(extra, y_BR[b], int(num_classes[b]), h["label_noise"][b])
            else:
                y_BR[b] = (target_R - target_R.mean()) / max(target_R.std(), 1e-12)
            graphs.append(graph)
        h["num_categorical_features"] = num_categorical
        h["missingness"] = np.asarray([MISSINGNESS[int(m)] for m in missing], dtype=object)
        batch = PriorBatch(x=x_BRF, y=y_BR, num_rows=R, num_features=num_features,
                           num_train_rows=shape.num_train_rows, num_classes=num_classes, prior=self.name,
                           hyperparameters={k: np.asarray(v) for k, v in h.items()})
        return batch, graphs

    def _write_features(self, rng: np.random.Generator, graph: SCMGraph, values_NR: np.ndarray, b: int,
                        h: dict[str, np.ndarray], missing: int, x_RF: np.ndarray) -> np.ndarray:
        """Draw each feature's transforms and write the columns; returns which features are categorical."""
        cfg: SCMConfig = self.config
        nf, R = len(graph.feature_nodes), values_NR.shape[1]
        categorical = rng.random(nf) < h["categorical_fraction"][b]
        num_cuts = np.where(categorical, np.minimum(cfg.num_categories.sample(rng, nf), R + 1) - 1, 0)
        category_offsets = np.concatenate([[0], np.cumsum(num_cuts)]).astype(np.int64)
        category_rows = rng.integers(0, R, category_offsets[-1])
        category_codes = _category_codes(rng, num_cuts, categorical & (rng.random(nf) < cfg.category_permutation))
        warp = np.where(rng.random(nf) < h["warp_fraction"][b], 1 + (rng.random(nf) < 0.5), 0).astype(np.int64)
        warp_a, warp_b = cfg.warp_exponent.sample(rng, nf), cfg.warp_exponent.sample(rng, nf)
        levels = np.where(rng.random(nf) < h["quantize_fraction"][b], cfg.quantize_levels.sample(rng, nf), 0)
        strength = cfg.missing_strength.sample(rng, nf) * rng.choice([-1.0, 1.0], nf)
        write_features(rng, values_NR, graph.feature_nodes, category_offsets, category_rows, category_codes, warp,
                       warp_a, warp_b, levels.astype(np.int64), missing, float(h["missing_rate"][b]), strength, x_RF)
        return categorical


def _category_codes(rng: np.random.Generator, num_cuts: np.ndarray, permuted: np.ndarray) -> np.ndarray:
    """Feature after feature, the codes 0..K written for ordinal codes 0..K (K = num_cuts): a random
    permutation where ``permuted``, else the identity; one sort for all features."""
    sizes = num_cuts + 1
    feature = np.repeat(np.arange(len(sizes)), sizes)
    local = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    keys = np.where(permuted[feature], rng.random(len(feature)), local / sizes[feature])
    order = np.lexsort((keys, feature))
    return (order - np.repeat(np.cumsum(sizes) - sizes, sizes)).astype(np.float64)


def _corrupt_features(rng: np.random.Generator, x_RF: np.ndarray, categorical: np.ndarray, outlier_rate: float,
                      redundant_fraction: float) -> None:
    """Outliers in the non-categorical columns (mean ± 5..20 std, missing cells left missing), then redundant
    columns: each column after the first, with probability ``redundant_fraction``, becomes a copy of an
    earlier column or (half of them) a random linear combination of two earlier ones."""
    R, F = x_RF.shape
    if outlier_rate > 0:
        numeric = np.flatnonzero(~categorical)
        cells = rng.binomial(R * len(numeric), outlier_rate)
        if cells:
            flat = rng.choice(R * len(numeric), cells, replace=False)
            sizes = rng.uniform(5.0, 20.0, cells) * rng.choice([-1.0, 1.0], cells)
            inject_outliers(x_RF, flat // len(numeric), numeric[flat % len(numeric)], sizes)
    if redundant_fraction > 0 and F > 1:
        for j in np.flatnonzero(rng.random(F - 1) < redundant_fraction) + 1:
            first, second = rng.integers(0, j, 2)
            if rng.random() < 0.5:
                x_RF[:, j] = x_RF[:, first]
            else:
                a, c = rng.standard_normal(2)
                x_RF[:, j] = a * x_RF[:, first] + c * x_RF[:, second]


def _flip_labels(rng: np.random.Generator, y_R: np.ndarray, num_classes: int, rate: float) -> None:
    """Replace a ``rate`` share of labels (each row independently) by another class, uniformly."""
    if rate <= 0 or num_classes < 2:
        return
    flip = rng.random(y_R.shape[0]) < rate
    y_R[flip] = (y_R[flip] + rng.integers(1, num_classes, int(flip.sum()))) % num_classes


def _classes(rng: np.random.Generator, target_R: np.ndarray, num_classes: int, imbalance: float) -> np.ndarray:
    """Labels 0..C-1 by rank of the target: class shares ∝ imbalance^u with u = 0 and 1 for two of the
    classes (so largest / smallest = imbalance) and uniform for the rest; labels in random order."""
    exponents = rng.random(num_classes)
    exponents[:2] = 0.0, 1.0
    proportions = imbalance**exponents
    counts = np.empty(num_classes, dtype=np.int64)
    class_counts(len(target_R), proportions / proportions.sum(), counts)
    labels = rng.permutation(num_classes).astype(np.float64)
    out = np.empty(len(target_R))
    assign_classes_by_rank(target_R, counts, labels, out)
    return out
