"""``pfnforge train``: from the composed Hydra config, build prior, data, model, logger, callbacks and trainer
in that order (builders in ``pfnforge.train.build``), fit, and resume from the run's newest intact checkpoint
(or, in a new run directory with ``+init_from=SOURCE``, start from a trained model's weights)."""

from __future__ import annotations

import warnings
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from pfnforge import registry
from pfnforge.config import to_model_config, to_prior_config
from pfnforge.errors import ConfigError
from pfnforge.inference.artifact import deepspeed_client_state, is_deepspeed_checkpoint
from pfnforge.inference.register import RegistryConfig, register_after_training, restored_tracking_uri
from pfnforge.model.api import ArchitectureConfig, target_scale
from pfnforge.model.bar import fit_borders
from pfnforge.prior import BatchShape, Task
from pfnforge.stream.spec import batch_rng, batch_shape
from pfnforge.train.build import (
    CallbacksConfig,
    LoggerConfig,
    TrainerConfig,
    build_callbacks,
    build_logger,
    build_strategy,
    build_trainer,
    typed,
)
from pfnforge.train.data import DataConfig, PriorDataModule
from pfnforge.train.init_from import initialise_from
from pfnforge.train.module import OptimConfig, PFNModule
from pfnforge.train.slurm import slurm_callbacks

_BORDER_RANK = 1 << 30  # a rank no run uses: the stream the regression buckets are fitted on


def _bucket_borders(prior, data: DataConfig, model: ArchitectureConfig) -> torch.Tensor:
    """Borders from test targets of a few prior batches (8, or more until there are 10 per bucket), drawn
    from a reserved stream, scaled as the model scales them (standardised by training-row statistics, or raw)."""
    samples: list[torch.Tensor] = []
    for k in range(4096):
        if k >= 8 and sum(s.numel() for s in samples) >= 10 * model.num_buckets:
            break
        batch = prior.sample(batch_rng(data.stream, _BORDER_RANK, k), batch_shape(data.stream, k))
        y = torch.from_numpy(batch.y).double()
        T = int(batch.num_train_rows[0])
        mean, std = target_scale(y[:, :T], model)
        samples.append(((y[:, T:] - mean) / std).flatten())
    return fit_borders(torch.cat(samples), model.num_buckets)


def _preview(prior, data: DataConfig, path: Path) -> Path:
    """A PNG of a few datasets of the training stream's first batch shape, logged with the run."""
    from pfnforge.preview import plot_batch

    shape = batch_shape(data.stream, 0)
    batch = prior.sample(batch_rng(data.stream, _BORDER_RANK, 0), BatchShape(
        num_datasets=min(9, shape.num_datasets), num_rows=shape.num_rows, num_features=shape.num_features,
        num_train_rows=shape.num_train_rows))
    return plot_batch(batch, path, title=f"{prior.name} prior (training shapes)")


def _checkpoint_metadata(prior, data: DataConfig, model: ArchitectureConfig, flat: dict) -> dict:
    """What a checkpoint says besides tensors: the prior, the resolved config and the input limits the
    model was trained within (rows and features of the stream, classes of the head)."""
    return {
        "prior": {"name": prior.name, "task": prior.task.value, "config": flat.get("prior", {})},
        "config": flat,
        "limits": {"max_rows": data.stream.num_rows.high,
                   "max_features": min(data.stream.num_features.high, model.max_features or 1 << 30),
                   "max_classes": model.max_classes},
    }


def _resume_checkpoint(directory: Path) -> tuple[Path, dict] | None:
    """The checkpoint of the highest step that loads (``last.ckpt`` on a tie). A torn file (a kill while
    writing) is skipped with a warning; the step stored inside decides, not file times, which a copied run
    directory does not keep. Returns the path and the checkpoint's ``pfnforge`` metadata."""
    best: tuple[int, bool, Path, dict] | None = None
    for path in directory.glob("*.ckpt"):
        try:
            if is_deepspeed_checkpoint(path):  # a directory of ZeRO shards (trainer=deepspeed_zero*)
                saved = deepspeed_client_state(path)
            else:
                saved = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            step = int(saved.get("global_step", -1))
        except Exception as error:
            warnings.warn(f"checkpoint {path} is unreadable ({type(error).__name__}); trying an older one",
                          RuntimeWarning, stacklevel=2)
            continue
        candidate = (step, path.name == "last.ckpt", path, saved.get("pfnforge", {}))
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    return (best[2], best[3]) if best is not None else None


def _check_same_model(path: Path, saved: dict, module: PFNModule, run_name: str) -> None:
    """Refuse to resume the checkpoint at ``path`` (``pfnforge`` metadata ``saved``) of another architecture
    or size, naming both and the way out."""
    import dataclasses

    architecture = saved.get("architecture", "rowwise")
    ours = dataclasses.asdict(module.model_config)
    changed = {k: (v, ours.get(k)) for k, v in (saved.get("model") or {}).items()
               if k in ours and v != ours[k] and k not in ("dropout", "enable_activation_checkpointing")}
    if architecture != module.model.name or changed:
        differences = ", ".join(f"{k}: {old} -> {new}" for k, (old, new) in changed.items())
        raise ConfigError(f"{path} is a checkpoint of a {architecture} model, and this run would resume it with "
                          f"a {module.model.name} model{f' ({differences})' if differences else ''}: choose another "
                          f"run_name (now {run_name!r}) or paths.output_dir for a new run, or remove that directory")


def run_training(cfg: DictConfig, callbacks: list[L.Callback] | None = None) -> Path:
    """Train as ``cfg`` says; returns the run's output directory. The same ``cfg`` again resumes the run.
    The process's MLflow tracking URI is left as it was (the run logs to ``cfg.logger.tracking_uri``)."""
    with restored_tracking_uri():
        return _train(cfg, callbacks)


def _train(cfg: DictConfig, callbacks: list[L.Callback] | None) -> Path:
    if not isinstance(cfg.seed, int) or not 0 <= cfg.seed < 2**32:
        raise ConfigError(f"seed={cfg.seed} is out of range: it must be an integer in [0, 2**32)")
    prior = registry.build_prior(to_prior_config(cfg.prior))
    data = typed(DataConfig, cfg.data, "data")
    model = to_model_config(cfg.model)
    trainer_config = typed(TrainerConfig, cfg.trainer, "trainer")
    callbacks_config = typed(CallbacksConfig, cfg.get("callbacks") or {}, "callbacks")
    logger_config = typed(LoggerConfig, cfg.logger, "logger")
    optim = typed(OptimConfig, cfg.optim, "optim")
    registry_config = typed(RegistryConfig, cfg.get("registry") or {}, "registry")
    output_dir = Path(cfg.paths.output_dir)
    flat = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    L.seed_everything(cfg.seed, workers=True, verbose=False)

    datamodule = PriorDataModule(prior, data)
    regression = prior.task in (Task.regression, Task.mixed)
    classification = prior.task in (Task.classification, Task.mixed)
    borders = _bucket_borders(prior, data, model) if regression else None
    module = PFNModule(model, optim, trainer_config.max_steps, borders, classification=classification,
                       metadata=_checkpoint_metadata(prior, data, model, flat))
    found = _resume_checkpoint(output_dir / "checkpoints")
    resume_from = found[0] if found is not None else None
    init_tags: dict[str, str] = {}
    if found is not None:
        _check_same_model(*found, module, cfg.run_name)
    elif cfg.get("init_from"):  # continued pretraining: weights only (a resume above keeps its own)
        init_tags = initialise_from(module, str(cfg.init_from), logger_config.tracking_uri)
    if trainer_config.compile:  # in place: parameter names, and so checkpoints, stay those of the plain model
        module.model.compile(dynamic=True, backend=trainer_config.compile_backend)
    logger = build_logger(logger_config, cfg.run_name, flat, output_dir)  # a resume continues the run
    if init_tags:
        logger.set_tags(init_tags)
    trainer = build_trainer(
        trainer_config, build_strategy(trainer_config, prior.task), logger,
        [*build_callbacks(callbacks_config, trainer_config, output_dir / "checkpoints"), *(callbacks or []),
         *slurm_callbacks(output_dir / "checkpoints")],  # under srun: checkpoint + requeue on SIGUSR1
        output_dir)

    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    logger.log_file(str(output_dir / "config.yaml"))
    logger.log_file(str(_preview(prior, data, output_dir / "prior-preview.png")))
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=str(resume_from) if resume_from else None)
    except SystemExit:
        if not trainer.interrupted:
            raise
        # Ctrl-C: Lightning shut down gracefully and calls exit(1); the run was killed, not failed, and the
        # command line answers 130 like any interrupted command
        logger.finalize("KILLED")
        raise KeyboardInterrupt from None
    if registry_config.enable_register and trainer.is_global_zero:  # registry=default: into the Model Registry
        register_after_training(output_dir, registry_config, tracking_uri=logger_config.tracking_uri,
                                run_id=logger.run_id)
    return output_dir
