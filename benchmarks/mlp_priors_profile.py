"""Where a random-MLP batch spends its time: each stage of ``bnn`` at 64 × 1024 × 100 (one hidden layer of
64 tanh units), the float64 NumPy way and the way ``pfnforge_priors.bnn`` does it, same process, 1 thread.

    python benchmarks/mlp_priors_profile.py [--repeats 9] [--rows 1024] [--features 100]

Stages: drawing the (B, R, F) inputs, the first layer's batched matrix product, the activation, and the
whole ``BNNPrior.sample``. Figures are medians of ``--repeats`` runs, interleaved, in CPU time of this
process (``time.process_time``; one thread, so it is the work done, whatever else runs on a shared
machine); ratio = NumPy float64 time / pfnforge time. This is the measurement behind the choices in
``bnn.py`` (float32 everywhere, ``pfnforge.blocks.dense.standard_normal_f32``, NumPy's SIMD float32 ``tanh``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from pfnforge.blocks.dense import standard_normal_f32
from pfnforge.config import compose_prior_config
from pfnforge.prior import BatchShape
from pfnforge_priors.bnn import BNNPrior


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--datasets", type=int, default=64)
    parser.add_argument("--rows", type=int, default=1024)
    parser.add_argument("--features", type=int, default=100)
    args = parser.parse_args()
    B, R, F, W = args.datasets, args.rows, args.features, 64
    threadpool_limits(1)
    rng = np.random.default_rng(0)
    x64, x32 = rng.standard_normal((B, R, F)), standard_normal_f32(rng, (B, R, F))
    w64, w32 = rng.standard_normal((B, F, W)), standard_normal_f32(rng, (B, F, W))
    h64, h32 = x64 @ w64, x32 @ w32
    o64, o32 = np.empty_like(h64), np.empty_like(h32)
    prior = BNNPrior(compose_prior_config("bnn", ["num_layers=1", f"hidden_width={W}"]))
    shape = BatchShape(num_datasets=B, num_rows=R, num_features=F, num_train_rows=R // 2)
    stages = {
        "inputs: normals": (lambda: rng.standard_normal((B, R, F)), lambda: standard_normal_f32(rng, (B, R, F))),
        "inputs: NumPy float32 ziggurat": (lambda: rng.standard_normal((B, R, F)),
                                           lambda: rng.standard_normal((B, R, F), dtype=np.float32)),
        "layer 1: batched matmul": (lambda: np.matmul(x64, w64), lambda: np.matmul(x32, w32)),
        "activation: tanh": (lambda: np.tanh(h64, out=o64), lambda: np.tanh(h32, out=o32)),
        "whole BNNPrior.sample": (None, lambda: prior.sample(rng, shape)),
    }
    times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in stages}
    for repeat in range(args.repeats + 1):
        for name, pair in stages.items():
            for side, run in enumerate(pair):
                if run is None:
                    continue
                start = time.process_time()
                run()
                if repeat:  # the first pass warms up (Numba cache, allocator)
                    times[name][side].append(time.process_time() - start)
    print(f"{'stage (B×R×F = ' + f'{B}×{R}×{F})':<34} {'NumPy f64 CPU ms':>17} {'pfnforge CPU ms':>16} {'ratio':>7}")
    for name, (slow, fast) in times.items():
        slow_ms, fast_ms = (float(np.median(t)) * 1e3 if t else float("nan") for t in (slow, fast))
        label = "NumPy f32 ms" if "float32 ziggurat" in name else ""
        print(f"{name:<34} {slow_ms:>17.2f} {fast_ms:>16.2f} {slow_ms / fast_ms:>7.2f} {label}".rstrip())
    print("\n'inputs: NumPy float32 ziggurat' compares NumPy float64 with NumPy's own float32 normals (right column).")


if __name__ == "__main__":
    main()
