"""The BNN prior draws what its weight scales imply, and classes as configured."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from pfnforge.config import compose_prior_config
from pfnforge.errors import ConfigError
from pfnforge.prior import BatchShape, Task
from pfnforge_priors.bnn import BNNPrior

SHAPE = BatchShape(num_datasets=3000, num_rows=8, num_features=4, num_train_rows=4)


def _prior(*overrides: str) -> BNNPrior:
    return BNNPrior(compose_prior_config("bnn", list(overrides)))


def test_linear_network_output_variance_follows_the_scales():
    # y = x·w + b + noise, w ~ N(0, s²/F), b ~ N(0, c²), noise ~ N(0, n²), x ~ N(0, I): Var(y) = s² + c² + n²
    prior = _prior("num_layers=0", "weight_scale.low=1.5", "weight_scale.high=1.5", "bias_scale.low=0.5",
                   "bias_scale.high=0.5", "noise_std.low=0.2", "noise_std.high=0.2")
    batch = prior.sample(np.random.default_rng(0), SHAPE)
    assert np.var(batch.y) == pytest.approx(1.5**2 + 0.5**2 + 0.2**2, rel=0.05)


def test_weight_scale_changes_the_spread_of_deep_networks():
    quiet = ["bias_scale.low=0.001", "bias_scale.high=0.001", "noise_std.low=0.001", "noise_std.high=0.001"]
    narrow = _prior("activation=identity", "weight_scale.low=0.5", "weight_scale.high=0.5", *quiet)
    wide = _prior("activation=identity", "weight_scale.low=2", "weight_scale.high=2", *quiet)
    rng = np.random.default_rng(1)
    # three identity layers multiply the variance by s² each: (2 / 0.5)^6 = 4096 between the two
    ratio = np.var(wide.sample(rng, SHAPE).y) / np.var(narrow.sample(rng, SHAPE).y)
    assert 1500 < ratio < 10000


def test_drawn_hyperparameters_follow_their_log_uniform_hyperprior():
    batch = _prior().sample(np.random.default_rng(2), SHAPE)
    scales = batch.hyperparameters["weight_scale"]
    assert stats.kstest(np.log(scales), stats.uniform(np.log(0.5), np.log(4.0)).cdf).pvalue > 1e-3


@pytest.mark.parametrize("labelling", ["threshold", "softmax"])
def test_classes_stay_within_each_datasets_class_count(labelling):
    prior = _prior("classification=true", f"labelling={labelling}", "num_classes.low=3", "num_classes.high=6")
    assert prior.task is Task.classification
    batch = prior.sample(np.random.default_rng(3), BatchShape(num_datasets=200, num_rows=60, num_features=3,
                                                              num_train_rows=30))
    assert set(np.unique(batch.num_classes)) == {3, 4, 5, 6}
    assert np.all(batch.y >= 0) and np.all(batch.y < batch.num_classes[:, None])
    assert np.array_equal(batch.y, np.round(batch.y))
    # thresholds at random quantiles make classes of varying balance, all of them present on average
    share_of_largest = [np.bincount(batch.y[b].astype(int)).max() / 60 for b in range(200)]
    assert 0.3 < np.mean(share_of_largest) < 0.95


@pytest.mark.parametrize(("override", "fragment"), [
    ("num_classes.low=1", r"num_classes=\[1, 10\] is out of range"),
    ("num_classes.high=11", r"num_classes=\[2, 11\] is out of range"),
    ("num_layers=-1", "num_layers=-1 is out of range: it must be >= 0"),
    ("noise_std.scale=linear", None),
])
def test_bad_settings_name_the_field(override, fragment):
    if fragment is None:
        compose_prior_config("bnn", [override])
        return
    with pytest.raises(ConfigError, match=fragment):
        compose_prior_config("bnn", [override])


def test_more_classes_than_rows_is_refused():
    prior = _prior("classification=true", "num_classes.low=5")
    with pytest.raises(ConfigError, match=r"3 rows cannot hold num_classes\.low=5"):
        prior.sample(np.random.default_rng(0), BatchShape(num_datasets=2, num_rows=3, num_features=1,
                                                          num_train_rows=1))


@pytest.mark.parametrize(("field", "rows", "features"), [("num_features", 5, 0), ("num_rows", 0, 2)])
def test_zero_features_or_rows_are_refused_before_sampling(field, rows, features):
    with pytest.raises(ConfigError, match=rf"{field}=0 is out of range: it must be >= 1"):
        BatchShape(num_datasets=2, num_rows=rows, num_features=features, num_train_rows=0)


@pytest.mark.parametrize(("activation", "reference"), [
    ("tanh", np.tanh), ("relu", lambda h: np.maximum(h, 0)), ("sigmoid", lambda h: 1 / (1 + np.exp(-h))),
    ("sin", np.sin), ("identity", lambda h: h)])
def test_float32_activations_match_their_definitions(activation, reference):
    from pfnforge_priors.bnn import _ACTIVATIONS_INPLACE, Activation

    h = np.linspace(-6, 6, 1001, dtype=np.float32)
    expected = reference(h.astype(np.float64))
    _ACTIVATIONS_INPLACE[Activation(activation)](h)
    assert h.dtype == np.float32 and np.allclose(h, expected, atol=2e-6)


def test_uniform_inputs_lie_in_the_unit_cube():
    batch = _prior("normal_inputs=false").sample(np.random.default_rng(4), SHAPE)
    assert batch.x.min() >= 0 and batch.x.max() < 1 and abs(batch.x.mean() - 0.5) < 0.01


def test_threshold_classes_are_permuted_per_dataset_unless_switched_off():
    from pfnforge_priors.bnn import outputs_to_targets

    out = np.broadcast_to(np.arange(60.0)[None, :, None], (200, 60, 1)).copy()  # output rises with the row
    classes = np.full(200, 3)
    ordered = outputs_to_targets(np.random.default_rng(0), out, classes, False, permute=False)
    assert (np.diff(ordered, axis=1) >= 0).all()  # class k holds the k-th lowest outputs
    permuted = outputs_to_targets(np.random.default_rng(0), out, classes, False)
    assert set(permuted[:, 0]) == {0.0, 1.0, 2.0}  # the lowest output's label varies over datasets
    for labels in permuted:  # still cuts of the output, relabelled: each class one contiguous run of outputs
        runs = 1 + np.count_nonzero(np.diff(labels))
        assert runs == len(set(labels))
    assert _prior("classification=true", "permute_classes=false").config.permute_classes is False
