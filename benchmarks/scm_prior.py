"""The SCM prior vs TabPFN v1's MLP-SCM prior and TabICL's SCM prior, classification, 1 and 2 processes.

The anchors run in their own virtual environment (benchmark-only; never dependencies of pfnforge):

    python3 -m venv /tmp/anchors-venv && /tmp/anchors-venv/bin/pip install torch==2.13.0
    /tmp/anchors-venv/bin/pip install tabpfn==0.1.11 tabicl xgboost   # xgboost: TabICL's tree SCM needs it
    /tmp/anchors-venv/bin/pip install gpytorch   # tabpfn 0.1.11's priors import it without requiring it
    python benchmarks/scm_prior.py --anchor-python /tmp/anchors-venv/bin/python [--rounds 2]
    python benchmarks/scm_prior.py --anchor-python - --only-ours   # pfnforge alone: 1 vs 2 processes
    python benchmarks/scm_prior.py --anchor-python /tmp/anchors-venv/bin/python --additions   # cost of each part

This script installs nothing. Every measurement is a fresh subprocess (this script re-run in worker mode:
pfnforge's with this interpreter, the anchors' with ``--anchor-python``), one BLAS/OpenMP/torch thread
each; with 2 processes both warm up, then start timing together (a file barrier), and the rate is the sum
of their rates (datasets / median batch seconds). Rounds alternate the three sides so that drift of a
shared machine hits all of them; the table shows the median over rounds. Shape: 64 datasets × 1,024 rows
× 100 feature columns, split at 512, every side drawing its number of used features per dataset
(pfnforge 1..100, TabPFN 1..100, TabICL 2..100) and 2..10 classes.

- ``scm``: pfnforge's defaults (graph + tree mechanisms, categoricals, warps, grids, missing values in half
  of the datasets); ``scm 100 f`` additionally fixes 100 used features per dataset (the heaviest case).
- ``TabPFN v1`` (``TabPFN 100 f``: 100 used features per dataset): ``tabpfn==0.1.11``'s ``priors.mlp`` inside
  ``priors.flexible_categorical`` inside ``priors.differentiable_prior``, wired as its
  ``scripts/model_builder.py`` does, with the hyperparameters of its published training notebook
  (``PriorFittingCustomPrior.ipynb``: causal/non-causal MLPs with meta-sampled depth, width, dropout, noise,
  init; a new MLP per dataset; 20 % categorical features; 2-10 classes, label normalisation and the train/test
  compatibility check). The GP half of its prior bag is left out: this is its MLP-SCM prior. Its package
  ``__init__`` imports a transformer layer that does not import on torch 2.13; the worker registers the
  package without running that ``__init__`` and imports ``tabpfn.priors`` unchanged.
- ``--additions``: one process, CPU time: the defaults, each TabPFN-v1 part of ``configs/prior/scm_v1.yaml``
  alone on top of them, all of them (``prior=scm_v1``), and TabPFN v1, in alternating rounds.
- ``TabICL``: ``tabicl.prior.PriorDataset(prior_type="mix_scm")`` (MLP SCMs 70 %, XGBoost tree SCMs 30 %,
  its default sampled hyperparameters, categorical features), ``n_jobs=1``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

from _workers import run_workers, time_draws

SHAPE = (64, 1024, 100)
SIDES = {"scm": [], "scm 100 f": ["num_features.low=100"], "TabPFN v1": None, "TabPFN 100 f": None, "TabICL": None}
"""pfnforge sides: their overrides of the scm config; anchors: None."""
ANCHOR_OF = {"scm": "TabPFN v1", "scm 100 f": "TabPFN 100 f", "TabPFN v1": "TabPFN v1", "TabPFN 100 f": "TabPFN 100 f",
             "TabICL": "TabPFN v1"}
"""The TabPFN side each side's "× TabPFN" compares with: the one drawing the same number of features."""
ADDITIONS = {"+meta": ["meta_hyperpriors=true"], "+vector nodes": ["node_width.high=4"],
             "+hetero noise": ["heteroscedastic_fraction.high=0.3"],
             "+t noise": ["heavy_tailed_noise_fraction.high=0.3"],
             "+label noise": ["label_noise.high=0.05"], "+redundant": ["redundant_fraction.high=0.1"],
             "+outliers": ["outlier_rate.high=0.01"], "+imbalance 1000": ["class_imbalance.high=1000"],
             "scm_v1 (all)": []}
"""``--additions`` sides: overrides of the scm defaults, each one part of ``prior=scm_v1`` (the last: all of it)."""
REPEATS = {"scm": 21, "scm 100 f": 15, "TabPFN v1": 21, "TabPFN 100 f": 11, "TabICL": 5}
"""Timed batches per worker: the anchors' batch times vary several-fold with their meta-sampled sizes."""


def _ours(side: str, repeats: int, barrier: str) -> list[list[float]]:
    import numpy as np
    from threadpoolctl import threadpool_limits

    from pfnforge.config import compose_prior_config
    from pfnforge.prior import BatchShape
    from pfnforge_priors.scm import SCMPrior

    threadpool_limits(1)
    if side in ADDITIONS:
        prior = SCMPrior(compose_prior_config("scm_v1" if side == "scm_v1 (all)" else "scm", ADDITIONS[side]))
    else:
        prior = SCMPrior(compose_prior_config("scm", SIDES[side]))
    B, R, F = SHAPE
    shape = BatchShape(num_datasets=B, num_rows=R, num_features=F, num_train_rows=R // 2)
    rng = np.random.default_rng(os.getpid())
    return time_draws(lambda: prior.sample(rng, shape), repeats, barrier, warmups=2)


def _tabpfn_v1(repeats: int, barrier: str, fixed_features: bool) -> list[list[float]]:
    import importlib.util
    import random
    import types

    import numpy as np
    import torch

    spec = importlib.util.find_spec("tabpfn")  # skip tabpfn/__init__.py (see the module docstring)
    package = types.ModuleType("tabpfn")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["tabpfn"] = package
    from tabpfn.priors import differentiable_prior, flexible_categorical, mlp
    from tabpfn.priors.utils import uniform_int_sampler_f

    torch.set_num_threads(1)
    seed = os.getpid()
    torch.manual_seed(seed), random.seed(seed), np.random.seed(seed % 2**32)
    B, R, F = SHAPE
    hyperparameters = {
        "emsize": 512, "sampling": "normal", "mix_activations": False, "pre_sample_causes": True,
        "multiclass_type": "rank", "nan_prob_unknown_reason_reason_prior": 0.5, "categorical_feature_p": 0.2,
        "nan_prob_no_reason": 0.0, "nan_prob_unknown_reason": 0.0, "nan_prob_a_reason": 0.0, "max_num_classes": 10,
        "num_classes": uniform_int_sampler_f(2, 10), "noise_type": "Gaussian", "balanced": False,
        "normalize_to_ranking": False, "set_value_to_nan": 0.1, "normalize_by_used_features": True,
        "num_features_used": uniform_int_sampler_f(F if fixed_features else 1, F),
        "num_categorical_features_sampler_a": -1.0,
        "output_multiclass_ordered_p": 0.0, "normalize_with_sqrt": False, "new_mlp_per_example": True,
        "prior_mlp_scale_weights_sqrt": True, "differentiable_hps_as_style": False, "random_feature_rotation": True,
        "rotate_normalized_labels": True, "normalize_labels": True, "check_is_compatible": True,
        "normalize_ignore_label_too": False, "seq_len_used": R, "verbose": False}
    differentiable = {
        "num_layers": {"distribution": "meta_gamma", "max_alpha": 2, "max_scale": 3, "round": True, "lower_bound": 2},
        "prior_mlp_hidden_dim": {"distribution": "meta_gamma", "max_alpha": 3, "max_scale": 100, "round": True,
                                 "lower_bound": 4},
        "prior_mlp_dropout_prob": {"distribution": "meta_beta", "scale": 0.6, "min": 0.1, "max": 5.0},
        "noise_std": {"distribution": "meta_trunc_norm_log_scaled", "max_mean": 0.3, "min_mean": 0.0001,
                      "round": False, "lower_bound": 0.0},
        "init_std": {"distribution": "meta_trunc_norm_log_scaled", "max_mean": 10.0, "min_mean": 0.01,
                     "round": False, "lower_bound": 0.0},
        "num_causes": {"distribution": "meta_gamma", "max_alpha": 3, "max_scale": 7, "round": True, "lower_bound": 2},
        "prior_mlp_activations": {"distribution": "meta_choice_mixed",
                                  "choice_values": [torch.nn.Tanh, torch.nn.Identity, torch.nn.ReLU]},
        **{name: {"distribution": "meta_choice", "choice_values": [True, False]}
           for name in ("is_causal", "pre_sample_weights", "y_is_effect", "block_wise_dropout", "sort_features",
                        "in_clique")}}

    def mlp_batch(batch_size, seq_len, num_features, hyperparameters, device, **kwargs):
        return mlp.get_batch(batch_size=batch_size, seq_len=seq_len, num_features=num_features,
                             hyperparameters=hyperparameters, device=device, **kwargs)

    def flexible_batch(batch_size, seq_len, num_features, hyperparameters, device, **kwargs):
        return flexible_categorical.get_batch(batch_size=batch_size, seq_len=seq_len, num_features=num_features,
                                              get_batch=mlp_batch, device=device, hyperparameters=hyperparameters,
                                              **kwargs)

    def draw():
        with torch.no_grad():
            differentiable_prior.get_batch(B, R, F, flexible_batch, device="cpu",
                                           differentiable_hyperparameters=differentiable,
                                           hyperparameters=hyperparameters, single_eval_pos=R // 2)
    return time_draws(draw, repeats, barrier, warmups=1)


def _tabicl(repeats: int, barrier: str) -> list[list[float]]:
    import numpy as np
    import torch
    from tabicl.prior import PriorDataset

    torch.set_num_threads(1)
    seed = os.getpid()
    torch.manual_seed(seed), np.random.seed(seed % 2**32)
    B, R, F = SHAPE
    prior = PriorDataset(batch_size=B, min_features=2, max_features=F, max_classes=10, max_seq_len=R,
                         min_train_size=0.5, max_train_size=0.5, prior_type="mix_scm", n_jobs=1)
    return time_draws(lambda: prior.get_batch(), repeats, barrier, warmups=1)


def _run(python: str, side: str, processes: int, repeats: int) -> tuple[float, float]:
    """Datasets/s summed over ``processes`` simultaneous worker processes, by wall and by CPU time."""
    args = [python, os.path.abspath(__file__), "--worker", side, str(repeats)]
    return run_workers(args, processes, SHAPE[0], side)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--anchor-python", required=True, help="python of a venv with torch, tabpfn and tabicl")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of the sides")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the timed batches per worker")
    parser.add_argument("--only-ours", action="store_true",
                        help="time the pfnforge sides alone (1 vs 2 processes); no anchor ratios")
    parser.add_argument("--additions", action="store_true",
                        help="the cost of each TabPFN-v1 part of scm_v1, and all of them against TabPFN v1")
    args = parser.parse_args()
    if args.additions:
        _additions(args)
        return
    if args.only_ours:
        for side in [s for s in SIDES if SIDES[s] is not None]:
            one, two = (statistics.median(_run(sys.executable, side, p, REPEATS[side])[0] for _ in range(args.rounds))
                        for p in (1, 2))
            print(f"{side:<12} 1 proc {one:8.1f} ds/s   2 procs {two:8.1f} ds/s   × own 1 {two / one:5.2f}")
        return
    wall: dict[tuple[str, int], float] = {}
    cpu: dict[tuple[str, int], float] = {}
    for processes in (1, 2):
        measured: dict[str, list[tuple[float, float]]] = {side: [] for side in SIDES}
        for _ in range(args.rounds):
            for side in SIDES:
                python = sys.executable if SIDES[side] is not None else args.anchor_python
                repeats = max(1, round(REPEATS[side] * args.scale))
                measured[side].append(_run(python, side, processes, repeats))
        for side, values in measured.items():
            wall[side, processes] = statistics.median(v[0] for v in values)
            cpu[side, processes] = statistics.median(v[1] for v in values)
    print(f"shape {'×'.join(map(str, SHAPE))}, classification; datasets/s summed over processes")
    header = (f"{'side':<12} {'proc':>4} {'ds/s':>8} {'× TabPFN':>9} {'× TabICL':>9} {'× own 1':>8} "
              f"{'ds/CPU-s':>9} {'× TabPFN':>9} {'× TabICL':>9}")
    print(header)
    print("-" * len(header))
    for side in SIDES:
        for processes in (1, 2):
            key, anchor, tabicl = (side, processes), (ANCHOR_OF[side], processes), ("TabICL", processes)
            print(f"{side:<12} {processes:>4} {wall[key]:>8.1f} {wall[key] / wall[anchor]:>9.2f} "
                  f"{wall[key] / wall[tabicl]:>9.2f} {wall[key] / wall[side, 1]:>8.2f} {cpu[key]:>9.1f} "
                  f"{cpu[key] / cpu[anchor]:>9.2f} {cpu[key] / cpu[tabicl]:>9.2f}")
    print("\nds/s: datasets / median wall seconds per batch; ds/CPU-s: by the process's CPU time (what a"
          " dedicated core would give). × TabPFN: over the TabPFN v1 side drawing as many features (scm: 1..100,"
          " 100 f: 100), same run, same process count (target ≥ 2); × TabICL (target ≥ 10); × own 1: 2"
          " processes over 1 (target ≥ 1.8, needs two idle cores).")


def _additions(args: argparse.Namespace) -> None:
    sides = ["scm", *ADDITIONS, "TabPFN v1"]
    measured: dict[str, list[float]] = {side: [] for side in sides}
    for _ in range(args.rounds):
        for side in sides:
            python = args.anchor_python if side == "TabPFN v1" else sys.executable
            repeats = max(1, round(REPEATS.get(side, REPEATS["scm"]) * args.scale))
            measured[side].append(_run(python, side, 1, repeats)[1])
    rate = {side: statistics.median(values) for side, values in measured.items()}
    print(f"shape {'×'.join(map(str, SHAPE))}, classification, 1 process; datasets per CPU second")
    print(f"{'side':<16} {'ds/CPU-s':>9} {'cost × scm':>11} {'× TabPFN v1':>12}")
    for side in sides:
        cost, anchor = rate["scm"] / rate[side], rate[side] / rate["TabPFN v1"]
        print(f"{side:<16} {rate[side]:>9.1f} {cost:>11.2f} {anchor:>12.2f}")
    print("\ncost × scm: CPU time per dataset over the defaults' (1.00: free); × TabPFN v1: datasets per CPU second"
          " over TabPFN v1's MLP-SCM prior at its own settings, same run.")


def _worker_main(argv: list[str]) -> None:
    side, repeats, barrier = argv
    if side.startswith("TabPFN"):
        times = _tabpfn_v1(int(repeats), barrier, fixed_features=side == "TabPFN 100 f")
    elif side == "TabICL":
        times = _tabicl(int(repeats), barrier)
    else:
        times = _ours(side, int(repeats), barrier)
    print(json.dumps(times))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _worker_main(sys.argv[2:])
    else:
        main()
