"""Continued pretraining (``+init_from``): the new run starts from the source's exact weights with a fresh
optimiser and step count, records the source and its run in MLflow, refuses a model of another size, and
a re-run of the same directory resumes its own checkpoint instead of starting over."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from mlflow import MlflowClient

from pfnforge.cli.train import compose_train_config
from pfnforge.errors import ConfigError
from pfnforge.inference.artifact import load_checkpoint
from pfnforge.train.run import run_training
from tests.conftest import TINY_RUN_TRAINING


class _AtStart(L.Callback):
    """Records the weights, the step and the optimiser state when fitting starts."""

    def on_train_start(self, trainer, module) -> None:
        self.weights = {k: v.detach().clone() for k, v in module.model.state_dict().items()}
        self.step = trainer.global_step
        self.optimiser_state = [dict(o.state) for o in trainer.optimizers]


def _config(tiny_gp_run, tmp_path, *extra):
    return compose_train_config([f"paths.output_dir={tmp_path / 'continued'}",
                                 f"logger.tracking_uri={tiny_gp_run['tracking_uri']}", *TINY_RUN_TRAINING,
                                 "run_name=continued", *extra])


def test_init_from_starts_from_the_exact_weights_with_a_new_optimiser_and_run(tiny_gp_run, tmp_path):
    source = tiny_gp_run["output_dir"] / "checkpoints" / "last.ckpt"
    weights = load_checkpoint(source).model.state_dict()
    start = _AtStart()
    output_dir = run_training(_config(tiny_gp_run, tmp_path, f"+init_from={source}", "trainer.max_steps=2"),
                              callbacks=[start])
    assert start.step == 0 and all(not state for state in start.optimiser_state)
    assert start.weights.keys() == weights.keys()
    for name, value in weights.items():
        assert torch.equal(start.weights[name], value), name
    continued = torch.load(output_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert continued["global_step"] == 2  # its own schedule, not the source's 6 steps + 2
    assert not torch.equal(load_checkpoint(output_dir / "checkpoints" / "last.ckpt").model.state_dict()[
        "encode_x.weight"], weights["encode_x.weight"])  # and it trained
    client = MlflowClient(tiny_gp_run["tracking_uri"])
    [run] = client.search_runs([client.get_experiment_by_name("pfnforge").experiment_id],
                               "attributes.run_name = 'continued'")
    assert run.info.run_id != tiny_gp_run["run_id"]
    assert run.data.tags["pfnforge.init_from"] == str(source)
    assert run.data.tags["pfnforge.parent_run_id"] == tiny_gp_run["run_id"]
    assert run.data.tags["pfnforge.init_from_step"] == "6"

    # the same command again resumes this run's own checkpoint (a requeue must not start over)
    again = _AtStart()
    run_training(_config(tiny_gp_run, tmp_path, f"+init_from={source}", "trainer.max_steps=3"), callbacks=[again])
    assert again.step == 2


def test_init_from_a_registered_model_and_refusals(tiny_gp_run, tmp_path):
    start = _AtStart()
    run_training(_config(tiny_gp_run, tmp_path / "uri", "+init_from=models:/tiny-gp@champion",
                         "trainer.max_steps=1"), callbacks=[start])
    source = load_checkpoint(tiny_gp_run["output_dir"] / "checkpoints" / "last.ckpt").model.state_dict()
    assert torch.equal(start.weights["encode_x.weight"], source["encode_x.weight"])
    with pytest.raises(ConfigError, match=r"rowwise model .*embed_dim: 64 here, 32 there.*choose the model= preset"):
        run_training(_config(tiny_gp_run, tmp_path / "wider", "model.embed_dim=64",
                             f"+init_from={tiny_gp_run['output_dir'] / 'checkpoints' / 'last.ckpt'}"))
    with pytest.raises(ConfigError, match="not found"):
        run_training(_config(tiny_gp_run, tmp_path / "missing", f"+init_from={tmp_path / 'nope.ckpt'}"))
