"""Real-data suites: the bundled manifest against the files of the pinned package (every checksum, shape and
task), a corrupt or missing file named in the error, a manifest of your own, and ``pfnforge evaluate --suite``
scoring, ranking over the common datasets and listing failures."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from pfnforge.cli import main
from pfnforge.errors import ConfigError
from pfnforge.evaluation.metrics import regression_scores
from pfnforge.evaluation.suites import load_suite, read_entry, suite_datasets, suite_names


@pytest.fixture(scope="module")
def tabular():
    return load_suite("tabular")


def test_the_bundled_suite_verifies_and_loads_as_its_manifest_says(tabular):
    assert "tabular" in suite_names()
    tasks = [e.task for e in tabular.entries]
    assert tasks.count("classification") >= 30 and tasks.count("regression") >= 15
    datasets = suite_datasets(tabular)  # every file checked against its SHA-256, then read
    assert [d.name for d in datasets] == [e.name for e in tabular.entries]
    for entry, dataset in zip(tabular.entries, datasets, strict=True):
        assert entry.source and entry.licence and entry.url.startswith("https://"), entry.name
        assert dataset.task == entry.task, entry.name
        assert (len(dataset.y), dataset.x.shape[1]) == (entry.rows, entry.features), entry.name
        assert 0 < len(dataset.y) <= 10_000 and not set(entry.drop) & set(dataset.x.columns), entry.name
        assert entry.target not in dataset.x.columns and dataset.y.notna().all(), entry.name
    # categorical columns and missing values stay as the sources have them
    assert sum(any(isinstance(t, pd.CategoricalDtype) for t in d.x.dtypes) for d in datasets) >= 20
    assert sum(bool(d.x.isna().any().any()) for d in datasets) >= 10
    by_name = {d.name: d for d in datasets}
    assert by_name["iris"].y.nunique() == 3 and by_name["doctor_visits"].task == "regression"  # counts: regression


def _own_suite(tmp_path, tabular, names):
    """A manifest of your own whose files (next to it) hold tables of the bundled suite."""
    entries = []
    for entry in tabular.entries:
        if entry.name in names:
            target = tmp_path / f"{entry.name}.pkl.xz"
            read_entry(tabular, entry).to_pickle(target, compression="xz")
            entries.append({"name": entry.name, "task": entry.task, "target": entry.target, "drop": list(entry.drop),
                            "file": target.name, "format": "pickle-xz",
                            "sha256": hashlib.sha256(target.read_bytes()).hexdigest()})
    manifest = tmp_path / "mine.json"
    manifest.write_text(json.dumps({"name": "mine", "datasets": entries}))
    return manifest


def test_a_corrupt_or_missing_file_is_named_and_nothing_is_parsed(tmp_path, tabular):
    manifest = _own_suite(tmp_path, tabular, {"iris", "cats"})
    mine = load_suite(manifest)
    original = {d.name: d for d in suite_datasets(tabular, only=["iris", "cats"])}
    for dataset in suite_datasets(mine):  # the same tables through a manifest of your own
        pd.testing.assert_frame_equal(dataset.x, original[dataset.name].x)
    data = bytearray((tmp_path / "cats.pkl.xz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "cats.pkl.xz").write_bytes(bytes(data))
    with pytest.raises(ConfigError, match=r"dataset cats \(.*cats\.pkl\.xz\) has SHA-256 .* corrupt"):
        suite_datasets(mine)
    assert [d.name for d in suite_datasets(mine, only=["iris"])] == ["iris"]  # the others still load
    (tmp_path / "cats.pkl.xz").unlink()
    with pytest.raises(ConfigError, match=r"dataset cats .*cats\.pkl\.xz.* cannot be read"):
        suite_datasets(mine)


def test_bad_suites_name_the_problem_and_the_fix(tmp_path, tabular):
    with pytest.raises(ConfigError, match=r"suite 'nope' is unknown: the bundled suites are corpus, tabular"):
        load_suite("nope")
    with pytest.raises(ConfigError, match="has no datasets \\['irs'\\]: it has credit_data"):
        suite_datasets(tabular, only=["irs"])
    entry = tabular.entries[0]
    manifest = tmp_path / "elsewhere.json"
    manifest.write_text(json.dumps({"name": "elsewhere", "packages": {"no_such_package_pfnforge": "1.0"},
                                    "install": "pip install no_such_package_pfnforge==1.0",
                                    "datasets": [{"name": "x", "task": "classification", "target": "y",
                                                  "file": "x.csv", "sha256": entry.sha256,
                                                  "package": "no_such_package_pfnforge"}]}))
    with pytest.raises(ConfigError, match=r"no_such_package_pfnforge==1\.0, which is not installed: pip install"):
        suite_datasets(load_suite(manifest))
    manifest.write_text(json.dumps({"datasets": [{"name": "x", "task": "ranking", "target": "y", "file": "x.csv",
                                                  "sha256": "0"}]}))
    with pytest.raises(ConfigError, match="task 'ranking'; use classification or regression"):
        load_suite(manifest)
    manifest.write_text("{\"datasets\": [{\"name\": \"x\"}]}")
    with pytest.raises(ConfigError, match="malformed"):
        load_suite(manifest)


def test_nrmse_is_one_for_the_training_mean_and_scale_free():
    rng = np.random.default_rng(0)
    y = rng.normal(5, 3, 200)
    assert regression_scores(y, np.full(200, y.mean()), y)["nrmse"] == pytest.approx(1.0)
    prediction = y + rng.normal(0, 1, 200)
    scores, scaled = regression_scores(y, prediction, y), regression_scores(1e3 * y, 1e3 * prediction, 1e3 * y)
    assert scaled["nrmse"] == pytest.approx(scores["nrmse"]) and scaled["rmse"] == pytest.approx(1e3 * scores["rmse"])
    assert scores["nrmse"] == pytest.approx(np.sqrt(1 - scores["r2"]), rel=1e-9)  # same split: nRMSE² = 1 - R²


def test_evaluate_suite_on_the_command_line_ranks_common_datasets_and_lists_failures(tmp_path, tabular, capsys):
    """The bundled models on three small tables of the suite; one of your own datasets the PFN refuses (a
    regression model for a classification table) is listed as a failure and left out of the ranks."""
    out = tmp_path / "out"
    assert main(["evaluate", "--suite", "tabular", "--datasets", "cats,kyphosis,us_crime", "--repeats", "2",
                 "--baselines", "linear,random_forest", "--n-estimators", "2", "--no-mlflow",
                 "--out", str(out)]) == 0
    captured = capsys.readouterr()
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary.dataset) == {"cats", "kyphosis", "us_crime"} and summary.error.isna().all()
    assert {"nrmse_mean", "roc_auc_mean", "log_loss_mean"} <= set(summary.columns)
    assert "means over the 2 of 2 datasets where every method ran" in captured.out.lower()
    sources = (out / "datasets.md").read_text()
    assert "R package MASS, dataset UScrime" in sources and "GPL" in sources and "cells" not in sources
    assert main(["evaluate", "--suite", "tabular", "--datasets", "cats", "--target", "Sex"]) == 2
    assert "does not apply to --suite" in capsys.readouterr().err
    assert main(["evaluate", "--data", str(tmp_path), "--datasets", "cats"]) == 2
    assert "--datasets picks datasets of a suite" in capsys.readouterr().err


def test_evaluate_suite_of_your_own_with_a_refused_dataset(tmp_path, tabular):
    from pfnforge.evaluation.run import Tracking, evaluate_on_suite
    from pfnforge.evaluation.tabular import EvaluateConfig
    from pfnforge.inference.loading import load_model

    manifest = _own_suite(tmp_path, tabular, {"iris", "cats", "fgl"})
    classifier = load_model(None, task="classification")  # 10 classes at most; fgl has 6, all fine
    outcome = evaluate_on_suite(classifier, manifest, tmp_path / "own", EvaluateConfig(
        repeats=1, baselines=["linear"], n_estimators=1), tracking=Tracking(tracking_uri=None))
    assert set(outcome.table.dataset) == {"iris", "cats", "fgl"}
    assert "| fgl | pfn |" in outcome.markdown
    regressor = load_model(None, task="regression")  # cannot classify: an error row per dataset, no ranks
    outcome = evaluate_on_suite(regressor, manifest, tmp_path / "own2", EvaluateConfig(
        repeats=1, baselines=["linear"], n_estimators=1), tracking=Tracking(tracking_uri=None))
    assert "Failures (3; their datasets are left out of the ranks)" in outcome.markdown
    assert "the model cannot do classification" in outcome.markdown
