"""Trained PFNs as files: checkpoints of a real ``pfnforge train`` run, portable model directories, the bundled
default models, and the errors for sources that are not models."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from pfnforge.cli.train import compose_train_config
from pfnforge.errors import ConfigError
from pfnforge.inference.artifact import (
    METADATA_FILE,
    WEIGHTS_FILE,
    default_model_dir,
    load_checkpoint,
    load_model_dir,
    save_model_dir,
)
from pfnforge.inference.loading import load_model
from pfnforge.train.run import run_training


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """``last.ckpt`` of a 2-step run of the default (1-D GP, regression) recipe at a tiny size."""
    tmp = tmp_path_factory.mktemp("run")
    out = run_training(compose_train_config([
        f"paths.output_dir={tmp / 'run'}", f"logger.tracking_uri=sqlite:///{tmp / 'mlflow.db'}",
        "model.embed_dim=32", "model.num_layers=1", "data.num_workers=0", "data.stream.num_datasets=8",
        "trainer.max_steps=2", "trainer.val_check_interval=2", "trainer.enable_progress_bar=false",
        "callbacks.max_time=00:00:30:00"]))
    return out / "checkpoints" / "last.ckpt"


def _outputs(model, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    x, y = torch.rand(2, 20, 1, generator=generator), torch.randn(2, 20, generator=generator)
    with torch.no_grad():
        return model(x, y, 12, False)[0]


def test_checkpoint_loads_the_trained_weights_and_limits(checkpoint):
    trained = load_checkpoint(checkpoint)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    torch.testing.assert_close(trained.model.encode_x.weight, state["model.encode_x.weight"])
    torch.testing.assert_close(trained.model.bar.borders, state["model.bar.borders"])
    assert trained.task == "regression" and not trained.model.training
    assert trained.limits == {"max_rows": 50, "max_features": 1, "max_classes": 10}
    assert trained.metadata["global_step"] == 2 and trained.metadata["prior"]["name"] == "gp"


def test_model_directory_round_trip_predicts_identically(checkpoint, tmp_path):
    trained = load_checkpoint(checkpoint)
    directory = save_model_dir(trained, tmp_path / "model", training={"command": "pfnforge train", "steps": 2})
    assert sorted(p.name for p in directory.iterdir()) == sorted([WEIGHTS_FILE, METADATA_FILE])
    assert not any(k.startswith("model.") for k in torch.load(directory / WEIGHTS_FILE, weights_only=True))
    metadata = json.loads((directory / METADATA_FILE).read_text())
    assert metadata["training"]["steps"] == 2 and metadata["pfnforge_version"]
    loaded = load_model_dir(directory)
    torch.testing.assert_close(_outputs(loaded.model), _outputs(trained.model))
    assert loaded.limits == trained.limits
    # load_model dispatches on what it is given
    torch.testing.assert_close(_outputs(load_model(directory).model), _outputs(trained.model))
    torch.testing.assert_close(_outputs(load_model(str(checkpoint)).model), _outputs(trained.model))


def test_compiled_module_names_are_unwrapped(checkpoint, tmp_path):
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    saved["state_dict"] = {k.replace("model.", "model._orig_mod.", 1): v for k, v in saved["state_dict"].items()}
    torch.save(saved, tmp_path / "compiled.ckpt")
    torch.testing.assert_close(_outputs(load_checkpoint(tmp_path / "compiled.ckpt").model),
                               _outputs(load_checkpoint(checkpoint).model))


def test_export_writes_a_model_directory_with_the_runs_provenance(checkpoint, tmp_path):
    done = subprocess.run([sys.executable, "-m", "pfnforge.cli", "export", str(checkpoint), str(tmp_path / "model"),
                           "--recipe", "gp_1d_reference"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    training = json.loads((tmp_path / "model" / METADATA_FILE).read_text())["training"]
    assert training["steps"] == 2 and training["datasets_seen"] == 2 * 8 and training["recipe"] == "gp_1d_reference"
    assert 0 < training["train_seconds"] < 600  # the run's Timer, not the export's clock
    [[step, nll]] = training["validation"]["val/nll"]  # from the run's MLflow store, found by run name
    assert step == 1 and math.isfinite(nll)
    assert "vCPU" in training["machine_exported_on"] and "torch" in training["machine_exported_on"]
    torch.testing.assert_close(_outputs(load_model_dir(tmp_path / "model").model),
                               _outputs(load_checkpoint(checkpoint).model))


_ZERO = {"low": 0.0, "high": 0.0, "scale": "linear"}
ADDED_AS_BEFORE = {"scale": "linear", "category_permutation": 0.0, "meta_hyperpriors": False,
                   "node_width": {"low": 1, "high": 1, "scale": "linear"}, "heteroscedastic_fraction": _ZERO,
                   "heavy_tailed_noise_fraction": _ZERO, "label_noise": _ZERO, "redundant_fraction": _ZERO,
                   "outlier_rate": _ZERO, "ard": False}
"""Config fields added after the bundled models were trained, at the values that leave them as they were."""
READ_ONLY_WHEN_ON = {"noise_df", "relevance"}
"""Added fields that are read only when one of the above is switched on."""


def _same_as_recorded(recorded: dict, composed: dict, path: str) -> None:
    assert set(recorded) <= set(composed), f"{path}: {sorted(set(recorded) - set(composed))} are gone"
    for key, value in composed.items():
        if key in recorded and isinstance(value, dict) and isinstance(recorded[key], dict):
            _same_as_recorded(recorded[key], value, f"{path}.{key}")
        elif key in recorded:
            assert recorded[key] == value, f"{path}.{key}"
        elif key not in READ_ONLY_WHEN_ON:
            assert value == ADDED_AS_BEFORE.get(key, "unknown"), (
                f"{path}.{key} was added after the model was trained: the recipe must keep it at the value that "
                "reproduces the model")


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_bundled_default_models_come_from_their_recipe(task):
    """The bundled models were trained by a recipe of configs/experiment as it stands: prior, model, data stream,
    optimiser and schedule composed from it equal those the model recorded."""
    metadata = load_model(task=task).metadata
    recipe = metadata["training"]["recipe"]
    composed = OmegaConf.to_container(compose_train_config([f"+experiment={recipe}"]), resolve=True)
    composed = json.loads(json.dumps(composed, default=lambda value: value.value))  # enums as recorded: values
    recorded = metadata["config"]
    _same_as_recorded(recorded["prior"], composed["prior"], "prior")
    assert recorded["optim"] == composed["optim"]
    # model fields added after the model was trained must hold their defaults (the model ran without them)
    defaults = dataclasses.asdict(load_model(task=task).model.config)
    assert {key: composed["model"][key] for key in recorded["model"]} == recorded["model"]
    assert all(composed["model"][key] == defaults[key] for key in set(composed["model"]) - set(recorded["model"]))
    _same_as_recorded(recorded["data"]["stream"], composed["data"]["stream"], "data.stream")
    assert recorded["trainer"]["max_steps"] == composed["trainer"]["max_steps"]
    assert metadata["training"]["steps"] == composed["trainer"]["max_steps"]  # it ran the whole schedule


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_bundled_default_models_load_offline_with_their_head(task):
    trained = load_model(task=task)
    assert trained.supports(task)
    assert "pfnforge train +experiment=" in trained.metadata["training"]["command"]
    assert (default_model_dir(task) / "README.md").is_file()
    size = sum(p.stat().st_size for p in default_model_dir(task).iterdir())
    assert size < 8 * 2**20, f"bundled {task} model is {size / 2**20:.1f} MiB"


def test_sources_that_are_not_models_are_refused_with_the_fix(checkpoint, tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_model(tmp_path / "nothing-here")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"not a pfnforge model directory: weights\.pt, pfnforge-model\.json"):
        load_model(tmp_path / "empty")
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    del saved["pfnforge"]
    torch.save(saved, tmp_path / "plain.ckpt")
    with pytest.raises(ConfigError, match="no 'pfnforge' metadata"):
        load_model(tmp_path / "plain.ckpt")
    (tmp_path / "torn.ckpt").write_bytes(checkpoint.read_bytes()[:1000])
    with pytest.raises(ConfigError, match="cannot be read"):
        load_checkpoint(tmp_path / "torn.ckpt")
    with pytest.raises(ConfigError, match="regression model and cannot do classification"):
        load_model(checkpoint, task="classification")
    with pytest.raises(ConfigError, match="task='classification' or task='regression'"):
        load_model()
