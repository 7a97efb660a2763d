"""A training checkpoint as a portable model directory (``weights.pt`` + ``pfnforge-model.json``), with the
provenance a shared model should carry: the recipe, steps, datasets seen, training time, the machine, and the
validation curves of its MLflow run where that run can be found."""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from pfnforge.inference.artifact import checkpoint_model, read_checkpoint, save_model_dir

CURVES = ("val/nll", "val/gap_to_exact")
"""Validation metrics whose history goes into the provenance, where the run logged them."""


def machine() -> str:
    """One line naming the machine: CPU count and model, memory, Python and torch, the GPU if any."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        memory = f", {pages * size / 2**30:.0f} GiB"
    except (ValueError, OSError, AttributeError):
        pass
    gpu = f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return (f"{os.cpu_count()} vCPU {cpu}{memory}{gpu}; Python {platform.python_version()}, "
            f"torch {torch.__version__}")


def _curves(config: dict[str, Any]) -> dict[str, list[list[float]]]:
    """(step, value) histories of ``CURVES`` from the newest MLflow run with the checkpoint's run name."""
    logger, run_name = config.get("logger") or {}, config.get("run_name")
    if not logger.get("tracking_uri") or not run_name:
        return {}
    try:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(logger["tracking_uri"])
        experiment = client.get_experiment_by_name(logger.get("experiment", "pfnforge"))
        if experiment is None:
            return {}
        runs = client.search_runs([experiment.experiment_id], f"tags.mlflow.runName = '{run_name}'",
                                  order_by=["attributes.start_time DESC"], max_results=1)
        if not runs:
            return {}
        curves = {}
        for key in CURVES:
            history = client.get_metric_history(runs[0].info.run_id, key)
            if history:
                curves[key] = [[m.step, round(m.value, 4)] for m in sorted(history, key=lambda m: m.step)]
        return curves
    except Exception:  # a missing or unreachable store: the model is still exported, without curves
        return {}


def provenance(raw: dict[str, Any], name: str, *, recipe: str | None = None) -> dict[str, Any]:
    """What can be said of how a checkpoint was trained, from the checkpoint (``read_checkpoint``; ``name``: its
    file name) and its MLflow run."""
    config = raw["pfnforge"].get("config", {})
    data, trainer = config.get("data", {}), config.get("trainer", {})
    step = int(raw.get("global_step", 0))
    devices = trainer.get("devices", 1)
    ranks = (devices if isinstance(devices, int) else len(devices) if isinstance(devices, list) else 1) \
        * int(trainer.get("num_nodes", 1))
    per_step = int(data.get("stream", {}).get("num_datasets", 0)) * int(trainer.get("accumulate_grad_batches", 1)) \
        * ranks  # datasets per step are per rank
    timer = next((state for name, state in raw.get("callbacks", {}).items() if name == "Timer"), None)
    out: dict[str, Any] = {"checkpoint": name, "steps": step, "datasets_seen": step * per_step,
                           "exported": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                           "machine_exported_on": machine()}
    if recipe:
        out["recipe"] = recipe
    if timer is not None:
        out["train_seconds"] = round(float(timer["time_elapsed"]["train"]), 3)
    curves = _curves(config)
    if curves:
        out["validation"] = curves
    return out


def export_checkpoint(checkpoint: str | Path, directory: str | Path, *, recipe: str | None = None,
                      extra: dict[str, Any] | None = None) -> Path:
    """Write the checkpoint's PFN to ``directory`` with its provenance (``extra`` merged in)."""
    raw = read_checkpoint(checkpoint)
    training = {**provenance(raw, Path(checkpoint).name, recipe=recipe), **(extra or {})}
    trained = checkpoint_model(raw, checkpoint)
    return save_model_dir(trained, directory, training=training)
