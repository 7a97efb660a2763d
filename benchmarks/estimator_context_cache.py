"""Predict latency of a fitted PFNClassifier with the training rows' context kept (the default) against
recomputing it per call, and fit + predict against HistGradientBoostingClassifier, in the same run.

    OMP_NUM_THREADS=2 python benchmarks/estimator_context_cache.py --repeats 3

The bundled classifier, 16 members, 1,000 training rows × 20 features (``ignore_pretraining_limits=True``
so every member's context holds all 1,000 rows), 1,000 query rows; medians over repeats after a warm-up.
"""

from __future__ import annotations

import argparse
import warnings

import torch
from _timing import median_seconds
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from pfnforge import PFNClassifier
from pfnforge.inference import ensemble


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--members", type=int, default=16)
    args = parser.parse_args()
    X, y = make_classification(n_samples=2000, n_features=20, n_informative=10, random_state=0)
    X_fit, y_fit, X_query, y_query = X[:1000], y[:1000], X[1000:], y[1000:]
    warnings.simplefilter("ignore")
    estimator = PFNClassifier(n_estimators=args.members, ignore_pretraining_limits=True)
    fit = median_seconds(lambda: estimator.fit(X_fit, y_fit), args.repeats)
    kept = median_seconds(lambda: estimator.predict_proba(X_query), args.repeats)
    auc = roc_auc_score(y_query, estimator.predict_proba(X_query)[:, 1])
    ensemble.CONTEXT_CACHE_BYTES = 0  # the baseline: every predict runs the training rows again
    estimator.fit(X_fit, y_fit)
    recomputed = median_seconds(lambda: estimator.predict_proba(X_query), args.repeats)
    hgb = HistGradientBoostingClassifier(random_state=0)
    hgb_s = median_seconds(lambda: hgb.fit(X_fit, y_fit).predict_proba(X_query), args.repeats)
    hgb_auc = roc_auc_score(y_query, hgb.predict_proba(X_query)[:, 1])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.members} members, 1,000 context rows "
          f"x 20 features, 1,000 queries; context {estimator.ensemble_.x_train_MTF.nbytes / 2**20:.1f} MiB of inputs")
    print("| measure | seconds | ratio |")
    print("| --- | ---: | ---: |")
    print(f"| PFN fit (runs the context) | {fit:.3f} | |")
    print(f"| PFN predict, context kept | {kept:.3f} | {kept / recomputed:.2f} × recomputed |")
    print(f"| PFN predict, context recomputed | {recomputed:.3f} | 1.00 |")
    print(f"| PFN fit + predict (kept) | {fit + kept:.3f} | {(fit + kept) / hgb_s:.2f} × HGB |")
    print(f"| HistGradientBoosting fit + predict | {hgb_s:.3f} | 1.00 |")
    print(f"ROC AUC: PFN {auc:.3f}, HistGradientBoosting {hgb_auc:.3f}")


if __name__ == "__main__":
    main()
