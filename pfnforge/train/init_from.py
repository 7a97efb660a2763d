"""Continued pretraining: ``pfnforge train +init_from=SOURCE`` starts a new run from a trained model's weights
(a ``.ckpt``, a model directory, a ``models:/``/``runs:/`` URI of the run's tracking store, or
``default:classification`` / ``default:regression`` for the bundled models) with a new
optimiser, a new schedule and a new MLflow run that records where its weights came from. It is not a resume:
a run directory that already holds checkpoints resumes from them and ignores ``init_from``, so a requeued
job continues instead of starting over.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from pfnforge.errors import ConfigError
from pfnforge.train.module import PFNModule

HEAD_PREFIXES = ("classification_head.", "regression_head.", "bar.")
"""Parameters a model may lack or add when it continues on a prior of another task: its heads."""
IGNORED_FIELDS = ("dropout", "enable_activation_checkpointing")
"""Model config fields that may differ between the source and the new run."""


def _load(source: str, tracking_uri: str | None):
    from pfnforge.inference.loading import load_model
    from pfnforge.inference.mlflow_models import download_model

    if source.startswith(("models:/", "runs:/")):
        return load_model(download_model(source, tracking_uri=tracking_uri))
    if source.startswith("default:"):
        task = source.removeprefix("default:")
        if task not in ("classification", "regression"):
            raise ConfigError(f"init_from={source}: the bundled models are default:classification and "
                              "default:regression")
        return load_model(None, task=task)
    return load_model(source)


def parent_run_id(source: str, tracking_uri: str | None) -> str | None:
    """The MLflow run that trained ``source``, where it can be told: the run of a registered version or a
    ``runs:/`` URI, or the run recorded in the run directory a checkpoint lies in."""
    from pfnforge.train.build import RUN_FILE

    if source.startswith("runs:/"):
        return source.removeprefix("runs:/").split("/")[0]
    if source.startswith("models:/"):
        from pfnforge.inference.mlflow_models import resolve_version, tracking_client

        _, where = tracking_client(tracking_uri)
        return resolve_version(source, tracking_uri=where).run_id or None
    path = Path(source)
    for directory in (path.parent.parent, path.parent):  # <run>/checkpoints/last.ckpt, or <run>/x.ckpt
        record = directory / RUN_FILE
        if path.suffix == ".ckpt" and record.is_file():
            return json.loads(record.read_text()).get("run_id")
    return None


def initialise_from(module: PFNModule, source: str, tracking_uri: str | None) -> dict[str, str]:
    """Copy the weights of the model at ``source`` into ``module``'s model (same architecture and size; heads
    the new run's prior does not use may be missing, heads it needs and the source lacks start fresh).
    Returns the tags that record the source."""
    trained = _load(source, tracking_uri)
    ours, theirs = module.model, trained.model
    changed = {k: (v, getattr(theirs.config, k, None)) for k, v in dataclasses.asdict(module.model_config).items()
               if k not in IGNORED_FIELDS and getattr(theirs.config, k, v) != v}
    if ours.name != theirs.name or changed:
        differences = ", ".join(f"{k}: {new} here, {old} there" for k, (new, old) in changed.items())
        raise ConfigError(f"init_from={source} is a {theirs.name} model and this run builds a {ours.name} model"
                          f"{f' ({differences})' if differences else ''}: choose the model= preset and overrides "
                          "the source was trained with (its config.yaml or pfnforge-model.json says)")
    state = theirs.state_dict()  # with a regression head: its bucket borders too, which its logits refer to
    if ours.regression_head is None or theirs.regression_head is None:
        state = {k: v for k, v in state.items() if not k.startswith("bar.")}
    missing, unexpected = ours.load_state_dict(state, strict=False)
    trunk = [k for k in (*missing, *unexpected) if not k.startswith(HEAD_PREFIXES)]
    if trunk:
        raise ConfigError(f"init_from={source}: its weights do not fit this model ({', '.join(trunk[:5])}"
                          f"{' ...' if len(trunk) > 5 else ''}); train with the architecture it was trained with")
    tags = {"pfnforge.init_from": source, "pfnforge.init_from_step": str(trained.metadata.get("global_step", ""))}
    parent = parent_run_id(source, tracking_uri)
    if parent:
        tags["pfnforge.parent_run_id"] = parent
    return tags
