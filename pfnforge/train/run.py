"""``pfnforge train``: compose the Hydra config, build prior, data, model, logger and trainer in that
order, fit, and resume from the run's last checkpoint when it has one."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pfnforge import registry
from pfnforge.config import to_prior_config
from pfnforge.errors import ConfigError
from pfnforge.model.bar import fit_borders
from pfnforge.model.pfn import ModelConfig
from pfnforge.prior import BatchShape, Task
from pfnforge.stream.spec import batch_rng, batch_shape
from pfnforge.train.data import DataConfig, PriorDataModule
from pfnforge.train.module import OptimConfig, PFNModule

_BORDER_RANK = 1 << 30  # a rank no run uses: the stream the regression buckets are fitted on


@dataclass(kw_only=True)
class TrainerConfig:
    """Lightning trainer settings (strategy, precision, steps, checkpoint cadence)."""

    max_steps: int = 1000
    accelerator: str = "cpu"
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    gradient_clip_val: float = 1.0
    accumulate_grad_batches: int = 1
    log_every_n_steps: int = 10
    checkpoint_every_n_steps: int = 50
    deterministic: bool = True
    enable_progress_bar: bool = True
    val_check_interval: int = 100
    """Optimiser steps between validations on the fixed validation set."""
    compile: bool = False
    """Compile the model with ``torch.compile`` (batch shapes vary per step: expect a few recompiles)."""


@dataclass(kw_only=True)
class LoggerConfig:
    tracking_uri: str = "sqlite:///mlflow.db"
    experiment: str = "pfnforge"


def typed(schema: type, node: DictConfig, group: str):
    """Validate a config group against its dataclass; unknown keys and bad values name the group."""
    try:
        values = OmegaConf.to_container(node, resolve=True)  # interpolations resolve against the whole config
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), values))
    except OmegaConfBaseException as error:
        raise ConfigError(f"{group}: {str(error).splitlines()[0]} (valid keys: "
                          f"{', '.join(f.name for f in dataclasses.fields(schema))})") from error


def _bucket_borders(prior, data: DataConfig, num_buckets: int) -> torch.Tensor:
    """Borders from standardised test targets of a few prior batches, drawn from a reserved stream."""
    samples = []
    for k in range(8):
        batch = prior.sample(batch_rng(data.stream, _BORDER_RANK, k), batch_shape(data.stream, k))
        y = torch.from_numpy(batch.y).double()
        T = int(batch.num_train_rows[0])
        mean, std = y[:, :T].mean(1, keepdim=True), y[:, :T].std(1, keepdim=True, unbiased=False)
        samples.append(((y[:, T:] - mean) / std.clamp_min(1e-6)).flatten())
    return fit_borders(torch.cat(samples), num_buckets)


def _preview(prior, data: DataConfig, path: Path) -> Path:
    """A PNG of a few datasets of the training stream's first batch shape, logged with the run."""
    from pfnforge.preview import plot_batch

    shape = batch_shape(data.stream, 0)
    batch = prior.sample(batch_rng(data.stream, _BORDER_RANK, 0), BatchShape(
        num_datasets=min(9, shape.num_datasets), num_rows=shape.num_rows, num_features=shape.num_features,
        num_train_rows=shape.num_train_rows))
    return plot_batch(batch, path, title=f"{prior.name} prior (training shapes)")


def _checkpoint_metadata(prior, data: DataConfig, model: ModelConfig, flat: dict) -> dict:
    """What a checkpoint says besides tensors: the prior, the resolved config and the input limits the
    model was trained within (rows and features of the stream, classes of the head)."""
    return {
        "prior": {"name": prior.name, "task": prior.task.value, "config": flat.get("prior", {})},
        "config": flat,
        "limits": {"max_rows": data.stream.num_rows.high,
                   "max_features": min(data.stream.num_features.high, model.max_features),
                   "max_classes": model.max_classes},
    }


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=5).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _resume_checkpoint(directory: Path) -> Path | None:
    """The newest checkpoint that loads: ``last.ckpt``, or, if a kill tore it, the newest step checkpoint."""
    candidates = sorted(directory.glob("*.ckpt"), key=lambda p: (p.name == "last.ckpt", p.stat().st_mtime),
                        reverse=True)
    for path in candidates:
        try:
            torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            return path
        except Exception as error:
            warnings.warn(f"checkpoint {path} is unreadable ({type(error).__name__}); trying an older one",
                          RuntimeWarning, stacklevel=2)
    return None


def run_training(cfg: DictConfig, callbacks: list[L.Callback] | None = None) -> Path:
    """Train as ``cfg`` says; returns the run's output directory."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    from pfnforge.train.tracking import ResilientMLFlowLogger

    prior = registry.build_prior(to_prior_config(cfg.prior))
    data = typed(DataConfig, cfg.data, "data")
    model = typed(ModelConfig, cfg.model, "model")
    trainer_config = typed(TrainerConfig, cfg.trainer, "trainer")
    logger_config = typed(LoggerConfig, cfg.logger, "logger")
    optim = typed(OptimConfig, cfg.optim, "optim")
    output_dir = Path(cfg.paths.output_dir)
    L.seed_everything(cfg.seed, workers=True, verbose=False)

    datamodule = PriorDataModule(prior, data)
    regression = prior.task in (Task.regression, Task.mixed)
    classification = prior.task in (Task.classification, Task.mixed)
    borders = _bucket_borders(prior, data, model.num_buckets) if regression else None
    flat = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    module = PFNModule(model, optim, trainer_config.max_steps, borders, classification=classification,
                       metadata=_checkpoint_metadata(prior, data, model, flat))
    if trainer_config.compile:
        module.model = torch.compile(module.model, dynamic=True)
    strategy = trainer_config.strategy
    if prior.task is Task.mixed and strategy == "ddp":  # each step uses one of the two heads
        strategy = "ddp_find_unused_parameters_true"
    if strategy == "fsdp2":  # FSDP2 (fully_shard) through Lightning's ModelParallelStrategy; runs on CPU too
        from lightning.pytorch.strategies import ModelParallelStrategy

        strategy = ModelParallelStrategy(data_parallel_size=trainer_config.devices * trainer_config.num_nodes,
                                         tensor_parallel_size=1, save_distributed_checkpoint=False)
    logger = ResilientMLFlowLogger(experiment_name=logger_config.experiment, run_name=cfg.run_name,
                                   tracking_uri=logger_config.tracking_uri, log_model=True)
    logger.log_hyperparams({**flat, "git_commit": _git_commit(),
                            "slurm_job_id": os.environ.get("SLURM_JOB_ID", "none")})
    checkpoints = ModelCheckpoint(dirpath=output_dir / "checkpoints", save_last=True, save_top_k=-1,
                                  every_n_train_steps=trainer_config.checkpoint_every_n_steps)
    trainer = L.Trainer(
        max_steps=trainer_config.max_steps, accelerator=trainer_config.accelerator, devices=trainer_config.devices,
        num_nodes=trainer_config.num_nodes, strategy=strategy, precision=trainer_config.precision,
        gradient_clip_val=trainer_config.gradient_clip_val,
        accumulate_grad_batches=trainer_config.accumulate_grad_batches,
        log_every_n_steps=trainer_config.log_every_n_steps, deterministic=trainer_config.deterministic,
        logger=logger, callbacks=[checkpoints, *(callbacks or [])], default_root_dir=output_dir,
        enable_model_summary=False, use_distributed_sampler=False,
        enable_progress_bar=trainer_config.enable_progress_bar,
        val_check_interval=trainer_config.val_check_interval, check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
    )
    resume_from = _resume_checkpoint(output_dir / "checkpoints")
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    logger.log_file(str(output_dir / "config.yaml"))
    logger.log_file(str(_preview(prior, data, output_dir / "prior-preview.png")))
    trainer.fit(module, datamodule=datamodule, ckpt_path=str(resume_from) if resume_from else None)
    return output_dir
