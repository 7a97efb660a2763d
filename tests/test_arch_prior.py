"""The architecture prior draws architectures and scales from their hyperpriors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from pfnforge.config import compose_prior_config
from pfnforge.errors import ConfigError
from pfnforge.hyperpriors import Gamma
from pfnforge.prior import BatchShape
from pfnforge_priors.arch import ArchPrior

SHAPE = BatchShape(num_datasets=1500, num_rows=10, num_features=3, num_train_rows=5)


def test_architectures_and_scales_follow_their_hyperpriors():
    batch = ArchPrior().sample(np.random.default_rng(0), SHAPE)
    hp = batch.hyperparameters
    assert hp["width"].min() >= 2 and hp["width"].max() <= 150 and len(np.unique(hp["width"])) > 100
    assert set(np.unique(hp["num_layers"])) == {1, 2, 3, 4}
    assert set(hp["activation"]) == {"tanh", "relu", "sigmoid", "sin"}
    assert stats.kstest(hp["weight_scale"], stats.gamma(a=2.0, scale=0.5).cdf).pvalue > 1e-3
    assert stats.kstest(hp["noise_std"] - 0.001, stats.gamma(a=1.0, scale=0.1).cdf).pvalue > 1e-3


def test_noise_sets_a_floor_on_the_spread_of_targets():
    quiet = ArchPrior(compose_prior_config("arch", ["weight_scale.shape=1e-6", "weight_scale.scale=1e-6",
                                                    "bias_scale.shape=1e-6", "bias_scale.scale=1e-6"]))
    batch = quiet.sample(np.random.default_rng(1), SHAPE)
    # with (almost) zero weights the targets are the noise alone: per-dataset variance ~ noise_std²
    ratio = batch.y.var(axis=1, ddof=1) / batch.hyperparameters["noise_std"] ** 2
    assert 0.8 < np.median(ratio) < 1.2


def test_classification_classes_within_range():
    prior = ArchPrior(compose_prior_config("arch", ["classification=true", "num_classes.high=4"]))
    batch = prior.sample(np.random.default_rng(2), BatchShape(num_datasets=50, num_rows=40, num_features=2,
                                                              num_train_rows=20))
    assert set(np.unique(batch.num_classes)) <= {2, 3, 4}
    assert np.all(batch.y < batch.num_classes[:, None])


@pytest.mark.parametrize(("override", "fragment"), [
    ("activation.options=[tanh,swish]", r"activation: unknown \['swish'\]"),
    ("weight_scale.shape=0", "gamma hyperprior needs shape > 0"),
    ("width.low=0", r"width\.low=0 is out of range: it must be >= 1"),
])
def test_bad_settings_name_the_field(override, fragment):
    with pytest.raises(ConfigError, match=fragment):
        compose_prior_config("arch", [override])


def test_gamma_hyperprior_mean():
    draws = Gamma(shape=3.0, scale=0.2, offset=1.0).sample(np.random.default_rng(3), 50_000)
    assert draws.mean() == pytest.approx(1.6, rel=0.01) and draws.min() > 1.0


def test_more_classes_than_rows_is_refused():
    prior = ArchPrior(compose_prior_config("arch", ["classification=true", "num_classes.low=5"]))
    with pytest.raises(ConfigError, match=r"3 rows cannot hold num_classes\.low=5"):
        prior.sample(np.random.default_rng(0), BatchShape(num_datasets=2, num_rows=3, num_features=1,
                                                          num_train_rows=1))
