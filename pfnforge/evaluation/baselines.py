"""The baselines a PFN is compared with in ``pfnforge evaluate``: logistic / linear regression, random
forest, gradient boosting and histogram gradient boosting from scikit-learn, plus XGBoost, LightGBM and
CatBoost where installed. Each is a pipeline that takes the dataset's frame as it is (categorical
columns one-hot encoded for linear models, ordinal-encoded for trees; missing values imputed where the
model needs it).
"""

from __future__ import annotations

import importlib.util
from typing import Any

import pandas as pd

from pfnforge.errors import ConfigError

SKLEARN = ("linear", "random_forest", "gradient_boosting", "hist_gradient_boosting")
OPTIONAL = {"xgboost": "xgboost", "lightgbm": "lightgbm", "catboost": "catboost"}
"""Optional baselines and the module each needs."""


def available() -> list[str]:
    return [*SKLEARN, *(name for name, module in OPTIONAL.items() if importlib.util.find_spec(module))]


def _preprocessor(x: pd.DataFrame, *, one_hot: bool, impute: bool):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    categorical = [c for c in x.columns if isinstance(x[c].dtype, pd.CategoricalDtype)]
    numeric = [c for c in x.columns if c not in categorical]
    if one_hot:
        encoder = make_pipeline(SimpleImputer(strategy="most_frequent"),
                                OneHotEncoder(handle_unknown="ignore", sparse_output=False))
    else:
        encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1)
    numeric_steps = [SimpleImputer(strategy="median", keep_empty_features=True)] if impute else []
    numeric_steps += [StandardScaler()] if one_hot else []
    numeric_pipeline = make_pipeline(*numeric_steps) if numeric_steps else "passthrough"
    return ColumnTransformer([("categorical", encoder, categorical), ("numeric", numeric_pipeline, numeric)])


def _estimator(name: str, task: str, seed: int) -> tuple[Any, bool, bool]:
    """(estimator, one_hot, impute) for baseline ``name``."""
    from sklearn import ensemble, linear_model

    classify = task == "classification"
    if name == "linear":
        model = linear_model.LogisticRegression(max_iter=1000) if classify else linear_model.LinearRegression()
        return model, True, True
    if name == "random_forest":
        kind = ensemble.RandomForestClassifier if classify else ensemble.RandomForestRegressor
        return kind(n_estimators=100, random_state=seed, n_jobs=1), False, True
    if name == "gradient_boosting":
        kind = ensemble.GradientBoostingClassifier if classify else ensemble.GradientBoostingRegressor
        return kind(random_state=seed), False, True
    if name == "hist_gradient_boosting":
        kind = ensemble.HistGradientBoostingClassifier if classify else ensemble.HistGradientBoostingRegressor
        return kind(random_state=seed), False, False
    if name == "xgboost":
        import xgboost

        kind = xgboost.XGBClassifier if classify else xgboost.XGBRegressor
        return kind(n_estimators=200, random_state=seed, n_jobs=1), False, False
    if name == "lightgbm":
        import lightgbm

        kind = lightgbm.LGBMClassifier if classify else lightgbm.LGBMRegressor
        return kind(random_state=seed, n_jobs=1, verbose=-1), False, False
    if name == "catboost":
        import catboost

        kind = catboost.CatBoostClassifier if classify else catboost.CatBoostRegressor
        return kind(random_seed=seed, verbose=False, thread_count=1), False, False
    raise ConfigError(f"baseline {name!r} is unknown: choose from {', '.join(available())}")


def build_baseline(name: str, task: str, x: pd.DataFrame, seed: int) -> Any:
    """A fresh, unfitted pipeline for baseline ``name`` on ``task``, shaped for frames like ``x``."""
    from sklearn.pipeline import make_pipeline

    if name not in available():
        raise ConfigError(f"baseline {name!r} is unknown or not installed: available are {', '.join(available())}")
    model, one_hot, impute = _estimator(name, task, seed)
    return make_pipeline(_preprocessor(x, one_hot=one_hot, impute=impute), model)


def label(name: str, task: str) -> str:
    """The name a baseline has in tables: ``logistic_regression`` / ``linear_regression`` for ``linear``."""
    if name == "linear":
        return "logistic_regression" if task == "classification" else "linear_regression"
    return name


