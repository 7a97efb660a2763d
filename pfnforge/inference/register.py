"""``register_model``: a checkpoint, run output directory, model directory, MLflow run id or model URI
becomes a version in the MLflow Model Registry, logged as a pyfunc model whose one artifact is the
pfnforge model directory, with the resolved config, prior, input limits and training metrics as
metadata and version tags, a signature (its parameters) and an input example; optionally an alias.

The model is logged into the training run when it is known (a run id; the run that wrote a checkpoint's
output directory; the run that just trained), else into a new run ``register-NAME``.
"""

from __future__ import annotations

import os
import re
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata as distributions
from pathlib import Path
from typing import Any

from pfnforge.errors import ConfigError, ModelNotFoundError
from pfnforge.inference.artifact import METADATA_FILE, TrainedPFN, load_checkpoint, load_model, save_model_dir
from pfnforge.inference.mlflow_models import LOGGED_MODEL_NAME, _client, _missing

_RUN_ID = re.compile(r"^(?:runs:/)?([0-9a-f]{32})/?$")
RUN_CHECKPOINT = "last/last.ckpt"
"""Where ``pfnforge train`` logs a run's final checkpoint among its artifacts."""


@dataclass(kw_only=True)
class RegistryConfig:
    """Registering the trained model at the end of ``pfnforge train`` (config group ``registry``)."""

    enable_register: bool = False
    """Register the final checkpoint in the MLflow Model Registry when training ends (rank zero only)."""
    name: str | None = None
    """Registered model name (required when enable_register is true)."""
    alias: str | None = None
    """Alias to point at the new version (e.g. ``champion``); none if null."""
    target: str = "target"
    """Default name of the target column in the pyfunc input frame."""

    def __post_init__(self) -> None:
        if self.enable_register and not self.name:
            raise ConfigError("registry.enable_register=true needs registry.name=<registered model name>")


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
        if not _missing(error):
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
    """The newest run that trained into the checkpoint's output directory, if the store has it."""
    config = trained.metadata.get("config", {})
    output_dir = config.get("paths", {}).get("output_dir")
    experiment = client.get_experiment_by_name(config.get("logger", {}).get("experiment", "pfnforge"))
    if not output_dir or experiment is None:
        return None, {}
    runs = client.search_runs([experiment.experiment_id], f"params.`paths/output_dir` = '{output_dir}'",
                              order_by=["attributes.start_time DESC"], max_results=1)
    return (runs[0].info.run_id, dict(runs[0].data.metrics)) if runs else (None, {})


def resolve_source(source: str | Path, *, tracking_uri: str | None = None, staging: Path) -> Origin:
    """What ``pfnforge register`` accepts: a checkpoint, a run output directory (its checkpoints/last.ckpt),
    a model directory, a run id (its logged final checkpoint), or a ``models:/`` / ``runs:/`` URI."""
    client, where = _client(tracking_uri)
    text = str(source)
    path = Path(source)
    if path.is_dir() and not (path / METADATA_FILE).is_file():
        for candidate in (path / "checkpoints" / "last.ckpt", path / "last.ckpt"):
            if candidate.is_file():
                path = candidate
                break
        else:
            raise ModelNotFoundError(f"{source} is neither a model directory ({METADATA_FILE}) nor a run output "
                                     "directory (checkpoints/last.ckpt)")
    if path.exists():
        trained = load_model(path)
        run_id, metrics = _training_run(client, trained) if path.is_file() else (None, {})
        return Origin(trained=trained, description=f"{path}", run_id=run_id, metrics=metrics)
    if (match := _RUN_ID.match(text)) is not None:
        return _run_origin(client, match[1], where, staging)
    if text.startswith(("models:/", "runs:/")):
        return Origin(trained=load_model(text), description=text)
    raise ModelNotFoundError(f"{source} not found: pass a checkpoint (.ckpt), a run output directory "
                             "(outputs/<run_name>), a model directory, an MLflow run id, or a models:/ URI")


@contextmanager
def _tracking(uri: str):
    """The fluent MLflow API (``log_model``) pointed at ``uri`` for the duration; the process's tracking URI
    (global and ``MLFLOW_TRACKING_URI``) is restored afterwards."""
    import mlflow
    from mlflow.tracking._tracking_service import utils

    previous, environment = utils._tracking_uri, os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)
        if environment is not None:
            os.environ["MLFLOW_TRACKING_URI"] = environment


def _create_version(client, name: str, logged, run_id: str, tags: dict[str, str]):
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name)
    except MlflowException as error:
        if getattr(error, "error_code", "") not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise
    return client.create_model_version(name, source=logged.model_uri, run_id=run_id, tags=tags,
                                       model_id=logged.model_id)


def _requirements() -> list[str]:
    pins = []
    for name in ("pfnforge", "torch", "scikit-learn", "pandas", "numpy"):
        try:
            pins.append(f"{name}=={distributions.version(name).split('+')[0]}")
        except distributions.PackageNotFoundError:
            continue
    return pins


def registration_tags(task: str, metadata: dict[str, Any], metrics: dict[str, float]) -> dict[str, str]:
    """Model-version tags: task, prior, limits, training step and metrics (searchable in the registry)."""
    prior = metadata.get("prior", {})
    tags = {"pfnforge.task": task, "pfnforge.prior": str(prior.get("name", "")),
            "pfnforge.global_step": str(metadata.get("global_step", ""))}
    tags.update({f"pfnforge.{key}": str(value) for key, value in metadata.get("limits", {}).items()})
    tags.update({f"metric.{key}": f"{value:.6g}" for key, value in sorted(metrics.items())})
    return tags


def register_model(source: str | Path, name: str, *, alias: str | None = None, tracking_uri: str | None = None,
                   target: str = "target", run_id: str | None = None, experiment: str = "pfnforge"
                   ) -> tuple[str, str]:
    """Log ``source`` as a pyfunc model, register it as a new version of ``name``, point ``alias`` at it.
    ``run_id``: the training run to log into (default: the one found for the source, else a new run)."""
    import mlflow

    from pfnforge.inference import pyfunc_entry
    from pfnforge.inference.pyfunc import input_example, model_signature

    if not name or "/" in name or "@" in name:
        raise ConfigError(f"model name {name!r} is invalid: use a non-empty name without '/' or '@'")
    client, where = _client(tracking_uri)
    with tempfile.TemporaryDirectory(prefix="pfnforge-register-") as tmp:
        origin = resolve_source(source, tracking_uri=where, staging=Path(tmp))
        run_id = run_id or origin.run_id
        if run_id is not None and not origin.metrics:
            origin.metrics = dict(client.get_run(run_id).data.metrics)
        info = origin.trained.metadata
        model_dir = save_model_dir(origin.trained, Path(tmp) / "model", training={
            **info.get("training", {}), "source": origin.description, "run_id": run_id, "metrics": origin.metrics})
        if run_id is None:
            found = client.get_experiment_by_name(experiment)
            experiment_id = found.experiment_id if found else client.create_experiment(experiment)
            run_id = client.create_run(experiment_id, run_name=f"register-{name}").info.run_id
        tags = registration_tags(origin.trained.task, info, origin.metrics)
        with _tracking(where), mlflow.start_run(run_id=run_id):
            logged = mlflow.pyfunc.log_model(
                name=LOGGED_MODEL_NAME, python_model=pyfunc_entry.__file__, model_config={"target": target},
                artifacts={"model": str(model_dir)}, signature=model_signature(target),
                input_example=input_example(origin.trained, target), pip_requirements=_requirements(),
                metadata={"pfnforge": {k: v for k, v in info.items() if k != "training"}}, tags=tags)
        version = _create_version(client, name, logged, run_id, tags)
    limits = ", ".join(f"{k}={v}" for k, v in origin.trained.limits.items())
    client.update_model_version(name, version.version, description=(
        f"{origin.trained.task} PFN trained on prior {info.get('prior', {}).get('name', '?')} "
        f"({info.get('global_step', '?')} steps), from {origin.description}; limits: {limits}"))
    if alias:
        client.set_registered_model_alias(name, alias, version.version)
    return name, str(version.version)
