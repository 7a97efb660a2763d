"""The MLflow pyfunc flavour of a trained PFN: one frame in, predictions for its query rows out.

A PFN learns from the rows it is given at prediction time, so the frame holds both: training rows with
their target, and query rows, told apart by the column ``__pfnforge_split__`` (``"train"`` or ``"query"``).
The target column is ``params["target"]`` (default: the name given at registration, ``target``); its
values on query rows are ignored. Every other column is a feature. The answer has one row per query row,
in their order: class probabilities (one column per class, named by the class label), the predicted
class (``output="class"``), or the predictive ``mean``, ``median`` or quantiles (``q0.1`` ...) of a
regression. The frame format is documented in docs/serving.md.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from pfnforge.errors import ConfigError

SPLIT_COLUMN = "__pfnforge_split__"
"""The column that marks each row as a training row (``"train"``) or a row to predict (``"query"``)."""
SPLITS = ("train", "query")
OUTPUTS = {"classification": ("proba", "class"), "regression": ("mean", "median", "quantiles")}
DEFAULT_PARAMS: dict[str, Any] = {"target": "target", "task": "auto", "output": "auto",
                                  "quantiles": [0.1, 0.5, 0.9], "categorical_features": [], "n_estimators": 4,
                                  "random_state": 0, "subsample_train_rows": True, "subsample_features": True,
                                  "feature_reduction": "mixed", "ignore_pretraining_limits": False}
"""The parameters ``predict`` accepts (also the model signature's parameter schema), with defaults."""


def _infer_task(trained, target_values: pd.Series, requested: str) -> str:
    if requested != "auto":
        if requested not in OUTPUTS:
            raise ConfigError(f"params task={requested!r} is unknown: choose auto, classification or regression")
        return requested
    if trained.task != "mixed":
        return trained.task
    # a model with both heads: a float target with non-integer values is a regression target
    numeric = pd.api.types.is_float_dtype(target_values) and not np.all(np.mod(target_values.dropna(), 1) == 0)
    return "regression" if numeric else "classification"


def split_frame(frame: pd.DataFrame, target: str) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """(training features, training target, query features) of a pyfunc input frame; clear errors on bad
    frames."""
    if not isinstance(frame, pd.DataFrame):
        raise ConfigError(f"the input must be a pandas DataFrame (dataframe_split over HTTP), got "
                          f"{type(frame).__name__}")
    if SPLIT_COLUMN not in frame.columns:
        raise ConfigError(f"the input frame has no {SPLIT_COLUMN!r} column: mark each row as 'train' (a row with "
                          f"its target, to learn from) or 'query' (a row to predict); columns were "
                          f"{list(frame.columns)[:20]}")
    if target not in frame.columns:
        raise ConfigError(f"the input frame has no target column {target!r}: name it with params "
                          f"{{'target': ...}}; columns were {list(frame.columns)[:20]}")
    split = frame[SPLIT_COLUMN].astype(str)
    unknown = sorted(set(split) - set(SPLITS))
    if unknown:
        raise ConfigError(f"{SPLIT_COLUMN} holds {unknown[:5]}: each row must be 'train' or 'query'")
    features = frame.drop(columns=[SPLIT_COLUMN, target])
    is_train = (split == "train").to_numpy()
    if not is_train.any() or is_train.all():
        raise ConfigError(f"the input frame needs at least one 'train' and one 'query' row in {SPLIT_COLUMN} "
                          f"(got {int(is_train.sum())} train and {int((~is_train).sum())} query rows)")
    return features[is_train], frame.loc[is_train, target], features[~is_train]


SERVING_FILE = "pfnforge-serving.json"
"""Beside the model directory's own files in a registered model's data: the default ``target`` column."""


class ServedPFN:
    """What ``mlflow.pyfunc.load_model`` returns for a registered pfnforge model: the trained PFN and the
    default target column, answering frames with ``predict_frame``."""

    def __init__(self, trained, target: str = "target") -> None:
        self.trained, self.target = trained, target

    def predict(self, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import BAD_REQUEST

        from pfnforge.errors import PfnforgeError

        try:
            return predict_frame(self.trained, model_input, {"target": self.target, **(params or {})})
        except PfnforgeError as error:  # MLflow's own error type: the server answers 400 with this message
            raise MlflowException(str(error), error_code=BAD_REQUEST) from error


def _load_pyfunc(data_path: str) -> ServedPFN:
    """MLflow's loader-module hook: a registered pfnforge model names this installed module, and MLflow calls
    this with the model's data directory (a pfnforge model directory). Loading runs no code from the
    artifact store: the directory holds JSON and tensors read with ``weights_only``."""
    import json
    from pathlib import Path

    from pfnforge.inference.artifact import load_model_dir

    serving = Path(data_path) / SERVING_FILE
    target = json.loads(serving.read_text()).get("target", "target") if serving.is_file() else "target"
    return ServedPFN(load_model_dir(data_path), target)


class PFNPyfuncModel(mlflow.pyfunc.PythonModel):
    """The wrapper that versions registered as MLflow "models from code" name in the copy of
    ``pyfunc_entry.py`` they carry: kept so that such versions still load. Registrations now use
    ``_load_pyfunc``, and carry no code."""

    def __init__(self) -> None:
        self.served = None

    def load_context(self, context) -> None:
        from pfnforge.inference.artifact import load_model_dir

        self.served = ServedPFN(load_model_dir(context.artifacts["model"]),
                                (context.model_config or {}).get("target", "target"))

    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        return self.served.predict(model_input, params)


def predict_frame(trained, frame: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
    """Predictions for the query rows of ``frame`` (see the module docstring) with ``trained``."""
    from pfnforge.inference.estimators import PFNClassifier, PFNRegressor

    unknown = sorted(set(params or {}) - set(DEFAULT_PARAMS))
    if unknown:
        raise ConfigError(f"unknown params {unknown}: predict takes {sorted(DEFAULT_PARAMS)}")
    params = {**DEFAULT_PARAMS, **{k: v for k, v in (params or {}).items() if v is not None}}
    x_train, y_train, x_query = split_frame(frame, str(params["target"]))
    task = _infer_task(trained, y_train, str(params["task"]))
    output = OUTPUTS[task][0] if params["output"] == "auto" else str(params["output"])
    if output not in OUTPUTS[task]:
        raise ConfigError(f"params output={output!r} does not apply to {task}: choose one of "
                          f"{', '.join(('auto', *OUTPUTS[task]))}")
    options = {"n_estimators": int(params["n_estimators"]), "random_state": int(params["random_state"]),
               "categorical_features": [str(c) for c in np.atleast_1d(params["categorical_features"])] or None,
               "feature_reduction": str(params["feature_reduction"]),
               **{name: _flag(name, params[name])
                  for name in ("subsample_train_rows", "subsample_features", "ignore_pretraining_limits")}}
    if task == "classification":
        if pd.api.types.is_float_dtype(y_train) and np.all(np.mod(y_train, 1) == 0):
            y_train = y_train.astype(np.int64)  # integer labels that JSON nulls on query rows turned into floats
        classifier = PFNClassifier(trained, **options).fit(x_train, y_train)
        if output == "class":
            return pd.DataFrame({"prediction": classifier.predict(x_query)}, index=x_query.index)
        return pd.DataFrame(classifier.predict_proba(x_query), index=x_query.index,
                            columns=[str(label) for label in classifier.classes_])
    regressor = PFNRegressor(trained, **options).fit(x_train, y_train)
    if output != "quantiles":
        return pd.DataFrame({output: regressor.predict(x_query, output=output)}, index=x_query.index)
    quantiles = [float(q) for q in np.atleast_1d(params["quantiles"])]
    values = np.asarray(regressor.predict(x_query, output="quantiles", quantiles=quantiles)).reshape(
        len(x_query), len(quantiles))
    return pd.DataFrame(values, index=x_query.index, columns=[f"q{q:g}" for q in quantiles])


def _flag(name: str, value: Any) -> bool:
    """A boolean parameter, also when it arrives as a string (``"true"``/``"false"``) or 0/1."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if str(value).lower() in ("true", "1", "false", "0"):
        return str(value).lower() in ("true", "1")
    raise ConfigError(f"params {name}={value!r} must be true or false")


def model_signature(target: str = "target"):
    """No input schema (a PFN takes any dataset's columns: a fixed schema would drop them), the params."""
    from mlflow.models import ModelSignature
    from mlflow.types import ParamSchema, ParamSpec

    defaults = {**DEFAULT_PARAMS, "target": target}
    specs = [ParamSpec("quantiles", "double", defaults["quantiles"], shape=(-1,)),
             ParamSpec("categorical_features", "string", defaults["categorical_features"], shape=(-1,))]
    specs += [ParamSpec(name, "boolean" if isinstance(value, bool) else "long" if isinstance(value, int) else "string",
                        value)
              for name, value in defaults.items() if name not in ("quantiles", "categorical_features")]
    return ModelSignature(inputs=None, params=ParamSchema(specs))


def input_example(trained, target: str = "target", seed: int = 0) -> pd.DataFrame:
    """A small frame in the pyfunc format (6 training rows, 2 query rows) fitting the model's limits."""
    rng = np.random.default_rng(seed)
    num_features = min(2, trained.limits["max_features"])
    frame = pd.DataFrame({f"x{i}": rng.standard_normal(8).round(3) for i in range(num_features)})
    if trained.task == "regression":
        frame[target] = (frame["x0"] * 2 + 0.1 * rng.standard_normal(8)).round(3)
    else:
        frame[target] = [0, 1, 0, 1, 0, 1, 0, 1]
    frame[SPLIT_COLUMN] = ["train"] * 6 + ["query"] * 2
    return frame
