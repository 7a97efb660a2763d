"""Typed hyperpriors: how a prior's hyperparameter is drawn per dataset.

A prior's ``Config`` holds these objects instead of dicts with magic keys. Each one validates itself
when created and draws with the generator it is handed (``sample_*`` takes the generator first).
A ``Range`` whose ``low`` equals ``high`` is a fixed value.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

import numpy as np

from pfnforge.errors import ConfigError


class Scale(enum.Enum):
    """How a range is sampled: uniformly in the value or in its logarithm."""

    # lower-case members: OmegaConf reads and writes enums by member name
    linear = "linear"
    log = "log"


@dataclass(kw_only=True)
class Range:
    """A real hyperparameter drawn from [low, high], uniform on a linear or log scale."""

    low: float
    """Smallest value drawn."""
    high: float
    """Largest value drawn; equal to ``low`` for a fixed value."""
    scale: Scale = Scale.linear
    """``linear``: uniform in the value; ``log``: uniform in log(value) (needs low > 0)."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ConfigError(f"range [{self.low}, {self.high}] must be finite")
        if self.low > self.high:
            raise ConfigError(f"range low={self.low} is above high={self.high}: swap them")
        if self.scale is Scale.log and self.low <= 0:
            raise ConfigError(f"a log-scale range needs low > 0, got low={self.low}: use scale=linear or raise low")

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Draw ``size`` values as float64."""
        if self.scale is Scale.log:
            return np.exp(rng.uniform(math.log(self.low), math.log(self.high), size))
        return rng.uniform(self.low, self.high, size)

    @property
    def is_fixed(self) -> bool:
        """Whether every draw is the same value (``low == high``)."""
        return self.low == self.high

    def narrowed(self, rng: np.random.Generator) -> Range:
        """A random sub-range between two draws of this one (same scale): a hyperprior on the hyperprior, so
        that the datasets of one batch share a narrower range than the prior allows."""
        low, high = np.sort(self.sample(rng, 2))
        return Range(low=float(low), high=float(high), scale=self.scale)

    def at_quantile(self, u: np.ndarray) -> np.ndarray:
        """The values at quantiles ``u`` in [0, 1] of this range's distribution (its inverse CDF), as float64."""
        u = np.asarray(u, dtype=np.float64)
        if self.scale is Scale.log:
            return np.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        return self.low + u * (self.high - self.low)

    def check(self, name: str, *, above: float | None = None, at_least: float | None = None,
              at_most: float | None = None) -> None:
        """Raise a ``ConfigError`` naming ``name`` unless the whole range lies within the given bounds."""
        problems = []
        if above is not None and self.low <= above:
            problems.append(f"{name}.low={self.low} must be > {above}")
        if at_least is not None and self.low < at_least:
            problems.append(f"{name}.low={self.low} must be >= {at_least}")
        if at_most is not None and self.high > at_most:
            problems.append(f"{name}.high={self.high} must be <= {at_most}")
        if problems:
            raise ConfigError(f"{name} is out of range: " + "; ".join(problems)
                              + f" (set it with {name}.low=... {name}.high=...)")


@dataclass(kw_only=True)
class IntRange:
    """An integer hyperparameter drawn from {low, ..., high} (both inclusive)."""

    low: int
    """Smallest value drawn."""
    high: int
    """Largest value drawn (inclusive)."""
    scale: Scale = Scale.linear
    """``linear``: every integer equally likely; ``log``: the floor of a log-uniform draw on [low, high + 1),
    so small values are more likely and large ones still occur (a heavy tail; needs low >= 1)."""

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ConfigError(f"integer range low={self.low} is above high={self.high}: swap them")
        if self.scale is Scale.log and self.low < 1:
            raise ConfigError(f"a log-scale integer range needs low >= 1, got low={self.low}: use scale=linear "
                              "or raise low")

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Draw ``size`` values as int64."""
        if self.scale is Scale.log:
            values = np.floor(np.exp(rng.uniform(math.log(self.low), math.log(self.high + 1), size)))
            return np.clip(values, self.low, self.high).astype(np.int64)
        return rng.integers(self.low, self.high, size, endpoint=True, dtype=np.int64)

    def narrowed(self, rng: np.random.Generator) -> IntRange:
        """A random sub-range between two draws of this one (same scale); see ``Range.narrowed``."""
        low, high = np.sort(self.sample(rng, 2))
        return IntRange(low=int(low), high=int(high), scale=self.scale)


@dataclass(kw_only=True)
class Choice:
    """A categorical hyperparameter: one of ``options``, with optional relative ``weights``."""

    options: list[str] = field(default_factory=list)
    """The values to choose from."""
    weights: list[float] | None = None
    """Relative weight of each option (need not sum to one); ``null`` for uniform."""

    def __post_init__(self) -> None:
        if not self.options:
            raise ConfigError("a choice needs at least one option (options=[...])")
        if self.weights is not None:
            if len(self.weights) != len(self.options):
                raise ConfigError(f"choice has {len(self.options)} options but {len(self.weights)} weights:"
                                  " give one weight per option")
            if any(not math.isfinite(w) or w < 0 for w in self.weights) or sum(self.weights) <= 0:
                raise ConfigError(f"choice weights {list(self.weights)} must be >= 0 with a positive sum")

    def probabilities(self) -> np.ndarray:
        """The normalised probability of each option."""
        if self.weights is None:
            return np.full(len(self.options), 1.0 / len(self.options))
        weights = np.asarray(self.weights, dtype=np.float64)
        return weights / weights.sum()

    def sample_indices(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Draw ``size`` option indices as int64."""
        return rng.choice(len(self.options), size=size, p=self.probabilities())

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Draw ``size`` options as an object array of ``str``."""
        return np.asarray(self.options, dtype=object)[self.sample_indices(rng, size)]


@dataclass(kw_only=True)
class Gamma:
    """A positive real hyperparameter drawn from a Gamma distribution (mean = shape × scale)."""

    shape: float
    """Shape k (> 0)."""
    scale: float
    """Scale θ (> 0)."""
    offset: float = 0.0
    """Added to every draw, e.g. to keep a noise level away from zero."""

    def __post_init__(self) -> None:
        if not (self.shape > 0 and self.scale > 0 and math.isfinite(self.offset)):
            raise ConfigError(f"gamma hyperprior needs shape > 0 and scale > 0, got shape={self.shape}, "
                              f"scale={self.scale}")

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Draw ``size`` values as float64."""
        return self.offset + rng.gamma(self.shape, self.scale, size)
