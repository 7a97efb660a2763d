"""The SCM prior's TabPFN-v1 parts each move a statistic of the batches as their config field says: permuted
category codes, a meta level of hyperpriors, vector nodes, heteroscedastic and heavy-tailed noise, label
noise, redundant columns, outliers, extreme class imbalance."""

from __future__ import annotations

import numpy as np
from scipy import stats

from tests.test_scm_prior import PLAIN, _prior, _shape

CAUSE_AND_EFFECT = ["classification=false", "num_features.low=1", "num_features.high=1", "num_latent_nodes.low=0",
                    "num_latent_nodes.high=0",
                    "num_root_nodes.high=1", "irrelevant_fraction.high=0", "tree_fraction.high=0",
                    "activations.options=[identity]", "root_distribution.options=[normal]",
                    "noise_std.low=0.5", "noise_std.high=0.5"]
"""Two nodes: one normal root read as the only feature, and the target, a linear function of it plus noise."""
ALL_CATEGORICAL = ["categorical_fraction.low=1", "categorical_fraction.high=1"]


def _residuals(batch) -> tuple[np.ndarray, np.ndarray]:
    """(B, R) the feature and the target's residual after a least-squares line through it, per dataset."""
    x = batch.x[:, :, 0].astype(np.float64)
    y = batch.y.astype(np.float64)
    xc, yc = x - x.mean(1, keepdims=True), y - y.mean(1, keepdims=True)
    slope = (xc * yc).sum(1, keepdims=True) / (xc * xc).sum(1, keepdims=True)
    return x, yc - slope * xc


def test_permuted_category_codes_lose_the_order_of_the_values():
    def mean_rank_correlation(permutation: str) -> float:
        prior = _prior(*CAUSE_AND_EFFECT, *ALL_CATEGORICAL, "num_categories.low=5",
                       "num_categories.high=8", "missing_dataset_probability=0", f"category_permutation={permutation}")
        batch = prior.sample(np.random.default_rng(0), _shape(200, 200, 1))
        return float(np.mean([abs(stats.spearmanr(batch.x[b, :, 0], batch.y[b])[0]) for b in range(200)]))

    assert mean_rank_correlation("0") > 0.75  # codes in value order: the target rises with the code
    assert mean_rank_correlation("1") < 0.5


def test_heavy_tailed_category_counts_reach_beyond_ten():
    prior = _prior(*ALL_CATEGORICAL, "missing_dataset_probability=0", "num_features.low=20")
    batch = prior.sample(np.random.default_rng(1), _shape(40, 1000, 20))
    counts = np.array([len(np.unique(batch.x[b, :, j])) for b in range(40) for j in range(20)])
    assert (counts > 10).mean() > 0.2 and counts.max() <= 30
    capped = _prior(*ALL_CATEGORICAL, "missing_dataset_probability=0", "num_categories.high=10")
    batch = capped.sample(np.random.default_rng(1), _shape(40, 1000, 20))
    assert max(len(np.unique(batch.x[b, :, j])) for b in range(40) for j in range(batch.num_features[b])) <= 10


def test_meta_hyperpriors_make_batches_differ_more_than_datasets_within_them():
    def spreads(meta: str) -> tuple[float, float]:
        prior = _prior(*PLAIN, f"meta_hyperpriors={meta}")
        rng = np.random.default_rng(2)
        logs = np.array([np.log(prior.sample(rng, _shape(16, 8, 3)).hyperparameters["noise_std"])
                         for _ in range(60)])
        return float(logs.std(axis=1).mean()), float(logs.mean(axis=1).std())

    within_off, between_off = spreads("false")
    within_on, between_on = spreads("true")
    assert within_on < 0.75 * within_off
    assert between_on > 1.5 * between_off


def test_vector_nodes_share_parents_and_give_correlated_feature_blocks():
    overrides = [*PLAIN, "classification=false", "tree_fraction.high=0", "num_features.low=12", "num_root_nodes.high=2",
                 "noise_std.low=0.05", "noise_std.high=0.05"]
    prior = _prior(*overrides, "node_width.low=3", "node_width.high=3")
    batch, graphs = prior.sample_with_graphs(np.random.default_rng(3), _shape(60, 300, 12))
    same_block, other = [], []
    for b, graph in enumerate(graphs):
        for node in range(graph.num_nodes):
            assert np.array_equal(graph.parents_of(node), graph.parents_of(int(graph.leader[node])))
        assert np.bincount(graph.leader[graph.kind != 0]).max() == 3
        corr = np.abs(np.corrcoef(batch.x[b, :, :12].T))
        leaders = graph.leader[graph.feature_nodes]
        for i in range(12):
            for j in range(i + 1, 12):
                is_root = graph.kind[graph.feature_nodes[[i, j]]] == 0
                if not is_root.any():
                    (same_block if leaders[i] == leaders[j] else other).append(corr[i, j])
    assert np.mean(same_block) > np.mean(other) + 0.1  # units of one layer read the same parents
    scalar = _prior(*overrides)
    _, graphs = scalar.sample_with_graphs(np.random.default_rng(3), _shape(20, 300, 12))
    assert all(np.array_equal(g.leader, np.arange(g.num_nodes)) for g in graphs)


def test_heteroscedastic_noise_grows_with_the_parent():
    def noise_follows_parent(fraction: str) -> float:
        prior = _prior(*CAUSE_AND_EFFECT, *PLAIN, f"heteroscedastic_fraction.low={fraction}",
                       f"heteroscedastic_fraction.high={fraction}")
        x, residual = _residuals(prior.sample(np.random.default_rng(4), _shape(100, 400, 1)))
        return float(np.mean([stats.spearmanr(x[b], np.abs(residual[b]))[0] for b in range(100)]))

    assert abs(noise_follows_parent("0")) < 0.05
    assert noise_follows_parent("1") > 0.3


def test_heavy_tailed_noise_has_excess_kurtosis():
    def kurtosis(fraction: str) -> float:
        prior = _prior(*CAUSE_AND_EFFECT, *PLAIN, f"heavy_tailed_noise_fraction.low={fraction}",
                       f"heavy_tailed_noise_fraction.high={fraction}", "noise_df.low=2.5", "noise_df.high=3.5")
        _, residual = _residuals(prior.sample(np.random.default_rng(5), _shape(100, 1000, 1)))
        return float(np.median(stats.kurtosis(residual, axis=1)))

    assert abs(kurtosis("0")) < 0.3
    assert kurtosis("1") > 2.0


def test_label_noise_flips_that_share_of_labels_and_nothing_else():
    shape = _shape(100, 200, 5)
    clean = _prior("label_noise.high=0").sample(np.random.default_rng(6), shape)
    noisy = _prior("label_noise.low=0.3", "label_noise.high=0.3").sample(np.random.default_rng(6), shape)
    np.testing.assert_array_equal(noisy.x, clean.x)
    changed = int((noisy.y != clean.y).sum())
    assert stats.binomtest(changed, noisy.y.size, 0.3).pvalue > 1e-4
    assert all(set(np.unique(noisy.y[b])) <= set(range(noisy.num_classes[b])) for b in range(100))


def test_redundant_columns_are_copies_or_combinations_of_earlier_ones():
    def ranks(fraction: str) -> list[tuple[int, int]]:
        prior = _prior(*PLAIN, "num_features.low=6", f"redundant_fraction.low={fraction}",
                       f"redundant_fraction.high={fraction}")
        batch = prior.sample(np.random.default_rng(7), _shape(30, 200, 6))
        return [(np.linalg.matrix_rank(batch.x[b].astype(np.float64), tol=1e-3), int(batch.num_features[b]))
                for b in range(30)]

    assert all(rank == used for rank, used in ranks("0"))
    assert all(rank == 1 for rank, _ in ranks("1"))  # every column is in the span of the first


def test_outliers_replace_that_share_of_cells_far_from_the_column():
    shape, clean_overrides = _shape(30, 500, 8), [*PLAIN, "num_features.low=8"]
    clean = _prior(*clean_overrides).sample(np.random.default_rng(8), shape).x.astype(np.float64)
    noisy = _prior(*clean_overrides, "outlier_rate.low=0.05", "outlier_rate.high=0.05").sample(
        np.random.default_rng(8), shape).x.astype(np.float64)
    changed = noisy != clean
    assert stats.binomtest(int(changed.sum()), changed.size, 0.05).pvalue > 1e-4
    distance = np.abs(noisy - clean.mean(axis=1, keepdims=True)) / clean.std(axis=1, keepdims=True)
    assert distance[changed].min() > 4.9 and distance[changed].max() < 20.1


def test_class_imbalance_reaches_one_to_a_thousand():
    prior = _prior("num_classes.high=2", "class_imbalance.low=1000", "class_imbalance.high=1000")
    batch = prior.sample(np.random.default_rng(9), _shape(10, 3003, 3))
    for b in range(10):
        counts = np.bincount(batch.y[b].astype(int), minlength=2)
        assert 500 < counts.max() / counts.min() < 1500
