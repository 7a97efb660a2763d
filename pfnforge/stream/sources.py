"""Ordered, resumable streams of record batches for one rank, and what they report about themselves.

A source yields batch ``position``, ``position + 1``, ... of its rank. Its position is its state
(``state_dict``/``load_state_dict``), so a checkpoint that stores it resumes the exact stream.
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass

import pyarrow as pa

from pfnforge.errors import ConfigError
from pfnforge.prior import Prior
from pfnforge.stream.pool import Task, WorkerPool
from pfnforge.stream.spec import StreamConfig, sample_record_batch


@dataclass
class StreamStats:
    """Counters since the first batch was asked for."""

    batches: int = 0
    bytes: int = 0
    wait_seconds: float = 0.0
    """Time the consumer spent blocked waiting for data."""
    started: float | None = None
    queue_depth: int = 0
    """Batches requested ahead of the consumer and not yet taken."""

    def as_metrics(self) -> dict[str, float]:
        elapsed = max(time.perf_counter() - self.started, 1e-9) if self.started else 0.0
        return {
            "data/batches_per_s": self.batches / elapsed if elapsed else 0.0,
            "data/bytes_per_s": self.bytes / elapsed if elapsed else 0.0,
            "data/wait_fraction": self.wait_seconds / elapsed if elapsed else 0.0,
            "data/queue_depth": float(self.queue_depth),
        }


class BatchSource(abc.ABC):
    """Batches ``start, start + 1, ...`` of one rank of the stream ``config``."""

    def __init__(self, config: StreamConfig, rank: int = 0, start: int = 0) -> None:
        if rank < 0 or start < 0:
            raise ConfigError(f"rank={rank} and start={start} must be >= 0")
        self.config = config
        self.rank = rank
        self.position = start
        self.stats = StreamStats()

    @abc.abstractmethod
    def _fetch(self, k: int) -> pa.RecordBatch:
        """Return batch ``k`` (blocking); called with k = position, position + 1, ..."""

    def _reposition(self) -> None:  # noqa: B027 - optional hook: only prefetching sources need it
        """Drop anything prefetched: the position changed."""

    def __iter__(self) -> BatchSource:
        return self

    def __next__(self) -> pa.RecordBatch:
        if self.stats.started is None:
            self.stats.started = time.perf_counter()
        begin = time.perf_counter()
        record_batch = self._fetch(self.position)
        self.stats.wait_seconds += time.perf_counter() - begin
        self.stats.batches += 1
        self.stats.bytes += record_batch.nbytes
        self.position += 1
        return record_batch

    def state_dict(self) -> dict[str, object]:
        return {"stream": self.config.key(), "rank": self.rank, "next_batch": self.position}

    def load_state_dict(self, state: dict[str, object]) -> None:
        if state["stream"] != self.config.key() or state["rank"] != self.rank:
            raise ConfigError("the saved stream position belongs to another stream config or rank: resume with "
                              f"the run's config (saved rank {state['rank']}, this rank {self.rank})")
        self.position = int(state["next_batch"])
        self._reposition()

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release workers, connections or files."""

    def __enter__(self) -> BatchSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalSource(BatchSource):
    """Batches drawn by a local ``WorkerPool``, up to ``prefetch`` ahead, delivered in order."""

    def __init__(self, prior: Prior, config: StreamConfig, rank: int = 0, start: int = 0, *,
                 num_workers: int | None = None, prefetch: int | None = None,
                 pool: WorkerPool | None = None) -> None:
        super().__init__(config, rank, start)
        self._own_pool = pool is None
        self.pool = pool or WorkerPool(prior, num_workers)
        self.prefetch = prefetch or 2 * self.pool.num_workers
        if self.prefetch < 1:
            raise ConfigError(f"prefetch={self.prefetch} must be >= 1")
        self._key = config.key()
        self._submitted: list[int] = []

    def _task(self, k: int) -> Task:
        return Task(self._key, self.rank, k)

    def _fetch(self, k: int) -> pa.RecordBatch:
        next_k = self._submitted[-1] + 1 if self._submitted else k
        while next_k < k + self.prefetch:  # bounded read-ahead: backpressure on the workers
            self.pool.submit(self._task(next_k))
            self._submitted.append(next_k)
            next_k += 1
        assert self._submitted[0] == k, "batches are consumed in order"
        self._submitted.pop(0)
        self.stats.queue_depth = len(self._submitted)
        return self.pool.take(self._task(k))

    def _reposition(self) -> None:
        for k in self._submitted:  # wait for and drop what was requested for the old position
            self.pool.take_payload(self._task(k))
        self._submitted.clear()

    def close(self) -> None:
        if self._own_pool:
            self.pool.close()


class InProcessSource(BatchSource):
    """Batches drawn in the consuming process, one at a time: no workers (debugging, tiny runs, tests)."""

    def __init__(self, prior: Prior, config: StreamConfig, rank: int = 0, start: int = 0) -> None:
        super().__init__(config, rank, start)
        self.prior = prior

    def _fetch(self, k: int) -> pa.RecordBatch:
        return sample_record_batch(self.prior, self.config, self.rank, k)
