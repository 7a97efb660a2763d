"""The MLflow Model Registry for trained PFNs: registering checkpoints, runs and model directories, loading
them back by version and alias from the embedded store and from a real tracking server, and the errors
for names, versions and aliases that do not exist."""

from __future__ import annotations

import json
import time

import mlflow
import pytest
import torch
from mlflow import MlflowClient

from pfnforge.cli import main
from pfnforge.errors import ConfigError, ModelNotFoundError
from pfnforge.inference.artifact import build_random_pfn, load_checkpoint, save_model_dir
from pfnforge.inference.loading import load_model
from pfnforge.inference.mlflow_models import download_model
from pfnforge.inference.register import RegistryConfig, register_after_training, register_model
from pfnforge.model.pfn import ModelConfig
from tests.conftest import free_port, running_mlflow_server


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PFNFORGE_CACHE_DIR", str(tmp_path / "cache"))


def _same_weights(a, b) -> bool:
    state_a, state_b = a.model.state_dict(), b.model.state_dict()
    return state_a.keys() == state_b.keys() and all(torch.equal(state_a[k], state_b[k]) for k in state_a)


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory):
    config = ModelConfig(embed_dim=16, num_layers=1, num_heads=2, max_features=4, max_classes=5, num_buckets=10)
    trained = build_random_pfn(config, regression=False, max_rows=200, seed=3)
    return save_model_dir(trained, tmp_path_factory.mktemp("classifier") / "model")


def test_training_registers_its_model_with_config_limits_and_metrics(tiny_gp_run, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tiny_gp_run["tracking_uri"])  # for the fluent models:/ lookup below
    client = MlflowClient(tiny_gp_run["tracking_uri"], registry_uri=tiny_gp_run["tracking_uri"])
    version = client.get_model_version_by_alias("tiny-gp", "champion")
    assert version.run_id == tiny_gp_run["run_id"]  # logged into the training run itself
    assert version.tags["pfnforge.task"] == "regression" and version.tags["pfnforge.prior"] == "gp"
    assert version.tags["pfnforge.max_rows"] == "50" and version.tags["pfnforge.global_step"] == "6"
    assert float(version.tags["metric.train/loss"]) == pytest.approx(
        client.get_run(tiny_gp_run["run_id"]).data.metrics["train/loss"], rel=1e-5)
    info = mlflow.models.get_model_info(f"models:/tiny-gp/{version.version}")
    pfnforge_metadata = info.metadata["pfnforge"]
    assert pfnforge_metadata["config"]["trainer"]["max_steps"] == 6  # the resolved training config
    assert pfnforge_metadata["limits"]["max_features"] == 1
    assert {p.name for p in info.signature.params.params} >= {"target", "output", "quantiles"}
    # the version names the installed loader and carries data only: loading it runs no code from the store
    assert info.flavors["python_function"]["loader_module"] == "pfnforge.inference.pyfunc"
    logged = download_model(f"models:/tiny-gp/{version.version}").parent.parent
    assert not [p for p in logged.rglob("*") if p.suffix in {".py", ".pkl", ".pickle", ".cloudpickle"}]
    assert (logged / "MLmodel").is_file()
    served = mlflow.pyfunc.load_model(f"models:/tiny-gp/{version.version}")
    assert type(served._model_impl).__name__ == "ServedPFN"  # what _load_pyfunc of the installed module returns


def test_version_and_alias_load_the_checkpoints_weights(tiny_gp_run):
    uri = tiny_gp_run["tracking_uri"]
    checkpoint = load_checkpoint(tiny_gp_run["output_dir"] / "checkpoints" / "last.ckpt")
    by_alias = load_model(download_model("models:/tiny-gp@champion", tracking_uri=uri))
    [version] = MlflowClient(uri, registry_uri=uri).get_registered_model("tiny-gp").aliases.values()
    by_version = load_model(download_model(f"models:/tiny-gp/{version}", tracking_uri=uri))
    assert _same_weights(by_alias, checkpoint) and _same_weights(by_version, checkpoint)
    provenance = json.loads((download_model("models:/tiny-gp@champion", tracking_uri=uri)
                             / "pfnforge-model.json").read_text())["training"]
    assert provenance["run_id"] == tiny_gp_run["run_id"] and "train/loss" in provenance["metrics"]


def test_run_id_registers_the_runs_logged_checkpoint_and_moves_the_alias(tiny_gp_run):
    uri = tiny_gp_run["tracking_uri"]
    name, first = register_model(tiny_gp_run["run_id"], "from-run", alias="champion", tracking_uri=uri)
    _, second = register_model(tiny_gp_run["output_dir"], "from-run", alias="champion", tracking_uri=uri)
    assert (first, second) == ("1", "2")
    client = MlflowClient(uri, registry_uri=uri)
    assert {k: str(v) for k, v in client.get_registered_model(name).aliases.items()} == {"champion": "2"}
    # the output directory's run is found in the store (by output directory, run name and seed)
    assert client.get_model_version(name, "2").run_id == tiny_gp_run["run_id"]
    checkpoint = load_checkpoint(tiny_gp_run["output_dir"] / "checkpoints" / "last.ckpt")
    assert _same_weights(load_model(download_model("models:/from-run/1", tracking_uri=uri)), checkpoint)


def test_download_of_a_version_is_cached(classifier_dir, tiny_gp_run):
    uri = tiny_gp_run["tracking_uri"]  # one store for the module: creating one costs seconds
    register_model(classifier_dir, "cached", tracking_uri=uri)
    first = download_model("models:/cached/1", tracking_uri=uri)
    marker = first / "weights.pt"
    mtime = marker.stat().st_mtime_ns
    assert download_model("models:/cached/latest", tracking_uri=uri) == first
    assert marker.stat().st_mtime_ns == mtime  # not downloaded again


def test_missing_names_versions_and_aliases_list_what_exists(classifier_dir, tiny_gp_run, tmp_path):
    uri = tiny_gp_run["tracking_uri"]
    register_model(classifier_dir, "present", alias="champion", tracking_uri=uri)
    with pytest.raises(ModelNotFoundError, match=r"no registered model 'absent'.*registered models: .*present"):
        download_model("models:/absent/1", tracking_uri=uri)
    with pytest.raises(ModelNotFoundError, match=r"no version 7.*its versions: 1"):
        download_model("models:/present/7", tracking_uri=uri)
    with pytest.raises(ModelNotFoundError, match=r"no alias @staging.*@champion \(version 1\)"):
        download_model("models:/present@staging", tracking_uri=uri)
    with pytest.raises(ModelNotFoundError, match="no run '0123"):
        download_model("runs:/0123456789abcdef0123456789abcdef/model", tracking_uri=uri)
    with pytest.raises(ModelNotFoundError, match="neither a model directory"):
        register_model(tmp_path, "empty-dir", tracking_uri=uri)
    with pytest.raises(ModelNotFoundError, match="not found: pass a checkpoint"):
        register_model(tmp_path / "nothing.ckpt", "nothing", tracking_uri=uri)


def test_register_command_prints_the_version_and_exits_2_on_a_bad_source(classifier_dir, tiny_gp_run, tmp_path,
                                                                          capsys):
    uri = tiny_gp_run["tracking_uri"]
    assert main(["register", str(classifier_dir), "--name", "cli-model", "--alias", "champion",
                 "--tracking-uri", uri]) == 0
    assert "registered cli-model version 1 (alias @champion)" in capsys.readouterr().out
    assert main(["register", str(tmp_path / "missing"), "--name", "x", "--tracking-uri", uri]) == 2
    assert "missing not found" in capsys.readouterr().err
    assert main(["register", str(classifier_dir), "--name", "x", "--alias", "v2", "--tracking-uri", uri]) == 2
    assert "alias 'v2' is invalid" in capsys.readouterr().err


def test_register_to_an_unreachable_server_fails_fast_and_clean(classifier_dir, capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    start = time.monotonic()
    assert main(["register", str(classifier_dir), "--name", "x", "--tracking-uri",
                 f"http://127.0.0.1:{free_port()}"]) == 2
    assert "could not be reached" in capsys.readouterr().err and time.monotonic() - start < 30
    with pytest.raises(ConfigError, match="could not be reached"):
        download_model("models:/x/1", tracking_uri=f"http://127.0.0.1:{free_port()}")


@pytest.mark.slow
def test_registry_works_against_a_tracking_server(classifier_dir, tmp_path):
    with running_mlflow_server(tmp_path) as (url, _):
        register_model(classifier_dir, "served-model", alias="champion", tracking_uri=url)
        loaded = load_model(download_model("models:/served-model@champion", tracking_uri=url))
        assert _same_weights(loaded, load_model(classifier_dir))
        assert _same_weights(load_model(download_model("models:/served-model/1", tracking_uri=url)), loaded)
        with pytest.raises(ModelNotFoundError, match=r"no alias @prod.*@champion"):
            download_model("models:/served-model@prod", tracking_uri=url)
        with pytest.raises(ModelNotFoundError, match="registered models: served-model"):
            download_model("models:/other@champion", tracking_uri=url)


def test_failed_registration_after_training_warns_with_the_command(tiny_gp_run, tmp_path):
    config = RegistryConfig(enable_register=True, name="late")
    with pytest.warns(RuntimeWarning, match=r"register it later with `pfnforge register .*last.ckpt --name late"):
        assert register_after_training(tmp_path, config, tracking_uri=tiny_gp_run["tracking_uri"],
                                       run_id=None) is None  # no checkpoint in tmp_path
    with pytest.raises(ConfigError, match=r"needs registry\.name"):
        RegistryConfig(enable_register=True)
