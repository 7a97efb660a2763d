"""Mixtures pick components with their weights and record which one drew each dataset."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from pfnforge.arrow import from_arrow, to_arrow
from pfnforge.config import compose_prior_config
from pfnforge.errors import ConfigError, UnknownPriorError
from pfnforge.prior import BatchShape, Task
from pfnforge_priors.mixture import MixturePrior

SHAPE = BatchShape(num_datasets=8, num_rows=12, num_features=2, num_train_rows=6)
COMPONENTS = "prior.components=[{prior: gp, weight: 1}, {prior: bnn, weight: 3, overrides: ['num_layers=1']}]"


def _mixture(*overrides: str) -> MixturePrior:
    return MixturePrior(compose_prior_config("mixture", [o.removeprefix("prior.") for o in overrides]))


def test_per_batch_components_follow_the_weights():
    prior = _mixture(COMPONENTS)
    assert prior.components[1].config.num_layers == 1 and prior.task is Task.regression
    rng = np.random.default_rng(0)
    drawn = [set(prior.sample(rng, SHAPE).prior) for _ in range(400)]
    assert all(len(names) == 1 for names in drawn)  # one component per batch
    bnn_share = sum(names == {"bnn"} for names in drawn)
    assert stats.binomtest(bnn_share, 400, 0.75).pvalue > 1e-3


def test_per_dataset_mixing_records_components_and_unions_hyperparameters():
    prior = _mixture(COMPONENTS, "prior.per=dataset")
    batch = prior.sample(np.random.default_rng(1), BatchShape(num_datasets=400, num_rows=12, num_features=2,
                                                              num_train_rows=6))
    is_gp = batch.prior == "gp"
    assert stats.binomtest(int(is_gp.sum()), 400, 0.25).pvalue > 1e-3
    assert np.all(np.isnan(batch.hyperparameters["outputscale"][~is_gp]))
    assert np.all(np.isfinite(batch.hyperparameters["outputscale"][is_gp]))
    assert list(batch.hyperparameters["kernel"][~is_gp]) == [None] * int((~is_gp).sum())
    back = from_arrow(to_arrow(batch))  # the union survives the Arrow round trip
    assert list(back.prior) == list(batch.prior)
    assert np.array_equal(back.hyperparameters["outputscale"], batch.hyperparameters["outputscale"],
                          equal_nan=True)


def test_mixing_regression_and_classification_is_a_mixed_task():
    prior = _mixture("prior.components=[{prior: gp}, {prior: bnn, overrides: ['classification=true']}]")
    assert prior.task is Task.mixed


@pytest.mark.parametrize(("override", "error", "fragment"), [
    ("prior.components=[{prior: gp, weight: 0}, {prior: bnn, weight: 0}]", ConfigError,
     r"components\[\*\]\.weight: component weights \[0\.0, 0\.0\] must be >= 0 with a positive sum"),
    ("prior.components=[{prior: gp, weight: -1}, {prior: bnn}]", ConfigError, "must be >= 0 with a positive sum"),
    ("prior.components=[]", ConfigError, "components is empty"),
    ("prior.components=[{prior: gp}, {prior: nosuch}]", UnknownPriorError,
     r"components\[1\]\.prior: unknown prior 'nosuch'.*Installed priors: .*gp"),
    ("prior.components=[{prior: mixture}]", ConfigError, r"components\[0\]\.prior: .*other than mixture"),
    ("prior.components=[{prior: gp, overrides: ['lengthscale.low=-1']}]", ConfigError,
     r"components\[0\] \('gp'\) overrides \['lengthscale\.low=-1'\]: a log-scale range needs low > 0"),
    ("prior.components=[{prior: bnn, overrides: ['num_classes.low=1']}]", ConfigError,
     r"components\[0\] \('bnn'\) overrides .*: num_classes=\[1, 10\] is out of range"),
])
def test_bad_mixtures_name_the_problem(override, error, fragment):
    with pytest.raises(error, match=fragment):
        _mixture(override)


def test_a_component_asked_for_more_classes_than_rows_names_the_field():
    prior = _mixture("prior.components=[{prior: arch, overrides: ['classification=true', 'num_classes.low=6']}]")
    with pytest.raises(ConfigError, match=r"4 rows cannot hold num_classes\.low=6 classes"):
        prior.sample(np.random.default_rng(0), BatchShape(num_datasets=2, num_rows=4, num_features=2,
                                                          num_train_rows=2))
