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
