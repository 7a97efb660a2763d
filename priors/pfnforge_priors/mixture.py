"""``mixture``: draws each batch (or each dataset) from one of several named priors, with weights.

``prior=mixture 'prior.components=[{prior: gp, weight: 1}, {prior: bnn, weight: 2, overrides: ["num_layers=3"]}]'``
(Hydra's grammar wants each override quoted: it contains ``=``).
The ``prior`` column of the batch records which component drew each dataset. A batch mixed per dataset
carries the union of the components' hyperparameters, NaN (numbers) or null (strings) where a
component has no such hyperparameter.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pfnforge import registry
from pfnforge.batch import PriorBatch
from pfnforge.errors import ConfigError, UnknownPriorError
from pfnforge.prior import BatchShape, Prior, PriorConfig, Reference, Task


class MixtureLevel(enum.Enum):
    batch = "batch"
    """Each batch comes from one component: batches stay of one task."""
    dataset = "dataset"
    """Each dataset comes from any component."""


@dataclass(kw_only=True)
class Component:
    prior: str = ""
    """An installed prior's name."""
    weight: float = 1.0
    """Relative weight (>= 0)."""
    overrides: list[str] = field(default_factory=list)
    """``key=value`` overrides of that prior's config."""


@dataclass(kw_only=True)
class MixtureConfig(PriorConfig):
    components: list[Component] = field(default_factory=lambda: [Component(prior="gp"), Component(prior="bnn")])
    """The priors to mix, with weights and config overrides."""
    per: MixtureLevel = MixtureLevel.batch
    """Draw a component per batch or per dataset."""

    def __post_init__(self) -> None:
        if not self.components:
            raise ConfigError("components is empty: give at least one {prior: NAME, weight: W}")
        weights = [c.weight for c in self.components]
        if any(not np.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
            raise ConfigError(f"components[*].weight: component weights {weights} must be >= 0 with a positive sum"
                              " (give at least one component a weight > 0)")
        for i, component in enumerate(self.components):
            if component.prior in ("", "mixture"):
                raise ConfigError(f"components[{i}].prior: component prior {component.prior!r}: name an installed "
                                  "prior other than mixture")


def _build(index: int, component: Component) -> Prior:
    try:
        cls = registry.load_prior_class(component.prior)
    except UnknownPriorError as error:  # its message lists the installed priors
        raise UnknownPriorError(f"mixture components[{index}].prior: {error}") from error
    try:
        config = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(cls.Config),
                                                     OmegaConf.from_dotlist(list(component.overrides))))
    except (ConfigError, OmegaConfBaseException) as error:
        raise ConfigError(f"mixture components[{index}] ({component.prior!r}) overrides {list(component.overrides)}: "
                          f"{str(error).splitlines()[0]}") from error
    return cls(config)


class MixturePrior(Prior):
    """A weighted mixture of other priors."""

    name: ClassVar[str] = "mixture"
    task: ClassVar[Task] = Task.mixed
    Config: ClassVar[type[PriorConfig]] = MixtureConfig

    def __init__(self, config: MixtureConfig | None = None) -> None:
        super().__init__(config)
        self.components = [_build(i, c) for i, c in enumerate(self.config.components)]
        weights = np.array([c.weight for c in self.config.components])
        self.probabilities = weights / weights.sum()
        tasks = {c.task for c in self.components}
        self.task = tasks.pop() if len(tasks) == 1 else Task.mixed

    def emits_missing_values(self) -> bool:
        return any(c.emits_missing_values() for c in self.components)

    def _only_component(self, batch: PriorBatch) -> Prior | None:
        names = set(batch.prior)
        return next(c for c in self.components if c.name in names) if len(names) == 1 else None

    def reference(self, batch: PriorBatch) -> Reference | None:
        """The component's reference when the whole batch comes from one component (a mixture's own
        Bayes-optimal predictive would weigh every component by its evidence: not computed)."""
        component = self._only_component(batch)
        return None if component is None else component.reference(batch)

    def oracle_log_likelihood(self, batch: PriorBatch) -> np.ndarray | None:
        component = self._only_component(batch)
        return None if component is None else component.oracle_log_likelihood(batch)

    def sample(self, rng: np.random.Generator, shape: BatchShape) -> PriorBatch:
        if self.config.per is MixtureLevel.batch:
            return self.components[rng.choice(len(self.components), p=self.probabilities)].sample(rng, shape)
        counts = rng.multinomial(shape.num_datasets, self.probabilities)
        parts = [component.sample(rng, BatchShape(num_datasets=int(count), num_rows=shape.num_rows,
                                                  num_features=shape.num_features,
                                                  num_train_rows=shape.num_train_rows))
                 for component, count in zip(self.components, counts, strict=True) if count > 0]
        return _shuffle(_concatenate(parts), rng.permutation(shape.num_datasets))


def _concatenate(parts: list[PriorBatch]) -> PriorBatch:
    names = sorted({name for part in parts for name in part.hyperparameters})
    hyperparameters = {}
    for name in names:
        columns = []
        for part in parts:
            B = part.num_datasets
            values = part.hyperparameters.get(name)
            if values is None:
                values = np.full(B, None, dtype=object) if _is_text(parts, name) else np.full(B, np.nan)
            columns.append(values.astype(np.float64) if values.dtype.kind in "iub" and _has_gap(parts, name)
                           else values)
        hyperparameters[name] = np.concatenate(columns)
    cat = {key: np.concatenate([getattr(p, key) for p in parts])
           for key in ("x", "y", "num_rows", "num_features", "num_train_rows", "num_classes", "prior")}
    return PriorBatch(**cat, hyperparameters=hyperparameters)


def _is_text(parts: list[PriorBatch], name: str) -> bool:
    return any(p.hyperparameters[name].dtype == object for p in parts if name in p.hyperparameters)


def _has_gap(parts: list[PriorBatch], name: str) -> bool:
    return any(name not in p.hyperparameters for p in parts)


def _shuffle(batch: PriorBatch, order: np.ndarray) -> PriorBatch:
    return PriorBatch(x=batch.x[order], y=batch.y[order], num_rows=batch.num_rows[order],
                      num_features=batch.num_features[order], num_train_rows=batch.num_train_rows[order],
                      num_classes=batch.num_classes[order], prior=batch.prior[order],
                      hyperparameters={k: v[order] for k, v in batch.hyperparameters.items()})
