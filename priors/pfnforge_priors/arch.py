"""``arch``: a prior over network architectures and their weights (the PFN paper's "Bayesian NAS" prior).

Per dataset: depth, width and activation are drawn, then weight and noise scales from Gamma hyperpriors,
then the network's weights; targets are its outputs plus noise (regression) or classes cut from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from pfnforge.batch import PriorBatch
from pfnforge.blocks.dense import standard_normal_f32
from pfnforge.errors import ConfigError
from pfnforge.hyperpriors import Choice, Gamma, IntRange
from pfnforge.prior import BatchShape, Prior, PriorConfig, Task
from pfnforge_priors.bnn import MAX_CLASSES, Activation, outputs_to_targets, random_mlp


@dataclass(kw_only=True)
class ArchConfig(PriorConfig):
    """Hyperpriors over the architecture and the scales, all drawn per dataset."""

    classification: bool = False
    """Classification datasets (classes cut at random quantiles of the output) instead of regression."""
    num_layers: IntRange = field(default_factory=lambda: IntRange(low=1, high=4))
    """Hidden layers (>= 0)."""
    width: IntRange = field(default_factory=lambda: IntRange(low=2, high=150))
    """Units per hidden layer (>= 1)."""
    activation: Choice = field(default_factory=lambda: Choice(options=["tanh", "relu", "sigmoid", "sin"]))
    """Hidden nonlinearities to draw from: tanh, relu, sigmoid, sin, identity."""
    weight_scale: Gamma = field(default_factory=lambda: Gamma(shape=2.0, scale=0.5))
    """Weight std times sqrt(fan_in)."""
    bias_scale: Gamma = field(default_factory=lambda: Gamma(shape=2.0, scale=0.25))
    """Bias std."""
    noise_std: Gamma = field(default_factory=lambda: Gamma(shape=1.0, scale=0.1, offset=0.001))
    """Std of the Gaussian noise on the output."""
    num_classes: IntRange = field(default_factory=lambda: IntRange(low=2, high=MAX_CLASSES))
    """Classes per classification dataset (2..10)."""
    permute_classes: bool = True
    """The classes of the output's cuts in a random order per dataset (false: class k holds the k-th lowest)."""

    def __post_init__(self) -> None:
        if self.num_layers.low < 0:
            raise ConfigError(f"num_layers.low={self.num_layers.low} is out of range: it must be >= 0")
        if self.width.low < 1:
            raise ConfigError(f"width.low={self.width.low} is out of range: it must be >= 1")
        unknown = set(self.activation.options) - {a.value for a in Activation}
        if unknown:
            raise ConfigError(f"activation: unknown {sorted(unknown)}; choose from {[a.value for a in Activation]}")
        if not 2 <= self.num_classes.low <= self.num_classes.high <= MAX_CLASSES:
            raise ConfigError(f"num_classes=[{self.num_classes.low}, {self.num_classes.high}] is out of range: "
                              f"classes must lie in [2, {MAX_CLASSES}]")


class ArchPrior(Prior):
    """Random architectures with random weights; regression or classification."""

    name: ClassVar[str] = "arch"
    task: ClassVar[Task] = Task.mixed
    Config: ClassVar[type[PriorConfig]] = ArchConfig

    def __init__(self, config: ArchConfig | None = None) -> None:
        super().__init__(config)
        self.task = Task.classification if self.config.classification else Task.regression

    def sample(self, rng: np.random.Generator, shape: BatchShape) -> PriorBatch:
        cfg: ArchConfig = self.config
        B, R, F = shape.num_datasets, shape.num_rows, shape.num_features
        if cfg.classification and cfg.num_classes.low > R:
            raise ConfigError(f"{R} rows cannot hold num_classes.low={cfg.num_classes.low} classes: use more rows")
        num_layers, width = cfg.num_layers.sample(rng, B), cfg.width.sample(rng, B)
        activation = cfg.activation.sample(rng, B)
        weight_scale, bias_scale, noise_std = (getattr(cfg, n).sample(rng, B)
                                               for n in ("weight_scale", "bias_scale", "noise_std"))
        x_BRF = standard_normal_f32(rng, (B, R, F))
        out_BR1 = np.empty((B, R, 1), dtype=np.float32)
        for b in range(B):  # one architecture per dataset
            widths = [int(width[b])] * int(num_layers[b]) + [1]
            out_BR1[b] = random_mlp(rng, x_BRF[b:b + 1], widths, Activation(activation[b]), weight_scale[b:b + 1],
                                    bias_scale[b:b + 1])[0]
        out_BR1 += noise_std[:, None, None].astype(np.float32) * standard_normal_f32(rng, out_BR1.shape)
        num_classes = cfg.num_classes.sample(rng, B).astype(np.int32) if cfg.classification else 0
        y_BR = outputs_to_targets(rng, out_BR1, num_classes, False, cfg.permute_classes) if cfg.classification \
            else out_BR1[..., 0]
        return PriorBatch(x=x_BRF, y=np.ascontiguousarray(y_BR, np.float32), num_rows=R, num_features=F,
                          num_train_rows=shape.num_train_rows, num_classes=num_classes, prior=self.name,
                          hyperparameters={"num_layers": num_layers, "width": width, "activation": activation,
                                           "weight_scale": weight_scale, "bias_scale": bias_scale,
                                           "noise_std": noise_std})
