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


@pytest.mark.parametrize(("overrides", "fragments"), [
    (["+prior.lenghtscale.low=0.1"], ["'lenghtscale'", "Did you mean 'lengthscale'", "priors show gp"]),
    (["+prior.lengthscale.lw=0.1"], ["'lengthscale.lw'", "Did you mean 'lengthscale.low'", "low, high, scale"]),
    (["prior.lenghtscale.low=0.1"], ["'prior.lenghtscale'", "Did you mean 'prior.lengthscale'", "priors show gp"]),
    (["prior=scm", "prior.node_widht.high=3"], ["Did you mean 'prior.node_width'", "priors show scm"]),
    (["model.embed_dimm=8"], ["Did you mean 'model.embed_dim'", "num_layers"]),
    (["+model.embed_dimm=8"], ["'embed_dimm'", "valid keys", "num_layers"]),
])
def test_a_misspelled_training_key_is_refused_with_the_valid_keys(overrides, fragments):
    from pfnforge.cli.train import compose_train_config
    from pfnforge.config import to_model_config, to_prior_config

    with pytest.raises(ConfigError) as caught:
        cfg = compose_train_config(overrides)
        to_prior_config(cfg.prior)
        to_model_config(cfg.model)
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_every_model_field_overrides_without_a_plus():
    import dataclasses

    from pfnforge.cli.train import compose_train_config
    from pfnforge.config import to_model_config

    for preset in ("small", "cellwise_tiny", "colrow_tiny"):
        base = to_model_config(compose_train_config([f"model={preset}"]).model)
        for field in dataclasses.fields(base):
            value = getattr(base, field.name)
            if value is None or isinstance(value, str):
                continue
            changed = (not value) if isinstance(value, bool) else 2 * value if isinstance(value, int) else value + 0.25
            cfg = compose_train_config([f"model={preset}", f"model.{field.name}={changed}"])
            assert getattr(to_model_config(cfg.model), field.name) == changed, (preset, field.name)
