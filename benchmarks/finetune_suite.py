"""Per-dataset fine-tuning on the real-data suite: the bundled classifier as it is and after ``fine_tune`` on
each training split (its own validation split inside, early stopping), on the same seeded splits as
``pfnforge evaluate --suite tabular`` (so the figures sit beside that run's), scored on the test split.

    OMP_NUM_THREADS=1 python benchmarks/finetune_suite.py --repeats 2 --max-rows 2000

Prints one row per dataset (rows, features, ROC AUC and log loss before and after, fine-tuning seconds) and
the means; datasets above ``--max-rows`` rows are left out (fine-tuning scores its validation rows against all
fine-tune rows as context, which grows with the table).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

from pfnforge import PFNClassifier
from pfnforge.errors import PfnforgeError
from pfnforge.evaluation.metrics import classification_scores
from pfnforge.evaluation.suites import load_suite, suite_datasets
from pfnforge.evaluation.tabular import _split


def _scores(classifier: PFNClassifier, x_test: pd.DataFrame, codes: np.ndarray, num_classes: int) -> dict:
    proba = np.zeros((len(x_test), num_classes))
    proba[:, np.asarray(classifier.classes_, dtype=int)] = classifier.predict_proba(x_test)
    return classification_scores(codes, proba)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-rows", type=int, default=2000)
    parser.add_argument("--max-steps", type=int, default=100)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    suite = load_suite("tabular")
    names = [e.name for e in suite.entries if e.task == "classification" and e.rows <= args.max_rows]
    seeds = [int(s) for s in np.random.SeedSequence(args.seed).generate_state(args.repeats)]
    rows = []
    for dataset in suite_datasets(suite, only=names):
        classes, codes = np.unique(dataset.y.astype(str), return_inverse=True)
        for repeat, seed in enumerate(seeds):
            train, test = _split(dataset, seed, 0.3)
            x_train, x_test = dataset.x.iloc[train], dataset.x.iloc[test]
            row = {"dataset": dataset.name, "rows": len(dataset.y), "features": dataset.x.shape[1],
                   "repeat": repeat}
            before = PFNClassifier(random_state=seed).fit(x_train, codes[train])
            row.update({f"{k}_before": v for k, v in _scores(before, x_test, codes[test], len(classes)).items()})
            start = time.perf_counter()
            try:
                tuned = PFNClassifier(random_state=seed).fine_tune(x_train, codes[train], max_steps=args.max_steps,
                                                                  seed=seed)
            except PfnforgeError as error:  # e.g. a class too rare for a validation split: reported, not hidden
                row["error"] = str(error)[:80]
                rows.append(row)
                continue
            row["finetune_s"] = time.perf_counter() - start
            row["steps"] = tuned.finetune_history_[-1].step if tuned.finetune_history_ else 0
            row.update({f"{k}_after": v for k, v in _scores(tuned, x_test, codes[test], len(classes)).items()})
            rows.append(row)
            print(f"{dataset.name} repeat {repeat}: ROC AUC {row['roc_auc_before']:.4f} -> {row['roc_auc_after']:.4f}",
                  flush=True)
    frame = pd.DataFrame(rows)
    columns = [c for c in ("rows", "features", "roc_auc_before", "roc_auc_after", "log_loss_before",
                           "log_loss_after", "finetune_s", "steps") if c in frame]
    table = frame.groupby("dataset", sort=False)[columns].mean()
    print(table.round(4).to_string())
    print(f"\nmeans over {table.roc_auc_after.notna().sum()} datasets: "
          f"ROC AUC {table.roc_auc_before.mean():.4f} -> {table.roc_auc_after.mean():.4f}, "
          f"log loss {table.log_loss_before.mean():.4f} -> {table.log_loss_after.mean():.4f}; "
          f"fine-tuning {table.finetune_s.median():.1f} s median per split")
    if "error" in frame:
        print(frame[frame.error.notna()][["dataset", "repeat", "error"]].to_string(index=False))


if __name__ == "__main__":
    main()
