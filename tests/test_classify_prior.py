"""The ``classify`` wrapper: a regression prior's targets cut into classes. Labels are a monotone function of
the target before the permutation, rank cuts at spread 0 balance the classes, value cuts unbalance them, the
permutation hides the target's order, and a base that is not a regression prior is refused."""

from __future__ import annotations

import numpy as np
import pytest

from pfnforge import registry
from pfnforge.config import compose_prior_config
from pfnforge.errors import ConfigError, UnknownPriorError
from pfnforge.prior import BatchShape, Task

SHAPE = BatchShape(num_datasets=64, num_rows=100, num_features=2, num_train_rows=50)


def _batch(*overrides: str, seed: int = 0):
    prior = registry.build_prior(compose_prior_config("classify", list(overrides)))
    return prior, prior.sample(np.random.default_rng(seed), SHAPE)


def test_labels_follow_the_target_in_order_before_the_permutation():
    prior, batch = _batch("base=bnn", "permute_classes=false")
    base = registry.build_prior(compose_prior_config("bnn")).sample(np.random.default_rng(0), SHAPE)
    assert prior.task is Task.classification and np.array_equal(batch.x, base.x)  # features pass through
    for b in range(SHAPE.num_datasets):
        labels = batch.y[b][np.argsort(base.y[b], kind="stable")]
        assert (np.diff(labels) >= 0).all() and labels.max() < batch.num_classes[b]


def test_rank_cuts_at_spread_zero_balance_the_classes_and_value_cuts_do_not():
    _, balanced = _batch("value_cut_probability=0", "quantile_spread.high=0", "num_classes.low=4",
                         "num_classes.high=4")
    counts = np.stack([np.bincount(balanced.y[b].astype(int), minlength=4) for b in range(SHAPE.num_datasets)])
    assert (np.abs(counts - 25) <= 1).all()
    _, by_value = _batch("value_cut_probability=1", "num_classes.low=4", "num_classes.high=4")
    counts = np.stack([np.bincount(by_value.y[b].astype(int), minlength=4) for b in range(SHAPE.num_datasets)])
    assert (counts.max(1) - counts.min(1)).mean() > 20
    assert set(by_value.hyperparameters["cut"]) == {"value"}


def test_the_permutation_hides_which_label_holds_the_lowest_targets():
    _, batch = _batch("base=bnn", "num_classes.low=3", "num_classes.high=3")
    base = registry.build_prior(compose_prior_config("bnn")).sample(np.random.default_rng(0), SHAPE)
    lowest = {int(batch.y[b][np.argmin(base.y[b])]) for b in range(SHAPE.num_datasets)}
    assert lowest == {0, 1, 2}


def test_a_base_that_is_not_a_regression_prior_is_refused():
    with pytest.raises(ConfigError, match="draws classification datasets: classify wraps a regression prior"):
        _batch("base=scm")
    with pytest.raises(UnknownPriorError, match="nope"):
        _batch("base=nope")
    with pytest.raises(ConfigError, match="num_classes"):
        _batch("num_classes.high=11")
    prior, batch = _batch("base=bnn", 'overrides=["num_layers=1"]')  # the base's own config through overrides
    assert prior.base.config.num_layers == 1 and (batch.num_classes >= 2).all()
