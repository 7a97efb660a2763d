"""Trained PFNs in the MLflow Model Registry: register a checkpoint, run or model directory as a pyfunc
model version (with its config, prior, input limits, training metrics and signature), and download a
``models:/NAME/VERSION``, ``models:/NAME@ALIAS`` or ``runs:/RUN_ID/model`` URI to a local model directory.

The tracking URI is the argument, else ``MLFLOW_TRACKING_URI``, else the embedded ``sqlite:///mlflow.db``;
the registry lives in the same store. Downloads of registered versions are cached under
``$PFNFORGE_CACHE_DIR`` (default ``~/.cache/pfnforge``), keyed by the version's identity.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path

from pfnforge.errors import ConfigError, ModelNotFoundError
from pfnforge.inference.artifact import METADATA_FILE

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
LOGGED_MODEL_NAME = "model"
"""The ``name=`` models are logged under: ``runs:/RUN_ID/model``."""
_MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>[^/]+)|@(?P<alias>[^/]+))$")
_RUN_URI = re.compile(r"^runs:/(?P<run_id>[^/]+)/(?P<path>.+)$")


def tracking_uri_or_default(tracking_uri: str | None = None) -> str:
    return tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def tracking_client(tracking_uri: str | None):
    from mlflow import MlflowClient

    uri = tracking_uri_or_default(tracking_uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri), uri


def is_not_found(error: Exception) -> bool:
    return getattr(error, "error_code", "") == "RESOURCE_DOES_NOT_EXIST"


def registered_names(client) -> list[str]:
    return sorted(model.name for model in client.search_registered_models(max_results=1000))


def resolve_version(uri: str, *, tracking_uri: str | None = None):
    """The ``ModelVersion`` a ``models:/`` URI names; ``ModelNotFoundError`` listing what exists if none."""
    from mlflow.exceptions import MlflowException

    match = _MODEL_URI.match(uri)
    if match is None:
        raise ConfigError(f"{uri!r} is not a registry URI: write models:/NAME/VERSION or models:/NAME@ALIAS")
    client, where = tracking_client(tracking_uri)
    name, version, alias = match["name"], match["version"], match["alias"]
    try:
        registered = client.get_registered_model(name)
    except MlflowException as error:
        if not is_not_found(error):
            raise ConfigError(f"MLflow at {where} refused or could not be reached: "
                              f"{str(error).splitlines()[0][:300]} (check the tracking URI: --tracking-uri or "
                              "MLFLOW_TRACKING_URI)") from error
        names = registered_names(client)
        raise ModelNotFoundError(f"no registered model {name!r} at {where}; registered models: "
                                 f"{', '.join(names) or 'none'} (register one with `pfnforge register`)") from None
    versions = sorted((str(v.version) for v in client.search_model_versions(f"name='{name}'")), key=int)
    if alias is not None:
        if alias not in registered.aliases:
            aliases = ", ".join(f"@{a} (version {v})" for a, v in sorted(registered.aliases.items()))
            raise ModelNotFoundError(f"model {name!r} has no alias @{alias} at {where}; its aliases: "
                                     f"{aliases or 'none'}; its versions: {', '.join(versions) or 'none'}")
        version = registered.aliases[alias]
    elif version == "latest":
        if not versions:
            raise ModelNotFoundError(f"model {name!r} has no versions at {where}")
        version = versions[-1]
    if str(version) not in versions:
        raise ModelNotFoundError(f"model {name!r} has no version {version} at {where}; its versions: "
                                 f"{', '.join(versions) or 'none'}")
    return client.get_model_version(name, str(version))


def cache_dir() -> Path:
    return Path(os.environ.get("PFNFORGE_CACHE_DIR") or Path.home() / ".cache" / "pfnforge")


def _find_model_dir(root: Path, uri: str) -> Path:
    found = sorted(root.rglob(METADATA_FILE))
    if not found:
        raise ModelNotFoundError(f"{uri} holds no pfnforge model ({METADATA_FILE} missing): it was not logged "
                                 "by `pfnforge register`")
    return found[0].parent


def download_model(uri: str, *, tracking_uri: str | None = None) -> Path:
    """A local pfnforge model directory for a ``models:/`` or ``runs:/`` URI (registered versions cached)."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    client, where = tracking_client(tracking_uri)
    if uri.startswith("models:/"):
        version = resolve_version(uri, tracking_uri=where)
        identity = f"{where}|{version.name}|{version.version}|{version.source}|{version.creation_timestamp}"
        target = cache_dir() / "models" / hashlib.sha256(identity.encode()).hexdigest()[:24]
        if (target / ".complete").is_file():
            return _find_model_dir(target, uri)
        source = client.get_model_version_download_uri(version.name, version.version)
    else:
        match = _RUN_URI.match(uri)
        if match is None:
            raise ConfigError(f"{uri!r} is not a model URI: write models:/NAME/VERSION, models:/NAME@ALIAS or "
                              "runs:/RUN_ID/model")
        try:
            client.get_run(match["run_id"])
        except MlflowException as error:
            if not is_not_found(error):
                raise
            raise ModelNotFoundError(f"no run {match['run_id']!r} at {where}: check the run id and the tracking "
                                     "URI (--tracking-uri or MLFLOW_TRACKING_URI)") from None
        target, source = Path(tempfile.mkdtemp(prefix="pfnforge-run-model-")), uri
    staging = Path(tempfile.mkdtemp(prefix=".download-", dir=_parent(target)))
    try:
        mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(staging), tracking_uri=where)
    except MlflowException as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise ModelNotFoundError(f"cannot download {uri} from {where}: {str(error).splitlines()[0]}") from None
    (staging / ".complete").write_text(uri + "\n")
    if not (target / ".complete").is_file():
        shutil.rmtree(target, ignore_errors=True)  # an interrupted earlier download
    try:
        staging.rename(target)  # atomic: a concurrent reader sees a complete copy or none
    except OSError:  # another process finished the same download first
        shutil.rmtree(staging, ignore_errors=True)
        if not (target / ".complete").is_file():
            raise
    return _find_model_dir(target, uri)


def _parent(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.parent
