"""The contract every installed prior keeps, checked for free for first- and third-party plugins alike."""

from __future__ import annotations

import numpy as np
import pytest

from pfnforge import registry
from pfnforge.arrow import from_arrow, to_arrow
from pfnforge.config import compose_prior_config
from pfnforge.prior import BatchShape, Task

PRIORS = sorted(registry.discover())
SHAPE = BatchShape(num_datasets=6, num_rows=40, num_features=3, num_train_rows=25)


def _sample(name: str, seed: int):
    prior = registry.build_prior(compose_prior_config(name))
    return prior, prior.sample(np.random.default_rng(seed), SHAPE)


def _arrays(batch) -> list[np.ndarray]:
    return [batch.x, batch.y, batch.num_rows, batch.num_features, batch.num_train_rows, batch.num_classes,
            *(batch.hyperparameters[k] for k in sorted(batch.hyperparameters))]


def test_first_party_and_example_priors_are_installed():
    assert {"gp", "sine"} <= set(PRIORS)


@pytest.mark.parametrize("name", PRIORS)
def test_shapes_dtypes_and_finite_values(name):
    prior, batch = _sample(name, 0)
    assert batch.x.shape == (6, 40, 3) and batch.x.dtype == np.float32
    assert batch.y.shape == (6, 40) and batch.y.dtype == np.float32
    assert np.all(batch.num_train_rows == 25) and np.all(batch.num_rows == 40)
    assert set(batch.prior) <= set(PRIORS)  # itself, or the component that drew the dataset
    assert np.all(np.isfinite(batch.y))
    assert not np.any(np.isinf(batch.x))
    if not prior.emits_missing_values():
        assert np.all(np.isfinite(batch.x))
    if prior.task is Task.regression:
        assert np.all(batch.num_classes == 0)
    elif prior.task is Task.classification:
        assert np.all(batch.num_classes >= 2)
        labels = batch.y[~np.isnan(batch.y)]
        assert np.array_equal(labels, np.round(labels))


@pytest.mark.parametrize("name", PRIORS)
def test_same_seed_gives_same_bytes(name):
    _, first = _sample(name, 123)
    _, second = _sample(name, 123)
    for a, b in zip(_arrays(first), _arrays(second), strict=True):
        assert a.dtype == b.dtype
        if a.dtype == object:
            assert list(a) == list(b)
        else:
            assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("name", PRIORS)
def test_different_seed_gives_different_bytes(name):
    _, first = _sample(name, 1)
    _, second = _sample(name, 2)
    assert first.x.tobytes() != second.x.tobytes()
    assert first.y.tobytes() != second.y.tobytes()


@pytest.mark.parametrize("name", PRIORS)
def test_arrow_round_trip_is_lossless(name):
    _, batch = _sample(name, 7)
    back = from_arrow(to_arrow(batch))
    assert back.x.tobytes() == batch.x.tobytes() and back.y.tobytes() == batch.y.tobytes()
    assert list(back.prior) == list(batch.prior)
    assert back.hyperparameters.keys() == batch.hyperparameters.keys()
    for key, values in batch.hyperparameters.items():
        assert back.hyperparameters[key].dtype == values.dtype
        if values.dtype == object:
            assert list(back.hyperparameters[key]) == list(values)
        else:
            assert back.hyperparameters[key].tobytes() == values.tobytes()


@pytest.mark.parametrize("name", PRIORS)
def test_config_composes_in_hydra_and_overrides_apply(name):
    config = compose_prior_config(name)
    assert type(config) is registry.load_prior_class(name).Config
    field = next((f for f in vars(config) if hasattr(getattr(config, f), "high")), None)
    if field is None:
        return  # no range to override: composing was the check
    high = getattr(config, field).high
    overridden = compose_prior_config(name, [f"{field}.high={high * 2}"])
    assert getattr(overridden, field).high == pytest.approx(high * 2)
