"""A PFN's one forward pass against MCMC over the GP hyperparameters, the comparison of the PFN paper: on
held-out datasets of a GP prior with hyperpriors, the NLL per test point and the wall time per dataset of

- the PFN (one batched forward pass; and one dataset alone, the latency a user sees),
- slice sampling over the hyperparameters with growing budgets (``pfnforge_priors.gp.mcmc``, 4 chains),
- the quadrature reference (``pfnforge_priors.gp.marginal``): the Bayes-optimal answer, with its error,
- the oracle that knows each dataset's drawn hyperparameters (no time: no method can be it).

    python benchmarks/gp_pfn_vs_mcmc.py outputs/gp_1d_reference_hyperpriors/checkpoints/last.ckpt
    python benchmarks/gp_pfn_vs_mcmc.py CKPT --num-datasets 64 --budgets 10,100,1000 --out docs/benchmarks

Everything runs on one thread (torch's and the BLAS pools' limited to one), so the
times compare methods, not parallelism. MCMC chains of all datasets move together (vectorised), so its time
per dataset is the batch's time divided by the number of datasets, as the PFN's is.
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
from _timing import median_seconds
from gp_reference import prior_of
from threadpoolctl import threadpool_limits

from pfnforge.inference.loading import load_model
from pfnforge.prior import BatchShape

SEED = 8_000_002  # held out from every training and validation stream


def _mean_test(log_density_BR: np.ndarray, num_train: int) -> np.ndarray:
    return log_density_BR[:, num_train:].mean(1)


def _error_of_mean(error_B: np.ndarray) -> float:
    return float(np.sqrt(np.sum(error_B**2)) / len(error_B))


def compare_at(trained, prior, T: int, budgets: list[int], num_datasets: int, num_test_rows: int,
               num_chains: int) -> list[dict]:
    """Rows for one context size T: NLL, its error, the gap to the reference and seconds per dataset."""
    from pfnforge_priors.gp.marginal import marginal_posterior
    from pfnforge_priors.gp.mcmc import slice_sampling_posterior

    rng = np.random.default_rng(np.random.SeedSequence([SEED, T]))
    batch = prior.sample(rng, BatchShape(num_datasets=num_datasets, num_rows=T + num_test_rows, num_features=1,
                                         num_train_rows=T))
    x, y = torch.from_numpy(batch.x), torch.from_numpy(batch.y)
    classes = torch.zeros(num_datasets, dtype=torch.int64)
    with torch.no_grad():
        model_B = -trained.model.test_log_likelihood(x, y, T, classes).double().numpy().mean(1)
        batch_seconds = median_seconds(partial(trained.model.test_log_likelihood, x, y, T, classes), repeats=5)
        single_seconds = median_seconds(partial(trained.model.test_log_likelihood, x[:1], y[:1], T, classes[:1]),
                                        repeats=11)
    started = time.perf_counter()
    reference = marginal_posterior(batch, prior.config)
    reference_seconds = time.perf_counter() - started
    reference_B = -_mean_test(reference.log_density, T)

    def row(method: str, budget: str, nll_B: np.ndarray, error: float, seconds: float | None, **extra) -> dict:
        gap_B = nll_B - reference_B
        return {"context": T, "method": method, "budget": budget, "nll": nll_B.mean(), "error": error,
                "gap": gap_B.mean(), "gap_stderr": gap_B.std(ddof=1) / np.sqrt(len(gap_B)),
                "seconds_per_dataset": seconds, **extra}

    rows = [row("PFN", "1 pass", model_B, 0.0, batch_seconds / num_datasets, single_dataset_seconds=single_seconds)]
    for budget in budgets:
        mcmc = slice_sampling_posterior(batch, prior.config, num_samples=budget, num_chains=num_chains, seed=T)
        rows.append(row("MCMC (slice)", f"{budget} samples", -_mean_test(mcmc.log_density, T),
                        _error_of_mean(mcmc.mc_error), mcmc.seconds / num_datasets,
                        evaluations_per_chain=mcmc.num_evaluations))
    rows.append(row("reference (quadrature)", f"{int(reference.num_points.mean())} points", reference_B,
                    reference.mean_nll_error(), reference_seconds / num_datasets))
    rows.append(row("oracle (true hyperparameters)", "-", -_mean_test(prior.oracle_log_likelihood(batch), T), 0.0,
                    None))
    return rows


def print_table(rows: list[dict]) -> None:
    print(f"{'context':>7} {'method':<30} {'budget':<16} {'NLL':>8} {'± MC':>7} {'gap to ref.':>11} "
          f"{'± 2 s.e.':>8} {'s/dataset':>10} {'vs PFN':>8}")
    pfn_seconds = {r["context"]: r["seconds_per_dataset"] for r in rows if r["method"] == "PFN"}
    for r in rows:
        seconds = r["seconds_per_dataset"]
        ratio = f"{seconds / pfn_seconds[r['context']]:>7.0f}×" if seconds is not None else f"{'-':>8}"
        time_text = f"{seconds:>10.2e}" if seconds is not None else f"{'-':>10}"
        print(f"{r['context']:>7} {r['method']:<30} {r['budget']:<16} {r['nll']:>8.4f} {r['error']:>7.4f} "
              f"{r['gap']:>11.4f} {2 * r['gap_stderr']:>8.4f} {time_text} {ratio}")
    for r in rows:
        if r["method"] == "PFN":
            print(f"context {r['context']}: one dataset alone through the PFN: {r['single_dataset_seconds']:.2e} s")


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({r["context"] for r in rows})
    fig, axes = plt.subplots(1, len(sizes), figsize=(3.4 * len(sizes), 3.4), sharey=True)
    for ax, T in zip(np.atleast_1d(axes), sizes, strict=True):
        part = [r for r in rows if r["context"] == T]
        mcmc = [r for r in part if r["method"].startswith("MCMC")]
        ax.errorbar([r["seconds_per_dataset"] for r in mcmc], [r["gap"] for r in mcmc],
                    yerr=[2 * r["gap_stderr"] for r in mcmc], marker="o", label="slice sampling")
        for r in mcmc:
            ax.annotate(r["budget"].split()[0], (r["seconds_per_dataset"], r["gap"]), fontsize=7,
                        textcoords="offset points", xytext=(3, 3))
        pfn = next(r for r in part if r["method"] == "PFN")
        ax.errorbar([pfn["seconds_per_dataset"]], [pfn["gap"]], yerr=[2 * pfn["gap_stderr"]], marker="*", ms=12,
                    color="C3", label="PFN, one pass")
        reference = next(r for r in part if r["method"].startswith("reference"))
        ax.axhline(0.0, color="black", lw=0.8)
        ax.plot([reference["seconds_per_dataset"]], [0.0], "s", color="black", label="quadrature reference")
        ax.set_xscale("log")
        ax.set_xlabel("seconds per dataset (one thread)")
        ax.set_title(f"{T} context points")
    np.atleast_1d(axes)[0].set_ylabel("NLL − Bayes-optimal NLL (nats)")
    np.atleast_1d(axes)[0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a .ckpt written by pfnforge train on a GP prior with hyperpriors")
    parser.add_argument("--context-sizes", default="5,10,20,40")
    parser.add_argument("--budgets", default="10,100,1000", help="MCMC samples kept per chain")
    parser.add_argument("--num-datasets", type=int, default=64)
    parser.add_argument("--test-rows", type=int, default=20)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--name", default="gp_pfn_vs_mcmc")
    parser.add_argument("--out", default="docs/benchmarks")
    args = parser.parse_args()

    torch.set_num_threads(1)
    trained = load_model(args.model)
    prior = prior_of(trained, None, [])
    budgets = [int(b) for b in args.budgets.split(",")]
    rows = []
    with threadpool_limits(1):
        for T in (int(s) for s in args.context_sizes.split(",")):
            rows += compare_at(trained, prior, T, budgets, args.num_datasets, args.test_rows, args.chains)
            print(f"context {T}: done", file=sys.stderr)
    print(f"{args.num_datasets} held-out datasets per context size, {args.test_rows} test points each; "
          "gap: NLL minus the quadrature reference's, per test point")
    print_table(rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot(rows, out / f"{args.name}.png", "GP with hyperpriors: PFN vs slice sampling")
    print(f"plot: {out / f'{args.name}.png'}")


if __name__ == "__main__":
    main()
