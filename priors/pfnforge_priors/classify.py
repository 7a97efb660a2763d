"""``classify``: any regression prior as a classification prior (TabPFN v1's ``flexible_categorical``).

``prior=classify prior.base=gp 'prior.overrides=["lengthscale.low=0.3"]'`` draws regression datasets from
the base prior and turns each target into classes. Per dataset: a number of classes K, then K - 1 cut points on
the target, either at random quantiles of the dataset's targets (``rank`` cuts: every class gets rows, and
the balance varies) or at random values between the targets' minimum and maximum (``value`` cuts: classes may
be tiny or empty, as thresholds on a real quantity are); then the class labels are permuted, so the label
order says nothing about the target's order (``permute_classes``). The base's features, missing values and
hyperparameters pass through; ``cut`` and ``num_classes`` are added.

Shapes: B datasets, R rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from pfnforge.batch import PriorBatch
from pfnforge.errors import ConfigError
from pfnforge.hyperpriors import IntRange, Range
from pfnforge.prior import BatchShape, Prior, PriorConfig, Task
from pfnforge_priors.mixture import Component, _build

MAX_CLASSES = 10


@dataclass(kw_only=True)
class ClassifyConfig(PriorConfig):
    """The regression prior to wrap and how its targets become classes."""

    base: str = "gp"
    """An installed regression prior (or one configured for regression)."""
    overrides: list[str] = field(default_factory=list)
    """``key=value`` overrides of the base prior's config."""
    num_classes: IntRange = field(default_factory=lambda: IntRange(low=2, high=MAX_CLASSES))
    """Classes per dataset (2..10), capped at the dataset's rows."""
    value_cut_probability: float = 0.5
    """Probability that a dataset's cuts are random values in the target's range rather than random quantiles
    (in [0, 1])."""
    quantile_spread: Range = field(default_factory=lambda: Range(low=0.0, high=1.0))
    """Rank cuts: 0 puts them at equal quantiles (balanced classes), 1 at uniform random quantiles; drawn per
    dataset, in [0, 1]."""
    permute_classes: bool = True
    """Permute the class labels per dataset (false: class k holds the k-th lowest targets)."""

    def __post_init__(self) -> None:
        if not 2 <= self.num_classes.low <= self.num_classes.high <= MAX_CLASSES:
            raise ConfigError(f"num_classes=[{self.num_classes.low}, {self.num_classes.high}] is out of range: "
                              f"classes lie in 2..{MAX_CLASSES}")
        if not 0.0 <= self.value_cut_probability <= 1.0:
            raise ConfigError(f"value_cut_probability={self.value_cut_probability} is out of range: it is a "
                              "probability in [0, 1]")
        self.quantile_spread.check("quantile_spread", at_least=0.0, at_most=1.0)
        if self.base in ("", "classify"):
            raise ConfigError(f"base={self.base!r}: name an installed regression prior other than classify")


class ClassifyPrior(Prior):
    name: ClassVar[str] = "classify"
    task: ClassVar[Task] = Task.classification
    Config: ClassVar[type[ClassifyConfig]] = ClassifyConfig

    def __init__(self, config: ClassifyConfig | None = None) -> None:
        super().__init__(config)
        self.base = _build(0, Component(prior=self.config.base, overrides=list(self.config.overrides)))
        if self.base.task is not Task.regression:
            raise ConfigError(f"base={self.config.base!r} draws {self.base.task.value} datasets: classify wraps a "
                              "regression prior (configure it for regression, e.g. classification=false)")

    def emits_missing_values(self) -> bool:
        return self.base.emits_missing_values()

    def sample(self, rng: np.random.Generator, shape: BatchShape) -> PriorBatch:
        cfg = self.config
        batch = self.base.sample(rng, shape)
        B, R = batch.y.shape
        if cfg.num_classes.low > R:
            raise ConfigError(f"{R} rows cannot hold num_classes.low={cfg.num_classes.low} classes: use more rows")
        num_classes_B = np.minimum(cfg.num_classes.sample(rng, B), R)
        by_value_B = rng.random(B) < cfg.value_cut_probability
        spread_B = cfg.quantile_spread.sample(rng, B)
        labels_BR = np.empty((B, R), np.float32)
        for b in range(B):
            y_R, K = batch.y[b].astype(np.float64), int(num_classes_B[b])
            if by_value_B[b]:
                cuts = np.sort(rng.uniform(y_R.min(), y_R.max(), K - 1))
            else:  # between equal quantiles (spread 0) and uniform random ones (spread 1)
                levels = (1 - spread_B[b]) * np.arange(1, K) / K + spread_B[b] * np.sort(rng.uniform(0, 1, K - 1))
                cuts = np.quantile(y_R, levels)
            classes_R = np.searchsorted(cuts, y_R, side="right")
            order = rng.permutation(K) if cfg.permute_classes else np.arange(K)
            labels_BR[b] = order[classes_R]
        hyperparameters = {**batch.hyperparameters, "cut": np.where(by_value_B, "value", "rank").astype(object)}
        return PriorBatch(x=batch.x, y=labels_BR, num_rows=batch.num_rows, num_features=batch.num_features,
                          num_train_rows=batch.num_train_rows, num_classes=num_classes_B.astype(np.int64),
                          prior=self.name, hyperparameters=hyperparameters)
