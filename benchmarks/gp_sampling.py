"""Exact GP sampling against the machine's floor: a bare batched LAPACK Cholesky + triangular multiply.

For each shape, the floor factors *the same covariance matrices* the sampler builds (same inputs, same
drawn hyperparameters) and multiplies by the same normal draws, in two ways, timed interleaved with the
sampler in the same run:

- ``numpy``: ``np.linalg.cholesky`` on the (B, R, R) stack, then a batched ``L @ z``;
- ``scipy``: ``scipy.linalg.lapack.dpotrf`` + ``scipy.linalg.blas.dtrmv`` per matrix, no copies kept.

The sampler's time includes everything ``GPPrior.sample`` does: hyperparameter and input draws, the
covariance, the Cholesky, the product and building the ``PriorBatch``. "1 core" runs in this process with
BLAS pinned to one thread; "2 cores" runs the same loop in two processes at once and sums their rates.

    python benchmarks/gp_sampling.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time

import numpy as np
from scipy.linalg import blas, lapack
from threadpoolctl import threadpool_limits

from pfnforge.blocks.covariance import covariance_matrix
from pfnforge.config import compose_prior_config
from pfnforge.prior import BatchShape
from pfnforge_priors.gp import GPPrior
from pfnforge_priors.gp.expression import KernelExpression

SHAPES = [(64, 100, 5), (4, 2010, 5)]


def covariances(batch, slots: int) -> np.ndarray:
    """The (B, R, R) covariance + noise + jitter matrices behind a GP batch, rebuilt from its hyperparameters."""
    hp, out = batch.hyperparameters, []
    for b in range(batch.num_datasets):
        e = KernelExpression.parse(hp["kernel"][b])
        x_FR = np.ascontiguousarray(batch.x[b].T, dtype=np.float64)
        k = covariance_matrix(x_FR, x_FR, int(batch.num_features[b]), e.codes(slots),
                              np.array([hp[f"lengthscale_{t}"][b] for t in range(slots)]),
                              np.array([hp[f"period_{t}"][b] for t in range(slots)]), e.is_product,
                              float(hp["outputscale"][b]))
        out.append(k + (hp["noise_variance"][b] + hp["jitter"][b]) * np.eye(k.shape[0]))
    return np.stack(out)


def measure(shape_tuple, overrides, repeats: int, barrier=None) -> dict[str, float]:
    """Median seconds per batch of the sampler and the two floors, interleaved."""
    with threadpool_limits(1):
        B, R, F = shape_tuple
        prior = GPPrior(compose_prior_config("gp", overrides))
        shape = BatchShape(num_datasets=B, num_rows=R, num_features=F, num_train_rows=R // 2)
        rng = np.random.default_rng(0)
        batch = prior.sample(rng, shape)  # warm-up (compiles or loads the Numba cache)
        K_BRR = covariances(batch, prior.config.num_term_slots)
        z_BR1 = rng.standard_normal((B, R, 1))
        if barrier is not None:
            barrier.wait()
        times = {"ours": [], "numpy": [], "scipy": []}
        for _ in range(repeats):
            start = time.perf_counter()
            prior.sample(rng, shape)
            times["ours"].append(time.perf_counter() - start)
            start = time.perf_counter()
            np.matmul(np.linalg.cholesky(K_BRR), z_BR1)
            times["numpy"].append(time.perf_counter() - start)
            start = time.perf_counter()
            for b in range(B):
                factor, _ = lapack.dpotrf(K_BRR[b], lower=1, clean=0, overwrite_a=0)
                blas.dtrmv(factor, z_BR1[b, :, 0], lower=1)
            times["scipy"].append(time.perf_counter() - start)
        return {name: float(np.median(values)) for name, values in times.items()}


def _worker(shape, overrides, repeats, barrier, results):
    results.put(measure(shape, overrides, repeats, barrier))


def measure_two_cores(shape, overrides, repeats) -> dict[str, float]:
    """Rates summed over two simultaneous processes, returned as an equivalent seconds-per-batch."""
    context = mp.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    workers = [context.Process(target=_worker, args=(shape, overrides, repeats, barrier, results))
               for _ in range(2)]
    for w in workers:
        w.start()
    medians = [results.get() for _ in workers]
    for w in workers:
        w.join()
    return {name: 1.0 / sum(1.0 / m[name] for m in medians) for name in medians[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    cases = [(shape, [], "rbf (default)") for shape in SHAPES]
    cases += [((64, 100, 5), ["kernel.options=[matern52]"], "matern52"),
              ((64, 100, 5), ["kernel.options=[rbf+periodic]"], "rbf+periodic")]
    header = (f"{'shape B×R×F':<14} {'kernel':<14} {'cores':>5} {'sampler ds/s':>13} {'numpy floor':>12} "
              f"{'scipy floor':>12} {'×numpy':>7} {'×scipy':>7}")
    print(header)
    print("-" * len(header))
    for shape, overrides, label in cases:
        for cores in (1, 2):
            t = measure(shape, overrides, args.repeats) if cores == 1 else \
                measure_two_cores(shape, overrides, args.repeats)
            B = shape[0]
            print(f"{'×'.join(map(str, shape)):<14} {label:<14} {cores:>5} {B / t['ours']:>13.1f} "
                  f"{B / t['numpy']:>12.1f} {B / t['scipy']:>12.1f} {t['ours'] / t['numpy']:>7.3f} "
                  f"{t['ours'] / t['scipy']:>7.3f}", flush=True)
    print("\n×numpy, ×scipy: sampler time per dataset / floor time per dataset (target ≤ 1.25).")


if __name__ == "__main__":
    main()
