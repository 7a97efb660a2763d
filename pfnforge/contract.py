"""The contract every installed prior keeps, as plain checks: pfnforge's own tests, ``pfnforge priors check`` and
the test a scaffolded plugin ships (``pfnforge priors new``) all run these same functions.

Each check takes an installed prior's name, draws small batches of ``SHAPE`` and raises ``ContractError`` (an
``AssertionError``) whose message says what was expected, what came back and how to fix it. Inputs may be a
fixed grid (learning curves, time series): x need not change with the seed, but the batch as a whole must.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from pfnforge import registry
from pfnforge.arrow import from_arrow, to_arrow
from pfnforge.batch import PriorBatch
from pfnforge.config import compose_prior_config
from pfnforge.errors import PfnforgeError
from pfnforge.prior import BatchShape, Prior, Task

SHAPE = BatchShape(num_datasets=6, num_rows=40, num_features=3, num_train_rows=25)
"""The batch shape every check draws: small, with train and test rows and more than one feature."""

RNG_HINT = ("draw every random number from the generator handed to sample(rng, shape): no np.random.* or random.*"
            " calls, and no np.random inside Numba kernels (they draw from Numba's own global state; pass the draws"
            " in as arrays)")


class ContractError(AssertionError):
    """A prior broke the contract; the message names the check's expectation, what came back and the fix."""


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise ContractError(message)


def _sample(name: str, seed: int) -> tuple[Prior, PriorBatch]:
    prior = registry.build_prior(compose_prior_config(name))
    return prior, prior.sample(np.random.default_rng(seed), SHAPE)


def _arrays(batch: PriorBatch) -> dict[str, np.ndarray]:
    arrays = {"x": batch.x, "y": batch.y, "num_rows": batch.num_rows, "num_features": batch.num_features,
              "num_train_rows": batch.num_train_rows, "num_classes": batch.num_classes, "prior": batch.prior}
    return arrays | {f"hyperparameters[{key!r}]": batch.hyperparameters[key] for key in sorted(batch.hyperparameters)}


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return list(a) == list(b) if a.dtype == object else a.tobytes() == b.tobytes()


def check_loads(name: str) -> None:
    """The entry point names a ``Prior`` subclass whose ``Config`` builds with its defaults."""
    try:
        cls = registry.load_prior_class(name)
        config = compose_prior_config(name)
    except PfnforgeError as error:
        raise ContractError(str(error)) from error
    _expect(isinstance(cls.task, Task), f"{cls.__qualname__}.task is {cls.task!r}: set it to a pfnforge.prior.Task")
    _expect(type(config) is cls.Config, f"prior {name!r} composed a {type(config).__qualname__}, "
                                        f"not its own {cls.Config.__qualname__}")


def check_shapes_dtypes_and_finite_values(name: str) -> None:
    """x is (B, R, F) float32 and y (B, R) float32 at the requested shape; y is finite, x has no inf (and no NaN
    unless the prior emits missing values); regression datasets have 0 classes, classification ones >= 2 with
    integer labels."""
    prior, batch = _sample(name, 0)
    B, R, F = SHAPE.num_datasets, SHAPE.num_rows, SHAPE.num_features
    _expect(batch.x.shape == (B, R, F) and batch.x.dtype == np.float32,
            f"x must be a {(B, R, F)} float32 array for {SHAPE}, got {batch.x.dtype} {batch.x.shape}")
    _expect(batch.y.shape == (B, R) and batch.y.dtype == np.float32,
            f"y must be a {(B, R)} float32 array for {SHAPE}, got {batch.y.dtype} {batch.y.shape}")
    _expect(bool(np.all(batch.num_rows == R)), f"num_rows must be {R} (the requested rows), got {batch.num_rows}")
    _expect(bool(np.all(batch.num_train_rows == SHAPE.num_train_rows)),
            f"num_train_rows must be {SHAPE.num_train_rows} (the requested split), got {batch.num_train_rows}")
    installed = set(registry.discover())
    _expect(set(batch.prior) <= installed, f"prior names {sorted(set(batch.prior) - installed)} are not installed"
                                           f" priors: set prior={name!r} (or the component that drew the dataset)")
    _expect(bool(np.all(np.isfinite(batch.y))), f"y holds {np.sum(~np.isfinite(batch.y))} NaN or inf values: "
                                                "every target must be finite")
    _expect(not np.any(np.isinf(batch.x)), f"x holds {np.sum(np.isinf(batch.x))} inf values (NaN marks missing)")
    if not prior.emits_missing_values():
        _expect(bool(np.all(np.isfinite(batch.x))),
                f"x holds {np.sum(np.isnan(batch.x))} NaN values but emits_missing_values() is False: "
                "return True from it when the config asks for missing values, or draw no NaN")
    if prior.task is Task.regression:
        _expect(bool(np.all(batch.num_classes == 0)),
                f"a regression prior must set num_classes=0, got {batch.num_classes}")
    elif prior.task is Task.classification:
        _expect(bool(np.all(batch.num_classes >= 2)),
                f"a classification prior must set num_classes >= 2, got {batch.num_classes}")
        labels = batch.y[~np.isnan(batch.y)]
        _expect(np.array_equal(labels, np.round(labels)), "classification targets must be integer class indices")


def check_same_seed_gives_same_bytes(name: str) -> None:
    """Two draws with the same seed are identical, byte for byte, hyperparameters included."""
    _, first = _sample(name, 123)
    _, second = _sample(name, 123)
    first_arrays, second_arrays = _arrays(first), _arrays(second)
    _expect(first_arrays.keys() == second_arrays.keys(),
            f"the same seed drew different hyperparameters: {sorted(first_arrays)} then {sorted(second_arrays)}")
    differ = [key for key in first_arrays if not _same(first_arrays[key], second_arrays[key])]
    _expect(not differ, f"the same seed (123) gave different {', '.join(differ)}: {RNG_HINT}")


def check_different_seed_gives_different_batch(name: str) -> None:
    """Two different seeds give different batches (x and y together: inputs on a fixed grid may repeat)."""
    _, first = _sample(name, 1)
    _, second = _sample(name, 2)
    _expect(first.x.tobytes() != second.x.tobytes() or first.y.tobytes() != second.y.tobytes(),
            "seeds 1 and 2 gave the same x and y: draw the datasets from the generator handed to sample(rng, shape)"
            " (a fixed seed or a constant inside the prior repeats them)")


def check_arrow_round_trip_is_lossless(name: str) -> None:
    """A batch written to the Arrow schema and read back is the same batch."""
    _, batch = _sample(name, 7)
    back = _arrays(from_arrow(to_arrow(batch)))
    original = _arrays(batch)
    _expect(back.keys() == original.keys(), f"the Arrow round trip changed the hyperparameters: "
                                            f"{sorted(original)} became {sorted(back)}")
    differ = [key for key in original if not _same(original[key], back[key])]
    _expect(not differ, f"the Arrow round trip changed {', '.join(differ)}: hyperparameters must be (B,) arrays of "
                        "float64, int64, bool or str objects (see docs/batch-schema.md)")


def check_config_composes_and_overrides_apply(name: str) -> None:
    """``prior=NAME`` composes in Hydra into the prior's ``Config``, and an override of a range's ``high`` (to its
    midpoint, a value its validation accepts) lands."""
    config = compose_prior_config(name)
    _expect(type(config) is registry.load_prior_class(name).Config,
            f"prior={name} composed a {type(config).__qualname__}, not the prior's Config")
    ranges = {f: getattr(config, f) for f in vars(config) if hasattr(getattr(config, f), "high")}
    field = next((f for f, r in ranges.items() if hasattr(r, "low") and r.low < r.high), None)
    if field is None:
        return  # no range to override: composing was the check
    low, high = ranges[field].low, ranges[field].high
    middle = (low + high) // 2 if isinstance(high, int) else (low + high) / 2  # IntRange takes integers
    overridden = compose_prior_config(name, [f"{field}.high={middle!r}"])
    _expect(bool(np.isclose(getattr(overridden, field).high, middle)),
            f"the override {field}.high={middle!r} gave {field}.high={getattr(overridden, field).high}")


@dataclass(frozen=True)
class Check:
    """One clause of the contract."""

    name: str
    run: Callable[[str], None]
    """Takes the prior's name; raises ``ContractError`` (or whatever the prior raised) when the prior fails."""


CHECKS: tuple[Check, ...] = tuple(Check(check.__name__.removeprefix("check_"), check) for check in (
    check_loads, check_shapes_dtypes_and_finite_values, check_same_seed_gives_same_bytes,
    check_different_seed_gives_different_batch, check_arrow_round_trip_is_lossless,
    check_config_composes_and_overrides_apply))
"""Every check, in the order ``pfnforge priors check`` runs them; the first one must pass for the rest to run."""


@dataclass(frozen=True)
class CheckResult:
    check: Check
    error: BaseException | None
    """``None`` when the check passed."""
    seconds: float


def run_contract(name: str) -> Iterator[CheckResult]:
    """Run every check on prior ``name`` in order, yielding each result; stops after a failed ``loads``."""
    for check in CHECKS:
        start = time.perf_counter()
        try:
            check.run(name)
        except Exception as error:  # whatever the plugin raised is its failure of this check
            yield CheckResult(check, error, time.perf_counter() - start)
            if check.run is check_loads:
                return
        else:
            yield CheckResult(check, None, time.perf_counter() - start)
