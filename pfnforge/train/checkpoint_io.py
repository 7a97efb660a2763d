"""Checkpoint files written in place: next to their final name, then renamed.

Lightning's default writer stages a checkpoint in the system temporary directory and moves it into place;
across file systems (a tmpfs ``/tmp``, a network output directory) that move is a copy, so a job killed
during it leaves a torn checkpoint under the final name and the staged file in ``$TMPDIR`` for good.
Here the bytes go to ``.<name>.partial`` in the checkpoint directory, are flushed to disk, and the rename
to ``<name>`` is atomic on that one file system. A killed write leaves only the ``.partial`` file, which
the next save removes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.plugins.io import TorchCheckpointIO

PARTIAL_SUFFIX = ".partial"


class InPlaceCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` that writes local checkpoints beside their final path and renames them."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        if type(get_filesystem(path)).__name__ != "LocalFileSystem":  # object stores: their own transactions
            return super().save_checkpoint(checkpoint, path, storage_options)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob(f".*{PARTIAL_SUFFIX}"):  # left by a killed write: saves never overlap
            stale.unlink(missing_ok=True)
        partial = path.parent / f".{path.name}{PARTIAL_SUFFIX}"
        with open(partial, "wb") as handle:
            torch.save(checkpoint, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a power loss
        finally:
            os.close(directory)
        return None
