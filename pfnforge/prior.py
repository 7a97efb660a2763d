"""The prior plugin API: a ``Prior`` draws a batch of synthetic datasets from the generator it is handed.

A plugin subclasses ``Prior``, nests a typed ``Config`` dataclass (its hyperparameters and hyperpriors,
which becomes the Hydra structured config ``prior=<name>``), and implements ``sample``. It is found through
the ``pfnforge.priors`` entry-point group (see ``pfnforge.registry``). Rules a prior keeps:

- randomness comes only from the generator passed in: same seed, same bytes;
- importing the plugin is cheap: Numba kernels compile lazily on first use and cache.
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from pfnforge.batch import PriorBatch
from pfnforge.errors import ConfigError


class Task(enum.Enum):
    """What a prior's datasets ask a model to predict."""

    regression = "regression"
    classification = "classification"
    mixed = "mixed"
    """Both kinds of dataset, e.g. from a mixture of priors."""


@dataclass(kw_only=True)
class BatchShape:
    """The shape of one batch of datasets; the same for every rank at a given step."""

    num_datasets: int
    """Datasets in the batch (B)."""
    num_rows: int
    """Rows per dataset (R), training and test rows together."""
    num_features: int
    """Feature columns per dataset (F); a prior may leave trailing columns of a dataset unused (zero)."""
    num_train_rows: int
    """Rows before the train/test split point; the remaining rows are test rows."""

    def __post_init__(self) -> None:
        for name in ("num_datasets", "num_rows", "num_features"):
            value = getattr(self, name)
            if value < 1:
                raise ConfigError(f"{name}={value} is out of range: it must be >= 1")
        if not 0 <= self.num_train_rows <= self.num_rows:
            raise ConfigError(f"num_train_rows={self.num_train_rows} is out of range: it must lie in "
                              f"[0, num_rows={self.num_rows}] (more train rows than rows)")


@dataclass(kw_only=True, eq=False)
class Reference:
    """The Bayes-optimal posterior predictive of a batch's test rows, for priors that know it: the predictive of
    a model that sees only each dataset's rows and knows the prior exactly. Trained models are judged by it."""

    log_density: np.ndarray
    """(B, R) log-density of each test row, NaN on the training rows."""
    name: str
    """Which predictive this is, in words (e.g. "exact GP posterior", "hyperparameter-marginal GP posterior")."""
    mc_error: np.ndarray | None = None
    """(B,) Monte Carlo standard error of each dataset's mean test-row log-density, where it is estimated."""


@dataclass(kw_only=True)
class PriorConfig:
    """Base of every prior's nested ``Config``: a ``kw_only`` dataclass validated in ``__post_init__``."""


class Prior(abc.ABC):
    """A distribution over datasets. Subclasses set ``name``, ``task`` and ``Config`` and implement ``sample``."""

    name: ClassVar[str]
    """The name users type (``prior=gp``); equal to the plugin's entry-point name."""
    task: ClassVar[Task]
    """Which kind of datasets the prior produces."""
    Config: ClassVar[type[PriorConfig]]
    """The typed hyperparameters of the prior."""

    def __init__(self, config: PriorConfig | None = None) -> None:
        config = self.Config() if config is None else config
        if not isinstance(config, self.Config):
            raise ConfigError(f"prior {self.name!r} takes a {self.Config.__qualname__}, "
                              f"got a {type(config).__qualname__}")
        self.config = config

    @abc.abstractmethod
    def sample(self, rng: np.random.Generator, shape: BatchShape) -> PriorBatch:
        """Draw ``shape.num_datasets`` datasets using only ``rng`` for randomness."""

    def emits_missing_values(self) -> bool:
        """Whether ``x`` may hold NaN for missing values under this configuration."""
        return False

    def reference(self, batch: PriorBatch) -> Reference | None:
        """The Bayes-optimal predictive of the batch's test rows, for priors that know it (the GP prior does);
        ``None`` otherwise."""
        return None

    def oracle_log_likelihood(self, batch: PriorBatch) -> np.ndarray | None:
        """(B, R) log-density of each test row given each dataset's *drawn* latent values (e.g. its kernel
        hyperparameters), which no model sees: a bound below the reference. ``None`` where the prior draws no
        latent values the reference must integrate over (then the two are the same) or does not know it."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"
