"""The SCM prior draws what its config says: classes, rates, hyperpriors, and a graph whose structure shows
in the data (features with no common cause with the target are independent of it; its causes are not)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from pfnforge.config import compose_prior_config
from pfnforge.errors import ConfigError
from pfnforge.prior import BatchShape, Task
from pfnforge_priors.scm import SCMPrior

PLAIN = ["categorical_fraction.high=0", "warp_fraction.high=0", "quantize_fraction.high=0",
         "missing_dataset_probability=0"]
"""No post-processing: the features are the graph's node values."""


def _prior(*overrides: str) -> SCMPrior:
    return SCMPrior(compose_prior_config("scm", list(overrides)))


def _shape(num_datasets: int, num_rows: int, num_features: int) -> BatchShape:
    return BatchShape(num_datasets=num_datasets, num_rows=num_rows, num_features=num_features,
                      num_train_rows=num_rows // 2)


def test_classes_span_the_configured_count_and_imbalance():
    prior = _prior("num_classes.low=3", "num_classes.high=6", "class_imbalance.low=2", "class_imbalance.high=5")
    assert prior.task is Task.classification
    batch = prior.sample(np.random.default_rng(0), _shape(120, 600, 8))
    assert set(np.unique(batch.num_classes)) == {3, 4, 5, 6}
    for b in range(120):
        counts = np.bincount(batch.y[b].astype(int), minlength=batch.num_classes[b])
        assert len(counts) == batch.num_classes[b] and counts.min() >= 1  # labels 0..C-1, every class present
        ratio = counts.max() / counts.min()
        assert ratio == pytest.approx(batch.hyperparameters["class_imbalance"][b], rel=0.1)
        assert 2 * 0.9 <= ratio <= 5 * 1.1


def test_class_counts_fit_few_rows_and_labels_are_integers():
    batch = _prior().sample(np.random.default_rng(1), _shape(200, 6, 3))
    assert np.all(batch.num_classes <= 6) and np.all(batch.num_classes >= 2)
    assert np.array_equal(batch.y, np.round(batch.y))
    for b in range(200):
        assert sorted(set(batch.y[b].astype(int))) == list(range(batch.num_classes[b]))


def test_regression_targets_are_standardised_and_finite():
    prior = _prior("classification=false")
    assert prior.task is Task.regression
    batch = prior.sample(np.random.default_rng(2), _shape(50, 300, 5))
    assert np.all(batch.num_classes == 0) and np.all(np.isfinite(batch.y))
    np.testing.assert_allclose(batch.y.std(axis=1), 1.0, rtol=1e-4)
    np.testing.assert_allclose(batch.y.mean(axis=1), 0.0, atol=1e-5)  # centred, as the docs say


@pytest.mark.parametrize("dependent", ["0", "1"])
def test_missing_fraction_matches_the_rate_within_binomial_bounds(dependent):
    prior = _prior("missing_dataset_probability=1", "missing_rate.low=0.12", "missing_rate.high=0.12",
                   f"value_dependent_probability={dependent}")
    assert prior.emits_missing_values()
    batch = prior.sample(np.random.default_rng(3), _shape(60, 200, 10))
    cells = int(batch.num_features.sum()) * 200
    missing = int(np.isnan(batch.x).sum())
    assert stats.binomtest(missing, cells, 0.12).pvalue > 1e-4
    assert set(batch.hyperparameters["missingness"]) == {"value_dependent" if dependent == "1" else "mcar"}
    assert np.all(np.isfinite(batch.y))


def test_share_of_datasets_with_missing_values_follows_its_probability():
    batch = _prior("missing_dataset_probability=0.3").sample(np.random.default_rng(4), _shape(400, 20, 3))
    with_missing, drawn = np.isnan(batch.x).any(axis=(1, 2)), batch.hyperparameters["missing_rate"] > 0
    assert not np.any(with_missing & ~drawn)  # only datasets that drew a rate have NaNs
    assert stats.binomtest(int(drawn.sum()), 400, 0.3).pvalue > 1e-4
    assert not _prior("missing_dataset_probability=0").emits_missing_values()


def test_categorical_share_matches_its_rate_and_columns_hold_codes():
    # no warps or grids: a warped column quantised onto 0/1 would look like codes
    prior = _prior("categorical_fraction.low=0.3", "categorical_fraction.high=0.3", "num_categories.high=6",
                   "missing_dataset_probability=0", "warp_fraction.high=0", "quantize_fraction.high=0")
    batch = prior.sample(np.random.default_rng(5), _shape(80, 300, 12))
    recorded = batch.hyperparameters["num_categorical_features"]
    assert stats.binomtest(int(recorded.sum()), int(batch.num_features.sum()), 0.3).pvalue > 1e-4
    for b in range(80):
        columns = batch.x[b, :, :batch.num_features[b]]
        is_code = np.all((columns == np.round(columns)) & (columns >= 0) & (columns <= 5), axis=0)
        assert is_code.sum() == recorded[b]


def test_hyperparameter_draws_follow_their_hyperpriors():
    batch = _prior(*PLAIN).sample(np.random.default_rng(6), _shape(1500, 8, 4))
    h = batch.hyperparameters
    assert stats.kstest(np.log(h["weight_scale"]), stats.uniform(np.log(0.5), np.log(6.0)).cdf).pvalue > 1e-3
    assert stats.kstest(h["target_position"], stats.uniform(0.3, 0.7).cdf).pvalue > 1e-3
    roots = np.bincount(h["num_root_nodes"], minlength=11)[1:]
    assert stats.chisquare(roots).pvalue > 1e-3  # uniform on 1..10
    used = np.bincount(batch.num_features, minlength=5)[1:]  # min(U{1..100}, 4): 1, 2, 3 each 1 %, 4 97 %
    assert stats.chisquare(used, 1500 * np.array([0.01, 0.01, 0.01, 0.97])).pvalue > 1e-3


def test_graphs_are_acyclic_and_read_the_target_apart_from_the_features():
    prior = _prior("num_features.low=5", "num_features.high=5")
    _, graphs = prior.sample_with_graphs(np.random.default_rng(7), _shape(100, 16, 5))
    for graph in graphs:
        for node in range(graph.num_nodes):
            parents = graph.parents_of(node)
            assert np.all(parents < node)  # causal order: acyclic
            assert np.all(graph.component[parents] == graph.component[node])
        assert graph.kind[graph.target] != 0 and graph.component[graph.target] == 0
        assert graph.target not in graph.feature_nodes and len(set(graph.feature_nodes)) == 5


def _g_statistic(a: np.ndarray, b: np.ndarray, bins: int = 5) -> float:
    """2 n · mutual information of rank bins: χ²((bins - 1)²) when a and b are independent."""
    n = len(a)
    qa, qb = (np.argsort(np.argsort(v)) * bins // n for v in (a, b))
    table = np.zeros((bins, bins))
    np.add.at(table, (qa, qb), 1)
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / n
    nonzero = table > 0
    return float(2 * np.sum(table[nonzero] * np.log(table[nonzero] / expected[nonzero])))


def test_features_without_a_common_cause_are_independent_of_the_target_and_its_causes_are_not():
    prior = _prior("classification=false", *PLAIN, "num_features.low=12", "num_features.high=12",
                   "irrelevant_fraction.low=0.3", "irrelevant_fraction.high=0.5", "noise_std.high=0.1")
    batch, graphs = prior.sample_with_graphs(np.random.default_rng(8), _shape(150, 800, 12))
    critical = stats.chi2((5 - 1) ** 2).ppf(0.999)
    independent, causes = [], []
    for b, graph in enumerate(graphs):
        target_ancestors = graph.ancestors(graph.target)
        for j, node in enumerate(graph.feature_nodes):
            g = _g_statistic(batch.x[b, :, j], batch.y[b])
            if not target_ancestors & graph.ancestors(int(node)):
                independent.append(g)
            elif node in graph.parents_of(graph.target):
                causes.append(g)
    assert len(independent) > 200 and len(causes) > 50
    assert np.mean(np.asarray(independent) > critical) < 0.01  # ~0.1 % false alarms under independence
    assert np.mean(np.asarray(causes) > critical) > 0.7
    assert stats.kstest(independent, stats.chi2((5 - 1) ** 2).cdf).pvalue > 1e-4


def test_extreme_mechanisms_stay_finite():
    prior = _prior("activations.options=[square]", "weight_scale.low=20", "weight_scale.high=50",
                   "num_latent_nodes.low=40", "num_latent_nodes.high=40", "noise_std.low=0", "noise_std.high=0",
                   "noise_std.scale=linear", "root_distribution.options=[lognormal]", "missing_dataset_probability=0")
    batch = prior.sample(np.random.default_rng(9), _shape(20, 100, 10))
    assert np.all(np.isfinite(batch.x)) and np.all(np.isfinite(batch.y))


def test_thousands_of_rows_keep_every_class_and_rate():
    prior = _prior("missing_dataset_probability=1", "missing_rate.low=0.05", "missing_rate.high=0.05")
    batch = prior.sample(np.random.default_rng(11), _shape(3, 3000, 20))
    assert np.all(np.isfinite(batch.y)) and batch.x.shape == (3, 3000, 20)
    for b in range(3):
        assert len(np.unique(batch.y[b])) == batch.num_classes[b]
        used = batch.x[b, :, :batch.num_features[b]]
        assert stats.binomtest(int(np.isnan(used).sum()), used.size, 0.05).pvalue > 1e-4


def test_unused_feature_columns_are_zero():
    batch = _prior("num_features.low=1", "num_features.high=3").sample(np.random.default_rng(10), _shape(30, 20, 6))
    assert np.all(batch.num_features <= 3)
    for b in range(30):
        assert np.all(batch.x[b, :, batch.num_features[b]:] == 0)


@pytest.mark.parametrize(("override", "fragment"), [
    ("num_classes.low=1", r"num_classes=\[1, 10\] is out of range"),
    ("num_classes.high=11", r"num_classes=\[2, 11\] is out of range"),
    ("num_features.low=0", r"num_features=\[0, 100\] is out of range"),
    ("missing_rate.high=1.5", r"missing_rate is out of range: missing_rate.high=1.5 must be <= 1"),
    ("categorical_fraction.low=-0.1", r"categorical_fraction is out of range"),
    ("missing_dataset_probability=2", r"missing_dataset_probability=2.0 is out of range"),
    ("class_imbalance.low=0.5", r"class_imbalance.low=0.5 must be >= 1"),
    ("activations.options=[tanh,swish]", r"activations: unknown \['swish'\]"),
    ("tree_depth.high=12", r"tree_depth=\[1, 12\] is out of range"),
])
def test_bad_settings_name_the_field(override, fragment):
    with pytest.raises(ConfigError, match=fragment):
        compose_prior_config("scm", [override])


def test_more_classes_than_rows_is_refused():
    with pytest.raises(ConfigError, match=r"3 rows cannot hold num_classes\.low=5"):
        _prior("num_classes.low=5").sample(np.random.default_rng(0), _shape(2, 3, 2))
