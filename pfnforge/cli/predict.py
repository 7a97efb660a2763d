"""``pfnforge predict [MODEL] --train T --target COL --test Q --out P``: fit a PFN estimator on a table's
training rows and write predictions for the query table (CSV or Parquet, by file suffix)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pfnforge.errors import InputError

_FORMATS = (".csv", ".parquet", ".pq")


def add_limit_arguments(parser: argparse.ArgumentParser) -> None:
    """The options for data beyond a PFN's limits that ``predict`` and ``evaluate`` share."""
    parser.add_argument("--feature-reduction", default="mixed", choices=["subsample", "pca", "mixed"],
                        help="datasets wider than the model takes: a random subset of features per ensemble "
                             "member, the leading principal components, or the two alternating (default)")
    parser.add_argument("--subsample-features", action=argparse.BooleanOptionalAction, default=True,
                        help="more informative features than the model takes: reduce them per ensemble member "
                             "(see --feature-reduction; default; --no-subsample-features refuses such data)")
    parser.add_argument("--subsample-train-rows", action=argparse.BooleanOptionalAction, default=True,
                        help="more training rows than the model was pretrained on: each ensemble member's context "
                             "is its own random subset of as many as it was (default; --no-subsample-train-rows "
                             "refuses such data)")


def add_parser(commands: argparse._SubParsersAction) -> None:
    predict = commands.add_parser("predict", help="fit a trained PFN on a table and predict another (CSV/Parquet)")
    predict.add_argument("model", nargs="?", default=None,
                         help="a .ckpt, a model directory, models:/NAME/VERSION, models:/NAME@ALIAS or runs:/ID/model "
                              "(default: the bundled model for the task)")
    predict.add_argument("--train", required=True, type=Path, help="training rows with the target column")
    predict.add_argument("--target", required=True, help="name of the target column in --train")
    predict.add_argument("--test", required=True, type=Path, help="rows to predict (a target column is ignored)")
    predict.add_argument("--out", required=True, type=Path, help="where to write predictions (.csv or .parquet)")
    predict.add_argument("--task", choices=["classification", "regression"], default=None,
                         help="default: the model's task, or for the bundled models guessed from the target")
    predict.add_argument("--proba", action="store_true", help="classification: also write one probability per class")
    predict.add_argument("--output", choices=["mean", "median", "quantiles"], default="mean",
                         help="regression: what to predict (default: mean)")
    predict.add_argument("--quantiles", default="0.1,0.5,0.9", help="regression --output quantiles: the levels")
    predict.add_argument("--categorical", default="", help="comma-separated names of categorical columns")
    predict.add_argument("--n-estimators", type=int, default=4, help="ensemble members (default: 4)")
    predict.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    predict.add_argument("--ignore-pretraining-limits", action="store_true",
                         help="allow more training rows/features than the model was pretrained on")
    add_limit_arguments(predict)
    predict.add_argument("--seed", type=int, default=0, help="random_state of the ensemble")
    predict.set_defaults(run=run_predict)


def read_table(path: Path) -> Any:
    import pandas as pd

    if path.suffix.lower() not in _FORMATS:
        raise InputError(f"{path}: unknown table format {path.suffix!r}: use .csv or .parquet")
    if not path.is_file():
        raise InputError(f"{path} does not exist: pass an existing CSV or Parquet file")
    try:
        return pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    except Exception as error:  # pandas raises many types for a malformed file
        raise InputError(f"{path} cannot be read as {path.suffix[1:]}: {error}") from error


def guess_task(target: Any) -> str:
    """A target column's task: regression for floats with non-integer values, else classification."""
    import pandas as pd

    if pd.api.types.is_float_dtype(target) and not (target.dropna() % 1 == 0).all():
        return "regression"
    return "classification"


def run_predict(args: argparse.Namespace) -> int:
    from pfnforge.inference.loading import load_model

    if args.out.suffix.lower() not in _FORMATS:
        raise InputError(f"--out {args.out}: unknown format {args.out.suffix!r}: use .csv or .parquet")
    train, test = read_table(args.train), read_table(args.test)
    if args.target not in train.columns:
        raise InputError(f"--target {args.target!r} is not a column of {args.train}; its columns: "
                         f"{', '.join(map(str, train.columns))}")
    X, y = train.drop(columns=[args.target]), train[args.target]
    X_test = test.drop(columns=[args.target], errors="ignore")
    task = args.task
    if task is None and args.model is not None:
        task = load_model(args.model).task
        if task == "mixed":
            task = guess_task(y)
    task = task or guess_task(y)
    if args.task is None:
        print(f"pfnforge predict: task {task}", file=sys.stderr)
    categorical = [c for c in args.categorical.split(",") if c]
    common = {"n_estimators": args.n_estimators, "random_state": args.seed, "device": args.device,
              "categorical_features": categorical or None,
              "ignore_pretraining_limits": args.ignore_pretraining_limits,
              "subsample_features": args.subsample_features, "feature_reduction": args.feature_reduction,
              "subsample_train_rows": args.subsample_train_rows}
    try:
        out = _predict(args, task, common, X, y, X_test)
    except InputError as error:
        if "declare it categorical" in str(error):  # name the command-line spelling of the fix too
            raise InputError(f"{error} (on the command line: --categorical NAME,...)") from error
        for option in ("subsample_features", "subsample_train_rows"):
            if f"pass {option}=True" in str(error):
                raise InputError(f"{error} (on the command line: --{option.replace('_', '-')})") from error
        raise
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.suffix.lower() == ".csv":
        out.to_csv(args.out, index=False)
    else:
        out.to_parquet(args.out, index=False)
    print(f"wrote {len(out)} predictions to {args.out}", file=sys.stderr)
    return 0


def _predict(args: argparse.Namespace, task: str, common: dict, X: Any, y: Any, X_test: Any) -> Any:
    import pandas as pd

    from pfnforge.inference.estimators import PFNClassifier, PFNRegressor

    if task == "classification":
        estimator = PFNClassifier(args.model, **common).fit(X, y)
        probs = estimator.predict_proba(X_test)
        out = pd.DataFrame({"prediction": estimator.classes_[probs.argmax(1)]})
        if args.proba:
            for k, label in enumerate(estimator.classes_):
                out[f"proba_{label}"] = probs[:, k]
    else:
        estimator = PFNRegressor(args.model, **common).fit(X, y)
        if args.output == "quantiles":
            try:
                levels = [float(q) for q in args.quantiles.split(",")]
            except ValueError:
                raise InputError(f"--quantiles {args.quantiles!r}: pass comma-separated numbers in (0, 1)") from None
            values = estimator.predict(X_test, output="quantiles", quantiles=levels)
            out = pd.DataFrame({f"q{q:g}": values[:, i] for i, q in enumerate(levels)})
        else:
            out = pd.DataFrame({args.output: estimator.predict(X_test, output=args.output)})
    return out
