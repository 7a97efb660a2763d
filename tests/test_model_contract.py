"""The contract every installed architecture keeps, checked for free for first- and third-party plugins alike:
the PFN invariants (context rows' order does not matter, query rows never see each other), a cached context
equal to one pass, heads that all get gradients, a lossless save and load, Hydra composition."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from pfnforge import registry
from pfnforge.cli.train import compose_train_config
from pfnforge.config import to_model_config
from pfnforge.errors import ConfigError
from pfnforge.inference.artifact import build_random_pfn, load_model_dir, save_model_dir

ARCHITECTURES = sorted(registry.discover_models())
B, T, Q, F = 3, 24, 10, 4


def _model(name: str, *, classification: bool = True, **overrides) -> torch.nn.Module:
    cls = registry.load_model_class(name)
    torch.manual_seed(0)
    model = cls(cls.Config(**overrides), torch.linspace(-3, 3, 31), classification=classification)
    return model.eval()


def _data(seed: int = 0, num_features: int = F) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T + Q, num_features, generator=generator)
    x[0, 3, 1] = x[1, T + 2, 0] = float("nan")
    y = torch.randint(0, 3, (B, T + Q), generator=generator).float()
    return x, y


def test_first_party_and_example_architectures_are_installed():
    assert {"rowwise", "cellwise", "colrow", "example_kernel"} <= set(ARCHITECTURES)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_permuting_context_rows_leaves_every_prediction_unchanged(name):
    model, (x, y) = _model(name), _data()
    order = torch.randperm(T, generator=torch.Generator().manual_seed(1))
    shuffled_x, shuffled_y = torch.cat([x[:, order], x[:, T:]], 1), torch.cat([y[:, order], y[:, T:]], 1)
    with torch.no_grad():
        torch.testing.assert_close(model(x, y, T, True)[0], model(shuffled_x, shuffled_y, T, True)[0],
                                   atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_query_rows_are_predicted_independently_of_each_other(name):
    model, (x, y) = _model(name), _data()
    order = torch.randperm(Q, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        logits = model(x, y, T, True)[0]
        permuted = model(torch.cat([x[:, :T], x[:, T:][:, order]], 1), y, T, True)[0]
        alone = model(x[:, :T + 1], y[:, :T + 1], T, True)[0]  # the first query row without the others
    torch.testing.assert_close(permuted, logits[:, order], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(alone[:, 0], logits[:, 0], atol=1e-5, rtol=1e-4)
    assert not torch.allclose(logits[:, 0], logits[:, 1])  # and they do depend on the row


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_a_cached_context_predicts_what_one_pass_predicts(name):
    model, (x, y) = _model(name, classification=False), _data()
    with torch.no_grad():
        logits = model(x, y, T, False)[0]
        context = model.encode_context(x[:, :T], y[:, :T], False)
        chunks = [model.predict_from_context(context, x[:, T + start:T + start + 3]) for start in range(0, Q, 3)]
    torch.testing.assert_close(torch.cat(chunks, 1), logits, atol=1e-6, rtol=1e-5)
    assert context.nbytes > 0


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_predictions_do_not_depend_on_the_scale_of_a_column_with_missing_cells(name):
    """Feature statistics ignore missing cells: shifting and scaling a column that has NaNs is undone by the
    per-dataset standardisation, exactly as for a complete column (a zero-filled mean would move)."""
    model, (x, y) = _model(name), _data()
    x[:, :T:3, 1] = float("nan")
    moved = x.clone()
    moved[..., 1] = moved[..., 1] * 7.0 + 50.0
    with torch.no_grad():
        torch.testing.assert_close(model(moved, y, T, True)[0], model(x, y, T, True)[0], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_every_parameter_of_a_one_head_model_gets_a_gradient(name):
    """Data-parallel training fails on parameters without gradients: a model has only the heads it trains."""
    for classification in (True, False):
        model, (x, y) = _model(name, classification=classification).train(), _data()
        num_classes = torch.full((B,), 3 if classification else 0)
        loss = -model.test_log_likelihood(x, y if classification else torch.randn_like(y), T, num_classes).mean()
        loss.backward()
        assert torch.isfinite(loss)
        unused = [n for n, p in model.named_parameters() if p.grad is None and not n.startswith(
            "regression_head" if classification else "classification_head")]
        assert not unused, unused


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_save_and_load_give_identical_outputs_through_the_entry_point(name, tmp_path):
    trained = build_random_pfn(registry.load_model_class(name).Config(), max_rows=64)
    save_model_dir(trained, tmp_path / "model")
    loaded = load_model_dir(tmp_path / "model")
    assert type(loaded.model) is type(trained.model) and loaded.model.config == trained.model.config
    x, y = _data()
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x, y, T, True)[0], trained.model(x, y, T, True)[0])


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_wider_datasets_than_the_cap_are_refused_and_uncapped_models_take_them(name):
    model = _model(name)
    cap = model.config.max_features
    x, y = _data(num_features=(cap or 40) + 1)
    if cap is None:
        with torch.no_grad():
            assert torch.isfinite(model(x, y, T, True)[0]).all()
    else:
        with pytest.raises(ConfigError, match="max_features"):
            model(x, y, T, True)


@pytest.mark.parametrize("name", [n for n in ARCHITECTURES if registry.load_model_class(n).column_equivariant])
def test_column_equivariant_models_ignore_column_order_given_their_feature_embeddings(name, monkeypatch):
    """Permuting the columns together with the random column embeddings changes no prediction; with the
    embeddings left in place, it does (they are what tells columns apart)."""
    model, (x, y) = _model(name), _data()
    order = torch.tensor([2, 0, 3, 1])
    with torch.no_grad():
        logits = model(x, y, T, True)[0]
        in_place = model(x[..., order], y, T, True)[0]
        original = model.feature_embeddings
        monkeypatch.setattr(model, "feature_embeddings", lambda n, device: original(n, device)[order])
        permuted = model(x[..., order], y, T, True)[0]
    torch.testing.assert_close(permuted, logits, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(in_place, logits, atol=1e-4)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_config_composes_in_hydra_and_every_field_overrides(name):
    cls = registry.load_model_class(name)
    field = next(f for f in dataclasses.fields(cls.Config) if f.name == "num_buckets")
    config = to_model_config(compose_train_config([f"model={name}", f"model.{field.name}=7"]).model)
    assert type(config) is cls.Config and config.num_buckets == 7


@pytest.mark.parametrize("preset", ["tiny", "small", "rowwise_tiny", "cellwise_tiny", "cellwise_small",
                                    "colrow_tiny", "colrow_small", "cellwise_base", "colrow_base"])
def test_presets_name_their_architecture(preset):
    config = to_model_config(compose_train_config([f"model={preset}"]).model)
    expected = preset.split("_")[0] if "_" in preset else "rowwise"
    assert registry.model_class_for(config).name == expected


def test_an_out_of_range_model_field_is_refused_with_its_name():
    with pytest.raises(ConfigError, match=r"num_heads=3 must divide model\.embed_dim=32"):
        to_model_config(compose_train_config(["model=cellwise_tiny", "model.num_heads=3"]).model)
