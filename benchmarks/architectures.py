"""Cost of each installed architecture: parameters, one training step (forward + backward) on a batch of the
tabular SCM recipe's shape, and an estimator's ``predict`` with the training rows' context kept (the default)
against recomputing it per call (the baseline, as every call did before contexts were kept).

    OMP_NUM_THREADS=2 python benchmarks/architectures.py --repeats 5

Prints one table; the ``kept/recomputed`` column is the ratio of ``predict`` times measured in the same run.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from _timing import median_seconds

from pfnforge import PFNClassifier, registry
from pfnforge.cli.train import compose_train_config
from pfnforge.config import to_model_config
from pfnforge.inference import ensemble
from pfnforge.inference.artifact import build_random_pfn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", default="32x300x20", help="datasets x rows x features of a training step")
    parser.add_argument("--presets", default="rowwise_small,cellwise_small,colrow_small")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (bf16 autocast for the training step)")
    args = parser.parse_args()
    B, R, F = (int(v) for v in args.batch.split("x"))
    T = R // 2
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(B, R, F)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 2, size=(B, R)).astype(np.float32))
    classes = torch.full((B,), 2)
    X_fit, y_fit = rng.normal(size=(300, F)), rng.integers(0, 2, 300)
    X_query = rng.normal(size=(50, F))

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; step batch {B}x{R}x{F} (split {T}); "
          f"predict: 4 members, 300 training rows, 50 query rows, median of {args.repeats}")
    print("| model | parameters | step s | rows/s | predict kept s | predict recomputed s | kept/recomputed |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for preset in args.presets.split(","):
        print(_row(preset, F, tuple(v.to(args.device) if torch.is_tensor(v) else v for v in (x, y, T, classes)),
                   (X_fit, y_fit, X_query), args.repeats, args.device))


def _row(preset: str, num_features: int, batch: tuple, data: tuple, repeats: int, device: str) -> str:
    x, y, T, classes = batch
    X_fit, y_fit, X_query = data
    overrides = [f"model={preset}"] + ([f"model.max_features={num_features}"] if preset.startswith("rowwise") else [])
    config = to_model_config(compose_train_config(overrides).model)
    model = registry.build_model(config, None, classification=True).to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> None:
        optimiser.zero_grad()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device != "cpu"):
            loss = -model.test_log_likelihood(x, y, T, classes).mean()
        loss.backward()
        optimiser.step()
        if device != "cpu":
            torch.cuda.synchronize()

    step_s = median_seconds(step, repeats)
    trained = build_random_pfn(config, regression=False, max_rows=300, seed=0)
    estimator = PFNClassifier(trained, n_estimators=4, device=device).fit(X_fit, y_fit)
    kept = median_seconds(lambda: estimator.predict_proba(X_query), repeats)
    original = ensemble.CONTEXT_CACHE_BYTES
    ensemble.CONTEXT_CACHE_BYTES = 0
    estimator.ensemble_._cached = None
    try:
        recomputed = median_seconds(lambda: estimator.predict_proba(X_query), repeats)
    finally:
        ensemble.CONTEXT_CACHE_BYTES = original
    parameters = sum(p.numel() for p in model.parameters())
    rows = x.shape[0] * x.shape[1]
    return (f"| {preset} | {parameters:,} | {step_s:.3f} | {rows / step_s:,.0f} | {kept:.4f} | {recomputed:.4f} "
            f"| {kept / recomputed:.2f} |")

if __name__ == "__main__":
    main()
