"""Training end to end on CPU: the real Lightning trainer, the real MLflow store, real checkpoints."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import mlflow
import numpy as np
import pytest
import torch
from omegaconf import open_dict

from pfnforge.cli.train import compose_train_config
from pfnforge.errors import ConfigError
from pfnforge.prior import BatchShape
from pfnforge.train import checkpoint_io
from pfnforge.train.run import run_training


class LossRecorder(L.Callback):
    def __init__(self) -> None:
        self.losses: dict[int, torch.Tensor] = {}

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.losses[trainer.global_step] = outputs["loss"].detach().clone()


class HeldOutNLL(L.Callback):
    """NLL per test row on one fixed batch of prior datasets, at the start and the end of training."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def _measure(self, trainer, module) -> None:
        prior = trainer.datamodule.prior
        shape = BatchShape(num_datasets=256, num_rows=50, num_features=1, num_train_rows=25)
        batch = prior.sample(np.random.default_rng(999), shape)
        with torch.no_grad():
            log_likelihood = module.model.test_log_likelihood(
                torch.from_numpy(batch.x), torch.from_numpy(batch.y), 25, torch.zeros(256, dtype=torch.int32))
        self.values.append(-log_likelihood.mean().item())

    on_train_start = _measure
    on_train_end = _measure


class Crash(L.Callback):
    """Dies at the start of a given step, as a killed run would (after the checkpoint before it)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            raise RuntimeError("simulated crash")


def _config(tmp_path: Path, name: str, *extra: str):
    return compose_train_config([
        f"paths.output_dir={tmp_path / name}", f"logger.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
        "model.embed_dim=32", "model.num_layers=2", "data.num_workers=0", "data.stream.num_datasets=16",
        "trainer.log_every_n_steps=1", "trainer.enable_progress_bar=false", *extra])


def test_training_leaves_the_process_tracking_uri_as_it_was(tmp_path, monkeypatch):
    """Lightning's MLFlowLogger sets MLflow's global tracking URI; after the run, MLFLOW_TRACKING_URI (and an
    unset global) must govern the process again, or later models:/ URIs resolve against the run's store."""
    from mlflow.tracking._tracking_service import utils

    monkeypatch.setattr(utils, "_tracking_uri", None)
    elsewhere = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", elsewhere)
    run_training(_config(tmp_path, "run", "trainer.max_steps=2", "trainer.val_check_interval=2"))
    assert utils._tracking_uri is None and mlflow.get_tracking_uri() == elsewhere
    assert (tmp_path / "mlflow.db").is_file()  # the run itself logged to its configured store


def test_tiny_gp_pfn_trains_and_is_tracked_in_mlflow(tmp_path):
    recorder, held_out = LossRecorder(), HeldOutNLL()
    out = run_training(_config(tmp_path, "run", "trainer.max_steps=40", "trainer.checkpoint_every_n_steps=20",
                               "run_name=tracked"), callbacks=[recorder, held_out])
    losses = torch.stack([recorder.losses[s] for s in sorted(recorder.losses)])
    assert len(losses) == 40 and torch.isfinite(losses).all()
    before, after = held_out.values
    assert after < before - 0.1, held_out.values  # it learns to use the context
    assert {p.name for p in (out / "checkpoints").iterdir()} >= {"last.ckpt", "epoch=0-step=20.ckpt"}
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    [run] = client.search_runs([client.get_experiment_by_name("pfnforge").experiment_id])
    assert run.info.run_name == "tracked"
    assert run.data.params["model/embed_dim"] == "32" and "git_commit" in run.data.params
    history = client.get_metric_history(run.info.run_id, "train/loss")
    assert len(history) == 40
    assert {"throughput/datasets_per_s", "throughput/tokens_per_s", "throughput/model_tflops_per_s",
            "train/grad_norm", "train/lr"} <= set(run.data.metrics)
    lr = [m.value for m in client.get_metric_history(run.info.run_id, "train/lr")]
    assert lr[0] == pytest.approx(1e-3 / 20) and max(lr) == pytest.approx(1e-3, rel=0.02)  # warm-up to the peak
    grad_norms = [m.value for m in client.get_metric_history(run.info.run_id, "train/grad_norm")]
    assert all(np.isfinite(grad_norms)) and min(grad_norms) > 0
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "prior-preview.png", "last"} <= artifacts  # config, prior preview, final checkpoint
    assert "last/last.ckpt" in {a.path for a in client.list_artifacts(run.info.run_id, "last")}


def test_resumed_run_repeats_the_uninterrupted_losses_bitwise(tmp_path):
    steps = ["trainer.max_steps=10", "trainer.checkpoint_every_n_steps=5"]
    uninterrupted = LossRecorder()
    run_training(_config(tmp_path, "a", *steps), callbacks=[uninterrupted])
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_training(_config(tmp_path, "b", *steps), callbacks=[Crash(step=7)])
    resumed = LossRecorder()
    run_training(_config(tmp_path, "b", *steps), callbacks=[resumed])  # same command: resumes at step 5
    assert sorted(resumed.losses) == list(range(6, 11))
    for step, loss in resumed.losses.items():
        assert torch.equal(loss, uninterrupted.losses[step]), step


def _start_and_stop(command: list[str], env: dict, checkpoint: Path, signum: int) -> subprocess.Popen:
    """Start a training command in its own process group; once ``checkpoint`` exists, send ``signum`` to the
    whole group (the trainer and its prior workers), as Ctrl-C in a terminal or a kill -9 would."""
    # SIGINT as in a terminal, even where this test runs as a background job of a non-interactive shell (which
    # starts its jobs with SIGINT ignored, and Python then installs no KeyboardInterrupt handler)
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 240
    while not checkpoint.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    os.killpg(process.pid, signum)
    process.output = process.communicate(timeout=120)[0]
    assert checkpoint.exists(), process.output[-2000:]
    return process


def test_interrupted_and_killed_training_resumes_with_the_same_command(tmp_path, cli_env):
    command = [sys.executable, "-m", "pfnforge.cli", "train", f"paths.output_dir={tmp_path / 'run'}",
               f"logger.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}", "model.embed_dim=32",
               "data.num_workers=1", "trainer.max_steps=400", "trainer.checkpoint_every_n_steps=10"]
    checkpoints = tmp_path / "run" / "checkpoints"
    # Ctrl-C: a graceful stop, exit 130, no worker tracebacks, the MLflow run marked KILLED
    interrupted = _start_and_stop(command, cli_env, checkpoints / "epoch=0-step=20.ckpt", signal.SIGINT)
    assert interrupted.returncode == 130 and "Traceback" not in interrupted.output, interrupted.output[-2000:]
    assert "the same command resumes" in interrupted.output
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    [run] = client.search_runs([client.get_experiment_by_name("pfnforge").experiment_id])
    assert run.info.status == "KILLED"
    # kill -9 of the resumed run: the trainer and its workers die at once
    _start_and_stop(command, cli_env, checkpoints / "epoch=0-step=30.ckpt", signal.SIGKILL)
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)  # safe to load
    killed_at = state["global_step"]
    assert 20 <= killed_at < 400
    finished = subprocess.run([*command[:-2], "trainer.max_steps=40", "trainer.checkpoint_every_n_steps=10"],
                              env=cli_env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert "Restored all states from the checkpoint" in finished.stderr
    final = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert final["global_step"] == max(40, killed_at)
    assert final["PriorDataModule"]["next_batch"] == final["global_step"]


def test_a_torn_last_checkpoint_falls_back_to_the_newest_intact_one(tmp_path):
    steps = ["trainer.max_steps=10", "trainer.checkpoint_every_n_steps=5"]
    run_training(_config(tmp_path, "torn", *steps))
    last = tmp_path / "torn" / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])  # as if killed while writing it
    recorder = LossRecorder()
    with pytest.warns(RuntimeWarning, match="last.ckpt is unreadable"):
        run_training(_config(tmp_path, "torn", "trainer.max_steps=12", "trainer.checkpoint_every_n_steps=5"),
                     callbacks=[recorder])
    assert sorted(recorder.losses) == [11, 12]  # resumed from the step-10 checkpoint


def test_a_checkpoint_write_killed_midway_leaves_no_torn_file_and_nothing_in_tmpdir(tmp_path, monkeypatch):
    staging = tmp_path / "tmpdir"
    staging.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(staging))  # where a staged copy would go
    real_save, saves = torch.save, []

    def dying_save(obj, handle, *args, **kwargs):
        saves.append(obj["global_step"])
        if obj["global_step"] == 10:  # killed halfway through the step-10 checkpoint
            handle.write(b"half a checkpoint")
            raise RuntimeError("killed while writing")
        return real_save(obj, handle, *args, **kwargs)

    monkeypatch.setattr(checkpoint_io.torch, "save", dying_save)
    steps = ["trainer.max_steps=12", "trainer.checkpoint_every_n_steps=5"]
    with pytest.raises(RuntimeError, match="killed while writing"):
        run_training(_config(tmp_path, "inplace", *steps))
    checkpoints = tmp_path / "inplace" / "checkpoints"
    assert not (checkpoints / "epoch=0-step=10.ckpt").exists()  # no file under its final name
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["global_step"] == 5  # the intact one
    assert [p.name for p in checkpoints.glob(".*.partial")] == [".epoch=0-step=10.ckpt.partial"]
    monkeypatch.setattr(checkpoint_io.torch, "save", real_save)
    run_training(_config(tmp_path, "inplace", *steps))  # resumes at 5; the next save clears the partial file
    assert not list(checkpoints.glob(".*.partial"))
    # no staged checkpoint (a torch zip archive) left in the temporary directory; other libraries' files may be
    staged = [p for p in staging.rglob("*") if p.is_file() and p.open("rb").read(2) == b"PK"]
    assert not staged
    assert torch.load(checkpoints / "epoch=0-step=10.ckpt", weights_only=True)["global_step"] == 10


def test_resume_picks_the_highest_stored_step_not_the_newest_file(tmp_path):
    run_training(_config(tmp_path, "copied", "trainer.max_steps=10", "trainer.checkpoint_every_n_steps=5"))
    checkpoints = tmp_path / "copied" / "checkpoints"
    (checkpoints / "last.ckpt").unlink()  # as if lost, then the run directory copied: file times reordered
    [step5] = checkpoints.glob("*step=5.ckpt")
    os.utime(step5, (time.time() + 100, time.time() + 100))  # the step-5 file is now the newest
    recorder = LossRecorder()
    run_training(_config(tmp_path, "copied", "trainer.max_steps=12", "trainer.checkpoint_every_n_steps=5"),
                 callbacks=[recorder])
    assert sorted(recorder.losses) == [11, 12]  # from step 10, not from the newer-looking step 5


def test_bad_training_config_names_the_group():
    with pytest.raises(ConfigError, match=r"no config key 'model.embed_dimm'.*Valid keys there: .*embed_dim"):
        compose_train_config(["model.embed_dimm=3"])
    with pytest.raises(ConfigError, match="num_heads=3 must divide"):
        run_training(compose_train_config(["model.num_heads=3"]))


EXPERIMENTS = sorted(p.stem for p in (Path(__file__).parent.parent / "configs" / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_runs_a_step_on_cpu(experiment, tmp_path):
    architecture = experiment.rsplit("_", 1)[-1]
    model = [f"model={architecture}_tiny"] if architecture in ("cellwise", "colrow") \
        else ["model=tiny", "model.embed_dim=32"]
    cfg = compose_train_config([
        f"paths.output_dir={tmp_path / experiment}", f"logger.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
        "data.num_workers=0", "trainer.enable_progress_bar=false", f"+experiment={experiment}", "trainer=cpu",
        *model, "trainer.max_steps=2", "trainer.val_check_interval=2", "data.stream.num_datasets=2",
        "data.stream.num_rows.low=20", "data.stream.num_rows.high=20", "data.num_val_batches=1"])
    if "init_from" in cfg:  # the recipe's own weights fit only its own model size: checked below, apart
        with open_dict(cfg):
            del cfg["init_from"]
    out = run_training(cfg)
    assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 2


def test_continued_pretraining_recipes_fit_their_source_models():
    """Every recipe with init_from builds a model its source's weights load into (no training step)."""
    from pfnforge.config import to_model_config
    from pfnforge.train.init_from import initialise_from
    from pfnforge.train.module import OptimConfig, PFNModule

    recipes = [e for e in EXPERIMENTS if "init_from" in compose_train_config([f"+experiment={e}"])]
    assert recipes
    for experiment in recipes:
        cfg = compose_train_config([f"+experiment={experiment}"])
        module = PFNModule(to_model_config(cfg.model), OptimConfig(), 10, None, classification=True, metadata={})
        tags = initialise_from(module, cfg.init_from, None)
        assert tags["pfnforge.init_from"] == cfg.init_from, experiment


def test_ranks_read_different_data_of_identical_shapes():
    from types import SimpleNamespace

    from pfnforge import registry
    from pfnforge.train.data import DataConfig, PriorDataModule

    batches = []
    for rank in (0, 1):
        datamodule = PriorDataModule(registry.load_prior_class("gp")(), DataConfig(num_workers=0))
        datamodule.trainer = SimpleNamespace(global_rank=rank)
        batches.append([b for _, b in zip(range(3), iter(datamodule.train_dataloader()), strict=False)])
    for rank0, rank1 in zip(*batches, strict=True):
        assert rank0.x.shape == rank1.x.shape and rank0.num_train_rows == rank1.num_train_rows
        assert not torch.equal(rank0.x, rank1.x)


def test_ddp_with_two_processes_trains(tmp_path, cli_env):
    cli_env["OMP_NUM_THREADS"] = "1"
    result = subprocess.run(
        [sys.executable, "-m", "pfnforge.cli", "train", "trainer=ddp", "trainer.devices=2",
         f"paths.output_dir={tmp_path / 'ddp'}", f"logger.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
         "model.embed_dim=32", "data.num_workers=0", "trainer.max_steps=6", "trainer.val_check_interval=3",
         "trainer.enable_progress_bar=false"],
        env=cli_env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "distributed_backend=gloo" in result.stderr and "All distributed processes registered" in result.stderr
    state = torch.load(tmp_path / "ddp" / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["global_step"] == 6


def test_two_emulated_nodes_under_torchrun_train_as_one_job(tmp_path, cli_env):
    """Two torchrun agents (node ranks 0 and 1) on loopback, one process each: the way a multi-node job
    without Slurm starts. Both nodes must agree on every step and the rank-zero node writes checkpoints."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cli_env["OMP_NUM_THREADS"] = "1"
    agents = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", f"--node-rank={node}", "--nproc-per-node=1",
         "--master-addr=127.0.0.1", f"--master-port={port}", "-m", "pfnforge.cli", "train", "trainer=ddp",
         "trainer.devices=1", "trainer.num_nodes=2", f"paths.output_dir={tmp_path / 'nodes'}",
         f"logger.tracking_uri=sqlite:///{tmp_path / f'mlflow-{node}.db'}", "model.embed_dim=32",
         "data.num_workers=0", "trainer.max_steps=4", "trainer.val_check_interval=4",
         "trainer.enable_progress_bar=false"],
        cwd=tmp_path, env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for node in (0, 1)]
    outputs = [agent.communicate(timeout=600)[0] for agent in agents]
    assert [a.returncode for a in agents] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    assert "MEMBER: 2/2" in outputs[0] or "All distributed processes registered. Starting with 2" in outputs[0]
    state = torch.load(tmp_path / "nodes" / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["global_step"] == 4 and state["PriorDataModule"]["next_batch"] == 4


TRAINERS = sorted(p.stem for p in (Path(__file__).parent.parent / "configs" / "trainer").glob("*.yaml"))


@pytest.mark.parametrize("trainer", TRAINERS)
def test_every_trainer_config_composes_and_validates(trainer):
    from pfnforge.train.run import TrainerConfig, typed

    config = typed(TrainerConfig, compose_train_config([f"trainer={trainer}"]).trainer, "trainer")
    assert config.max_steps > 0
    if trainer.startswith("deepspeed"):
        assert config.strategy == f"deepspeed_stage_{trainer[-1]}" and config.accelerator == "gpu"


def test_classification_prior_trains_with_the_classification_head(tmp_path):
    out = run_training(_config(tmp_path, "cls", "prior=bnn", "prior.classification=true", "trainer.max_steps=3",
                               "trainer.val_check_interval=3", "data.stream.num_features.high=3"))
    checkpoint = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    state = checkpoint["state_dict"]
    assert any(k.startswith("model.classification_head") for k in state)
    assert not any(k.startswith("model.regression_head") for k in state)
    # the checkpoint alone says how to rebuild the model and what inputs it was trained within
    meta = checkpoint["pfnforge"]
    assert meta["classification"] and not meta["regression"] and meta["global_step"] == 3
    assert meta["prior"]["name"] == "bnn" and meta["prior"]["task"] == "classification"
    assert meta["model"]["embed_dim"] == 32 and meta["config"]["trainer"]["max_steps"] == 3
    assert meta["limits"] == {"max_rows": 50, "max_features": 3, "max_classes": 10}


def test_fsdp2_with_two_processes_trains_and_resumes(tmp_path, cli_env):
    cli_env["OMP_NUM_THREADS"] = "1"
    command = [sys.executable, "-m", "pfnforge.cli", "train", "trainer=fsdp2", f"paths.output_dir={tmp_path / 'fsdp'}",
               f"logger.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}", "model.embed_dim=32", "data.num_workers=0",
               "trainer.val_check_interval=3", "trainer.enable_progress_bar=false"]
    for steps in (4, 7):  # the second call resumes from the first one's checkpoint
        result = subprocess.run([*command, f"trainer.max_steps={steps}"], env=cli_env, capture_output=True,
                                text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
    assert "Restored all states from the checkpoint" in result.stderr
    state = torch.load(tmp_path / "fsdp" / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["global_step"] == 7 and state["PriorDataModule"]["next_batch"] == 7


def test_compiled_model_trains_like_the_plain_one_and_saves_plain_names(tmp_path):
    """``trainer.compile=true`` (graph capture through aot_eager here; inductor needs no other wiring)."""
    steps = ("trainer.max_steps=3", "trainer.val_check_interval=3")
    plain, compiled = LossRecorder(), LossRecorder()
    run_training(_config(tmp_path, "plain", *steps), callbacks=[plain])
    out = run_training(_config(tmp_path, "compiled", *steps, "trainer.compile=true",
                               "trainer.compile_backend=aot_eager"), callbacks=[compiled])
    for step in plain.losses:
        assert torch.allclose(plain.losses[step], compiled.losses[step], atol=1e-5), step
    state = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert "model.encode_x.weight" in state and not any("_orig_mod" in k for k in state)


def test_old_step_checkpoints_are_pruned_to_the_newest_few(tmp_path):
    out = run_training(_config(tmp_path, "pruned", "trainer.max_steps=12", "trainer.checkpoint_every_n_steps=3",
                               "callbacks.keep_checkpoints=2", "trainer.val_check_interval=12"))
    names = {p.name for p in (out / "checkpoints").iterdir()}
    assert names == {"last.ckpt", "epoch=0-step=9.ckpt", "epoch=0-step=12.ckpt"}


def test_multirun_trains_one_run_per_combination_in_its_own_directory(tmp_path, cli_env):
    cli_env["OMP_NUM_THREADS"] = "1"
    command = [sys.executable, "-m", "pfnforge.cli", "train", "--multirun", "model.embed_dim=16,32", "debug=fast",
               f"logger.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}"]
    result = subprocess.run(command, cwd=tmp_path, env=cli_env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    for job, width in ((0, 16), (1, 32)):
        checkpoint = torch.load(tmp_path / "multirun" / "debug" / str(job) / "checkpoints" / "last.ckpt",
                                weights_only=True)
        assert checkpoint["pfnforge"]["model"]["embed_dim"] == width and checkpoint["global_step"] == 5
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("pfnforge").experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["debug-0", "debug-1"]


@pytest.mark.parametrize("debug", ["fast", "profile", "anomaly"])
def test_every_debug_config_composes_into_a_short_run(debug):
    from pfnforge.train.build import TrainerConfig, typed

    cfg = compose_train_config([f"debug={debug}"])
    trainer = typed(TrainerConfig, cfg.trainer, "trainer")
    assert trainer.max_steps <= 50 and cfg.data.num_workers == 0
    assert (trainer.profiler == "simple") == (debug == "profile") and trainer.detect_anomaly == (debug == "anomaly")


def test_data_wait_fraction_covers_the_last_logging_window_only():
    """Start-up waits (workers importing, compiling) must not linger in the metric for the rest of a run."""
    import collections

    from pfnforge.model.pfn import ModelConfig
    from pfnforge.train.module import OptimConfig, PFNModule

    module = PFNModule(ModelConfig(embed_dim=8, num_layers=1, num_heads=1), OptimConfig(), 10, None,
                       classification=True)
    logged: dict[str, float] = {}
    module.log = lambda name, value, **kwargs: logged.__setitem__(name, value)
    module._wait_marks = collections.deque(maxlen=3)  # a window of two steps
    fractions = []
    for total_wait, now in ((0.0, 0.0), (6.0, 10.0), (6.5, 20.0), (7.0, 30.0)):
        module._log_data_wait(total_wait, now)
        fractions.append(logged.get("data/wait_fraction"))
    assert fractions[1:] == [pytest.approx(0.6), pytest.approx(0.325), pytest.approx(0.05)]
    assert logged["data/wait_seconds"] == 7.0


def test_resuming_with_another_architecture_or_size_is_refused_naming_both(tmp_path):
    run_training(_config(tmp_path, "run", "trainer.max_steps=2", "trainer.val_check_interval=2"))
    with pytest.raises(ConfigError, match=r"embed_dim: 32 -> 48.*choose another run_name"):
        run_training(_config(tmp_path, "run", "trainer.max_steps=4", "model.embed_dim=48"))
    other = compose_train_config([f"paths.output_dir={tmp_path / 'run'}", "model=cellwise_tiny",
                                  f"logger.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}", "data.num_workers=0"])
    with pytest.raises(ConfigError, match=r"checkpoint of a rowwise model.*with a cellwise model"):
        run_training(other)
