"""``pfnforge evaluate``: metrics against hand computations, seeded splits, a PFN and baselines scored on
the same splits with tables, plots and an MLflow run, the NLL against the exact GP posterior, and the
errors for directories and datasets it cannot use."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from sklearn.datasets import load_diabetes, load_iris

from pfnforge import registry
from pfnforge.cli import main
from pfnforge.config import compose_prior_config
from pfnforge.errors import ConfigError
from pfnforge.evaluation.datasets import load_datasets, prepare, write_example_data
from pfnforge.evaluation.metrics import classification_scores, critical_difference, expected_calibration_error
from pfnforge.evaluation.posterior import PosteriorConfig, evaluate_against_prior, trained_prior
from pfnforge.evaluation.run import Tracking, evaluate_on_data
from pfnforge.evaluation.tabular import EvaluateConfig, _split
from pfnforge.inference.artifact import build_random_pfn, load_checkpoint, save_model_dir
from pfnforge.model.pfn import ModelConfig


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Iris (classification, 60 rows) as CSV and diabetes (regression, 60 rows) as Parquet."""
    directory = tmp_path_factory.mktemp("datasets")
    rng = np.random.default_rng(0)
    for name, loader, suffix in (("iris", load_iris, "csv"), ("diabetes", load_diabetes, "parquet")):
        frame = loader(as_frame=True).frame
        frame = frame.iloc[np.sort(rng.choice(len(frame), 60, replace=False))]
        frame.to_csv(directory / f"{name}.csv", index=False) if suffix == "csv" else \
            frame.to_parquet(directory / f"{name}.parquet", index=False)
    return directory


@pytest.fixture(scope="module")
def random_pfn():
    config = ModelConfig(embed_dim=16, num_layers=1, num_heads=2, max_features=4, max_classes=5, num_buckets=10)
    return build_random_pfn(config, max_rows=200, seed=1)  # both heads; untrained: only the plumbing is judged


def test_expected_calibration_error_matches_a_hand_computation():
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7]])
    # confidences .9 .8 .6 .7 fall in four bins; correct 1 0 1 1 -> |gaps| .1 .8 .4 .3
    assert expected_calibration_error(np.array([0, 1, 0, 1]), proba) == pytest.approx(0.4)
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.5, 1.0, 20_000)
    correct = rng.random(20_000) < confidence  # calibrated by construction
    proba = np.stack([confidence, 1 - confidence], 1)
    assert expected_calibration_error(np.where(correct, 0, 1), proba) < 0.02


def test_multiclass_roc_auc_is_one_vs_rest_and_perfect_on_perfect_scores():
    y = np.array([0, 1, 2, 0, 1, 2])
    scores = classification_scores(y, np.eye(3)[y] * 0.9 + 0.1 / 3)
    assert scores["roc_auc"] == 1.0 and scores["accuracy"] == 1.0 and scores["log_loss"] < 0.2
    assert critical_difference(3, 10) == pytest.approx(2.344 * np.sqrt(3 * 4 / 60))


def test_splits_are_seeded_and_stratified(data_dir):
    [_, iris] = load_datasets(data_dir)  # sorted by name: diabetes, iris
    first, again, other = (_split(iris, seed, 0.3) for seed in (5, 5, 6))
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[1], other[1])
    train_share = iris.y.iloc[first[0]].value_counts(normalize=True).sort_index()
    assert np.allclose(train_share, iris.y.value_counts(normalize=True).sort_index(), atol=0.05)


def test_pfn_and_baselines_are_scored_on_every_split_and_logged(data_dir, random_pfn, tiny_gp_run, tmp_path):
    uri = tiny_gp_run["tracking_uri"]  # an existing store: creating one costs seconds
    config = EvaluateConfig(repeats=2, baselines=["linear", "random_forest"], n_estimators=1)
    outcome = evaluate_on_data(random_pfn, data_dir, tmp_path / "out", config,
                               tracking=Tracking(tracking_uri=uri, run_name="evaluate-test"))
    results = pd.read_csv(tmp_path / "out" / "results.csv")
    assert len(results) == 2 * 2 * 3  # datasets x repeats x methods
    assert set(results.method) == {"pfn", "logistic_regression", "linear_regression", "random_forest"}
    summary = outcome.table.set_index(["dataset", "method"])
    assert summary.loc[("iris", "logistic_regression"), "roc_auc_mean"] > 0.95
    assert summary.loc[("diabetes", "linear_regression"), "r2_mean"] > 0.2
    assert 0 <= summary.loc[("iris", "pfn"), "ece_mean"] <= 1 and summary.loc[("iris", "pfn"), "fit_s_mean"] > 0
    assert "| iris | pfn |" in outcome.markdown and "mean rank by roc_auc" in outcome.markdown
    assert {p.name for p in outcome.files} >= {"summary.csv", "summary.md", "scores.png", "ranks.png"}
    run = MlflowClient(uri).get_run(outcome.run_id)
    assert run.data.metrics["iris/logistic_regression/roc_auc"] == pytest.approx(
        summary.loc[("iris", "logistic_regression"), "roc_auc_mean"])
    assert "rank/regression/pfn" in run.data.metrics
    assert {"summary.md", "ranks.png", "scores.png"} <= {a.path for a in MlflowClient(uri).list_artifacts(
        outcome.run_id)}


def test_a_pfn_beyond_its_limits_subsamples_by_default_and_refusals_are_error_rows(data_dir, tmp_path):
    small = build_random_pfn(ModelConfig(embed_dim=16, num_layers=1, num_heads=2, max_features=4, num_buckets=10),
                             max_rows=10)
    outcome = evaluate_on_data(small, data_dir, tmp_path, EvaluateConfig(repeats=1, baselines=["linear"],
                                                                         subsample_train_rows=False),
                               tracking=Tracking(tracking_uri=None))
    rows = outcome.table.set_index(["dataset", "method"])
    assert "10 rows" in rows.loc[("iris", "pfn"), "error"] and np.isnan(rows.loc[("iris", "pfn"), "roc_auc_mean"])
    assert rows.loc[("iris", "logistic_regression"), "roc_auc_mean"] > 0.9
    report = (tmp_path / "summary.md").read_text()
    classification = report.split("## regression")[0]
    assert "| iris | pfn | X has" in classification  # the failure table names the dataset, method and error
    assert "No mean ranks: every method ran on none of the 1 datasets" in classification
    subsampled = evaluate_on_data(small, data_dir, tmp_path, EvaluateConfig(
        repeats=1, baselines=["linear"]), tracking=Tracking(tracking_uri=None))
    results = pd.read_csv(tmp_path / "results.csv").set_index(["dataset", "method"])
    assert results.loc[("iris", "pfn"), "num_train_rows"] == 10  # the PFN's limit; the baseline gets all 42
    assert results.loc[("iris", "logistic_regression"), "num_train_rows"] == 42
    assert np.isfinite(subsampled.table.set_index(["dataset", "method"]).loc[("iris", "pfn"), "roc_auc_mean"])


def test_bad_directories_and_datasets_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match="holds no datasets"):
        load_datasets(tmp_path)
    with pytest.raises(ConfigError, match="is not a directory"):
        load_datasets(tmp_path / "absent")
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 5.0], "y": ["a", "b", "a", "b", "a"]})
    with pytest.raises(ConfigError, match=r"'y' is not numeric.*a regression target must be numbers"):
        prepare(frame, "strings", task="regression")
    with pytest.raises(ConfigError, match="no target column 'label'"):
        prepare(frame, "named", target="label")
    with pytest.raises(ConfigError, match="has 1 missing values"):
        prepare(frame.assign(y=[1.0, None, 2.0, 3.0, 4.0]), "nan")
    with pytest.raises(ConfigError, match="single class"):
        prepare(frame.assign(y="a"), "one-class")
    with pytest.raises(ConfigError, match=r"baselines \['svm'\] are unknown"):
        EvaluateConfig(baselines=["svm"])
    with pytest.raises(ConfigError, match="repeats=0"):
        EvaluateConfig(repeats=0)
    assert prepare(frame, "labels").task == "classification"  # string labels are classes


def test_example_data_and_the_command_line(tmp_path, random_pfn, data_dir, capsys):
    written = write_example_data(tmp_path / "examples", max_rows=100)
    assert [p.stem for p in written] == ["iris", "wine", "breast_cancer", "digits", "diabetes"]
    frames = {p.stem: pd.read_csv(p) for p in written}
    assert all(len(f) <= 100 and f.columns[-1] == "target" for f in frames.values())
    assert main(["evaluate", "--data", str(tmp_path / "empty")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    model = save_model_dir(random_pfn, tmp_path / "model")
    assert main(["evaluate", str(model), "--data", str(data_dir), "--repeats", "1", "--baselines",
                 "linear", "--no-mlflow", "--out", str(tmp_path / "cli")]) == 0
    captured = capsys.readouterr()
    assert "| iris | pfn |" in captured.out and (tmp_path / "cli" / "ranks.png").is_file()
    assert "[2/2] iris: classification, 60 rows x 4 features" in captured.err  # progress per dataset


def test_gp_model_nll_is_compared_with_the_exact_posterior(tiny_gp_run, tmp_path, capsys):
    trained = load_checkpoint(tiny_gp_run["output_dir"] / "checkpoints" / "last.ckpt")
    prior = registry.build_prior(compose_prior_config("gp_1d_reference"))
    table = evaluate_against_prior(trained, prior, PosteriorConfig(context_sizes=[2, 8, 32, 64], num_datasets=64,
                                                                   num_test_rows=10))
    assert list(table.num_context) == [2, 8, 32]  # 64 + 10 rows exceed the model's 50
    assert np.isfinite(table.to_numpy()).all()
    assert table.exact_nll.iloc[-1] < table.exact_nll.iloc[0] - 0.3  # more context, sharper exact posterior
    np.testing.assert_allclose(table.gap, table.model_nll - table.exact_nll, atol=1e-9)
    # the baselines fitted to each dataset: no better than the exact posterior, which is Bayes-optimal here
    assert (table.gp_nll > table.exact_nll - 2 * table.gp_nll_stderr).all()
    assert (table.knn_nll > table.exact_nll).all() and (table.knn_crps > table.gp_crps).iloc[-1]
    for method in ("model", "knn", "gp"):
        assert table[f"{method}_coverage_50"].between(0, 1).all()
        assert (table[f"{method}_coverage_90"] >= table[f"{method}_coverage_50"]).all()
    # a prior that knows no posterior: the PFN against the baselines only (no refusal)
    bnn = evaluate_against_prior(trained, registry.build_prior(compose_prior_config("bnn")),
                                 PosteriorConfig(context_sizes=[4, 16], num_datasets=8, num_features=1))
    assert bnn.attrs["reference"] is None and "exact_nll" not in bnn
    assert {"model_nll", "model_crps", "knn_nll", "gp_crps", "gp_coverage_90"} <= set(bnn.columns)
    with pytest.raises(ConfigError, match=r"prior baselines \['logistic'\] are unknown for regression"):
        evaluate_against_prior(trained, prior, PosteriorConfig(context_sizes=[4], num_datasets=4,
                                                               baselines=["logistic"]))
    checkpoint = str(tiny_gp_run["output_dir"] / "checkpoints" / "last.ckpt")
    assert main(["evaluate", checkpoint, "--prior", "trained", "--num-datasets", "16", "--context-sizes",
                 "2,8", "--no-mlflow", "--out", str(tmp_path)]) == 0  # the prior and config it was trained on
    assert len(pd.read_csv(tmp_path / "posterior_gap.csv")) == 2 and (tmp_path / "posterior_gap.png").is_file()
    assert (tmp_path / "posterior_gap.md").read_text().startswith("Reference: the exact GP posterior.")
    assert main(["evaluate", checkpoint, "--prior", "bnn", "num_layers=1", "--num-datasets", "8",
                 "--context-sizes", "4", "--features", "1", "--split", "random", "--baselines", "knn",
                 "--no-mlflow", "--out", str(tmp_path / "bnn")]) == 0
    assert "knows no exact posterior" in (tmp_path / "bnn" / "posterior_gap.md").read_text()
    assert "gp_nll" not in pd.read_csv(tmp_path / "bnn" / "posterior_gap.csv")
    drawn = registry.build_prior(compose_prior_config("gp_1d_reference", ["noise_variance.low=0.001"]))
    table = evaluate_against_prior(trained, drawn, PosteriorConfig(context_sizes=[4], num_datasets=24,
                                                                   num_test_rows=10))
    assert table.attrs["reference"] == "hyperparameter-marginal GP posterior"  # a drawn noise: integrated over
    assert (table.gap_to_oracle > table.gap).all() and (table.exact_mc_error < 0.005).all()
    assert trained_prior(trained).config == prior.config  # gp_1d_reference, rebuilt from the checkpoint


def test_crps_and_coverage_of_a_normal_match_their_closed_forms():
    from scipy import stats

    from pfnforge.evaluation.prior_scores import _gaussian

    rng = np.random.default_rng(0)
    y, mean, std = rng.normal(0, 1, 20_000), rng.normal(0, 0.5, 20_000), rng.uniform(0.5, 2, 20_000)
    scores = _gaussian(mean, std, y)
    z = (y - mean) / std
    exact = std * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / np.sqrt(np.pi))
    np.testing.assert_allclose(scores["crps"], exact, rtol=2e-3, atol=1e-4)  # midpoint rule over 100 levels
    np.testing.assert_allclose(scores["nll"], -stats.norm.logpdf(y, mean, std))
    calibrated = _gaussian(np.zeros(20_000), np.ones(20_000), rng.normal(0, 1, 20_000))
    assert abs(calibrated["coverage_50"].mean() - 0.5) < 0.015 and abs(calibrated["coverage_90"].mean() - 0.9) < 0.01
    overconfident = _gaussian(np.zeros(20_000), np.full(20_000, 0.5), rng.normal(0, 1, 20_000))
    assert overconfident["coverage_90"].mean() < 0.7


def test_a_random_split_permutes_each_datasets_rows_and_keeps_its_hyperparameters():
    from pfnforge.evaluation.posterior import _shuffled
    from pfnforge.prior import BatchShape

    prior = registry.build_prior(compose_prior_config("gp"))
    batch = prior.sample(np.random.default_rng(0), BatchShape(num_datasets=6, num_rows=30, num_features=2,
                                                              num_train_rows=10))
    shuffled = _shuffled(batch, np.random.default_rng(1))
    assert not np.array_equal(shuffled.y, batch.y)
    for b in range(6):  # the same (x, y) rows, in another order
        rows = sorted(map(tuple, np.column_stack([batch.x[b], batch.y[b]]).tolist()))
        assert rows == sorted(map(tuple, np.column_stack([shuffled.x[b], shuffled.y[b]]).tolist()))
    for name, values in batch.hyperparameters.items():
        np.testing.assert_array_equal(shuffled.hyperparameters[name], values)
    with pytest.raises(ConfigError, match="split='middle' is unknown"):
        PosteriorConfig(split="middle")
