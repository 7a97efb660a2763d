"""Loading a trained PFN from wherever it lives: the bundled defaults, a checkpoint, a model directory or the
MLflow model registry. It sits above the file formats (``artifact``) and the registry I/O (``mlflow_models``),
which know nothing of each other."""

from __future__ import annotations

from pathlib import Path

from pfnforge.errors import ConfigError
from pfnforge.inference.artifact import (
    TrainedPFN,
    default_model_dir,
    is_deepspeed_checkpoint,
    load_checkpoint,
    load_model_dir,
)
from pfnforge.inference.mlflow_models import download_model


def load_model(source: str | Path | None = None, *, task: str | None = None) -> TrainedPFN:
    """A trained PFN from ``source``: ``None`` (the bundled default for ``task``), a ``.ckpt`` checkpoint, a
    model directory, or an MLflow URI (``models:/NAME/VERSION``, ``models:/NAME@ALIAS``, ``runs:/ID/model``).
    With ``task``, a model without that head is refused."""
    if source is None:
        if task is None:
            raise ConfigError("no model given: pass a model (path or models:/ URI) or task='classification' "
                              "or task='regression' for the bundled default")
        trained = load_model_dir(default_model_dir(task))
    elif isinstance(source, str) and source.startswith(("models:/", "runs:/")):
        trained = load_model_dir(download_model(source))
    else:
        path = Path(source)
        if is_deepspeed_checkpoint(path):  # a directory of ZeRO shards
            trained = load_checkpoint(path)
        elif path.is_dir():
            trained = load_model_dir(path)
        elif path.is_file():
            trained = load_checkpoint(path)
        else:
            raise ConfigError(f"model {source!s} not found: pass a .ckpt checkpoint, a model directory "
                              "(weights.pt + pfnforge-model.json), a models:/NAME/VERSION or runs:/ID/model URI, "
                              "or nothing for the bundled default")
    if task is not None and not trained.supports(task):
        raise ConfigError(f"model {source or 'default'} is a {trained.task} model and cannot do {task}: "
                          f"use a model trained on a {task} prior")
    return trained
