"""BNN and architecture priors vs the ``pfns`` package's MLP priors, at equal settings, 1 and 2 processes.

The anchors run in their own virtual environment (benchmark-only; never a dependency of pfnforge):

    python3 -m venv /tmp/anchors-venv && /tmp/anchors-venv/bin/pip install torch==2.13.0 pfns==0.4.2
    python benchmarks/mlp_priors.py --anchor-python /tmp/anchors-venv/bin/python [--repeats 7] [--rounds 2]

This script installs nothing. Every measurement is a fresh subprocess (this script re-run in worker mode:
pfnforge's with this interpreter, the anchor's with ``--anchor-python``), one BLAS/OpenMP/torch thread
each; with 2 processes both warm up, then start timing together (a file barrier), and the rate is
the sum of their rates (datasets / median batch seconds). Rounds alternate pfnforge and anchor runs so
that drift of a shared machine hits both; the table shows the median over rounds.

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
import subprocess
import sys
import tempfile
import time

SHAPES = [(64, 1024, 100), (64, 100, 5)]
PAIRS = {"bnn": ["num_layers=1", "hidden_width=64", "activation=tanh"], "arch": ["activation.options=[tanh,relu]"]}
ANCHOR_NAMES = {"bnn": "pfns simple_mlp", "arch": "pfns sampled MLP"}


def _time(draw, repeats: int, barrier: str) -> list[float]:
    """Seconds per batch; ``barrier`` is ``DIR:N``: wait until N workers are warm (a file each in DIR)."""
    draw()  # warm-up: Numba cache load, allocator, first BLAS call
    draw()
    folder, count = barrier.rsplit(":", 1)
    with open(os.path.join(folder, str(os.getpid())), "w"):
        pass
    while len(os.listdir(folder)) < int(count):
        time.sleep(0.001)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        draw()
        times.append(time.perf_counter() - start)
    return times


def _ours(prior_name: str, shape: tuple[int, int, int], repeats: int, barrier: str) -> list[float]:
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
    return _time(lambda: prior.sample(rng, batch_shape), repeats, barrier)


def _anchor(prior_name: str, shape: tuple[int, int, int], repeats: int, barrier: str) -> list[float]:
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
        return _time(draw, repeats, barrier)


def _run(python: str, side: str, prior_name: str, shape, processes: int, repeats: int) -> float:
    """Datasets/s summed over ``processes`` simultaneous worker processes."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as folder:
        args = [python, os.path.abspath(__file__), "--worker", side, prior_name, "x".join(map(str, shape)),
                str(repeats), f"{folder}:{processes}"]
        workers = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True) for _ in range(processes)]
        outputs = [(worker.communicate()[0], worker.returncode) for worker in workers]
    rates = []
    for out, returncode in outputs:
        if returncode != 0:
            raise SystemExit(f"{side} worker for {prior_name} {shape} failed (exit {returncode})")
        rates.append(shape[0] / statistics.median(json.loads(out.strip().splitlines()[-1])))
    return sum(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--anchor-python", required=True, help="python of a venv with torch and pfns installed")
    parser.add_argument("--repeats", type=int, default=7, help="timed batches per worker")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of pfnforge and anchor runs")
    parser.add_argument("--priors", nargs="+", default=list(PAIRS), choices=list(PAIRS))
    args = parser.parse_args()
    header = (f"{'prior':<6} {'shape B×R×F':<13} {'proc':>4} {'pfnforge ds/s':>14} {'anchor':<17} "
              f"{'anchor ds/s':>12} {'× anchor':>9} {'× own 1 proc':>13}")
    print(header)
    print("-" * len(header))
    for prior_name in args.priors:
        for shape in SHAPES:
            one = {}
            for processes in (1, 2):
                ours, anchor = [], []
                for _ in range(args.rounds):
                    ours.append(_run(sys.executable, "ours", prior_name, shape, processes, args.repeats))
                    anchor.append(_run(args.anchor_python, "anchor", prior_name, shape, processes, args.repeats))
                rate, anchor_rate = statistics.median(ours), statistics.median(anchor)
                one.setdefault("ours", rate)
                print(f"{prior_name:<6} {'×'.join(map(str, shape)):<13} {processes:>4} {rate:>14,.0f} "
                      f"{ANCHOR_NAMES[prior_name]:<17} {anchor_rate:>12,.0f} {rate / anchor_rate:>9.2f} "
                      f"{rate / one['ours']:>13.2f}", flush=True)
    print("\n× anchor: pfnforge datasets/s / anchor datasets/s, same run, same process count (target ≥ 2).")
    print("× own 1 proc: pfnforge with 2 processes / with 1 (target ≥ 1.8: sampling does not hold the GIL).")


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
