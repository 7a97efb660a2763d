"""How good the bundled default models are: the classifier on scikit-learn's bundled iris, wine and breast-cancer
datasets against logistic regression and a random forest (ROC AUC, accuracy), the regressor on held-out
synthetic tasks against linear regression, a random forest and a GP regressor (R²), over repeated seeded
50/50 splits.

    python benchmarks/default_models.py --splits 5
    python benchmarks/default_models.py --classifier DIR --regressor DIR   # other model directories
"""

from __future__ import annotations

import argparse
import statistics
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine, make_friedman1
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import accuracy_score, r2_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pfnforge.inference.estimators import PFNClassifier, PFNRegressor


def _auc(y, probs) -> float:
    return roc_auc_score(y, probs[:, 1]) if probs.shape[1] == 2 else roc_auc_score(y, probs, multi_class="ovr")


def _sine(seed: int):
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(300, 3))
    return X, np.sin(6 * X[:, 0]) + X[:, 1] * X[:, 2] + 0.1 * rng.normal(size=300)


def classification(model, splits: int) -> list[tuple]:
    rows = []
    for name, (X, y) in {"iris": load_iris(return_X_y=True), "wine": load_wine(return_X_y=True),
                         "breast_cancer": load_breast_cancer(return_X_y=True)}.items():
        scores: dict[str, list[tuple[float, float]]] = {}
        for seed in range(splits):
            X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, stratify=y, random_state=seed)
            estimators = {
                "PFNClassifier": PFNClassifier(model, n_estimators=8, random_state=seed, subsample_features=True,
                                               subsample_train_rows=True),
                "LogisticRegression": make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)),
                "RandomForest": RandomForestClassifier(n_estimators=300, random_state=seed),
            }
            for label, estimator in estimators.items():
                probs = estimator.fit(X_train, y_train).predict_proba(X_test)
                scores.setdefault(label, []).append((_auc(y_test, probs), accuracy_score(y_test, probs.argmax(1))))
        for label, values in scores.items():
            rows.append((name, X.shape, label, statistics.median(v[0] for v in values),
                         statistics.median(v[1] for v in values)))
    return rows


def regression(model, splits: int) -> list[tuple]:
    rows = []
    tasks = {"friedman1 (300×10)": lambda s: make_friedman1(n_samples=300, noise=0.5, random_state=s),
             "sine (300×3)": _sine, "diabetes (442×10)": lambda s: load_diabetes(return_X_y=True)}
    for name, make in tasks.items():
        scores: dict[str, list[float]] = {}
        for seed in range(splits):
            X, y = make(seed)
            X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, random_state=seed)
            kernel = ConstantKernel() * RBF(np.ones(X.shape[1])) + WhiteKernel()
            estimators = {
                "PFNRegressor": PFNRegressor(model, n_estimators=8, random_state=seed, subsample_features=True,
                                             subsample_train_rows=True),
                "LinearRegression": LinearRegression(),
                "RandomForest": RandomForestRegressor(n_estimators=300, random_state=seed),
                "GaussianProcess (ARD RBF)": make_pipeline(StandardScaler(), GaussianProcessRegressor(
                    kernel, normalize_y=True, random_state=seed)),
            }
            for label, estimator in estimators.items():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    prediction = estimator.fit(X_train, y_train).predict(X_test)
                scores.setdefault(label, []).append(r2_score(y_test, prediction))
        rows += [(name, label, statistics.median(v)) for label, v in scores.items()]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=5)
    parser.add_argument("--classifier", default=None, help="model for the classifier (default: bundled)")
    parser.add_argument("--regressor", default=None, help="model for the regressor (default: bundled)")
    args = parser.parse_args()
    print(f"median over {args.splits} seeded 50/50 splits; PFN with n_estimators=8")
    print("| dataset | shape | model | ROC AUC | accuracy |\n| --- | --- | --- | ---: | ---: |")
    for name, shape, label, auc, accuracy in classification(args.classifier, args.splits):
        print(f"| {name} | {shape[0]}×{shape[1]} | {label} | {auc:.3f} | {accuracy:.3f} |")
    print("\n| task | model | R² |\n| --- | --- | ---: |")
    for name, label, r2 in regression(args.regressor, args.splits):
        print(f"| {name} | {label} | {r2:.3f} |")


if __name__ == "__main__":
    main()
