"""``pfnforge priors compare``: each meta-feature moves as its definition says, the two-sample test separates
different priors and not a prior from itself, and the command writes its tables and one MLflow parent run with
a child run per prior."""

from __future__ import annotations

import numpy as np
import pandas as pd
from mlflow import MlflowClient

from pfnforge import registry
from pfnforge.cli import main
from pfnforge.compare import c2st_auc, dataset_meta_features, sample_meta_features
from pfnforge.config import compose_prior_config
from pfnforge.prior import BatchShape


def test_meta_features_move_as_defined():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    linear = dataset_meta_features(x, x @ np.array([1.0, -2.0, 0.5]), 100, 0)
    noise = dataset_meta_features(x, rng.normal(size=200), 100, 0)
    assert linear["linear_fit"] > 0.99 and noise["linear_fit"] < 0.1
    assert linear["nn_noise"] < noise["nn_noise"]
    duplicated = dataset_meta_features(np.column_stack([x[:, 0], x[:, 0], 2 * x[:, 0]]), x[:, 1], 100, 0)
    assert duplicated["corr_features"] > 0.99 and duplicated["intrinsic_dim"] == 1 / 3
    labels = np.r_[np.zeros(150), np.ones(50)]
    classes = dataset_meta_features(x, labels, 100, 2)
    assert classes["class_balance"] == 50 / 150 and classes["classes"] == 2
    holes = x.copy()
    holes[rng.random(holes.shape) < 0.25] = np.nan
    assert abs(dataset_meta_features(holes, labels, 100, 2)["missing"] - 0.25) < 0.03
    codes = np.column_stack([rng.integers(0, 4, 200), x[:, :2]]).astype(float)
    assert dataset_meta_features(codes, labels, 100, 2)["categorical"] == 1 / 3


def test_the_two_sample_test_separates_different_priors_and_not_a_prior_from_itself():
    shape = BatchShape(num_datasets=40, num_rows=60, num_features=3, num_train_rows=30)
    gp = registry.build_prior(compose_prior_config("gp"))
    first, second = (sample_meta_features(gp, shape, 2, seed) for seed in (0, 1))
    scm = sample_meta_features(registry.build_prior(compose_prior_config("scm", ["classification=false"])), shape,
                               2, 2)
    assert c2st_auc(first, second) < 0.7 < 0.9 < c2st_auc(first, scm)


def test_compare_writes_tables_and_a_parent_run_with_a_child_per_prior(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["priors", "compare", "gp", "bnn", "--real", "none", "--batches", "1", "--datasets", "8",
                 "--rows", "40", "--features", "3", "--out", str(tmp_path / "out"), "--tracking-uri", uri]) == 0
    table = pd.read_csv(tmp_path / "out" / "compare.csv")
    assert list(table.prior) == ["gp", "bnn"] and (table.datasets == 8).all()
    assert (tmp_path / "out" / "compare.png").is_file() and "| gp |" in capsys.readouterr().out
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("pfnforge-priors").experiment_id])
    [parent] = [r for r in runs if r.info.run_name == "priors-compare"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.info.run_name for r in children) == ["bnn", "gp"]
    assert all("diversity" in r.data.metrics and "linear_fit" in r.data.metrics for r in children)


def test_transfer_trains_on_each_prior_and_scores_every_prior_of_its_task(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = ["priors", "compare", "gp", "scm", "--transfer", "40", "--batches", "1", "--datasets", "8",
               "--rows", "60", "--features", "3", "--out", str(tmp_path / "out"), "--tracking-uri", uri]
    assert main(command) == 0
    matrix = pd.read_csv(tmp_path / "out" / "transfer.csv").set_index("trained on")
    assert list(matrix.index) == ["gp", "scm"]
    assert list(matrix.columns) == ["gp", "scm", "real:classification", "real:regression"]
    # scored where the tasks match, blank where they differ
    assert np.isfinite(matrix.loc["gp", ["gp", "real:regression"]]).all()
    assert np.isfinite(matrix.loc["scm", ["scm", "real:classification"]]).all()
    assert matrix.loc["gp", ["scm", "real:classification"]].isna().all()
    assert matrix.loc["scm", ["gp", "real:regression"]].isna().all()
    assert (tmp_path / "out" / "transfer.png").is_file() and "trained on" in capsys.readouterr().out
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("pfnforge-priors").experiment_id])
    assert {"transfer-gp", "transfer-scm"} <= {r.info.run_name for r in runs}  # the trainings, tracked
    child = next(r for r in runs if r.info.run_name == "gp")
    assert child.data.metrics["transfer_nll/gp"] == matrix.loc["gp", "gp"]
    # the same command again reuses the finished trainings and scores the same held-out batches
    assert main(command) == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "out" / "transfer.csv").set_index("trained on"), matrix)


def test_a_longer_training_on_a_prior_scores_better_on_it(tmp_path):
    from pfnforge.compare_transfer import TransferConfig, transfer_matrix

    gp = {"gp": registry.build_prior(compose_prior_config("gp"))}
    shape = BatchShape(num_datasets=16, num_rows=60, num_features=2, num_train_rows=30)
    nll = {steps: transfer_matrix(gp, {}, TransferConfig(steps=steps, shape=shape, out=tmp_path / str(steps),
                                                         tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}"),
                                  progress=lambda _: None).loc[0, "gp"] for steps in (2, 150)}
    assert nll[150] < nll[2] - 0.1
