"""``gp``: regression datasets whose targets are exact draws from a Gaussian process.

Per dataset: a kernel expression, one lengthscale (and period, for periodic terms) per term, an
outputscale and an observation-noise variance are drawn from their hyperpriors (with ``ard``, also one relevance
factor per feature, so that each feature has its own lengthscale); inputs are uniform on [0, 1]^F or standard
normal; ``y ~ N(0, outputscale · k(X, X) + noise_variance · I)``. Every drawn value
travels with the batch: ``exact_posterior`` reads them for the posterior given the drawn hyperparameters (the
Bayes-optimal answer when they are fixed), and ``marginal_posterior`` integrates over the hyperpriors instead
(the Bayes-optimal answer when they are drawn).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from pfnforge.batch import PriorBatch
from pfnforge.blocks.covariance import NO_TERM, PERIODIC
from pfnforge.errors import ConfigError
from pfnforge.hyperpriors import Choice, Range, Scale
from pfnforge.prior import BatchShape, Prior, PriorConfig, Reference, Task
from pfnforge_priors.gp.expression import KernelExpression
from pfnforge_priors.gp.sampler import sample_gp_targets


class InputDistribution(enum.Enum):
    """How the inputs x are drawn."""

    uniform = "uniform"
    """Independent uniform features on [0, 1]."""
    normal = "normal"
    """Independent standard-normal features."""


@dataclass(kw_only=True)
class GPConfig(PriorConfig):
    """Hyperpriors of the GP prior. Every range is drawn independently per dataset (and per kernel term)."""

    kernel: Choice = field(default_factory=lambda: Choice(options=["rbf"]))
    """Kernel expressions to draw from: base kernels rbf, matern12, matern32, matern52, periodic, joined by
    '+' (mean of the terms) or '*' (product), e.g. [rbf, matern52, rbf+periodic, rbf*periodic]."""
    lengthscale: Range = field(default_factory=lambda: Range(low=0.1, high=1.0, scale=Scale.log))
    """Lengthscale of each kernel term (> 0)."""
    outputscale: Range = field(default_factory=lambda: Range(low=0.5, high=2.0, scale=Scale.log))
    """Prior variance of the latent function, k(x, x) (> 0)."""
    noise_variance: Range = field(default_factory=lambda: Range(low=1e-4, high=0.1, scale=Scale.log))
    """Variance of the Gaussian observation noise added to every target (> 0)."""
    period: Range = field(default_factory=lambda: Range(low=0.2, high=1.0, scale=Scale.log))
    """Period of each periodic term (> 0); unused by other terms."""
    inputs: InputDistribution = InputDistribution.uniform
    """Distribution of the features: uniform on [0, 1] or standard normal."""
    ard: bool = False
    """Automatic relevance determination: one lengthscale per feature, the term's lengthscale times the feature's
    own factor drawn from ``relevance`` (per dataset and feature; recorded as ``relevance_<f>``)."""
    relevance: Range = field(default_factory=lambda: Range(low=0.25, high=4.0, scale=Scale.log))
    """Factor on each feature's lengthscale under ``ard`` (> 0): the function varies slowly along a feature with
    a large factor (nearly irrelevant) and fast along one with a small factor."""
    enable_variable_num_features: bool = False
    """Draw the number of features used per dataset uniformly from 1..F (the rest stay zero)."""
    initial_jitter: float = 1e-8
    """First jitter added to the diagonal (times outputscale) when a Cholesky fails (> 0); grows 10× per try."""
    max_jitter_tries: int = 6
    """How many growing jitters to try before the batch fails (>= 0)."""

    def __post_init__(self) -> None:
        for option in self.kernel.options:
            KernelExpression.parse(option)  # raises ConfigError naming a bad expression
        for name in ("lengthscale", "outputscale", "noise_variance", "period", "relevance"):
            getattr(self, name).check(name, above=0.0)
        if not self.initial_jitter > 0:
            raise ConfigError(f"initial_jitter={self.initial_jitter} is out of range: it must be > 0")
        if self.max_jitter_tries < 0:
            raise ConfigError(f"max_jitter_tries={self.max_jitter_tries} is out of range: it must be >= 0")

    @property
    def num_term_slots(self) -> int:
        """The most terms any kernel option has: one lengthscale/period column each."""
        return max(len(KernelExpression.parse(option).terms) for option in self.kernel.options)


class GPPrior(Prior):
    """Gaussian-process regression functions with kernel hyperpriors, sampled exactly."""

    name: ClassVar[str] = "gp"
    task: ClassVar[Task] = Task.regression
    Config: ClassVar[type[PriorConfig]] = GPConfig

    def sample(self, rng: np.random.Generator, shape: BatchShape) -> PriorBatch:
        cfg: GPConfig = self.config
        B, R, F, T = shape.num_datasets, shape.num_rows, shape.num_features, cfg.num_term_slots
        expressions = [KernelExpression.parse(option) for option in cfg.kernel.options]
        option_B = cfg.kernel.sample_indices(rng, B)
        kernel_B = np.asarray(cfg.kernel.options, dtype=object)[option_B]
        kinds_BT = np.stack([e.codes(T) for e in expressions])[option_B]
        is_product_B = np.array([e.is_product for e in expressions])[option_B]
        lengthscales_BT = cfg.lengthscale.sample(rng, B * T).reshape(B, T)
        periods_BT = cfg.period.sample(rng, B * T).reshape(B, T)
        lengthscales_BT[kinds_BT == NO_TERM] = np.nan
        periods_BT[kinds_BT != PERIODIC] = np.nan
        outputscale_B = cfg.outputscale.sample(rng, B)
        noise_variance_B = cfg.noise_variance.sample(rng, B)
        num_features_B = (rng.integers(1, F, size=B, endpoint=True) if cfg.enable_variable_num_features
                          else np.full(B, F)).astype(np.int64)
        x_BFR = (rng.random((B, F, R), dtype=np.float32) if cfg.inputs is InputDistribution.uniform
                 else rng.standard_normal((B, F, R), dtype=np.float32))
        x_BFR[np.arange(F)[None, :] >= num_features_B[:, None]] = 0.0
        z_BR = rng.standard_normal((B, R))
        relevance_BF = cfg.relevance.sample(rng, B * F).reshape(B, F) if cfg.ard else np.ones((B, F))
        kernel_x_BFR = x_BFR / relevance_BF[:, :, None].astype(np.float32) if cfg.ard else x_BFR

        y_BR = np.empty((B, R), dtype=np.float32)
        jitter_B = np.zeros(B)
        failed = sample_gp_targets(kernel_x_BFR, num_features_B, kinds_BT, lengthscales_BT,
                                   periods_BT, is_product_B, outputscale_B, noise_variance_B, z_BR,
                                   cfg.initial_jitter, cfg.max_jitter_tries, y_BR, jitter_B)
        if failed >= 0:
            raise ConfigError(f"GP covariance of dataset {failed} (kernel {kernel_B[failed]!r}) stayed singular "
                              f"after {cfg.max_jitter_tries} jitter tries: raise noise_variance.low or "
                              "max_jitter_tries")
        hyperparameters = {"kernel": kernel_B}
        hyperparameters.update({f"lengthscale_{t}": lengthscales_BT[:, t] for t in range(T)})
        hyperparameters.update({f"period_{t}": periods_BT[:, t] for t in range(T)})
        hyperparameters.update(outputscale=outputscale_B, noise_variance=noise_variance_B, jitter=jitter_B)
        if cfg.ard:
            hyperparameters.update({f"relevance_{f}": relevance_BF[:, f] for f in range(F)})
        return PriorBatch(x=np.ascontiguousarray(x_BFR.transpose(0, 2, 1)), y=y_BR, num_rows=R,
                          num_features=num_features_B, num_train_rows=shape.num_train_rows, num_classes=0,
                          prior=self.name, hyperparameters=hyperparameters)

    def reference(self, batch: PriorBatch) -> Reference | None:
        """The exact GP posterior when the hyperparameters are fixed; otherwise the posterior predictive
        integrated over the hyperpriors (``marginal_posterior``), with its Monte Carlo error, where that is
        affordable (``marginal_is_affordable``: no periodic terms, at most 256 training rows); else ``None``
        (the oracle given the drawn hyperparameters is still scored)."""
        from pfnforge_priors.gp.marginal import draws_hyperparameters, marginal_is_affordable, marginal_posterior
        from pfnforge_priors.gp.posterior import exact_posterior

        if not draws_hyperparameters(self.config):
            return Reference(log_density=exact_posterior(batch).log_density, name="exact GP posterior")
        if not marginal_is_affordable(self.config, batch):
            return None
        marginal = marginal_posterior(batch, self.config)
        return Reference(log_density=marginal.log_density, mc_error=marginal.mc_error,
                         name="hyperparameter-marginal GP posterior")

    def oracle_log_likelihood(self, batch: PriorBatch) -> np.ndarray | None:
        """The exact GP posterior given each dataset's drawn hyperparameters, when they are drawn."""
        from pfnforge_priors.gp.marginal import draws_hyperparameters
        from pfnforge_priors.gp.posterior import exact_posterior

        return exact_posterior(batch).log_density if draws_hyperparameters(self.config) else None
