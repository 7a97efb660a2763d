"""Tracking against a real `mlflow server` on loopback, and training that outlives the server."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import lightning as L
import mlflow
import pytest
import torch

from pfnforge.cli.train import compose_train_config
from pfnforge.train.run import run_training
from tests.conftest import free_port as _free_port
from tests.conftest import running_mlflow_server


def _config(tmp_path: Path, uri: str, *extra: str):
    return compose_train_config([
        f"paths.output_dir={tmp_path / 'run'}", f"logger.tracking_uri={uri}", "model.embed_dim=32",
        "data.num_workers=0", "data.stream.num_datasets=8", "trainer.log_every_n_steps=1",
        "trainer.enable_progress_bar=false", "trainer.checkpoint_every_n_steps=10", "trainer.val_check_interval=10",
        *extra])


def test_server_receives_params_metrics_and_checkpoints(tmp_path, mlflow_server):
    url, _ = mlflow_server
    run_training(_config(tmp_path, url, "trainer.max_steps=12", "run_name=served", "prior.lengthscale.low=0.3",
                         "prior.noise_variance.low=0.003"))
    client = mlflow.MlflowClient(url)
    [run] = client.search_runs([client.get_experiment_by_name("pfnforge").experiment_id])
    assert run.info.run_name == "served" and run.info.status == "FINISHED"
    assert run.data.params["trainer/max_steps"] == "12"
    assert len(client.get_metric_history(run.info.run_id, "train/loss")) == 12
    # a GP prior that draws its hyperparameters: the gap is to the posterior integrated over them, and the oracle
    # that knows each dataset's draw (a higher log-likelihood) has its own, larger gap
    assert run.data.tags["val/reference"] == "hyperparameter-marginal GP posterior"
    assert run.data.metrics["val/gap_to_oracle"] > run.data.metrics["val/gap_to_exact"]
    assert "last/last.ckpt" in {a.path for a in client.list_artifacts(run.info.run_id, "last")}


class KillServer(L.Callback):
    def __init__(self, process: subprocess.Popen, step: int) -> None:
        self.process, self.step = process, step

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.killpg(self.process.pid, signal.SIGKILL)


def test_server_killed_mid_run_does_not_stop_or_stall_training(tmp_path, mlflow_server):
    url, process = mlflow_server
    start = time.monotonic()
    with pytest.warns(RuntimeWarning, match="MLflow"):
        out = run_training(_config(tmp_path, url, "trainer.max_steps=30", "logger.experiment=killed"),
                           callbacks=[KillServer(process, step=5)])
    assert process.wait(5) is not None
    assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 30
    assert time.monotonic() - start < 90


class StopAndRestartServer(L.Callback):
    """Kills the tracking server after step ``stop`` and starts it again (same store, same port) after ``start``."""

    def __init__(self, process: subprocess.Popen, url: str, directory: Path, stop: int, start: int) -> None:
        self.process, self.url, self.directory, self.stop, self.start = process, url, directory, stop, start
        self.restarted = contextlib.ExitStack()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.stop:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        if trainer.global_step == self.start:
            port = int(self.url.rsplit(":", 1)[1])
            self.restarted.enter_context(running_mlflow_server(self.directory, port))


def test_metrics_logged_while_the_server_is_down_arrive_once_and_in_order(tmp_path, mlflow_server):
    url, process = mlflow_server
    restart = StopAndRestartServer(process, url, tmp_path, stop=5, start=20)
    try:
        with pytest.warns(RuntimeWarning, match="metrics spooled to"):
            out = run_training(_config(tmp_path, url, "trainer.max_steps=30", "run_name=spooled"),
                               callbacks=[restart])
        client = mlflow.MlflowClient(url)
        [run] = client.search_runs([client.get_experiment_by_name("pfnforge").experiment_id])
        history = client.get_metric_history(run.info.run_id, "train/loss")
        steps = [m.step for m in sorted(history, key=lambda m: (m.timestamp, m.step))]
        assert steps == list(range(30))  # every step once, in the order logged (down from step 6 to 20)
        assert not (out / "mlflow-spool.jsonl").exists() and run.info.status == "FINISHED"
    finally:
        restart.restarted.close()


def test_unreachable_server_at_start_trains_untracked(tmp_path):
    with pytest.warns(RuntimeWarning, match="MLflow tracking is off for this run"):
        out = run_training(_config(tmp_path, f"http://127.0.0.1:{_free_port()}", "trainer.max_steps=5"))
    assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 5


class _CrashAt(L.Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == self.step:
            raise RuntimeError("injected crash")


def test_a_crashed_and_resumed_training_is_one_mlflow_run(tmp_path, mlflow_server):
    url, _ = mlflow_server
    extra = ("trainer.checkpoint_every_n_steps=2", "run_name=requeued")
    with pytest.raises(RuntimeError, match="injected crash"):
        run_training(_config(tmp_path, url, "trainer.max_steps=6", *extra), callbacks=[_CrashAt(3)])
    client = mlflow.MlflowClient(url)
    experiment = client.get_experiment_by_name("pfnforge").experiment_id
    [crashed] = client.search_runs([experiment])
    assert crashed.info.status == "FAILED"
    assert (tmp_path / "run" / "mlflow-run.json").read_text().count(crashed.info.run_id) == 1
    run_training(_config(tmp_path, url, "trainer.max_steps=8", *extra))  # resumes from step 2's checkpoint
    [run] = client.search_runs([experiment])
    assert run.info.run_id == crashed.info.run_id and run.info.status == "FINISHED"
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")]
    assert max(steps) == 7 and set(range(8)) <= set(steps)  # the metrics continue at the resumed step
    assert run.data.params["trainer/max_steps"] == "6"  # params stay; the change is a tag
    assert run.data.tags["changed_on_resume/trainer/max_steps"] == "8"


def test_the_spool_keeps_order_and_count_through_a_failed_drain(tmp_path):
    from pfnforge.train.spool import MetricSpool

    spool = MetricSpool(tmp_path / "spool.jsonl")
    assert len(spool) == 0
    for step in range(5):
        spool.append({"step": step, "timestamp": step, "metrics": {"loss": float(step)}})
    assert len(spool) == 5 and len(MetricSpool(spool.path)) == 5  # a fresh reader counts the file
    sent: list[int] = []

    def flaky(records):
        if sent:
            raise ConnectionError("server down")
        sent.extend(r["step"] for r in records)

    with pytest.raises(ConnectionError):
        spool.drain(flaky, chunk=2)
    assert sent == [0, 1] and len(spool) == 3 and len(MetricSpool(spool.path)) == 3
    assert spool.drain(lambda records: sent.extend(r["step"] for r in records)) == 3
    assert sent == [0, 1, 2, 3, 4] and len(spool) == 0 and not spool.path.exists()
