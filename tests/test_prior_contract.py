"""The contract every installed prior keeps, checked for free for first- and third-party plugins alike; the checks
live in ``pfnforge.contract`` (``pfnforge priors check`` and scaffolded plugins run the same ones)."""

from __future__ import annotations

import numpy as np
import pytest

from pfnforge import contract, registry
from pfnforge.batch import PriorBatch
from pfnforge.contract import ContractError
from pfnforge.prior import BatchShape, Prior, PriorConfig, Task

PRIORS = sorted(registry.discover())


def test_first_party_and_example_priors_are_installed():
    assert {"gp", "sine"} <= set(PRIORS)


@pytest.mark.parametrize("name", PRIORS)
def test_loads_with_a_default_config(name):
    contract.check_loads(name)


@pytest.mark.parametrize("name", PRIORS)
def test_shapes_dtypes_and_finite_values(name):
    contract.check_shapes_dtypes_and_finite_values(name)


@pytest.mark.parametrize("name", PRIORS)
def test_same_seed_gives_same_bytes(name):
    contract.check_same_seed_gives_same_bytes(name)


@pytest.mark.parametrize("name", PRIORS)
def test_different_seed_gives_different_batch(name):
    contract.check_different_seed_gives_different_batch(name)


@pytest.mark.parametrize("name", PRIORS)
def test_arrow_round_trip_is_lossless(name):
    contract.check_arrow_round_trip_is_lossless(name)


@pytest.mark.parametrize("name", PRIORS)
def test_config_composes_in_hydra_and_overrides_apply(name):
    contract.check_config_composes_and_overrides_apply(name)


class _GridCurves(Prior):
    """Curves on a fixed grid of x (a learning-curve prior's shape): only y depends on the seed."""

    name = "sine"  # stands in for an installed name; only sample() is called
    task = Task.regression
    Config = PriorConfig

    def sample(self, rng: np.random.Generator, shape: BatchShape) -> PriorBatch:
        B, R, F = shape.num_datasets, shape.num_rows, shape.num_features
        x = np.broadcast_to(np.linspace(0, 1, R)[None, :, None], (B, R, F)).astype(np.float32)
        y = (rng.uniform(0.5, 1.0, (B, 1)) * (1 - np.exp(-5 * x[:, :, 0]))).astype(np.float32)
        return PriorBatch(x=x, y=y, num_rows=R, num_features=F, num_train_rows=shape.num_train_rows,
                          num_classes=0, prior=self.name)


class _GlobalState(_GridCurves):
    def sample(self, rng: np.random.Generator, shape: BatchShape) -> PriorBatch:
        return super().sample(np.random.default_rng(np.random.randint(2**31)), shape)


def test_inputs_on_a_fixed_grid_keep_the_contract(monkeypatch):
    monkeypatch.setattr(registry, "build_prior", lambda config: _GridCurves())
    contract.check_same_seed_gives_same_bytes("sine")
    contract.check_different_seed_gives_different_batch("sine")
    contract.check_shapes_dtypes_and_finite_values("sine")


def test_global_random_state_breaks_same_seed_gives_same_bytes(monkeypatch):
    monkeypatch.setattr(registry, "build_prior", lambda config: _GlobalState())
    with pytest.raises(ContractError, match=r"the same seed \(123\) gave different y: draw every random number"):
        contract.check_same_seed_gives_same_bytes("sine")
