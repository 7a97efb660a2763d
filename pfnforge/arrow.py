"""Arrow batch schema, version 1: one record batch holds one batch of datasets, one row per dataset.

See ``docs/batch-schema.md``. ``x`` is a fixed-size list of R rows of F float32 features, so its values
sit in one contiguous buffer that NumPy and torch view without a copy. Conversions both ways are lossless.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from pfnforge.batch import PriorBatch
from pfnforge.errors import SchemaError

if TYPE_CHECKING:  # torch is imported on first use: the prior CLI and workers do not need it
    import torch

SCHEMA_VERSION = 1
VERSION_KEY = b"pfnforge.schema_version"
_INT_COLUMNS = ("num_rows", "num_features", "num_train_rows", "num_classes")
_HYPERPARAMETER_TYPES = {
    np.dtype(np.float64): pa.float64(),
    np.dtype(np.int64): pa.int64(),
    np.dtype(bool): pa.bool_(),
    np.dtype(object): pa.string(),
}


def to_arrow(batch: PriorBatch) -> pa.RecordBatch:
    """Convert a ``PriorBatch`` to a schema-v1 record batch; ``x`` and ``y`` are not copied."""
    B, R, F = batch.x.shape
    x_values = pa.array(np.ascontiguousarray(batch.x).reshape(-1))
    x = pa.FixedSizeListArray.from_arrays(pa.FixedSizeListArray.from_arrays(x_values, F), R)
    y = pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(batch.y).reshape(-1)), R)
    hp_names = sorted(batch.hyperparameters)
    hp_arrays = [pa.array(batch.hyperparameters[n], type=_HYPERPARAMETER_TYPES[batch.hyperparameters[n].dtype])
                 for n in hp_names]
    hyperparameters = (pa.StructArray.from_arrays(hp_arrays, names=hp_names) if hp_names
                       else pa.array([{}] * B, type=pa.struct([])))
    task = pa.DictionaryArray.from_arrays(
        pa.array(batch.is_classification.astype(np.int8)), pa.array(["regression", "classification"]))
    columns = {
        "x": x,
        "y": y,
        **{name: pa.array(getattr(batch, name), type=pa.int32()) for name in _INT_COLUMNS},
        "task": task,
        "prior": pa.array(batch.prior, type=pa.string()),
        "hyperparameters": hyperparameters,
    }
    return pa.RecordBatch.from_pydict(columns, metadata={VERSION_KEY: str(SCHEMA_VERSION).encode()})


def check_version(schema: pa.Schema, source: str = "record batch") -> None:
    """Refuse a schema without the pfnforge version key or with another version, naming both."""
    found = (schema.metadata or {}).get(VERSION_KEY)
    if found is None:
        raise SchemaError(f"{source} carries no pfnforge schema version: it was not written by pfnforge.arrow")
    if found.decode() != str(SCHEMA_VERSION):
        raise SchemaError(f"{source} uses pfnforge batch schema version {found.decode()}, this pfnforge reads "
                          f"version {SCHEMA_VERSION}: regenerate it or use a matching pfnforge release")


def _fixed_list_values(column: pa.Array, source: str) -> np.ndarray:
    values = column
    while pa.types.is_fixed_size_list(values.type):
        values = values.flatten()
    if values.null_count:
        raise SchemaError(f"{source}: column holds nulls; missing values are NaN, not null")
    return values.to_numpy(zero_copy_only=True)


def from_arrow(record_batch: pa.RecordBatch, source: str = "record batch") -> PriorBatch:
    """Convert a schema-v1 record batch back to a ``PriorBatch`` (``x`` and ``y`` are read-only views)."""
    check_version(record_batch.schema, source)
    try:
        x_type = record_batch.schema.field("x").type
        R, F = x_type.list_size, x_type.value_type.list_size
        B = record_batch.num_rows
        x = _fixed_list_values(record_batch.column("x"), source).reshape(B, R, F)
        y = _fixed_list_values(record_batch.column("y"), source).reshape(B, R)
        hp_column = record_batch.column("hyperparameters")
        hyperparameters = {hp_column.type.field(i).name: _hyperparameter_values(hp_column.field(i))
                           for i in range(hp_column.type.num_fields)}
        batch = PriorBatch(
            x=x, y=y,
            **{name: record_batch.column(name).to_numpy() for name in _INT_COLUMNS},
            prior=np.asarray(record_batch.column("prior").to_pylist(), dtype=object),
            hyperparameters=hyperparameters,
        )
        task_is_classification = np.asarray(record_batch.column("task").indices) == 1
    except (KeyError, AttributeError, pa.ArrowInvalid) as error:
        raise SchemaError(f"{source} does not follow pfnforge batch schema {SCHEMA_VERSION}: {error}") from error
    if not np.array_equal(task_is_classification, batch.is_classification):
        raise SchemaError(f"{source}: column 'task' disagrees with 'num_classes' (0 means regression)")
    return batch


def _hyperparameter_values(column: pa.Array) -> np.ndarray:
    if pa.types.is_string(column.type):
        return np.asarray(column.to_pylist(), dtype=object)
    return column.to_numpy(zero_copy_only=False)


@dataclass(kw_only=True, eq=False)
class TorchBatch:
    """A batch as torch tensors that share memory with the Arrow buffers they came from."""

    x: torch.Tensor
    """(B, R, F) float32."""
    y: torch.Tensor
    """(B, R) float32."""
    num_rows: torch.Tensor
    num_features: torch.Tensor
    num_train_rows: torch.Tensor
    num_classes: torch.Tensor


def to_torch(record_batch: pa.RecordBatch, *, pin_memory: bool = False) -> TorchBatch:
    """View a schema-v1 record batch as tensors without copying ``x`` or ``y``.

    Arrow buffers are immutable, so the tensors must not be written to in place. With ``pin_memory``
    (and a CUDA device present) the tensors are copied once into page-locked memory, so that
    ``.to("cuda", non_blocking=True)`` overlaps the transfer with compute.
    """
    import torch

    check_version(record_batch.schema)
    x_type = record_batch.schema.field("x").type
    B, R, F = record_batch.num_rows, x_type.list_size, x_type.value_type.list_size
    arrays = {
        "x": _fixed_list_values(record_batch.column("x"), "record batch").reshape(B, R, F),
        "y": _fixed_list_values(record_batch.column("y"), "record batch").reshape(B, R),
        **{name: record_batch.column(name).to_numpy() for name in _INT_COLUMNS},
    }
    with warnings.catch_warnings():
        # torch warns that Arrow's read-only buffers are not writable; sharing them is the point.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        tensors = {name: torch.from_numpy(array) for name, array in arrays.items()}
    if pin_memory and torch.cuda.is_available():
        tensors = {name: tensor.pin_memory() for name, tensor in tensors.items()}
    return TorchBatch(**tensors)


def write_ipc(path: str | Path, record_batches: list[pa.RecordBatch]) -> None:
    """Write record batches to an Arrow IPC file."""
    if not record_batches:
        raise ValueError("nothing to write: give at least one record batch")
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, record_batches[0].schema) as writer:
        for record_batch in record_batches:
            writer.write_batch(record_batch)


def read_ipc(path: str | Path) -> list[pa.RecordBatch]:
    """Read every record batch of an Arrow IPC file (memory-mapped), checking the schema version."""
    try:
        reader = pa.ipc.open_file(pa.memory_map(str(path), "r"))
        check_version(reader.schema, str(path))
        return [reader.get_batch(i) for i in range(reader.num_record_batches)]
    except (pa.ArrowInvalid, OSError) as error:
        raise SchemaError(f"{path} is not a readable Arrow IPC file ({error}): it may be truncated or corrupt; "
                          "write it again") from error
