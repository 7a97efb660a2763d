"""Throughput of a prior: datasets/s at a fixed shape, median of repeats after warm-up, 1..N worker processes.

Each worker is a spawned process pinned to one BLAS/OpenMP thread, so N workers use N cores; the workers
start timing together behind a barrier and the total rate is the sum of their rates.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from pfnforge.errors import ConfigError
from pfnforge.prior import BatchShape, Prior


@dataclass(frozen=True)
class BenchResult:
    """What ``benchmark_prior`` measured."""

    datasets_per_second: float
    """Sum over workers of datasets / median batch time."""
    median_batch_seconds: float
    """Median over workers of each worker's median batch time."""
    batch_seconds: tuple[tuple[float, ...], ...]
    """Every timed batch, per worker."""


def _time_batches(prior: Prior, shape: BatchShape, repeats: int, warmup: int,
                  seed: np.random.SeedSequence, barrier=None) -> list[float]:
    with threadpool_limits(1):
        rng = np.random.default_rng(seed)
        for _ in range(warmup):
            prior.sample(rng, shape)
        if barrier is not None:
            barrier.wait()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            prior.sample(rng, shape)
            times.append(time.perf_counter() - start)
        return times


def _worker(prior, shape, repeats, warmup, seed, barrier, results, index) -> None:
    results.put((index, _time_batches(prior, shape, repeats, warmup, seed, barrier)))


def benchmark_prior(prior: Prior, shape: BatchShape, *, num_workers: int = 1, repeats: int = 5,
                    warmup: int = 1, seed: int = 0) -> BenchResult:
    """Time ``repeats`` batches in each of ``num_workers`` processes (in this process when 1)."""
    if num_workers < 1 or repeats < 1 or warmup < 0:
        raise ConfigError(f"workers={num_workers}, repeats={repeats}, warmup={warmup}: need workers >= 1, "
                          "repeats >= 1 and warmup >= 0")
    seeds = np.random.SeedSequence(seed).spawn(num_workers)
    if num_workers == 1:
        per_worker = [_time_batches(prior, shape, repeats, warmup, seeds[0])]
    else:
        context = mp.get_context("spawn")  # forking after Numba/OpenMP use is unsafe
        barrier, results = context.Barrier(num_workers), context.Queue()
        processes = [context.Process(target=_worker, daemon=True,
                                     args=(prior, shape, repeats, warmup, seeds[i], barrier, results, i))
                     for i in range(num_workers)]
        for process in processes:
            process.start()
        collected = dict(results.get() for _ in processes)
        for process in processes:
            process.join()
        per_worker = [collected[i] for i in range(num_workers)]
    medians = [float(np.median(times)) for times in per_worker]
    return BenchResult(
        datasets_per_second=sum(shape.num_datasets / m for m in medians),
        median_batch_seconds=float(np.median(medians)),
        batch_seconds=tuple(tuple(times) for times in per_worker),
    )
