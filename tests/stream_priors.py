"""Priors that misbehave on purpose, importable by spawned worker processes."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from pfnforge.batch import PriorBatch
from pfnforge.prior import BatchShape, Prior, PriorConfig, Task


@dataclass(kw_only=True)
class MisbehavingConfig(PriorConfig):
    fail_when_rows: int = -1
    """Raise a ValueError when a batch has this many rows."""
    crash_marker: str = ""
    """Path of a file: the first worker to see it deletes it and kills itself with SIGKILL."""
    always_crash: bool = False
    """Every worker kills itself with SIGKILL on its first batch (a crash loop)."""


class MisbehavingPrior(Prior):
    name: ClassVar[str] = "misbehaving"
    task: ClassVar[Task] = Task.regression
    Config: ClassVar[type[PriorConfig]] = MisbehavingConfig

    def sample(self, rng: np.random.Generator, shape: BatchShape) -> PriorBatch:
        if shape.num_rows == self.config.fail_when_rows:
            raise ValueError(f"refusing {shape.num_rows} rows")
        if self.config.always_crash:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.config.crash_marker:
            try:
                os.unlink(self.config.crash_marker)  # atomic: exactly one worker wins the marker
            except FileNotFoundError:
                pass
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        x = rng.random((shape.num_datasets, shape.num_rows, shape.num_features), dtype=np.float32)
        return PriorBatch(x=x, y=x.sum(axis=2), num_rows=shape.num_rows, num_features=shape.num_features,
                          num_train_rows=shape.num_train_rows, num_classes=0, prior=self.name)
