"""A fitted estimator runs its training rows through the model once and keeps the result (the model's
``Context``): predictions with the kept context equal those computed afresh, pickling drops it, refitting
replaces it."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from pfnforge import PFNClassifier, PFNRegressor
from pfnforge.inference import ensemble
from pfnforge.inference.artifact import build_random_pfn
from pfnforge.model.colrow import ColrowConfig
from pfnforge.model.pfn import ModelConfig

MODELS = {"rowwise": ModelConfig(embed_dim=16, num_layers=2, num_heads=2, max_features=6, max_classes=4,
                                 num_buckets=10),
          "colrow": ColrowConfig(cell_dim=8, num_inducing=4, num_row_layers=1, num_cls=2, num_layers=1, num_heads=2,
                                 max_classes=4, num_buckets=10)}


@pytest.fixture(params=sorted(MODELS))
def trained(request):
    return build_random_pfn(MODELS[request.param], max_rows=200, seed=3)


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(150, 5))
    return X, (X[:, 0] + X[:, 1] > 0).astype(int), X[:, 0] * 2 + rng.normal(size=150) * 0.1


def test_kept_context_gives_the_predictions_of_a_fresh_one(trained, monkeypatch):
    X, y_class, y_reg = _data()
    for estimator, y, predict in ((PFNClassifier(trained, n_estimators=3), y_class, "predict_proba"),
                                  (PFNRegressor(trained, n_estimators=3), y_reg, "predict")):
        estimator.fit(X[:100], y[:100])
        assert estimator.ensemble_.context_nbytes > 0  # fit ran the training rows
        kept = estimator.ensemble_._cached[3]
        first = getattr(estimator, predict)(X[100:])
        again = getattr(estimator, predict)(X[100:130])
        assert estimator.ensemble_._cached[3] is kept  # reused, not recomputed
        np.testing.assert_allclose(again, first[:30], rtol=1e-6, atol=1e-7)
        monkeypatch.setattr(ensemble, "CONTEXT_CACHE_BYTES", 0)
        estimator.ensemble_._cached = None
        fresh = getattr(estimator, predict)(X[100:])
        assert estimator.ensemble_.context_nbytes == 0  # over the bound: computed per call, not kept
        np.testing.assert_allclose(fresh, first, rtol=1e-5, atol=1e-6)
        monkeypatch.undo()


def test_pickling_drops_the_context_and_refitting_replaces_it(trained):
    X, y, _ = _data()
    classifier = PFNClassifier(trained, n_estimators=2).fit(X[:100], y[:100])
    expected = classifier.predict_proba(X[100:])
    restored = pickle.loads(pickle.dumps(classifier))
    assert restored.ensemble_.context_nbytes == 0
    np.testing.assert_allclose(restored.predict_proba(X[100:]), expected, rtol=1e-6)
    old_context = classifier.ensemble_._cached[3]
    classifier.fit(X[:100], (X[:100, 2] > 0).astype(int))  # other targets: nothing of the old context survives
    assert classifier.ensemble_._cached[3] is not old_context and classifier.ensemble_.context_nbytes > 0
    refitted = classifier.predict_proba(X[100:])
    fresh = PFNClassifier(trained, n_estimators=2).fit(X[:100], (X[:100, 2] > 0).astype(int))
    np.testing.assert_allclose(refitted, fresh.predict_proba(X[100:]), rtol=1e-6)
    assert not np.allclose(refitted, expected, atol=1e-4)
