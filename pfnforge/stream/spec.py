"""What batch *k* of rank *r* is: its shape (shared by all ranks at step k) and its random stream.

Both come from ``numpy.random.SeedSequence(run_seed, spawn_key=...)``, the same tree ``spawn()`` builds,
so batch (r, k) is a pure function of (run seed, r, k), whichever process or host draws it, and no two
(r, k) share a stream. A batch travels between processes and hosts as Arrow IPC *stream* bytes.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from pfnforge.arrow import check_version, to_arrow
from pfnforge.errors import ConfigError
from pfnforge.hyperpriors import IntRange, Range, Scale
from pfnforge.prior import BatchShape, Prior

_SHAPES, _SAMPLES = 0, 1  # first spawn-key level: which stream of a run


MAX_BATCH_BYTES = 4 << 30
"""Largest batch (x and y as float32) a prior server or a ``priors`` command draws in memory."""


@dataclass(kw_only=True)
class StreamConfig:
    """How the batches of a run are shaped and seeded."""

    seed: int = 0
    """Run seed: with the rank and the batch index it fixes every batch."""
    num_datasets: int = 64
    """Datasets per batch and rank."""
    num_rows: IntRange = field(default_factory=lambda: IntRange(low=100, high=100))
    """Rows per dataset, drawn per step (the same on every rank)."""
    num_features: IntRange = field(default_factory=lambda: IntRange(low=5, high=5))
    """Features per dataset, drawn per step."""
    train_fraction: Range = field(default_factory=lambda: Range(low=0.1, high=0.9))
    """Fraction of rows before the train/test split point, drawn per step (at least one row each side
    when there are two or more rows)."""

    def __post_init__(self) -> None:
        if self.num_datasets < 1:
            raise ConfigError(f"num_datasets={self.num_datasets} is out of range: it must be >= 1")
        if self.num_rows.low < 1:
            raise ConfigError(f"num_rows.low={self.num_rows.low} is out of range: it must be >= 1")
        if self.num_features.low < 1:
            raise ConfigError(f"num_features.low={self.num_features.low} is out of range: it must be >= 1")
        self.train_fraction.check("train_fraction", at_least=0.0, at_most=1.0)

    def largest_batch_bytes(self) -> int:
        """Bytes of x and y (float32) of the largest batch this config can ask for."""
        return self.num_datasets * self.num_rows.high * (self.num_features.high + 1) * 4

    def key(self) -> str:
        """A canonical JSON text of the config: equal configs give equal keys."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True, default=_enum_value)

    @classmethod
    def from_key(cls, key: str) -> StreamConfig:
        """The config behind a ``key()`` text."""
        data = json.loads(key)
        fraction = data["train_fraction"]

        def integers(range_: dict) -> IntRange:
            return IntRange(low=range_["low"], high=range_["high"], scale=Scale(range_.get("scale", "linear")))

        return cls(seed=data["seed"], num_datasets=data["num_datasets"], num_rows=integers(data["num_rows"]),
                   num_features=integers(data["num_features"]),
                   train_fraction=Range(low=fraction["low"], high=fraction["high"], scale=Scale(fraction["scale"])))


def _enum_value(value: object) -> object:
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(f"cannot encode {value!r}")


def batch_shape(config: StreamConfig, k: int) -> BatchShape:
    """The shape of step ``k``: independent of the rank, so every rank agrees without talking."""
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(_SHAPES, k)))
    num_rows = int(config.num_rows.sample(rng, 1)[0])
    num_features = int(config.num_features.sample(rng, 1)[0])
    num_train_rows = round(float(config.train_fraction.sample(rng, 1)[0]) * num_rows)
    if num_rows >= 2:
        num_train_rows = min(max(num_train_rows, 1), num_rows - 1)
    return BatchShape(num_datasets=config.num_datasets, num_rows=num_rows, num_features=num_features,
                      num_train_rows=num_train_rows)


def batch_rng(config: StreamConfig, rank: int, k: int) -> np.random.Generator:
    """The generator batch ``k`` of ``rank`` is drawn with."""
    return np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(_SAMPLES, rank, k)))


def sample_record_batch(prior: Prior, config: StreamConfig, rank: int, k: int) -> pa.RecordBatch:
    """Draw batch ``k`` of ``rank``; the same arguments give the same bytes."""
    return to_arrow(prior.sample(batch_rng(config, rank, k), batch_shape(config, k)))


def to_ipc_bytes(record_batch: pa.RecordBatch) -> pa.Buffer:
    """One record batch as an Arrow IPC stream (schema + batch) in one buffer."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, record_batch.schema) as writer:
        writer.write_batch(record_batch)
    return sink.getvalue()


def from_ipc_bytes(buffer: pa.Buffer | memoryview, source: str = "batch") -> pa.RecordBatch:
    """Read the single record batch of an IPC stream buffer without copying its data."""
    reader = pa.ipc.open_stream(buffer)
    check_version(reader.schema, source)
    return reader.read_next_batch()
