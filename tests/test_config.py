from __future__ import annotations

import pytest

from pfnforge.config import compose_prior_config
from pfnforge.errors import ConfigError, UnknownPriorError
from pfnforge.hyperpriors import Scale
from pfnforge.prior import BatchShape
from pfnforge_priors.gp import GPConfig


def test_overrides_reach_the_typed_config():
    config = compose_prior_config("gp", ["lengthscale.low=0.3", "lengthscale.scale=linear",
                                         "kernel.options=[rbf,matern52*periodic]", "inputs=normal"])
    assert isinstance(config, GPConfig)
    assert config.lengthscale.low == 0.3 and config.lengthscale.scale is Scale.linear
    assert config.kernel.options == ["rbf", "matern52*periodic"]
    assert config.num_term_slots == 2


def test_preset_extends_the_structured_config():
    config = compose_prior_config("gp_1d_reference")
    assert isinstance(config, GPConfig)
    assert (config.lengthscale.low, config.lengthscale.high) == (0.6, 0.6)
    assert config.noise_variance.low == 0.01


def test_misspelled_key_names_it_and_suggests_the_right_one():
    with pytest.raises(ConfigError, match=r"no config key 'lenghtscale'\. Did you mean 'lengthscale'\?"):
        compose_prior_config("gp", ["lenghtscale.low=0.2"])
    with pytest.raises(ConfigError, match=r"no config key 'lengthscale\.lo'\. Did you mean 'lengthscale\.low'"):
        compose_prior_config("gp", ["lengthscale.lo=0.2"])


@pytest.mark.parametrize(("override", "fragment"), [
    ("lengthscale.low=-1", r"lengthscale: a log-scale range needs low > 0"),
    ("noise_variance.scale=linear", None),
    ("initial_jitter=0", r"initial_jitter=0.0 is out of range: it must be > 0"),
    ("kernel.options=[rbf+matern52*periodic]", r"mixes '\+' and '\*'"),
    ("kernel.options=[rbf,cubic]", r"unknown base kernel\(s\) \['cubic'\]"),
    ("lengthscale.low=abc", r"could not be converted to Float"),
])
def test_bad_values_fail_naming_the_field(override, fragment):
    if fragment is None:  # a valid override must not raise
        compose_prior_config("gp", [override])
        return
    with pytest.raises(ConfigError, match=fragment):
        compose_prior_config("gp", [override])


def test_negative_linear_lengthscale_names_field_and_bound():
    with pytest.raises(ConfigError, match=r"lengthscale\.low=-1\.0 must be > 0"):
        compose_prior_config("gp", ["lengthscale.scale=linear", "lengthscale.low=-1"])


def test_unknown_prior_lists_installed_ones():
    with pytest.raises(UnknownPriorError, match=r"Installed priors: .*gp.*sine"):
        compose_prior_config("no_such_prior")


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"num_rows": 0}, r"num_rows=0 is out of range"),
    ({"num_train_rows": 11}, r"more train rows than rows"),
    ({"num_features": 0}, r"num_features=0 is out of range"),
])
def test_bad_batch_shapes_are_refused(kwargs, fragment):
    shape = {"num_datasets": 2, "num_rows": 10, "num_features": 1, "num_train_rows": 5} | kwargs
    with pytest.raises(ConfigError, match=fragment):
        BatchShape(**shape)
