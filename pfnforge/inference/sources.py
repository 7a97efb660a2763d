"""Where a model to register comes from: a checkpoint, a run output directory, a model directory, an MLflow
run id (its logged final checkpoint) or a model URI; and the training run and metrics behind it, if known."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from pfnforge.errors import ModelNotFoundError
from pfnforge.inference.artifact import METADATA_FILE, TrainedPFN, is_deepspeed_checkpoint, load_checkpoint
from pfnforge.inference.loading import load_model
from pfnforge.inference.mlflow_models import is_not_found, tracking_client

_RUN_ID = re.compile(r"^(?:runs:/)?([0-9a-f]{32})/?$")
RUN_CHECKPOINT = "last/last.ckpt"
"""Where ``pfnforge train`` logs a run's final checkpoint among its artifacts."""


@dataclass(kw_only=True)
class Origin:
    """A model to register and where it came from."""

    trained: TrainedPFN
    description: str
    run_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)


def _run_origin(client, run_id: str, where: str, staging: Path) -> Origin:
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException as error:
        if not is_not_found(error):
            raise
        raise ModelNotFoundError(f"no run {run_id} at {where}: check the run id and --tracking-uri") from None
    try:
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=RUN_CHECKPOINT,
                                                   dst_path=str(staging), tracking_uri=where)
    except MlflowException:
        found = [a.path for a in client.list_artifacts(run_id)]
        raise ModelNotFoundError(f"run {run_id} has no {RUN_CHECKPOINT} artifact (it has: {', '.join(found) or 'none'}"
                                 "); register its checkpoint file instead") from None
    return Origin(trained=load_checkpoint(path), description=f"run {run_id} ({run.info.run_name})", run_id=run_id,
                  metrics=dict(run.data.metrics))


def _training_run(client, trained: TrainedPFN) -> tuple[str | None, dict[str, float]]:
    """The newest run of the checkpoint's experiment with its run name, seed and output directory, if the store
    has one."""
    config = trained.metadata.get("config", {})
    keys = {"paths/output_dir": config.get("paths", {}).get("output_dir"), "run_name": config.get("run_name"),
            "seed": config.get("seed")}
    if any(value is None or "'" in str(value) for value in keys.values()):
        return None, {}
    experiment = client.get_experiment_by_name(config.get("logger", {}).get("experiment", "pfnforge"))
    if experiment is None:
        return None, {}
    query = " and ".join(f"params.`{key}` = '{value}'" for key, value in keys.items())
    runs = client.search_runs([experiment.experiment_id], query, order_by=["attributes.start_time DESC"],
                              max_results=1)
    return (runs[0].info.run_id, dict(runs[0].data.metrics)) if runs else (None, {})


def resolve_source(source: str | Path, *, tracking_uri: str | None = None, staging: Path) -> Origin:
    """What ``pfnforge register`` accepts: a checkpoint, a run output directory (its checkpoints/last.ckpt),
    a model directory, a run id (its logged final checkpoint), or a ``models:/`` / ``runs:/`` URI."""
    client, where = tracking_client(tracking_uri)
    text = str(source)
    path = Path(source)
    if path.is_dir() and not (path / METADATA_FILE).is_file() and not is_deepspeed_checkpoint(path):
        for candidate in (path / "checkpoints" / "last.ckpt", path / "last.ckpt"):
            if candidate.exists():  # a file, or a DeepSpeed checkpoint directory
                path = candidate
                break
        else:
            raise ModelNotFoundError(f"{source} is neither a model directory ({METADATA_FILE}) nor a run output "
                                     "directory (checkpoints/last.ckpt)")
    if path.exists():
        trained = load_model(path)
        checkpoint = path.is_file() or is_deepspeed_checkpoint(path)
        run_id, metrics = _training_run(client, trained) if checkpoint else (None, {})
        return Origin(trained=trained, description=str(path), run_id=run_id, metrics=metrics)
    if (match := _RUN_ID.match(text)) is not None:
        return _run_origin(client, match[1], where, staging)
    if text.startswith(("models:/", "runs:/")):
        return Origin(trained=load_model(text), description=text)
    raise ModelNotFoundError(f"{source} not found: pass a checkpoint (.ckpt), a run output directory "
                             "(outputs/<run_name>), a model directory, an MLflow run id, or a models:/ URI")
