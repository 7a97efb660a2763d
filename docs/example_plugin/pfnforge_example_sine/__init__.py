"""``sine``: noisy sine waves, y = amplitude · sin(frequency · x + phase) + noise, x uniform on [0, 1]."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from pfnforge.batch import PriorBatch
from pfnforge.hyperpriors import Range, Scale
from pfnforge.prior import BatchShape, Prior, PriorConfig, Task


@dataclass(kw_only=True)
class SineConfig(PriorConfig):
    amplitude: Range = field(default_factory=lambda: Range(low=0.5, high=2.0))
    """Amplitude of the wave (> 0)."""
    frequency: Range = field(default_factory=lambda: Range(low=1.0, high=20.0, scale=Scale.log))
    """Angular frequency in radians per unit of x (> 0)."""
    noise_std: Range = field(default_factory=lambda: Range(low=0.01, high=0.3, scale=Scale.log))
    """Standard deviation of the Gaussian noise on y (> 0)."""

    def __post_init__(self) -> None:
        for name in ("amplitude", "frequency", "noise_std"):
            getattr(self, name).check(name, above=0.0)


class SinePrior(Prior):
    """Noisy sine waves of the first feature."""

    name: ClassVar[str] = "sine"
    task: ClassVar[Task] = Task.regression
    Config: ClassVar[type[PriorConfig]] = SineConfig

    def sample(self, rng: np.random.Generator, shape: BatchShape) -> PriorBatch:
        B, R, F = shape.num_datasets, shape.num_rows, shape.num_features
        amplitude, frequency, noise_std = (getattr(self.config, n).sample(rng, B)[:, None]
                                           for n in ("amplitude", "frequency", "noise_std"))
        phase = rng.uniform(0, 2 * np.pi, size=(B, 1))
        x = rng.random((B, R, F))
        y = amplitude * np.sin(frequency * x[:, :, 0] + phase) + noise_std * rng.standard_normal((B, R))
        return PriorBatch(
            x=x.astype(np.float32), y=y.astype(np.float32), num_rows=R, num_features=F,
            num_train_rows=shape.num_train_rows, num_classes=0, prior=self.name,
            hyperparameters={"amplitude": amplitude[:, 0], "frequency": frequency[:, 0],
                             "noise_std": noise_std[:, 0], "phase": phase[:, 0]},
        )
