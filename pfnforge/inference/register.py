"""``register_model``: a checkpoint, run output directory, model directory, MLflow run id or model URI
becomes a version in the MLflow Model Registry, logged as a pyfunc model whose data is the pfnforge model
directory, with the resolved config, prior, input limits and training metrics as metadata and version tags,
a signature (its parameters) and an input example; optionally an alias. The version names the installed
loader (``pfnforge.inference.pyfunc``) and carries no code: loading it, e.g. in ``mlflow models serve``,
runs only the pfnforge installed where it is loaded, on JSON and ``weights_only`` tensors.

The model is logged into the training run when it is known (a run id; the run that wrote a checkpoint's
output directory; the run that just trained), else into a new run ``register-NAME``.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata as distributions
from pathlib import Path
from typing import Any

from pfnforge.errors import ConfigError
from pfnforge.inference.artifact import save_model_dir
from pfnforge.inference.mlflow_models import LOGGED_MODEL_NAME, tracking_client
from pfnforge.inference.sources import resolve_source

_ALIAS = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


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


@contextmanager
def restored_tracking_uri():
    """The process's MLflow tracking URI (global and ``MLFLOW_TRACKING_URI``) as it was before, afterwards: code
    inside may set it (Lightning's MLFlowLogger does) without pinning it for the rest of the process."""
    import mlflow
    from mlflow.tracking._tracking_service import utils

    previous, environment = utils._tracking_uri, os.environ.get("MLFLOW_TRACKING_URI")
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)
        if environment is not None:
            os.environ["MLFLOW_TRACKING_URI"] = environment


@contextmanager
def _tracking(uri: str):
    """The fluent MLflow API (``log_model``) pointed at ``uri`` for the duration, restored afterwards."""
    import mlflow

    with restored_tracking_uri():
        mlflow.set_tracking_uri(uri)
        yield


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

    from pfnforge.inference.pyfunc import SERVING_FILE, input_example, model_signature

    if not name or "/" in name or "@" in name:
        raise ConfigError(f"model name {name!r} is invalid: use a non-empty name without '/' or '@'")
    if alias is not None and (not _ALIAS.match(alias) or alias.lower() == "latest" or re.match(r"^v\d+$", alias)):
        raise ConfigError(f"alias {alias!r} is invalid: use letters, digits, '_' and '-' (not 'latest' or v<number>, "
                          "which name versions), e.g. champion")
    client, where = tracking_client(tracking_uri)
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
        (model_dir / SERVING_FILE).write_text(json.dumps({"target": target}))
        tags = registration_tags(origin.trained.task, info, origin.metrics)
        with _tracking(where):  # the registry store resolves the logged model through the global tracking URI
            with mlflow.start_run(run_id=run_id):
                logged = mlflow.pyfunc.log_model(
                    name=LOGGED_MODEL_NAME, loader_module="pfnforge.inference.pyfunc", data_path=str(model_dir),
                    signature=model_signature(target),
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


def register_after_training(output_dir: Path, config: RegistryConfig, *, tracking_uri: str,
                            run_id: str | None) -> tuple[str, str] | None:
    """End of ``pfnforge train``: register the run's last checkpoint as ``config`` says. A failure warns (the
    checkpoints are on disk) with the command that registers them later."""
    checkpoint = Path(output_dir) / "checkpoints" / "last.ckpt"
    try:
        return register_model(checkpoint, str(config.name), alias=config.alias, tracking_uri=tracking_uri,
                              target=config.target, run_id=run_id)
    except Exception as error:
        warnings.warn(f"registering the trained model failed ({type(error).__name__}: {error}); register it "
                      f"later with `pfnforge register {checkpoint} --name {config.name} --tracking-uri "
                      f"{tracking_uri}`", RuntimeWarning, stacklevel=2)
        return None
