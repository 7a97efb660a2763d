"""Trained PFNs as files: Lightning checkpoints written by ``pfnforge train`` and the portable model
directory (``weights.pt`` + ``pfnforge-model.json``) that bundled models and registry artifacts use.

``load_model`` is the one entry point: nothing (the bundled default for a task), a ``.ckpt`` file, a model
directory, or a ``models:/`` / ``runs:/`` MLflow URI.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pfnforge import registry
from pfnforge.errors import ConfigError, PluginError
from pfnforge.model.api import Architecture, ArchitectureConfig

WEIGHTS_FILE = "weights.pt"
METADATA_FILE = "pfnforge-model.json"
DEFAULT_MODELS = Path(__file__).parent / "default_models"
TASKS = ("classification", "regression")
_PREFIXES = ("model._orig_mod.", "model.")  # torch.compile'd modules first: "model." is a prefix of both


@dataclass
class TrainedPFN:
    """A PFN ready for inference (eval mode) and what its checkpoint said about it."""

    model: Architecture
    """The network, in eval mode."""
    metadata: dict[str, Any]
    """The checkpoint's ``"pfnforge"`` entry (model config, heads, prior, config, limits), plus
    ``pfnforge_version`` and free-form ``training`` provenance once saved as a model directory."""

    @property
    def task(self) -> str:
        """``classification``, ``regression`` or ``mixed``: which heads the model has."""
        heads = [name for name, present in (("classification", self.model.classification_head is not None),
                                             ("regression", self.model.regression_head is not None)) if present]
        return heads[0] if len(heads) == 1 else "mixed"

    def supports(self, task: str) -> bool:
        return self.task in (task, "mixed")

    @property
    def limits(self) -> dict[str, int]:
        """``max_rows``, ``max_features``, ``max_classes`` the model was trained within."""
        config = self.model.config
        limits = {"max_rows": 1024, "max_features": config.max_features or 500, "max_classes": config.max_classes}
        limits.update(self.metadata.get("limits", {}))
        return limits


def _build(metadata: dict[str, Any], state_dict: dict[str, torch.Tensor], where: str) -> TrainedPFN:
    architecture = metadata.get("architecture", "rowwise")  # files written before architectures were plugins
    try:
        cls = registry.load_model_class(architecture)
    except PluginError as error:
        raise ConfigError(f"{where} holds a {architecture!r} model: {error}") from error
    try:
        config = cls.Config(**metadata["model"])
    except (KeyError, TypeError) as error:
        raise ConfigError(f"{where}: its model config is missing or does not match this pfnforge "
                          f"({error}); re-export it with the pfnforge version that trained it") from error
    borders = state_dict.get("bar.borders") if metadata.get("regression", "bar.borders" in state_dict) else None
    model = cls(config, borders, classification=bool(metadata.get("classification", False)))
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as error:
        raise ConfigError(f"{where}: the weights do not fit the model config it records: "
                          f"{str(error).splitlines()[0]}") from error
    return TrainedPFN(model=model.eval(), metadata=metadata)


def load_checkpoint(path: str | Path) -> TrainedPFN:
    """The PFN of a Lightning checkpoint written by ``pfnforge train`` (CPU, eval mode)."""
    return checkpoint_model(read_checkpoint(path), path)


DEEPSPEED_TAG = "checkpoint"
"""The tag Lightning's DeepSpeed strategy saves under: ``<name>.ckpt/checkpoint/*model_states.pt`` and shards."""


def is_deepspeed_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` is a checkpoint directory Lightning's DeepSpeed strategy wrote."""
    path = Path(path)
    return path.is_dir() and any((path / DEEPSPEED_TAG).glob("*model_states.pt"))


def deepspeed_client_state(path: str | Path) -> dict[str, Any]:
    """What Lightning keeps beside a DeepSpeed checkpoint's sharded tensors (global step, loops, callbacks,
    ``pfnforge`` metadata), from rank 0's model-states file, without consolidating the tensors. DeepSpeed
    pickles its own objects there, so this reads it as Lightning does (not ``weights_only``): only for
    checkpoints of one's own runs."""
    states = sorted((Path(path) / DEEPSPEED_TAG).glob("*model_states.pt"))[0]
    return torch.load(states, map_location="cpu", weights_only=False)


def _read_deepspeed_checkpoint(path: Path) -> dict[str, Any]:
    """A DeepSpeed checkpoint directory as one Lightning checkpoint: ZeRO shards consolidated to fp32."""
    import tempfile

    from lightning.pytorch.utilities.deepspeed import convert_zero_checkpoint_to_fp32_state_dict

    with tempfile.TemporaryDirectory(prefix="pfnforge-zero-", dir=path.parent) as staging:
        return convert_zero_checkpoint_to_fp32_state_dict(path, Path(staging) / "consolidated.ckpt",
                                                          tag=DEEPSPEED_TAG)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """A Lightning checkpoint written by ``pfnforge train``, as the dictionary torch saved (on CPU); a DeepSpeed
    checkpoint directory is consolidated first."""
    path = Path(path)
    if is_deepspeed_checkpoint(path):
        checkpoint = _read_deepspeed_checkpoint(path)
        if "pfnforge" not in checkpoint:
            raise ConfigError(f"DeepSpeed checkpoint {path} has no 'pfnforge' metadata: it was not written by "
                              "pfnforge train")
        return checkpoint
    if not path.is_file():
        raise ConfigError(f"checkpoint {path} does not exist: pass the path of a .ckpt file "
                          "(pfnforge train writes them to outputs/<run_name>/checkpoints/)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ConfigError(f"checkpoint {path} cannot be read ({type(error).__name__}: {error}); "
                          "it may be truncated: use another checkpoint of the run") from error
    if "pfnforge" not in checkpoint:
        raise ConfigError(f"checkpoint {path} has no 'pfnforge' metadata: it was not written by pfnforge train "
                          "(or by a version before checkpoints carried the model config); retrain or re-save it")
    return checkpoint


def checkpoint_model(checkpoint: dict[str, Any], path: str | Path) -> TrainedPFN:
    """The PFN of a checkpoint ``read_checkpoint`` returned (``path``: for error messages)."""
    state_dict = {}
    for key, value in checkpoint["state_dict"].items():
        prefix = next((p for p in _PREFIXES if key.startswith(p)), None)
        if prefix is not None:
            state_dict[key[len(prefix):]] = value
    return _build(dict(checkpoint["pfnforge"]), state_dict, f"checkpoint {path}")


def save_model_dir(trained: TrainedPFN, directory: str | Path, *, training: dict[str, Any] | None = None) -> Path:
    """Write ``trained`` as a portable model directory; ``training``: provenance (command, steps, metrics)."""
    from pfnforge import __version__

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu().contiguous() for k, v in trained.model.state_dict().items()},
               directory / WEIGHTS_FILE)
    metadata = {**trained.metadata, "architecture": trained.model.name,
                "model": dataclasses.asdict(trained.model.config),
                "classification": trained.model.classification_head is not None,
                "regression": trained.model.regression_head is not None,
                "pfnforge_version": __version__}
    if training is not None:
        metadata["training"] = training
    metadata.setdefault("format_version", 1)
    (directory / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True, default=str) + "\n")
    return directory


def load_model_dir(directory: str | Path) -> TrainedPFN:
    """A model directory written by ``save_model_dir``."""
    directory = Path(directory)
    missing = [name for name in (WEIGHTS_FILE, METADATA_FILE) if not (directory / name).is_file()]
    if missing:
        raise ConfigError(f"{directory} is not a pfnforge model directory: {', '.join(missing)} missing "
                          f"(a model directory holds {WEIGHTS_FILE} and {METADATA_FILE})")
    try:
        metadata = json.loads((directory / METADATA_FILE).read_text())
        state_dict = torch.load(directory / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    except (json.JSONDecodeError, RuntimeError, OSError) as error:
        raise ConfigError(f"model directory {directory} is damaged ({type(error).__name__}: {error})") from error
    return _build(metadata, state_dict, f"model directory {directory}")


def default_model_dir(task: str) -> Path:
    """Where the bundled default model for ``task`` lives inside the package."""
    if task not in TASKS:
        raise ConfigError(f"task={task!r} is unknown: choose one of {', '.join(TASKS)}")
    return DEFAULT_MODELS / ("classifier" if task == "classification" else "regressor")


def build_random_pfn(config: ArchitectureConfig, *, classification: bool = True, regression: bool = True,
                     max_rows: int = 1024, seed: int = 0) -> TrainedPFN:
    """An untrained PFN with the metadata of a real one: for tests, fuzzing and timing, never for answers."""
    generator = torch.Generator().manual_seed(seed)
    borders = torch.linspace(-4, 4, config.num_buckets + 1) if regression else None
    with torch.random.fork_rng():
        torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=generator)))
        model = registry.build_model(config, borders, classification=classification)
    metadata = {"format_version": 1, "architecture": model.name, "model": dataclasses.asdict(config),
                "classification": classification,
                "regression": regression, "prior": {"name": "untrained", "task": "mixed", "config": {}},
                "config": {}, "global_step": 0,
                "limits": {"max_rows": max_rows, "max_features": config.max_features or 500,
                           "max_classes": config.max_classes}}
    return TrainedPFN(model=model.eval(), metadata=metadata)
