"""Fit + predict wall time of PFNClassifier on CPU (1,000 training rows × 100 features, 1,000 query rows) against
scikit-learn's HistGradientBoostingClassifier on the same data in the same run, and peak memory.

    python benchmarks/estimator_fit_predict.py --repeats 3 --threads 1

Each configuration runs in its own spawned process (so peak RSS is its own): median fit+predict seconds
over repeats after one warm-up, and the process's peak RSS above its RSS before the first fit. A model that
takes 100 features is needed: the timed PFNs are untrained (random weights) at the bundled classifier's size
(``model=small``) and at ``model=large``'s size (TabPFN-v1 scale), so their ROC AUC is meaningless; the
bundled classifier (20 features, 300 rows) runs too, with ``subsample_features=True`` (mixed reduction) and
either all rows (``ignore_pretraining_limits=True``) or per-member 300-row subsets, for an AUC from a trained
model.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
import time

CONFIGS = {
    "small (random), 4 members": ("small", 4),
    "small (random), 1 member": ("small", 1),
    "large (random), 4 members": ("large", 4),
    "large (random), 1 member": ("large", 1),
    "bundled, 4 members, all 1,000 rows": ("bundled", 4),
    "bundled, 4 members, 300-row subsets": ("bundled-subsets", 4),
    "HistGradientBoosting": ("hgb", 0),
}
SIZES = {"small": {"embed_dim": 128, "num_layers": 4, "num_heads": 4, "num_buckets": 100},
         "large": {"embed_dim": 512, "num_layers": 12, "num_heads": 4, "num_buckets": 1000}}


def _data(num_rows: int, num_features: int):
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=2 * num_rows, n_features=num_features,
                               n_informative=min(20, num_features // 2), n_redundant=min(10, num_features // 4),
                               random_state=0)
    return X[:num_rows], y[:num_rows], X[num_rows:], y[num_rows:]


def _estimator(kind: str, members: int):
    if kind == "hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(random_state=0)
    from pfnforge.inference.estimators import PFNClassifier

    if kind == "bundled":  # every training row in each member's context, beyond the 300 it was pretrained on
        return PFNClassifier(n_estimators=members, subsample_features=True, ignore_pretraining_limits=True)
    if kind == "bundled-subsets":  # each member's context a random 300 of the rows, as pretrained
        return PFNClassifier(n_estimators=members, subsample_features=True, subsample_train_rows=True)
    from pfnforge.inference.artifact import build_random_pfn
    from pfnforge.model.pfn import ModelConfig

    model = build_random_pfn(ModelConfig(**SIZES[kind], max_features=100), regression=False, max_rows=2048)
    return PFNClassifier(model, n_estimators=members)


def _run(kind: str, members: int, repeats: int, num_rows: int, num_features: int, threads: int, out) -> None:
    import torch
    from sklearn.metrics import roc_auc_score
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)  # the same thread budget for torch and for scikit-learn's OpenMP
    threadpool_limits(threads)

    X, y, X_test, y_test = _data(num_rows, num_features)
    estimator = _estimator(kind, members)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seconds, cpu_seconds = [], []
    for _ in range(repeats + 1):
        start, cpu_start = time.perf_counter(), time.process_time()
        probs = estimator.fit(X, y).predict_proba(X_test)
        seconds.append(time.perf_counter() - start)
        cpu_seconds.append(time.process_time() - cpu_start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out.put((statistics.median(seconds[1:]), statistics.median(cpu_seconds[1:]), (peak - base) / 1024,
             roc_auc_score(y_test, probs[:, 1])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--features", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1, help="threads for torch and for OpenMP/BLAS (default 1)")
    parser.add_argument("--only", nargs="*", default=None, help="configuration names to run (default: all)")
    args = parser.parse_args()
    context = mp.get_context("spawn")
    results = {}
    for name, (kind, members) in CONFIGS.items():
        if args.only and name not in args.only:
            continue
        queue = context.Queue()
        process = context.Process(target=_run, args=(kind, members, args.repeats, args.rows, args.features,
                                                           args.threads, queue))
        process.start()
        process.join()
        if queue.empty():
            raise SystemExit(f"configuration {name!r} failed (exit code {process.exitcode}); see its traceback above")
        results[name] = queue.get()
    baseline, cpu_baseline = results.get("HistGradientBoosting", (float("nan"), float("nan")))[:2]
    print(f"{args.rows} training rows × {args.features} features, {args.rows} query rows; {args.threads} "
          f"thread(s); median of {args.repeats} after a warm-up")
    print("| configuration | fit+predict wall s | × HGB | CPU s | × HGB (CPU) | peak RSS above start, MiB | ROC AUC |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, (seconds, cpu, peak_mib, auc) in results.items():
        print(f"| {name} | {seconds:.2f} | {seconds / baseline:.2f} | {cpu:.2f} | {cpu / cpu_baseline:.2f} | "
              f"{peak_mib:.0f} | {auc:.3f} |")


if __name__ == "__main__":
    main()
