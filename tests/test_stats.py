from __future__ import annotations

import numpy as np

from pfnforge.batch import PriorBatch
from pfnforge.stats import summarize


def test_statistics_measure_what_they_name():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 200, 2)).astype(np.float32)
    x[:, :, 1] = x[:, :, 0]  # perfectly correlated features
    x[0, :20, 0] = np.nan  # 10% of one feature of one dataset missing: 1% of all entries
    y = (x[:, :, 1] > 0).astype(np.float32)  # two classes, balanced
    batch = PriorBatch(x=x, y=y, num_rows=200, num_features=2, num_train_rows=100, num_classes=2, prior="t",
                       hyperparameters={"kind": np.array(["a", "a", "b", None, "a"], dtype=object),
                                        "scale": np.arange(5.0)})
    summary = summarize([batch])
    assert summary["datasets"] == 5 and summary["classification share"] == 1.0
    assert summary["mean |corr| between features"] > 0.9
    assert abs(summary["fraction missing"] - 0.01) < 1e-9
    assert 0.45 < summary["majority class share"] < 0.6
    assert summary["hp kind"] == "a: 3, b: 1"
    assert summary["hp scale (min/median/max)"] == "0/2/4"


def test_stats_cli_prints_the_summary(cli_env):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "pfnforge.cli", "priors", "stats", "bnn", "classification=true",
                             "--batches", "2", "--datasets", "8"], env=cli_env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "majority class share" in result.stdout and "hp weight_scale (min/median/max)" in result.stdout


def _regression(x: np.ndarray, y: np.ndarray, **kwargs) -> PriorBatch:
    fields = {"num_rows": x.shape[1], "num_features": x.shape[2], "num_train_rows": x.shape[1] // 2,
              "num_classes": 0, **kwargs}
    return PriorBatch(x=x.astype(np.float32), y=y.astype(np.float32), prior="t", **fields)


def test_target_noise_is_the_share_of_noise_variance_in_the_target():
    rng = np.random.default_rng(1)
    x = rng.random((20, 256, 1))
    signal = np.sin(2 * np.pi * x[:, :, 0])  # variance 1/2
    noisy = summarize([_regression(x, signal + np.sqrt(0.5) * rng.standard_normal((20, 256)))])
    assert abs(noisy["target noise (NN residual share)"] - 0.5) < 0.06  # noise 0.5 of total 1.0
    assert summarize([_regression(x, signal)])["target noise (NN residual share)"] < 0.02
    unrelated = summarize([_regression(x, rng.standard_normal((20, 256)))])
    assert abs(unrelated["target noise (NN residual share)"] - 1.0) < 0.08


def test_classification_noise_is_the_nearest_neighbour_disagreement_rate():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((10, 200, 2))
    clean = (x[:, :, 0] > 0).astype(np.float32)
    flipped = np.where(rng.random((10, 200)) < 0.2, 1 - clean, clean)  # 20% of labels flipped

    def rate(y):
        batch = _regression(x, y, num_classes=2)
        summary = summarize([batch])
        assert "target noise (NN residual share)" not in summary  # no regression dataset
        return summary["label noise (1-NN disagreement)"]

    assert rate(clean) < 0.05
    # a neighbour's label disagrees when exactly one of the two was flipped: 2 · 0.2 · 0.8 = 0.32
    assert abs(rate(flipped) - 0.32) < 0.06


def test_categorical_looking_columns_are_counted():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 100, 5))
    x[:, :, 0] = rng.integers(0, 3, (4, 100))  # three levels
    x[:, :, 1] = rng.integers(0, 2, (4, 100))  # binary
    x[:, :, 2] = np.arange(100)  # integer codes, but one per row: an index, not a category
    summary = summarize([_regression(x, x[:, :, 3])])
    assert summary["fraction categorical-looking columns"] == 0.4


def test_sizes_in_use_and_class_shares_are_reported():
    x = np.random.default_rng(4).standard_normal((3, 100, 3))
    x[0, :, 1:] = x[1, :, 2:] = 0  # padding past each dataset's features
    y = np.zeros((3, 100))
    y[:, :60], y[:, 60:90], y[:, 90:] = 0, 1, 2  # shares 0.6, 0.3, 0.1 over all 100 rows
    batch = PriorBatch(x=x.astype(np.float32), y=y.astype(np.float32), num_rows=np.array([100, 100, 100]),
                       num_features=np.array([1, 2, 3]), num_train_rows=np.array([10, 50, 70]), num_classes=3,
                       prior="t")
    summary = summarize([batch])
    assert summary["features (min/median/max)"] == "1/2/3"
    assert summary["train rows (min/median/max)"] == "10/50/70"
    assert summary["majority class share"] == 0.6 and abs(summary["minority class share"] - 0.1) < 1e-12
    assert summary["datasets with missing values"] == 0.0
