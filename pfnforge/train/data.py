"""A ``LightningDataModule`` over a prior stream: each rank reads its own stream, resumable at the batch
the last optimiser step used."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info

from pfnforge.arrow import from_arrow, to_torch
from pfnforge.errors import ConfigError
from pfnforge.prior import Prior
from pfnforge.stream.provenance import (
    VALIDATION_RANK,
    StreamFingerprint,
    check_validation_source,
    stream_fingerprint,
)
from pfnforge.stream.shards import ShardSource
from pfnforge.stream.sources import BatchSource, InProcessSource, LocalSource
from pfnforge.stream.spec import StreamConfig


@dataclass(kw_only=True)
class DataConfig:
    """Where training batches come from."""

    stream: StreamConfig = field(default_factory=StreamConfig)
    """Seed, datasets per batch and the ranges batch shapes are drawn from."""
    num_workers: int | None = None
    """Prior worker processes per rank; 0 draws in the training process; null: this rank's share of the node's
    CPUs (Slurm's allocation, the cgroup quota or the CPU affinity, divided among the node's ranks) less the
    trainer's own threads, at least one; the decision is logged."""
    prefetch: int | None = None
    """Batches requested ahead of training (default: twice the workers)."""
    num_val_batches: int = 4
    """Batches of the fixed validation set, drawn from a stream no training rank reads (0: none); with
    ``val_shards``, every batch of the shards is used instead."""
    val_shards: str | None = None
    """A shard directory (`pfnforge generate`) to validate on instead: of the run's prior and config, and of
    another seed or a rank no training rank reads (`pfnforge generate` writes the validation rank by default)."""
    servers: list[str] = field(default_factory=list)
    """Prior servers (`pfnforge serve`, grpc://host:port) to stream training batches from instead of local workers."""
    servers_file: str | None = None
    """Or a file that `pfnforge serve --address-file` writes their locations to; training waits for num_servers."""
    num_servers: int = 1
    """Servers to wait for in servers_file before training starts."""
    servers_timeout_s: float = 600.0
    """Seconds to wait for them (servers start on other nodes, maybe later)."""
    token_file: str | None = None
    """A file holding the servers' shared token (`pfnforge serve --token-file`)."""
    servers_deadline_s: float = 120.0
    """Seconds a batch may take to arrive from the prior servers, failing over between them, before training
    stops with a StreamError naming them."""
    allow_foreign_stream: bool = False
    """Train on prior servers, or validate on shards, whose stream fingerprint says they hold another prior or
    config, or (shards) batches of the training stream, with a warning instead of the ConfigError that
    refuses them."""

    def __post_init__(self) -> None:
        if self.num_workers is not None and self.num_workers < 0:
            raise ConfigError(f"data.num_workers={self.num_workers} must be >= 0 (0: no worker processes)")
        if self.servers_deadline_s <= 0:
            raise ConfigError(f"data.servers_deadline_s={self.servers_deadline_s} must be > 0 seconds")


@dataclass
class StepBatch:
    """One training batch as tensors, with its index in the rank's stream."""

    index: int
    x: torch.Tensor
    y: torch.Tensor
    num_train_rows: int
    num_classes: torch.Tensor
    reference_log_likelihood: torch.Tensor | None = None
    """(B, R - T) log-density of the test rows under the prior's Bayes-optimal predictive, where it knows it."""
    oracle_log_likelihood: torch.Tensor | None = None
    """(B, R - T) log-density of the test rows given each dataset's drawn latent values (which no model sees),
    where the prior draws them and knows it."""


def _test_rows(log_density_BR: np.ndarray, num_train_rows: int) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(log_density_BR[:, num_train_rows:])).float()


class PriorDataModule(L.LightningDataModule):
    """Streams batches of ``prior`` for this rank; its state is the next batch to train on."""

    def __init__(self, prior: Prior, config: DataConfig) -> None:
        super().__init__()
        self.prior = prior
        self.config = config
        self.next_batch = 0
        self.source: BatchSource | None = None
        self.reference_name: str | None = None
        """What ``val/gap_to_exact`` measures the distance to, once the validation batches are built."""

    def _open(self, rank: int) -> BatchSource:
        if self.config.servers or self.config.servers_file:
            return self._open_servers(rank)
        if self.config.num_workers == 0:
            return InProcessSource(self.prior, self.config.stream, rank, self.next_batch)
        return LocalSource(self.prior, self.config.stream, rank, self.next_batch,
                           num_workers=self.config.num_workers or self._budgeted_workers(),
                           prefetch=self.config.prefetch)

    def _budgeted_workers(self) -> int:
        """Workers for this rank from the node's CPU budget shared by the ranks on this node, less the
        trainer's threads (its torch threads when it trains on CPU, one otherwise); logged."""
        from pfnforge.stream.pool import worker_budget

        trainer = getattr(self, "trainer", None)
        local_ranks = int(getattr(trainer, "num_devices", 1) or 1) if trainer is not None else 1
        on_cpu = trainer is None or type(trainer.accelerator).__name__ == "CPUAccelerator"
        workers, reason = worker_budget(local_ranks, torch.get_num_threads() if on_cpu else 1)
        rank_zero_info(reason)
        self.worker_decision = reason
        return workers

    def _open_servers(self, rank: int) -> BatchSource:
        """Batches from prior servers (they serve the same prior: start them with the same name and overrides)."""
        from pathlib import Path

        from pfnforge.stream.discovery import wait_for_locations
        from pfnforge.stream.flight import FlightSource, check_servers

        locations = list(self.config.servers)
        if self.config.servers_file:
            locations += wait_for_locations(Path(self.config.servers_file), self.config.num_servers,
                                            self.config.servers_timeout_s)
        token = None
        if self.config.token_file:
            try:
                token = Path(self.config.token_file).read_text().strip()
            except OSError as error:
                raise ConfigError(f"data.token_file={self.config.token_file} cannot be read ({error}): give the "
                                  "file `pfnforge serve --token-file` was started with") from error
        rank_zero_info(f"data: streaming from {len(locations)} prior server(s): {', '.join(locations)}")
        source = FlightSource(locations, self.config.stream, rank, self.next_batch, token=token,
                              give_up_after=self.config.servers_deadline_s)
        try:
            check_servers(source, self._run_fingerprint(), allow_foreign=self.config.allow_foreign_stream,
                          timeout=min(10.0, self.config.servers_deadline_s))
        except ConfigError:
            source.close()
            raise
        return source

    def _run_fingerprint(self) -> StreamFingerprint:
        """The run's training stream: its prior, its seed and ranks 0 .. world size - 1."""
        world_size = int(getattr(getattr(self, "trainer", None), "world_size", 1) or 1)
        return stream_fingerprint(self.prior, seed=self.config.stream.seed, ranks=range(world_size))

    def _batches(self) -> Iterator[StepBatch]:
        rank = self.trainer.global_rank if self.trainer is not None else 0
        if self.source is not None:
            self.source.close()
        self.source = self._open(rank)
        for record_batch in self.source:
            tensors = to_torch(record_batch)
            yield StepBatch(index=self.source.position - 1, x=tensors.x, y=tensors.y,
                            num_train_rows=int(tensors.num_train_rows[0]), num_classes=tensors.num_classes)

    def train_dataloader(self) -> Iterator[StepBatch]:
        return _Batches(self)

    def val_dataloader(self) -> _FixedBatches:
        """The same validation batches at every check: from shards, or from a reserved stream."""
        if self.config.val_shards:
            source: BatchSource = ShardSource(self.config.val_shards)
            check_validation_source(source.fingerprint, self._run_fingerprint(),
                                    source=f"data.val_shards={self.config.val_shards}",
                                    allow_foreign=self.config.allow_foreign_stream)
        elif self.config.num_val_batches:
            source = InProcessSource(self.prior, self.config.stream, VALIDATION_RANK)
        else:
            return _FixedBatches([])
        batches = []
        # shards: all of them, each checked against its checksum (a batch never read is a corruption never seen)
        count = len(source) if self.config.val_shards else self.config.num_val_batches
        for _, record_batch in zip(range(count), source, strict=False):
            prior_batch = from_arrow(record_batch)
            tensors = to_torch(record_batch)
            T = int(tensors.num_train_rows[0])
            reference = self.prior.reference(prior_batch)
            oracle = self.prior.oracle_log_likelihood(prior_batch)
            if reference is not None:
                self.reference_name = reference.name
            batches.append(StepBatch(
                index=len(batches), x=tensors.x, y=tensors.y, num_train_rows=T, num_classes=tensors.num_classes,
                reference_log_likelihood=None if reference is None else _test_rows(reference.log_density, T),
                oracle_log_likelihood=None if oracle is None else _test_rows(oracle, T)))
        if self.reference_name:
            rank_zero_info(f"data: val/gap_to_exact is the distance to the {self.reference_name}")
            logger = getattr(getattr(self, "trainer", None), "logger", None)
            if hasattr(logger, "set_tags"):
                logger.set_tags({"val/reference": self.reference_name})
        return _FixedBatches(batches)

    def state_dict(self) -> dict[str, int]:
        return {"next_batch": self.next_batch}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.next_batch = int(state["next_batch"])

    def teardown(self, stage: str) -> None:
        if self.source is not None:
            self.source.close()
            self.source = None


class _Batches:
    """Re-iterable view that opens the stream at the data module's position when iteration starts."""

    def __init__(self, datamodule: PriorDataModule) -> None:
        self.datamodule = datamodule

    def __iter__(self) -> Iterator[StepBatch]:
        return self.datamodule._batches()


class _FixedBatches:
    """A fixed list of batches that Lightning takes as one loader (a bare list would be many loaders)."""

    def __init__(self, batches: list[StepBatch]) -> None:
        self.batches = batches

    def __iter__(self) -> Iterator[StepBatch]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)
