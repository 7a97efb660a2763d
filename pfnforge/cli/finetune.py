"""``pfnforge finetune [MODEL] --train T --target COL --out DIR``: fine-tune a trained PFN on one table (CSV or
Parquet) and write the result as a model directory whose ``training`` provenance names the parent model, the
data (file name, SHA-256, rows), the options, the history and the validation loss before and after;
``--register NAME`` registers that directory in the MLflow Model Registry."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pfnforge.cli import at_least
from pfnforge.cli.predict import guess_task, read_table
from pfnforge.errors import ConfigError, InputError

_OPTIONS = ("max_steps", "learning_rate", "weight_decay", "validation_fraction", "patience", "eval_every",
            "batch_datasets", "trainable", "num_views", "seed")
"""``FinetuneConfig`` fields with a command-line option of the same name (``--max-steps``)."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("finetune", help="fine-tune a trained PFN on one table (CSV/Parquet) and write "
                                                  "it as a model directory")
    parser.add_argument("model", nargs="?", default=None,
                        help="a .ckpt, a model directory, models:/NAME/VERSION, models:/NAME@ALIAS or runs:/ID/model "
                             "(default: the bundled model for the task)")
    parser.add_argument("--train", required=True, type=Path, help="the table to fine-tune on, with the target")
    parser.add_argument("--target", required=True, help="name of the target column in --train")
    parser.add_argument("--out", required=True, type=Path, help="the model directory to write")
    parser.add_argument("--task", choices=["classification", "regression"], default=None,
                        help="default: the model's task, or for the bundled models guessed from the target")
    parser.add_argument("--categorical", default="", help="comma-separated names of categorical columns")
    parser.add_argument("--device", default="cpu", help="where the steps run: cpu, cuda or cuda:N")
    parser.add_argument("--max-steps", type=at_least(1), help="optimiser steps at most (default: 100)")
    parser.add_argument("--learning-rate", type=float, help="AdamW learning rate (default: 1e-4)")
    parser.add_argument("--weight-decay", type=float, help="AdamW weight decay (default: 0)")
    parser.add_argument("--trainable", help="all (default), heads, or last:N (the last N blocks, the output norm "
                                            "and the heads)")
    parser.add_argument("--validation-fraction", type=float, help="share of rows held out (default: 0.2)")
    parser.add_argument("--eval-every", type=at_least(1), help="steps between validation losses (default: 10)")
    parser.add_argument("--patience", type=at_least(1),
                        help="validation losses without improvement before stopping (default: 3)")
    parser.add_argument("--batch-datasets", type=at_least(1),
                        help="context/query splits of the rows per step (default: 8)")
    parser.add_argument("--num-views", type=at_least(1), help="ensemble views of the table (default: 4)")
    parser.add_argument("--seed", type=int, help="seeds the split, the views and the steps (default: 0)")
    parser.add_argument("--register", metavar="NAME", help="register the written directory as a new version of "
                                                           "NAME in the MLflow Model Registry")
    parser.add_argument("--alias", help="with --register: the alias to point at the new version")
    parser.add_argument("--tracking-uri", help="with --register: MLflow tracking/registry URI (default: "
                                               "$MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)")
    parser.set_defaults(run=run_finetune)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_finetune(args: argparse.Namespace) -> int:
    from pfnforge.inference.artifact import save_model_dir
    from pfnforge.inference.finetune import finetune, finetune_config
    from pfnforge.inference.loading import load_model

    if args.register is None and (args.alias or args.tracking_uri):
        raise ConfigError("--alias and --tracking-uri only apply with --register NAME")
    table = read_table(args.train)
    if args.target not in table.columns:
        raise InputError(f"--target {args.target!r} is not a column of {args.train}; its columns: "
                         f"{', '.join(map(str, table.columns))}")
    X, y = table.drop(columns=[args.target]), table[args.target]
    parent = load_model(args.model, task=args.task) if args.model is not None else None
    task = args.task or (parent.task if parent is not None and parent.task != "mixed" else guess_task(y))
    if args.task is None:
        print(f"pfnforge finetune: task {task}", file=sys.stderr)
    parent = parent or load_model(None, task=task)
    config = finetune_config(None, {name: getattr(args, name) for name in _OPTIONS if getattr(args, name) is not None})
    categorical = [c for c in args.categorical.split(",") if c]
    started = time.perf_counter()
    try:
        result = finetune(parent, X, y, config, task=task,
                          estimator_params={"categorical_features": categorical or None, "device": args.device})
    except InputError as error:
        if "declare it categorical" in str(error):  # name the command-line spelling of the fix too
            raise InputError(f"{error} (on the command line: --categorical NAME,...)") from error
        raise
    training = _provenance(args, parent, task, config, result, seconds=time.perf_counter() - started,
                           num_rows=len(table))
    directory = save_model_dir(result.trained, args.out, training=training)
    print(_history_table(result))
    print(f"wrote {directory} (load it with {'PFNClassifier' if task == 'classification' else 'PFNRegressor'}"
          f"({str(directory)!r}) or pfnforge predict {directory} ...)")
    if args.register is not None:
        from pfnforge.cli.models import register_and_report

        return register_and_report(directory, args.register, alias=args.alias, tracking_uri=args.tracking_uri,
                                   target=args.target)
    return 0


def _provenance(args: argparse.Namespace, parent: Any, task: str, config: Any, result: Any, *, seconds: float,
                num_rows: int) -> dict[str, Any]:
    """The fine-tuned model's ``training`` record: the parent, the data, the options, the history."""
    from pfnforge.inference.export import machine

    parent_training = parent.metadata.get("training", {})
    return {
        "kind": "finetune",
        "finetuned": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "parent": {"source": str(args.model) if args.model is not None else f"bundled {task} model",
                   "recipe": parent_training.get("recipe"),
                   "prior": parent.metadata.get("prior", {}).get("name"),
                   "global_step": parent.metadata.get("global_step"), "training": parent_training},
        "dataset": {"file": args.train.name, "sha256": sha256_of(args.train), "target": args.target, "task": task,
                    "rows": num_rows, "finetune_rows": result.num_finetune_rows,
                    "validation_rows": result.num_validation_rows,
                    "categorical": [c for c in args.categorical.split(",") if c]},
        "finetune": dataclasses.asdict(config),
        "history": [dataclasses.asdict(record) for record in result.history],
        "validation_loss": {"before": result.initial_validation_loss, "after": result.best_validation_loss},
        "best_step": result.best_step,
        "stopped_early": result.stopped_early,
        "train_seconds": round(seconds, 3),
        "machine": machine(),
    }


def _history_table(result: Any) -> str:
    lines = ["  step  train loss  validation loss", f"{0:6d}  {'':>10}  {result.initial_validation_loss:15.4f}"]
    for record in result.history:
        mark = "  *" if record.step == result.best_step else ""
        lines.append(f"{record.step:6d}  {record.train_loss:10.4f}  {record.validation_loss:15.4f}{mark}")
    stop = f", stopped early at step {result.history[-1].step}" if result.stopped_early else ""
    kept = f"step {result.best_step}'s weights" if result.best_step else "the parent's weights (no step improved)"
    lines.append(f"validation loss {result.initial_validation_loss:.4f} -> {result.best_validation_loss:.4f}: "
                 f"kept {kept}{stop}")
    return "\n".join(lines)
