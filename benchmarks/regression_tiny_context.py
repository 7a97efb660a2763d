"""A standardising regression PFN at 1-5 context points, with and without shrinking the target spread toward
one (``model.target_spread_prior_weight``): the NLL per test point of both on the same weights, against the
Bayes-optimal reference of the model's own prior, on held-out datasets.

    python benchmarks/regression_tiny_context.py                  # the bundled PFNRegressor and its GP prior
    python benchmarks/regression_tiny_context.py CKPT --num-datasets 200

Without shrinkage, two nearly equal context targets give a spread near zero and every test target lands
far in the bar distribution's tails; the table shows how far, and what the shrinkage leaves.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses

import numpy as np
import torch
from gp_reference import prior_of

from pfnforge.inference.loading import load_model
from pfnforge.prior import BatchShape

SEED = 8_000_003  # held out from every training and validation stream


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", help="a checkpoint or model directory (default: the bundled regressor)")
    parser.add_argument("--context-sizes", default="1,2,3,4,5,10")
    parser.add_argument("--num-datasets", type=int, default=200)
    parser.add_argument("--test-rows", type=int, default=20)
    parser.add_argument("--weight", type=float, default=1.0, help="target_spread_prior_weight after")
    args = parser.parse_args()

    trained = load_model(args.model, task="regression")
    prior = prior_of(trained, None, [])
    variants = {}
    for name, weight in (("before (w=0)", 0.0), (f"after (w={args.weight:g})", args.weight)):
        model = copy.deepcopy(trained.model)
        model.config = dataclasses.replace(model.config, target_spread_prior_weight=weight)
        variants[name] = model.eval()
    print(f"{args.num_datasets} held-out datasets of the {prior.name} prior per context size, {args.test_rows} "
          "test points each, 1 feature; NLL per test point, gap = NLL - reference NLL (± 2 s.e.)")
    print(f"{'context':>7} {'reference':>10} " + " ".join(f"{name:>24}" for name in variants)
          + f" {'worst dataset before':>21}")
    for T in (int(s) for s in args.context_sizes.split(",")):
        rng = np.random.default_rng(np.random.SeedSequence([SEED, T]))
        batch = prior.sample(rng, BatchShape(num_datasets=args.num_datasets, num_rows=T + args.test_rows,
                                             num_features=1, num_train_rows=T))
        reference = prior.reference(batch)
        reference_B = -reference.log_density[:, T:].mean(1)
        cells, worst = [], 0.0
        for model in variants.values():
            with torch.no_grad():
                nll_B = -model.test_log_likelihood(torch.from_numpy(batch.x), torch.from_numpy(batch.y), T,
                                                   torch.zeros(args.num_datasets, dtype=torch.int64)
                                                   ).double().numpy().mean(1)
            gap_B = nll_B - reference_B
            cells.append(f"{gap_B.mean():>12.3f} ± {2 * gap_B.std(ddof=1) / np.sqrt(len(gap_B)):<9.3f}")
            worst = worst or float(gap_B.max())
        print(f"{T:>7} {reference_B.mean():>10.4f} " + " ".join(f"{c:>24}" for c in cells) + f" {worst:>21.1f}")
    print(f"reference: the {reference.name}")


if __name__ == "__main__":
    main()
