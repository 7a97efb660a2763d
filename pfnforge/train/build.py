"""The builders ``pfnforge train`` calls in order: typed config groups, then strategy, logger, callbacks and
the Lightning trainer. Each takes typed configs and returns one object; none reads a raw ``DictConfig``
except ``typed``, which turns one into its dataclass."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pfnforge.errors import ConfigError
from pfnforge.prior import Task


@dataclass(kw_only=True)
class TrainerConfig:
    """Lightning trainer settings (strategy, precision, steps, checkpoint cadence)."""

    max_steps: int = 1000
    """Optimiser steps of the whole run (a resumed run stops at the same step)."""
    accelerator: str = "cpu"
    """``cpu``, ``gpu`` or ``auto``."""
    devices: int = 1
    """Devices (processes) per node."""
    num_nodes: int = 1
    """Nodes; under Slurm or torchrun the cluster environment supplies ranks and addresses."""
    strategy: str = "auto"
    """``auto``, ``ddp``, ``fsdp``, ``fsdp2``, ``deepspeed_stage_1/2/3`` or any Lightning strategy name."""
    precision: str = "32-true"
    """Lightning precision, e.g. ``bf16-mixed`` on GPUs."""
    gradient_clip_val: float = 1.0
    """Clip the gradient norm to this value (0: no clipping)."""
    accumulate_grad_batches: int = 1
    """Batches whose gradients are summed before each optimiser step."""
    log_every_n_steps: int = 10
    """Steps between metric logs."""
    checkpoint_every_n_steps: int = 50
    """Steps between checkpoints (``last.ckpt`` always follows the newest)."""
    deterministic: bool = True
    """Deterministic kernels: on CPU a resumed run repeats the losses bit for bit."""
    enable_progress_bar: bool = True
    """Show a progress bar."""
    val_check_interval: int = 100
    """Optimiser steps between validations on the fixed validation set."""
    compile: bool = False
    """Compile the model with ``torch.compile`` (batch shapes vary per step: expect a few recompiles)."""
    compile_backend: str = "inductor"
    """``torch.compile`` backend: ``inductor`` (fused kernels) or e.g. ``aot_eager`` (graph capture only)."""
    profiler: str | None = None
    """Lightning profiler: ``simple`` or ``advanced`` (``null``: none)."""
    detect_anomaly: bool = False
    """Stop at the first NaN or inf in the backward pass (slow; for debugging)."""

    def __post_init__(self) -> None:
        for name in ("max_steps", "devices", "num_nodes", "accumulate_grad_batches", "log_every_n_steps",
                     "checkpoint_every_n_steps", "val_check_interval"):
            if getattr(self, name) < 1:
                raise ConfigError(f"trainer.{name}={getattr(self, name)} is out of range: it must be >= 1")
        if self.gradient_clip_val < 0:
            raise ConfigError(f"trainer.gradient_clip_val={self.gradient_clip_val} must be >= 0 (0: no clipping)")


@dataclass(kw_only=True)
class LoggerConfig:
    """Where metrics, params and artifacts go."""

    tracking_uri: str = "sqlite:///mlflow.db"
    """MLflow tracking URI: the embedded store in the working directory, or ``http://host:5000``."""
    experiment: str = "pfnforge"
    """MLflow experiment name."""


@dataclass(kw_only=True)
class CallbacksConfig:
    """Optional callbacks around training."""

    keep_checkpoints: int = -1
    """Step checkpoints kept besides ``last.ckpt``, newest first (-1: all)."""
    enable_device_stats: bool = False
    """Log CPU/GPU memory and utilisation every ``trainer.log_every_n_steps`` (Lightning's DeviceStatsMonitor)."""
    max_time: str | None = None
    """Stop cleanly (checkpointing) after this wall time, ``DD:HH:MM:SS``; ``null``: no limit."""

    def __post_init__(self) -> None:
        if self.keep_checkpoints < -1:
            raise ConfigError(f"callbacks.keep_checkpoints={self.keep_checkpoints} must be >= -1 (-1: keep all)")


def typed(schema: type, node: DictConfig, group: str) -> Any:
    """Validate a config group against its dataclass; unknown keys and bad values name the group."""
    try:
        values = OmegaConf.to_container(node, resolve=True)  # interpolations resolve against the whole config
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), values))
    except OmegaConfBaseException as error:
        raise ConfigError(f"{group}: {str(error).splitlines()[0]} (valid keys: "
                          f"{', '.join(f.name for f in dataclasses.fields(schema))})") from error


def build_strategy(config: TrainerConfig, task: Task) -> Any:
    """The Lightning strategy the config names; ``fsdp2`` is per-layer ``fully_shard`` (CPU or GPU)."""
    if task is Task.mixed and config.strategy == "ddp":  # each step uses one of the two heads
        return "ddp_find_unused_parameters_true"
    if config.strategy == "fsdp2":
        from lightning.pytorch.strategies import ModelParallelStrategy

        return ModelParallelStrategy(data_parallel_size=config.devices * config.num_nodes, tensor_parallel_size=1,
                                     save_distributed_checkpoint=False)
    from lightning.pytorch.strategies import StrategyRegistry

    known = ["auto", "fsdp2", *StrategyRegistry.available_strategies()]
    if config.strategy not in known:
        raise ConfigError(f"trainer.strategy={config.strategy!r} is unknown: choose a trainer preset (trainer=ddp, "
                          f"fsdp2, deepspeed_zero2, ...) or one of {', '.join(sorted(set(known)))}")
    return config.strategy


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=5).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


SPOOL_FILE = "mlflow-spool.jsonl"
"""In a run's output directory: metrics the tracking server did not take yet (``pfnforge.train.spool``)."""
RUN_FILE = "mlflow-run.json"
"""In a run's output directory: the MLflow run it logs to, so a resume or requeue continues that run."""


def build_logger(config: LoggerConfig, run_name: str, params: dict[str, Any],
                 output_dir: Path | None = None) -> L.pytorch.loggers.Logger:
    """An MLflow logger that never stalls training, with the resolved config, git commit and Slurm job as params.
    With ``output_dir``: a run directory that already logged to a run of this tracking store continues that
    run (marked ``RUNNING`` again; params it already has are kept, changed values are recorded as
    ``changed_on_resume/<name>`` tags), and a new run's id is written there for the next resume."""
    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    from pfnforge.train.tracking import ResilientMLFlowLogger

    params = {**params, "git_commit": git_commit(), "slurm_job_id": os.environ.get("SLURM_JOB_ID", "none")}
    previous = _previous_run(output_dir, config) if output_dir is not None else None
    logger = ResilientMLFlowLogger(experiment_name=config.experiment, run_name=run_name,
                                   tracking_uri=config.tracking_uri, log_model=True,
                                   spool=output_dir / SPOOL_FILE if output_dir is not None else None,
                                   run_id=previous.info.run_id if previous is not None else None)
    if previous is None:
        logger.log_hyperparams(params)
    else:
        from lightning.fabric.utilities.logger import _flatten_dict

        logged = previous.data.params
        flat = {k: str(v)[:250] for k, v in _flatten_dict(params, delimiter="/").items()}  # as Lightning logs
        logger.log_hyperparams({k: v for k, v in flat.items() if k not in logged})
        logger.set_tags({f"changed_on_resume/{k}": v for k, v in flat.items() if k in logged and logged[k] != v})
    if output_dir is not None and logger.run_id is not None and rank_zero_only.rank == 0:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / RUN_FILE).write_text(json.dumps({"tracking_uri": config.tracking_uri,
                                                       "run_id": logger.run_id}) + "\n")
    return logger


def _previous_run(output_dir: Path, config: LoggerConfig):
    """The MLflow run this run directory logged to before, if it is in this tracking store and reachable."""
    path = output_dir / RUN_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        if record.get("tracking_uri") != config.tracking_uri:
            return None
        import mlflow

        from pfnforge.train.tracking import one_at_a_time

        with one_at_a_time(config.tracking_uri):
            client = mlflow.MlflowClient(config.tracking_uri)
            run = client.get_run(record["run_id"])
            if run.info.lifecycle_stage != "active":
                return None
            client.update_run(run.info.run_id, status="RUNNING")
        return run
    except Exception as error:  # a corrupt file, a deleted run, an unreachable server: start a new run
        warnings.warn(f"cannot continue the MLflow run recorded in {path} ({type(error).__name__}: "
                      f"{str(error)[:200]}); starting a new one", RuntimeWarning, stacklevel=2)
        return None


def build_callbacks(config: CallbacksConfig, trainer: TrainerConfig, checkpoint_dir: Path) -> list[L.Callback]:
    from lightning.pytorch.callbacks import DeviceStatsMonitor, ModelCheckpoint, Timer

    callbacks: list[L.Callback] = [ModelCheckpoint(
        dirpath=checkpoint_dir, save_last=True, save_top_k=config.keep_checkpoints, monitor="step", mode="max",
        every_n_train_steps=trainer.checkpoint_every_n_steps)]
    if config.enable_device_stats:
        callbacks.append(DeviceStatsMonitor(cpu_stats=True))
    if config.max_time:
        callbacks.append(Timer(duration=config.max_time, interval="step"))
    return callbacks


def build_trainer(config: TrainerConfig, strategy: Any, logger: Any, callbacks: list[L.Callback],
                  output_dir: Path) -> L.Trainer:
    from pfnforge.train.checkpoint_io import InPlaceCheckpointIO

    # single-file checkpoints are written in place; DeepSpeed and FSDP strategies write their own
    one_file = isinstance(strategy, str) and not strategy.startswith(("deepspeed", "fsdp"))
    return L.Trainer(
        plugins=[InPlaceCheckpointIO()] if one_file else None,
        max_steps=config.max_steps, accelerator=config.accelerator, devices=config.devices,
        num_nodes=config.num_nodes, strategy=strategy, precision=config.precision,
        gradient_clip_val=config.gradient_clip_val or None, accumulate_grad_batches=config.accumulate_grad_batches,
        log_every_n_steps=config.log_every_n_steps, deterministic=config.deterministic, logger=logger,
        callbacks=callbacks, default_root_dir=output_dir, enable_model_summary=False, use_distributed_sampler=False,
        enable_progress_bar=config.enable_progress_bar, val_check_interval=config.val_check_interval,
        check_val_every_n_epoch=None, num_sanity_val_steps=0, profiler=config.profiler,
        detect_anomaly=config.detect_anomaly,
    )
