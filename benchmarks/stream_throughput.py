"""What the stream costs: worker-pool hand-off vs in-loop sampling, zero-copy tensors, Flight on loopback,
and how long a consumer waits.

    python benchmarks/stream_throughput.py [--batches 120]

1. Hand-off: batches/s of ``sample_record_batch`` in one process vs delivered by a ``LocalSource`` with
   N workers (N = 1, 2); ratio = delivered / (N x in-loop). Target >= 0.9.
2. Zero copy: the torch tensor of ``x`` points into the shared-memory mapping the worker wrote.
3. Flight: payload GB/s from one ``PriorServer`` to one ``FlightSource`` on loopback (26 MB batches of a
   prior that only allocates, so the transport is what is measured). Target >= 1 GB/s.
4. Wait: a consumer that sleeps S per batch (a stand-in for a training step) and the fraction of time it
   waited, vs workers. Target < 2% when the workers keep up.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from threadpoolctl import threadpool_limits

from pfnforge import registry
from pfnforge.arrow import to_torch
from pfnforge.batch import PriorBatch
from pfnforge.config import compose_prior_config
from pfnforge.hyperpriors import IntRange
from pfnforge.prior import BatchShape, Prior, PriorConfig, Task
from pfnforge.stream.flight import FlightSource, PriorServer
from pfnforge.stream.sources import LocalSource
from pfnforge.stream.spec import StreamConfig, sample_record_batch


@dataclass(kw_only=True)
class ZerosConfig(PriorConfig):
    pass


class ZerosPrior(Prior):
    """Allocates and returns zeros: a prior whose cost is only memory, to measure transport."""

    name: ClassVar[str] = "zeros"
    task: ClassVar[Task] = Task.regression
    Config: ClassVar[type[PriorConfig]] = ZerosConfig

    def sample(self, rng: np.random.Generator, shape: BatchShape) -> PriorBatch:
        B, R, F = shape.num_datasets, shape.num_rows, shape.num_features
        return PriorBatch(x=np.zeros((B, R, F), np.float32), y=np.zeros((B, R), np.float32), num_rows=R,
                          num_features=F, num_train_rows=shape.num_train_rows, num_classes=0, prior=self.name)


def fixed(B: int, R: int, F: int, seed: int = 0) -> StreamConfig:
    return StreamConfig(seed=seed, num_datasets=B, num_rows=IntRange(low=R, high=R),
                        num_features=IntRange(low=F, high=F))


def in_loop_rate(prior: Prior, config: StreamConfig, batches: int) -> float:
    with threadpool_limits(1):
        sample_record_batch(prior, config, 0, 0)
        start = time.perf_counter()
        for k in range(batches):
            sample_record_batch(prior, config, 0, k)
        return batches / (time.perf_counter() - start)


def pool_rate(prior: Prior, config: StreamConfig, batches: int, workers: int) -> float:
    with LocalSource(prior, config, num_workers=workers, prefetch=4 * workers) as source:
        for _ in range(2 * workers):  # workers started and compiled
            next(source)
        start = time.perf_counter()
        for _ in range(batches):
            next(source)
        return batches / (time.perf_counter() - start)


def handoff(batches: int) -> None:
    print("1. hand-off: in-loop vs worker pool (gp prior)")
    print(f"{'shape B×R×F':<14} {'in-loop b/s':>11} {'N':>2} {'pool b/s':>9} {'ratio':>6}")
    gp = registry.load_prior_class("gp")()
    for B, R, F in [(64, 100, 5), (16, 400, 5)]:
        config = fixed(B, R, F)
        single = in_loop_rate(gp, config, batches)
        for workers in (1, 2):
            delivered = pool_rate(gp, config, batches, workers)
            print(f"{f'{B}×{R}×{F}':<14} {single:>11.1f} {workers:>2} {delivered:>9.1f} "
                  f"{delivered / (workers * single):>6.2f}", flush=True)


def zero_copy() -> None:
    with LocalSource(registry.load_prior_class("gp")(), fixed(8, 50, 3), num_workers=1) as source:
        record_batch = next(source)
        x_buffer = record_batch.column("x").flatten().flatten().buffers()[1]
        tensors = to_torch(record_batch)
        inside = x_buffer.address <= tensors.x.data_ptr() < x_buffer.address + x_buffer.size
        print(f"\n2. zero copy: x tensor data_ptr inside the worker's shared-memory mapping: {inside}")


def flight_throughput(batches: int) -> None:
    config = fixed(64, 1024, 100)
    server = PriorServer(ZerosPrior(), num_workers=2, prefetch=4)
    try:
        with FlightSource([server.location], config, chunk=8, prefetch=8) as source:
            for _ in range(4):
                next(source)
            start, payload = time.perf_counter(), 0
            for _ in range(batches):
                payload += next(source).nbytes
            seconds = time.perf_counter() - start
        print(f"\n3. flight on loopback: {payload / seconds / 1e9:.2f} GB/s of batch payload "
              f"({batches} batches of {payload / batches / 1e6:.1f} MB, {batches / seconds:.1f} batches/s)")
    finally:
        server.shutdown()


def waiting(batches: int) -> None:
    print("\n4. consumer wait fraction (consumer sleeps S per batch)")
    print(f"{'prior / shape':<22} {'batch ms':>8} {'S ms':>5} {'workers':>7} {'wait fraction':>13}")
    gp = registry.load_prior_class("gp")()
    matern = registry.build_prior(compose_prior_config("gp", ["kernel.options=[matern52]"]))
    for label, prior, config in [("gp 64×100×5", gp, fixed(64, 100, 5)),
                                 ("gp matern52 32×500×5", matern, fixed(32, 500, 5))]:
        batch_seconds = 1 / in_loop_rate(prior, config, 10)
        step = 1.2 * batch_seconds  # a consumer a little slower than one worker
        for workers in (1, 2):
            with LocalSource(prior, config, num_workers=workers, prefetch=4 * workers) as source:
                for _ in range(2 * workers):
                    next(source)
                source.stats = type(source.stats)()
                for _ in range(batches // 2):
                    next(source)
                    time.sleep(step)
                fraction = source.stats.as_metrics()["data/wait_fraction"]
            print(f"{label:<22} {batch_seconds * 1e3:>8.1f} {step * 1e3:>5.1f} {workers:>7} {fraction:>13.4f}",
                  flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=120)
    args = parser.parse_args()
    handoff(args.batches)
    zero_copy()
    flight_throughput(max(args.batches // 4, 10))
    waiting(args.batches)


if __name__ == "__main__":
    main()
