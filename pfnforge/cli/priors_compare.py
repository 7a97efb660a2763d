"""``pfnforge priors compare``: the table, the per-dataset meta-features, a plot, and one MLflow parent run
with a child run per prior."""

from __future__ import annotations

import argparse
import time

import pandas as pd

from pfnforge import registry
from pfnforge.config import compose_prior_config
from pfnforge.errors import ConfigError
from pfnforge.prior import BatchShape, Task


def _plot(frames: dict[str, pd.DataFrame], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pfnforge.compare import FEATURES

    figure, axes = plt.subplots(3, 4, figsize=(14, 9))
    for ax, feature in zip(axes.flat, FEATURES, strict=True):
        names = [n for n, f in frames.items() if f[feature].notna().any()]
        ax.boxplot([frames[n][feature].dropna() for n in names], showfliers=False)
        ax.set_xticks(range(1, len(names) + 1), names, rotation=30, ha="right", fontsize=7)
        ax.set_title(feature, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def _log(uri: str, table: pd.DataFrame, files: list, params: dict, transfer: pd.DataFrame | None) -> str:
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    client = MlflowClient(uri)
    found = client.get_experiment_by_name("pfnforge-priors")
    experiment = found.experiment_id if found else client.create_experiment("pfnforge-priors")
    parent = client.create_run(experiment, run_name="priors-compare").info.run_id
    client.log_batch(parent, params=[Param(k, str(v)) for k, v in params.items()])
    for path in files:
        client.log_artifact(parent, str(path))
    now = int(time.time() * 1000)
    scored = {} if transfer is None else {row.pop("trained on"): row for row in transfer.to_dict("records")}
    for row in table.to_dict("records"):
        child = client.create_run(experiment, run_name=row["prior"].replace(":", "-"),
                                  tags={"mlflow.parentRunId": parent}).info.run_id
        metrics = {k: v for k, v in row.items() if k != "prior"}
        metrics.update({f"transfer_nll/{target.replace(':', '-')}": v
                        for target, v in scored.get(row["prior"], {}).items()})
        client.log_batch(child, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items() if pd.notna(v)])
        client.set_terminated(child)
    client.set_terminated(parent)
    return parent


def run(args: argparse.Namespace) -> int:
    from pfnforge.compare import compare
    from pfnforge.evaluation.report import markdown_table
    from pfnforge.inference.mlflow_models import tracking_uri_or_default

    if min(args.batches, args.datasets, args.rows, args.features) < 1:
        raise ConfigError("--batches, --datasets, --rows and --features must be >= 1")
    if args.transfer < 0:
        raise ConfigError(f"--transfer {args.transfer}: give the training steps per prior (>= 1), or leave it out")
    priors = {name: registry.build_prior(compose_prior_config(name)) for name in args.names}
    real = {}
    if args.real != "none":
        tasks = sorted({"classification" if p.task is Task.classification else "regression" for p in priors.values()})
        real = {task: registry.build_prior(compose_prior_config(
            "tables", [f"source={args.real}", f"classification={task == 'classification'}"])) for task in tasks}
        for prior in real.values():
            _ = prior.tables  # read and verified now: a missing suite package fails before any sampling
    shape = BatchShape(num_datasets=args.datasets, num_rows=args.rows, num_features=args.features,
                       num_train_rows=args.rows // 2)
    table, frames = compare(priors, real, shape, args.batches, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "compare.csv", index=False)
    pd.concat([f.assign(prior=n) for n, f in frames.items()]).to_csv(args.out / "meta_features.csv", index=False)
    markdown = markdown_table(table, digits=3)
    (args.out / "compare.md").write_text(markdown)
    _plot(frames, args.out / "compare.png")
    print(markdown)
    files = [args.out / n for n in ("compare.csv", "compare.md", "compare.png", "meta_features.csv")]
    uri = tracking_uri_or_default(args.tracking_uri)
    transfer = None
    if args.transfer:
        from pfnforge.compare_transfer import TransferConfig, plot_transfer, transfer_matrix

        transfer = transfer_matrix(priors, real, TransferConfig(steps=args.transfer, shape=shape, seed=args.seed,
                                                                out=args.out, tracking_uri=uri))
        transfer.to_csv(args.out / "transfer.csv", index=False)
        (args.out / "transfer.md").write_text(markdown_table(transfer, digits=3))
        plot_transfer(transfer, args.out / "transfer.png")
        print("\nmean test NLL of a tiny PFN trained on each row's prior, scored on each column's data:\n")
        print(markdown_table(transfer, digits=3))
        files += [args.out / n for n in ("transfer.csv", "transfer.md", "transfer.png")]
    print(f"tables and plots in {args.out}")
    if not args.no_mlflow:
        params = {"priors": ",".join(args.names), "real": args.real, "batches": args.batches,
                  "shape": f"{args.datasets}x{args.rows}x{args.features}", "seed": args.seed,
                  "transfer_steps": args.transfer}
        print(f"MLflow run {_log(uri, table, files, params, transfer)}")
    return 0
