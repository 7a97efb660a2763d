"""BNN and architecture priors vs the ``pfns`` package's MLP priors, at equal settings, 1 and 2 processes.

The anchors run in their own virtual environment (benchmark-only; never a dependency of pfnforge):

    python3 -m venv /tmp/anchors-venv && /tmp/anchors-venv/bin/pip install torch==2.13.0 pfns==0.4.2
    python benchmarks/mlp_priors.py --anchor-python /tmp/anchors-venv/bin/python [--repeats 7] [--rounds 2]

This script installs nothing. Every measurement is a fresh subprocess (this script re-run in worker mode:
pfnforge's with this interpreter, the anchor's with ``--anchor-python``), one BLAS/OpenMP/torch thread
each; with 2 processes both warm up, then start timing together (a file barrier), and the rate is
the sum of their rates (datasets / median batch seconds; small batches are timed in blocks of ~0.1 s).
Rounds alternate pfnforge and anchor runs so that drift of a shared machine hits both; the table shows
the median over rounds. Each worker also
records the CPU time of every batch (``time.process_time``): datasets per CPU second is what one core
delivers when nothing else runs on it, the robust figure on a shared machine (wall-clock rates there
depend on what the other processes do), and its 2-process / 1-process ratio shows whether two samplers
slow each other down (memory bandwidth, caches) regardless of the load.

Pairs (regression, standard-normal inputs, one network per dataset, (B, R, F) batch, split at R/2):

- ``bnn`` with ``num_layers=1 hidden_width=64 activation=tanh`` vs ``pfns.priors.simple_mlp.get_batch``
  with ``mlp_num_layers=2`` (pfns counts linear layers: one hidden layer), ``mlp_num_hidden=64``, tanh,
  ``mlp_init_std=0.1``, output noise 0.1;
- ``arch`` with ``activation.options=[tanh,relu]`` (1-4 hidden layers, width 2-150, Gamma scales) vs
  ``pfns.priors.hyperparameter_sampling.get_batch`` wrapping ``simple_mlp`` with ``mlp_num_layers`` in
  2..5, ``mlp_num_hidden`` in 2..150, log-uniform ``mlp_init_std`` and output noise, activation tanh or
  relu, one draw per dataset (``batch_size_per_gp_sample=1``). pfns 0.2-0.4.2 (every release on the
  index) has no ``pfns.priors.mlp`` module: this wrapper is its MLP prior with a sampled architecture.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

from _workers import run_workers, time_draws

SHAPES = [(64, 1024, 100), (64, 100, 5)]
PAIRS = {"bnn": ["num_layers=1", "hidden_width=64", "activation=tanh"], "arch": ["activation.options=[tanh,relu]"]}
ANCHOR_NAMES = {"bnn": "pfns simple_mlp", "arch": "pfns sampled MLP"}


def _ours(prior_name: str, shape: tuple[int, int, int], repeats: int, barrier: str) -> list[list[float]]:
    import numpy as np
    from threadpoolctl import threadpool_limits

    from pfnforge import registry
    from pfnforge.config import compose_prior_config
    from pfnforge.prior import BatchShape

    threadpool_limits(1)
    prior = registry.build_prior(compose_prior_config(prior_name, PAIRS[prior_name]))
    B, R, F = shape
    batch_shape = BatchShape(num_datasets=B, num_rows=R, num_features=F, num_train_rows=R // 2)
    rng = np.random.default_rng(0)
    return time_draws(lambda: prior.sample(rng, batch_shape), repeats, barrier, block_seconds=0.1)


def _anchor(prior_name: str, shape: tuple[int, int, int], repeats: int, barrier: str) -> list[list[float]]:
    import contextlib
    import io

    import torch
    from pfns.priors import hyperparameter_sampling as hps
    from pfns.priors import simple_mlp

    torch.set_num_threads(1)
    torch.manual_seed(0)
    B, R, F = shape
    fixed = {"mlp_num_layers": 2, "mlp_num_hidden": 64, "mlp_init_std": 0.1, "mlp_sparseness": 0.0,
             "mlp_input_sampling": "normal", "mlp_output_noise": 0.1, "mlp_noisy_targets": True,
             "mlp_preactivation_noise_std": 0.0, "activation": "tanh"}
    if prior_name == "bnn":
        def draw():
            simple_mlp.get_batch(B, R, F, hyperparameters=fixed, device="cpu")
    else:
        sampled = dict(fixed, mlp_num_layers=hps.UniformIntegerDistConfig(lower=2, upper=5),
                       mlp_num_hidden=hps.UniformIntegerDistConfig(lower=2, upper=150),
                       mlp_init_std=hps.UniformFloatDistConfig(lower=0.01, upper=1.0, log=True),
                       mlp_output_noise=hps.UniformFloatDistConfig(lower=0.001, upper=0.3, log=True),
                       activation=hps.ChoiceDistConfig(choices=["tanh", "relu"]),
                       hyperparameter_sampling_skip_style_prob=0.0, hyperparameter_sampling_add_hps_to_style=[])

        def draw():
            hps.get_batch(B, R, F, hyperparameters=sampled, get_batch=simple_mlp.get_batch, device="cpu",
                          batch_size_per_gp_sample=1)
    with contextlib.redirect_stdout(io.StringIO()):  # pfns prints its surplus kwargs once
        return time_draws(draw, repeats, barrier, block_seconds=0.1)


def _run(python: str, side: str, prior_name: str, shape, processes: int, repeats: int) -> tuple[float, float]:
    """Datasets per wall second and per CPU second, each summed over ``processes`` simultaneous workers."""
    args = [python, os.path.abspath(__file__), "--worker", side, prior_name, "x".join(map(str, shape)), str(repeats)]
    return run_workers(args, processes, shape[0], f"{side} {prior_name} {shape}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--anchor-python", required=True, help="python of a venv with torch and pfns installed")
    parser.add_argument("--repeats", type=int, default=7, help="timed batches per worker")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of pfnforge and anchor runs")
    parser.add_argument("--priors", nargs="+", default=list(PAIRS), choices=list(PAIRS))
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} CPUs")
    header = (f"{'prior':<6} {'shape B×R×F':<12} {'proc':>4} | {'pfnforge':>9} {'anchor':>7} {'×anchor':>7} | "
              f"{'pfnforge':>9} {'anchor':>8} {'×anchor':>7} | {'×1proc':>6} {'×1proc':>6}")
    print(f"{'':<25}| {'datasets / wall second':^25} | {'datasets / CPU second':^26} | {'wall':>6} {'CPU':>6}")
    print(header)
    print("-" * len(header))
    for prior_name in args.priors:
        for shape in SHAPES:
            one = None
            for processes in (1, 2):
                ours, anchor = [], []
                for _ in range(args.rounds):
                    ours.append(_run(sys.executable, "ours", prior_name, shape, processes, args.repeats))
                    anchor.append(_run(args.anchor_python, "anchor", prior_name, shape, processes, args.repeats))
                wall, cpu = (statistics.median(r[i] for r in ours) for i in (0, 1))
                anchor_wall, anchor_cpu = (statistics.median(r[i] for r in anchor) for i in (0, 1))
                one = one or (wall, cpu)
                print(f"{prior_name:<6} {'×'.join(map(str, shape)):<12} {processes:>4} | {wall:>9,.0f} "
                      f"{anchor_wall:>7,.0f} {wall / anchor_wall:>7.2f} | {cpu:>9,.0f} {anchor_cpu:>8,.0f} "
                      f"{cpu / anchor_cpu:>7.2f} | {wall / one[0]:>6.2f} {cpu / one[1]:>6.2f}", flush=True)
    print(f"\nanchors: bnn vs {ANCHOR_NAMES['bnn']}, arch vs {ANCHOR_NAMES['arch']}; ×anchor: pfnforge / anchor, same"
          " run, same process count (target ≥ 2).")
    print("Per CPU second: datasets / median CPU time of a batch (time.process_time), summed over processes: what a")
    print("core delivers when it is not shared. ×1proc: 2 processes / 1 (target ≥ 1.8); a CPU ratio near 2 with a")
    print("lower wall ratio means the processes do not slow each other down and other load took the cores.")
    print(f"load average after: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")


def _worker_main(argv: list[str]) -> None:
    side, prior_name, shape_text, repeats, barrier = argv
    shape = tuple(int(n) for n in shape_text.split("x"))
    measure = _ours if side == "ours" else _anchor
    print(json.dumps(measure(prior_name, shape, int(repeats), barrier)))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _worker_main(sys.argv[2:])
    else:
        main()
