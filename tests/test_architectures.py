"""The new architectures through every surface that never names one: DDP training on gloo, checkpoints that
record their architecture, the estimators, the MLflow pyfunc model and ``pfnforge evaluate``."""

from __future__ import annotations

import subprocess
import sys

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch

from pfnforge import PFNClassifier, PFNRegressor
from pfnforge.cli import main
from pfnforge.inference.artifact import build_random_pfn, load_checkpoint, save_model_dir
from pfnforge.inference.pyfunc import SPLIT_COLUMN
from pfnforge.inference.register import register_model
from pfnforge.model.cellwise import CellwiseConfig
from pfnforge.model.colrow import ColrowConfig

TINY = {"cellwise": CellwiseConfig(embed_dim=16, num_layers=1, num_heads=2, max_classes=5, num_buckets=10),
        "colrow": ColrowConfig(cell_dim=8, num_inducing=4, num_row_layers=1, num_cls=2, num_layers=1, num_heads=2,
                               max_classes=5, num_buckets=10)}


@pytest.mark.slow
@pytest.mark.parametrize(("preset", "prior"), [("cellwise_tiny", "gp"), ("colrow_tiny", "scm")])
def test_ddp_with_two_processes_trains_each_new_architecture(preset, prior, tmp_path, cli_env):
    cli_env["OMP_NUM_THREADS"] = "1"
    result = subprocess.run(
        [sys.executable, "-m", "pfnforge.cli", "train", "trainer=ddp", "trainer.devices=2", f"model={preset}",
         f"prior={prior}", f"paths.output_dir={tmp_path / 'ddp'}", f"logger.tracking_uri=sqlite:///{tmp_path}/m.db",
         "data.num_workers=0", "data.stream.num_datasets=4", "data.stream.num_rows={low:30,high:30}",
         "data.stream.num_features={low:3,high:3}", "trainer.max_steps=2", "trainer.val_check_interval=2",
         "data.num_val_batches=1", "trainer.enable_progress_bar=false"],
        env=cli_env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "All distributed processes registered" in result.stderr
    state = torch.load(tmp_path / "ddp" / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["global_step"] == 2 and state["pfnforge"]["architecture"] == preset.split("_")[0]
    trained = load_checkpoint(tmp_path / "ddp" / "checkpoints" / "last.ckpt")
    assert trained.model.name == preset.split("_")[0] and trained.supports(
        "classification" if prior == "scm" else "regression")


@pytest.fixture(params=sorted(TINY))
def model_dir(request, tmp_path):
    return save_model_dir(build_random_pfn(TINY[request.param], max_rows=300, seed=1), tmp_path / request.param)


def test_estimators_fit_and_predict_with_each_architecture(model_dir):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 7))
    X[rng.random(X.shape) < 0.05] = np.nan
    y = np.where(np.nansum(X[:, :2], axis=1) > 0, "yes", "no")
    classifier = PFNClassifier(str(model_dir), n_estimators=2).fit(X[:80], y[:80])
    proba = classifier.predict_proba(X[80:])
    assert proba.shape == (40, 2) and np.allclose(proba.sum(1), 1) and list(classifier.classes_) == ["no", "yes"]
    assert len(np.unique(proba[:, 0].round(6))) > 1  # depends on the row
    regressor = PFNRegressor(str(model_dir), n_estimators=2).fit(X[:80], np.nan_to_num(X[:80, 0]) * 3.0)
    prediction = regressor.predict(X[80:])
    assert prediction.shape == (40,) and np.isfinite(prediction).all()


def test_pyfunc_model_of_each_architecture_predicts_from_the_registry(model_dir, tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("PFNFORGE_CACHE_DIR", str(tmp_path / "cache"))
    name, version = register_model(model_dir, f"arch-{model_dir.name}", tracking_uri=uri)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(60, 3)), columns=["a", "b", "c"])
    frame["target"] = np.where(frame["a"] > 0, "pos", "neg")
    frame[SPLIT_COLUMN] = np.where(np.arange(60) < 45, "train", "query")
    probabilities = pyfunc.predict(frame, params={"n_estimators": 2})
    assert list(probabilities.columns) == ["neg", "pos"] and len(probabilities) == 15
    assert np.allclose(probabilities.sum(axis=1), 1)
    # the served model is the estimator over the same model directory
    expected = PFNClassifier(str(model_dir), n_estimators=2).fit(
        frame[["a", "b", "c"]][:45], frame["target"][:45]).predict_proba(frame[["a", "b", "c"]][45:])
    np.testing.assert_allclose(probabilities.to_numpy(), expected, rtol=1e-5)


def test_evaluate_scores_each_architecture_on_a_dataset(model_dir, tmp_path):
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(rng.normal(size=(90, 4)), columns=list("abcd"))
    frame["label"] = (frame["a"] + frame["b"] > 0).astype(int)
    (tmp_path / "data").mkdir()
    frame.to_csv(tmp_path / "data" / "toy.csv", index=False)
    code = main(["evaluate", str(model_dir), "--data", str(tmp_path / "data"), "--repeats", "1", "--baselines",
                 "linear", "--n-estimators", "1", "--out", str(tmp_path / "out"), "--no-mlflow"])
    assert code == 0
    assert any((tmp_path / "out").iterdir())
