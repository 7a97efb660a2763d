"""``val/gap_to_exact`` against optimiser steps for tracked training runs: the measured learning curve of a
GP reference recipe (nats per test row between the PFN and the exact GP posterior on the run's fixed
validation set), printed as a table and plotted.

    python benchmarks/gp_reference_curve.py sqlite:///mlflow.db gp_1d_reference [more run names]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import mlflow


def gap_history(client: mlflow.MlflowClient, run_name: str) -> list[tuple[int, float]]:
    """(step, gap) of the newest tracked run called ``run_name``."""
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, f"attributes.run_name = '{run_name}'",
                              order_by=["attributes.start_time DESC"], max_results=1)
    if not runs:
        raise SystemExit(f"no tracked run is called {run_name!r} in this store")
    history = client.get_metric_history(runs[0].info.run_id, "val/gap_to_exact")
    return sorted((m.step + 1, m.value) for m in history)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tracking_uri")
    parser.add_argument("run_names", nargs="+")
    parser.add_argument("--labels", nargs="*", help="legend labels, one per run name (default: the names)")
    parser.add_argument("--out", default="docs/benchmarks/gp_reference_training.png")
    args = parser.parse_args()
    labels = args.labels or args.run_names
    if len(labels) != len(args.run_names):
        raise SystemExit(f"--labels gives {len(labels)} labels for {len(args.run_names)} runs: give one per run")
    client = mlflow.MlflowClient(args.tracking_uri)
    curves = {label: gap_history(client, name) for label, name in zip(labels, args.run_names, strict=True)}
    for name, curve in curves.items():
        print(f"{name}: step  val/gap_to_exact")
        for step, gap in curve:
            print(f"  {step:>6} {gap:8.4f}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, curve in curves.items():
        ax.plot(*zip(*curve, strict=True), "o-", ms=3, label=name)
    ax.axhline(0.05, ls="--", color="grey", lw=1, label="0.05 nats")
    ax.set_yscale("log")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("val/gap_to_exact (nats per test row)")
    ax.legend()
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"plot: {args.out}")


if __name__ == "__main__":
    main()
