"""The PFN transformer and its bar distribution, checked against what they must be."""

from __future__ import annotations

import pytest
import torch

from pfnforge.errors import ConfigError
from pfnforge.model.bar import BarDistribution, fit_borders
from pfnforge.model.pfn import PFN, ModelConfig

REGRESSION = torch.zeros(4, dtype=torch.int32)


@pytest.fixture
def model() -> PFN:
    torch.manual_seed(0)
    borders = fit_borders(torch.randn(5000), 30)
    return PFN(ModelConfig(embed_dim=32, num_layers=2, num_heads=4, num_buckets=30, max_features=4), borders,
               classification=True).eval()


def test_bar_density_integrates_to_one_and_has_full_support():
    bar = BarDistribution(fit_borders(torch.randn(10_000), 40))
    logits = torch.randn(1, 1, 40)
    y = torch.linspace(-20, 20, 400_001)
    log_density = bar.log_density(logits.expand(1, len(y), 40), y[None])[0]
    assert torch.trapezoid(log_density.exp(), y).item() == pytest.approx(1.0, abs=2e-3)
    assert torch.isfinite(log_density[[0, -1]]).all()  # tails: every value has positive density


def test_outer_borders_do_not_stretch_to_the_samples_extremes():
    samples = torch.cat([torch.randn(10_000), torch.tensor([60.0, -45.0])])  # two far outliers
    borders = fit_borders(samples, 20)
    widths = borders[1:] - borders[:-1]
    assert widths[0] == pytest.approx(widths[1].item()) and widths[-1] == pytest.approx(widths[-2].item())
    assert borders[-1] < 3 and borders[0] > -3
    bar = BarDistribution(borders)
    # equal logits: the mean of a symmetric bucket grid stays near 0 whatever the outliers were
    assert abs(bar.mean(torch.zeros(1, 1, 20)).item()) < 0.1


def test_predictions_ignore_row_order_and_other_test_rows(model):
    x, y = torch.rand(4, 30, 3), torch.randn(4, 30)
    base = model.test_log_likelihood(x, y, 10, REGRESSION)
    order = torch.cat([torch.randperm(10), 10 + torch.randperm(20)])
    shuffled = model.test_log_likelihood(x[:, order], y[:, order], 10, REGRESSION)
    torch.testing.assert_close(shuffled, base[:, order[10:] - 10], rtol=1e-4, atol=1e-5)
    # a test row's prediction does not depend on the other test rows
    alone = model.test_log_likelihood(x[:, :11], y[:, :11], 10, REGRESSION)
    torch.testing.assert_close(alone[:, 0], base[:, 0], rtol=1e-4, atol=1e-5)


def test_training_targets_matter(model):
    x, y = torch.rand(4, 30, 3), torch.randn(4, 30)
    changed = y.clone()
    changed[:, :10] += 3.0
    assert not torch.allclose(model.test_log_likelihood(x, y, 10, REGRESSION),
                              model.test_log_likelihood(x, changed, 10, REGRESSION))


def test_classification_puts_no_mass_beyond_a_datasets_classes(model):
    x, y = torch.rand(4, 30, 3), torch.randint(0, 3, (4, 30)).float()
    log_likelihood = model.test_log_likelihood(x, y, 10, torch.full((4,), 3, dtype=torch.int32))
    logits, _, _ = model(x, y, 10, True)
    probabilities = torch.softmax(logits.masked_fill(torch.arange(10) >= 3, float("-inf")), -1)
    torch.testing.assert_close(probabilities[..., :3].sum(-1), torch.ones(4, 20))
    assert torch.isfinite(log_likelihood).all()


@pytest.mark.parametrize(("features", "split", "classes", "fragment"), [
    (5, 10, REGRESSION, "this model takes at most 4"),
    (3, 30, REGRESSION, "split point 30 must leave"),
    (3, 10, torch.tensor([0, 2, 0, 0], dtype=torch.int32), "mixes regression and classification"),
])
def test_inputs_beyond_the_models_limits_are_refused(model, features, split, classes, fragment):
    with pytest.raises(ConfigError, match=fragment):
        model.test_log_likelihood(torch.rand(4, 30, features), torch.randn(4, 30), split, classes)


def test_model_config_validation():
    with pytest.raises(ConfigError, match="num_heads=3 must divide"):
        ModelConfig(embed_dim=32, num_heads=3)


def test_unstandardized_model_scores_one_context_point_and_sees_the_target_scale():
    torch.manual_seed(0)
    config = dict(embed_dim=32, num_layers=2, num_heads=4, num_buckets=30, max_features=4)
    borders = fit_borders(torch.randn(5000), 30)
    # plain standardisation (no shrinkage of the spread toward one) is exactly equivariant to the target scale
    standardized = PFN(ModelConfig(**config, target_spread_prior_weight=0.0), borders).eval()
    raw = PFN(ModelConfig(**config, enable_standardization=False), borders).eval()
    raw.load_state_dict(standardized.state_dict())
    x, y = torch.rand(4, 20, 1), torch.randn(4, 20)
    with torch.no_grad():
        # one context point has no spread to standardise by; raw targets score like any other split
        assert raw.test_log_likelihood(x, y, 1, REGRESSION).min() > -50
        # standardised predictions of rescaled data are the same up to the Jacobian; raw ones are not
        shift = standardized.test_log_likelihood(x, 3 * y, 10, REGRESSION) \
            - standardized.test_log_likelihood(x, y, 10, REGRESSION)
        torch.testing.assert_close(shift, torch.full_like(shift, -torch.log(torch.tensor(3.0)).item()))
        raw_shift = raw.test_log_likelihood(x, 3 * y, 10, REGRESSION) - raw.test_log_likelihood(x, y, 10, REGRESSION)
        assert (raw_shift - shift).abs().max() > 0.1


def test_standardized_model_stays_finite_with_one_context_point_or_constant_targets():
    """A spread of zero (one training row, or equal targets) must not divide test values by ~0: before, a
    single context point gave log-likelihoods of about -1e9."""
    torch.manual_seed(0)
    model = PFN(ModelConfig(embed_dim=32, num_layers=2, num_heads=4, num_buckets=30, max_features=4),
                fit_borders(torch.randn(5000), 30)).eval()
    x, y = torch.rand(4, 20, 2), torch.randn(4, 20)
    constant = y.clone()
    constant[:, :10] = 0.5
    with torch.no_grad():
        one_point = model.test_log_likelihood(x, y, 1, REGRESSION)
        equal_targets = model.test_log_likelihood(x, constant, 10, REGRESSION)
    # the bug gave about -1e9; an untrained model's far-out targets in its narrow tails cost tens of nats
    assert one_point.min() > -200 and equal_targets.min() > -200


def test_nearly_equal_context_targets_do_not_throw_test_targets_to_the_tails():
    """Two context targets 1e-5 apart have a spread of 5e-6: divided by it, a test target 0.7 away lands 1.4e5
    spreads out. The spread shrunk toward one (``target_spread_prior_weight``) keeps it near one spread."""
    torch.manual_seed(0)
    config = dict(embed_dim=32, num_layers=2, num_heads=4, num_buckets=30, max_features=4)
    borders = fit_borders(torch.randn(5000), 30)
    shrunk = PFN(ModelConfig(**config), borders).eval()
    plain = PFN(ModelConfig(**config, target_spread_prior_weight=0.0), borders).eval()
    plain.load_state_dict(shrunk.state_dict())
    x = torch.rand(4, 6, 1)
    y = torch.tensor([[0.3, 0.3 + 1e-5, 1.0, -0.2, 0.5, 0.1]]).repeat(4, 1)
    with torch.no_grad():
        assert shrunk.test_log_likelihood(x, y, 2, REGRESSION).min() > -20
        assert plain.test_log_likelihood(x, y, 2, REGRESSION).max() < -1000
        # many rows: the shrinkage fades, predictions of rescaled data stay equivariant up to the Jacobian
        x, y = torch.rand(4, 400, 1), torch.randn(4, 400)
        close = shrunk.test_log_likelihood(x, y, 390, REGRESSION) - plain.test_log_likelihood(x, y, 390, REGRESSION)
        assert close.abs().max() < 0.05
    with pytest.raises(ConfigError, match="target_spread_prior_weight"):
        ModelConfig(target_spread_prior_weight=-1.0)
