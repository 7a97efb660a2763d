"""The MLflow pyfunc flavour: a frame of training and query rows in, the estimators' predictions out; the
frame's errors; and ``mlflow models serve`` answering over HTTP on loopback."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from pfnforge.errors import ConfigError, PfnforgeError
from pfnforge.inference.artifact import build_random_pfn, save_model_dir
from pfnforge.inference.estimators import PFNClassifier, PFNRegressor
from pfnforge.inference.loading import load_model
from pfnforge.inference.pyfunc import SPLIT_COLUMN, predict_frame
from pfnforge.inference.register import register_model
from pfnforge.model.pfn import ModelConfig
from tests.conftest import free_port, wait_for_http


@pytest.fixture(autouse=True)
def _store(tiny_gp_run, tmp_path, monkeypatch):
    """``models:/`` URIs resolve against the tiny run's store; downloads go to a private cache."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tiny_gp_run["tracking_uri"])
    monkeypatch.setenv("PFNFORGE_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def classifier(tiny_gp_run, tmp_path_factory):
    config = ModelConfig(embed_dim=16, num_layers=1, num_heads=2, max_features=4, max_classes=5, num_buckets=10)
    directory = save_model_dir(build_random_pfn(config, regression=False, max_rows=200, seed=5),
                               tmp_path_factory.mktemp("pyfunc-classifier") / "model")
    register_model(directory, "pyfunc-classifier", alias="champion", tracking_uri=tiny_gp_run["tracking_uri"])
    return directory


def _frame(num_rows: int, *, classes: list[str] | None, target: str = "target", seed: int = 0) -> pd.DataFrame:
    """Features x0..x2, a target, and query rows interleaved with training rows (every fourth row)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.standard_normal((num_rows, 3)), columns=["x0", "x1", "x2"])
    signal_R = frame.x0 + 0.5 * frame.x1
    if classes:
        borders = np.quantile(signal_R, np.linspace(0, 1, len(classes) + 1)[1:-1])
        frame[target] = np.asarray(classes)[np.digitize(signal_R, borders)]
    else:
        frame[target] = np.sin(signal_R) + 0.05 * rng.standard_normal(num_rows)
    frame[SPLIT_COLUMN] = np.where(np.arange(num_rows) % 4 == 3, "query", "train")
    return frame


def _parts(frame: pd.DataFrame, target: str = "target"):
    train = frame[SPLIT_COLUMN] == "train"
    features = frame.drop(columns=[SPLIT_COLUMN, target])
    return features[train], frame.loc[train, target], features[~train]


def test_pyfunc_class_probabilities_are_the_classifiers(classifier):
    frame = _frame(60, classes=["a", "b", "c"])
    model = mlflow.pyfunc.load_model("models:/pyfunc-classifier@champion")
    proba = model.predict(frame, params={"n_estimators": 2, "random_state": 7})
    x_train, y_train, x_query = _parts(frame)
    expected = PFNClassifier(load_model(classifier), n_estimators=2, random_state=7).fit(
        x_train, y_train).predict_proba(x_query)
    assert list(proba.columns) == ["a", "b", "c"] and list(proba.index) == list(x_query.index)
    np.testing.assert_allclose(proba.to_numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    labels = model.predict(frame, params={"output": "class", "n_estimators": 2, "random_state": 7})
    assert list(labels.prediction) == list(np.array(["a", "b", "c"])[expected.argmax(1)])


def test_pyfunc_regression_mean_median_and_quantiles_are_the_regressors(tiny_gp_run):
    frame = _frame(40, classes=None, target="y")[["x0", "y", SPLIT_COLUMN]]  # the GP model takes 1 feature
    model = mlflow.pyfunc.load_model("models:/tiny-gp@champion")
    x_train, y_train, x_query = _parts(frame, "y")
    regressor = PFNRegressor(load_model(tiny_gp_run["output_dir"] / "checkpoints" / "last.ckpt"),
                             n_estimators=4, random_state=0).fit(x_train, y_train)
    mean = model.predict(frame, params={"target": "y"})
    np.testing.assert_allclose(mean["mean"], regressor.predict(x_query), rtol=1e-6)
    median = model.predict(frame, params={"target": "y", "output": "median"})
    np.testing.assert_allclose(median["median"], regressor.predict(x_query, output="median"), rtol=1e-6)
    quantiles = model.predict(frame, params={"target": "y", "output": "quantiles", "quantiles": [0.1, 0.5, 0.9]})
    assert list(quantiles.columns) == ["q0.1", "q0.5", "q0.9"]
    assert (quantiles["q0.1"] < quantiles["q0.5"]).all() and (quantiles["q0.5"] < quantiles["q0.9"]).all()
    np.testing.assert_allclose(quantiles["q0.5"], median["median"], rtol=1e-5)


@pytest.mark.parametrize(("change", "message"), [
    (lambda f: f.drop(columns=[SPLIT_COLUMN]), "no '__pfnforge_split__' column"),
    (lambda f: f.assign(**{SPLIT_COLUMN: "test"}), r"holds \['test'\]"),
    (lambda f: f.assign(**{SPLIT_COLUMN: "train"}), "at least one 'train' and one 'query' row"),
    (lambda f: f.drop(columns=["target"]), "no target column 'target'"),
])
def test_bad_frames_name_the_problem(classifier, change, message):
    with pytest.raises(ConfigError, match=message):
        predict_frame(load_model(classifier), change(_frame(20, classes=["a", "b"])))


def test_bad_params_name_the_choices(classifier):
    trained, frame = load_model(classifier), _frame(20, classes=["a", "b"])
    with pytest.raises(ConfigError, match="output='quantiles' does not apply to classification"):
        predict_frame(trained, frame, {"output": "quantiles"})
    with pytest.raises(ConfigError, match=r"unknown params \['bogus'\]"):
        predict_frame(trained, frame, {"bogus": 1})
    with pytest.raises(ConfigError, match="no target column 'label'"):
        predict_frame(trained, frame, {"target": "label"})


def test_the_served_model_has_the_estimators_defaults_and_their_options(classifier):
    """Beyond the model's 4 features: subsampled by default, as PFNClassifier() does; the option its own
    refusal names is accepted through MLflow's parameter schema."""
    frame = _frame(60, classes=["a", "b"])
    for i in range(3, 8):
        frame[f"w{i}"] = np.random.default_rng(i).normal(size=60)  # 8 informative features
    model = mlflow.pyfunc.load_model("models:/pyfunc-classifier@champion")
    with pytest.warns(UserWarning, match="8 informative features > the 4"):
        proba = model.predict(frame, params={"n_estimators": 2})
    x_train, y_train, x_query = _parts(frame)
    expected = PFNClassifier(load_model(classifier), n_estimators=2).fit(x_train, y_train).predict_proba(x_query)
    np.testing.assert_allclose(proba.to_numpy(), expected, rtol=1e-6)
    with pytest.raises(MlflowException, match="pass subsample_features=True") as refused:
        model.predict(frame, params={"subsample_features": False})
    assert refused.value.get_http_status_code() == 400


def _post(url: str, payload: dict) -> tuple[int, dict]:
    request = urllib.request.Request(f"{url}/invocations", data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.slow
def test_mlflow_models_serve_answers_over_http(tiny_gp_run, tmp_path):
    port = free_port()
    env = dict(os.environ, MLFLOW_TRACKING_URI=tiny_gp_run["tracking_uri"], PFNFORGE_CACHE_DIR=str(tmp_path),
               PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))  # its uvicorn
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/tiny-gp@champion", "--env-manager",
         "local", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_for_http(f"{url}/ping", process):
            with contextlib.suppress(ProcessLookupError):  # it may have exited already
                os.killpg(process.pid, signal.SIGKILL)  # so that reading its stderr cannot block
            pytest.fail(f"mlflow models serve did not come up: {process.stderr.read().decode()[-2000:]}")
        frame = _frame(24, classes=None)[["x0", "target", SPLIT_COLUMN]]
        params = {"output": "quantiles", "quantiles": [0.25, 0.75]}
        status, body = _post(url, {"dataframe_split": frame.to_dict(orient="split", index=False), "params": params})
        assert status == 200, body
        expected = mlflow.pyfunc.load_model("models:/tiny-gp@champion").predict(frame, params=params)
        served = pd.DataFrame(body["predictions"])
        assert list(served.columns) == ["q0.25", "q0.75"] and len(served) == 6
        np.testing.assert_allclose(served.to_numpy(), expected.to_numpy(), rtol=1e-5)
        status, body = _post(url, {"dataframe_split": frame.drop(columns=[SPLIT_COLUMN]).to_dict(
            orient="split", index=False)})
        assert status == 400 and "no '__pfnforge_split__' column" in body["message"]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_a_model_with_both_heads_reads_the_task_from_the_target():
    config = ModelConfig(embed_dim=16, num_layers=1, num_heads=2, max_features=4, max_classes=5, num_buckets=10)
    both = build_random_pfn(config, max_rows=200, seed=2)
    assert both.task == "mixed"
    numbers = predict_frame(both, _frame(20, classes=None), {"n_estimators": 1})
    labels = predict_frame(both, _frame(20, classes=["0", "1"]).astype({"target": int}), {"n_estimators": 1})
    forced = predict_frame(both, _frame(20, classes=["0", "1"]).astype({"target": int}),
                           {"n_estimators": 1, "task": "regression"})
    assert list(numbers.columns) == ["mean"] and list(labels.columns) == ["0", "1"]
    assert list(forced.columns) == ["mean"]


def test_string_columns_are_categorical_when_declared_in_params(classifier):
    frame = _frame(40, classes=["a", "b"])
    frame.insert(1, "colour", np.where(frame.x2 > 0, "red", "blue"))
    model = mlflow.pyfunc.load_model("models:/pyfunc-classifier@champion")
    params = {"categorical_features": ["colour"], "n_estimators": 2}
    proba = model.predict(frame, params=params)
    x_train, y_train, x_query = _parts(frame)
    expected = PFNClassifier(load_model(classifier), n_estimators=2, categorical_features=["colour"]).fit(
        x_train, y_train).predict_proba(x_query)
    np.testing.assert_allclose(proba.to_numpy(), expected, rtol=1e-6)
    with pytest.raises(MlflowException, match="colour") as raised:
        model.predict(frame, params={"n_estimators": 2})
    assert isinstance(raised.value.__cause__, PfnforgeError)  # the estimator's own error, kept as the cause


def test_integer_labels_stay_integers_when_query_targets_are_missing(classifier):
    frame = _frame(20, classes=["0", "1"]).astype({"target": float})
    frame.loc[frame[SPLIT_COLUMN] == "query", "target"] = np.nan  # what JSON nulls become
    proba = predict_frame(load_model(classifier), frame, {"n_estimators": 1})
    assert list(proba.columns) == ["0", "1"]
