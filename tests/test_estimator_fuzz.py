"""Random frames (shapes, dtypes, NaN/inf placement, categoricals, strings, constant columns, odd targets) into the
estimators: every input either works (finite probabilities summing to one, finite predictions, right shapes)
or raises pfnforge's InputError, never anything else. A tiny untrained PFN keeps it fast; its small limits
(4 features, 3 classes, 30 rows) make the limit errors reachable too."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pfnforge.errors import InputError
from pfnforge.inference.artifact import build_random_pfn
from pfnforge.inference.estimators import PFNClassifier, PFNRegressor
from pfnforge.model.pfn import ModelConfig

TINY = build_random_pfn(ModelConfig(embed_dim=16, num_layers=1, num_heads=2, max_features=4, max_classes=3,
                                    num_buckets=16), max_rows=30)
# weighted so that most frames are valid and every refusal still comes up
KINDS = ["float"] * 8 + ["int", "bool", "constant", "category", "category", "declared_string", "huge"] * 2 + ["string"]
SPECIALS = [np.nan] * 18 + [np.inf, -np.inf]
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


def _column(draw, kind: str, num_rows: int) -> pd.Series:
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if kind in ("float", "huge"):
        values = rng.normal(size=num_rows) * (1e200 if kind == "huge" else 1.0)
        for _ in range(draw(st.integers(0, 3))):  # NaN / inf at random places
            if num_rows:
                values[draw(st.integers(0, num_rows - 1))] = draw(st.sampled_from(SPECIALS))
        return pd.Series(values)
    if kind == "int":
        return pd.Series(rng.integers(-5, 5, num_rows))
    if kind == "bool":
        return pd.Series(rng.random(num_rows) > 0.5)
    if kind == "constant":
        return pd.Series(np.full(num_rows, draw(st.sampled_from([0.0, 3.5, -1e9]))))
    labels = rng.choice(["a", "b", "c", None], num_rows).tolist()
    return pd.Series(pd.Categorical(labels)) if kind == "category" else pd.Series(labels, dtype=object)


@st.composite
def frames(draw):
    num_rows = draw(st.integers(0, 40) if draw(st.integers(0, 15)) == 15 else st.integers(3, 40))
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=0 if draw(st.integers(0, 15)) == 15 else 1,
                         max_size=5 if draw(st.integers(0, 5)) == 5 else 4))
    frame = pd.DataFrame({f"c{j}": _column(draw, kind, num_rows) for j, kind in enumerate(kinds)},
                         index=range(num_rows))
    declared = [f"c{j}" for j, kind in enumerate(kinds) if kind == "declared_string"]
    as_array = draw(st.booleans()) and not any(k in ("category", "string", "declared_string") for k in kinds)
    X = frame.to_numpy(dtype=float) if as_array and kinds else frame
    if as_array and kinds:
        declared = []
    num_train = draw(st.integers(0 if draw(st.integers(0, 9)) == 9 else min(num_rows, 2), num_rows))
    return X, declared, num_train


def _slice(X, rows):
    return X.iloc[rows] if isinstance(X, pd.DataFrame) else X[rows]


@st.composite
def targets(draw, num_rows: int, classification: bool):
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if classification:
        num_classes = draw(st.sampled_from([2, 3, 2, 3, 4, 1]))
        y = np.arange(num_rows) % num_classes  # every class present in the first rows
        rng.shuffle(y[num_classes:])
        return np.array(["x", "y", "z", "w"])[y] if draw(st.booleans()) else y
    y = rng.normal(size=num_rows) * draw(st.sampled_from([1.0, 1e-9, 1e9]))
    if num_rows and draw(st.integers(0, 4)) == 4:
        y[draw(st.integers(0, num_rows - 1))] = draw(st.sampled_from([np.nan, np.inf]))
    return y


def _fit_predict(estimator, X, y, num_train):
    train, test = slice(0, num_train), slice(num_train, None)
    try:
        estimator.fit(_slice(X, train), y[train])
        X_test = _slice(X, test)
        if len(X_test) == 0:
            return None
        return estimator.predict_proba(X_test) if isinstance(estimator, PFNClassifier) else \
            estimator.predict(X_test, output="quantiles", quantiles=[0.2, 0.5, 0.8])
    except InputError:
        return None


@pytest.mark.slow
@FUZZ
@given(data=st.data(), frame=frames())
def test_classifier_works_or_raises_input_error(data, frame):
    X, declared, num_train = frame
    y = data.draw(targets(len(X), classification=True))
    probs = _fit_predict(PFNClassifier(TINY, n_estimators=2, categorical_features=declared), X, y, num_train)
    if probs is not None:
        assert probs.shape == (len(X) - num_train, len(np.unique(y[:num_train])))
        assert np.isfinite(probs).all() and np.allclose(probs.sum(1), 1)


@pytest.mark.slow
@FUZZ
@given(data=st.data(), frame=frames())
def test_regressor_works_or_raises_input_error(data, frame):
    X, declared, num_train = frame
    y = data.draw(targets(len(X), classification=False))
    quantiles = _fit_predict(PFNRegressor(TINY, n_estimators=2, categorical_features=declared), X, y, num_train)
    if quantiles is not None:
        assert quantiles.shape == (len(X) - num_train, 3) and np.isfinite(quantiles).all()
        assert (np.diff(quantiles, axis=1) >= 0).all()
