"""A trained GP PFN against the Bayes-optimal predictive of its prior: mean NLL per test point of both, and
their gap, for every number of context points 1..50, on held-out prior datasets; plus plots of both curves
and of a few 1-D posteriors (PFN predictive bands over exact GP bands).

    python benchmarks/gp_reference.py outputs/gp_1d_reference/checkpoints/last.ckpt
    python benchmarks/gp_reference.py CKPT --num-datasets 1000 --name gp_1d_reference --out docs/benchmarks

The datasets come from the prior the checkpoint was trained on (its recorded config; ``--prior`` plus
``key=value`` overrides picks another preset), from a seed no training or validation stream uses. With fixed
hyperparameters the reference is the exact GP posterior; with kernel hyperpriors it is the GP posterior
integrated over them (``pfnforge_priors.gp.marginal``, Monte Carlo error printed), and the oracle that knows
each dataset's drawn hyperparameters, a bound no predictor reaches, is printed beside it.

Legend: B datasets, R rows, T context (training) rows, Q test rows, G grid points, L band levels.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from pfnforge import registry
from pfnforge.inference.artifact import TrainedPFN
from pfnforge.inference.distribution import bar_quantiles
from pfnforge.inference.loading import load_model
from pfnforge.prior import BatchShape, Prior

SEED = 8_000_001  # held out: training streams use the run seed, validation a reserved rank of it


def prior_of(trained: TrainedPFN, preset: str | None, overrides: list[str]) -> Prior:
    """The prior a model was trained on (its checkpoint's record), or a named preset with overrides."""
    if preset is not None:
        from pfnforge.config import compose_prior_config

        return registry.build_prior(compose_prior_config(preset, overrides))
    recorded = trained.metadata["prior"]
    schema = registry.load_prior_class(recorded["name"]).Config
    values = {k: v for k, v in recorded["config"].items() if k in {f.name for f in dataclasses.fields(schema)}}
    config = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), values, OmegaConf.from_dotlist(
        overrides)))
    return registry.build_prior(config)


def nll_by_context(trained: TrainedPFN, prior: Prior, sizes: list[int], num_datasets: int, num_test_rows: int,
                   chunk: int = 250) -> dict[str, np.ndarray]:
    """Per context size: mean NLL per test point of the model, of the reference and (NaN without hyperpriors)
    of the oracle; the standard error of the gap over datasets and the reference's Monte Carlo error."""
    out = {name: np.full(len(sizes), np.nan) for name in ("model", "exact", "oracle", "gap_stderr", "mc_error")}
    out["reference"] = ""
    for i, T in enumerate(sizes):
        rng = np.random.default_rng(np.random.SeedSequence([SEED, T]))
        model_B, exact_B, oracle_B, mc_error_B = [], [], [], []
        for start in range(0, num_datasets, chunk):
            B = min(chunk, num_datasets - start)
            batch = prior.sample(rng, BatchShape(num_datasets=B, num_rows=T + num_test_rows, num_features=1,
                                                 num_train_rows=T))
            reference = prior.reference(batch)
            out["reference"] = reference.name
            exact_B.append(-np.asarray(reference.log_density, dtype=np.float64)[:, T:].mean(1))
            mc_error_B.append(np.zeros(B) if reference.mc_error is None else reference.mc_error)
            oracle = prior.oracle_log_likelihood(batch)
            if oracle is not None:
                oracle_B.append(-np.asarray(oracle, dtype=np.float64)[:, T:].mean(1))
            with torch.no_grad():
                model_B.append(-trained.model.test_log_likelihood(
                    torch.from_numpy(batch.x), torch.from_numpy(batch.y), T,
                    torch.zeros(B, dtype=torch.int64)).double().numpy().mean(1))
        model_B, exact_B, mc_error_B = (np.concatenate(a) for a in (model_B, exact_B, mc_error_B))
        out["model"][i], out["exact"][i] = model_B.mean(), exact_B.mean()
        out["gap_stderr"][i] = (model_B - exact_B).std(ddof=1) / np.sqrt(len(model_B))
        out["mc_error"][i] = np.sqrt(np.sum(mc_error_B**2)) / len(mc_error_B)
        if oracle_B:
            out["oracle"][i] = np.concatenate(oracle_B).mean()
    return out


def posterior_bands(trained: TrainedPFN, prior: Prior, T: int, levels_L: np.ndarray, num_grid: int = 101,
                    seed: int = 0) -> dict[str, np.ndarray]:
    """One dataset with T context points, and at a grid of x: quantiles of the PFN's and the exact GP's
    predictive of a noisy target."""
    from scipy.stats import norm

    rng = np.random.default_rng(np.random.SeedSequence([SEED, T, seed, 1]))
    batch = prior.sample(rng, BatchShape(num_datasets=1, num_rows=T + num_grid, num_features=1, num_train_rows=T))
    x = batch.x.copy()
    x[0, T:, 0] = np.linspace(0, 1, num_grid, dtype=np.float32)  # test rows become the grid (targets unused)
    grid_batch = dataclasses.replace(batch, x=x)
    from pfnforge_priors.gp.posterior import exact_posterior

    exact = exact_posterior(grid_batch)
    mean_G, std_G = exact.mean[0, T:], np.sqrt(exact.variance[0, T:])
    with torch.no_grad():
        logits_1GN, y_mean, y_std = trained.model(torch.from_numpy(x), torch.from_numpy(batch.y), T, False)
    probs_GN = torch.softmax(logits_1GN[0].float(), -1)
    z_GL = bar_quantiles(trained.model.bar, probs_GN, torch.from_numpy(levels_L)).double().numpy()
    return {"x_T": batch.x[0, :T, 0], "y_T": batch.y[0, :T], "grid_G": x[0, T:, 0],
            "pfn_GL": z_GL * float(y_std) + float(y_mean),
            "exact_GL": mean_G[:, None] + std_G[:, None] * norm.ppf(levels_L)[None, :]}


def plot_curves(sizes: list[int], result: dict[str, np.ndarray], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True, height_ratios=[2, 1])
    top.plot(sizes, result["model"], "o-", ms=3, label="PFN")
    top.plot(sizes, result["exact"], "s-", ms=3, label=result["reference"])
    if not np.isnan(result["oracle"]).all():
        top.plot(sizes, result["oracle"], "^:", ms=3, label="oracle (true hyperparameters)")
    top.set_ylabel("NLL per test point (nats)")
    top.legend()
    top.set_title(title)
    gap = result["model"] - result["exact"]
    bottom.errorbar(sizes, gap, yerr=2 * result["gap_stderr"], fmt="o-", ms=3, color="C3")
    bottom.axhline(0.05, ls="--", color="grey", lw=1)
    bottom.axhline(0.0, color="black", lw=0.5)
    bottom.set_ylabel("gap (nats)")
    bottom.set_xlabel("context points")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_posteriors(trained: TrainedPFN, prior: Prior, sizes: list[int], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels_L = np.array([0.025, 0.25, 0.5, 0.75, 0.975])
    fig, axes = plt.subplots(1, len(sizes), figsize=(3.2 * len(sizes), 3.2), sharey=True)
    for ax, T in zip(np.atleast_1d(axes), sizes, strict=True):
        bands = posterior_bands(trained, prior, T, levels_L)
        g = bands["grid_G"]
        ax.fill_between(g, bands["exact_GL"][:, 0], bands["exact_GL"][:, 4], color="grey", alpha=0.3,
                        label="exact 95%")
        ax.plot(g, bands["exact_GL"][:, 2], color="black", lw=1, label="exact median")
        for j, style in ((0, "--"), (4, "--"), (1, ":"), (3, ":")):
            ax.plot(g, bands["pfn_GL"][:, j], style, color="C0", lw=1,
                    label={0: "PFN 95%", 1: "PFN 50%"}.get(j))
        ax.plot(g, bands["pfn_GL"][:, 2], color="C0", lw=1.2, label="PFN median")
        ax.plot(bands["x_T"], bands["y_T"], "o", color="C3", ms=3, label="context")
        ax.set_title(f"{T} context points")
        ax.set_xlabel("x")
    np.atleast_1d(axes)[0].legend(fontsize=6, loc="best")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a .ckpt written by pfnforge train, or a model directory")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the prior's config")
    parser.add_argument("--prior", help="a prior preset instead of the checkpoint's (e.g. gp_1d_reference)")
    parser.add_argument("--max-context", type=int, default=50)
    parser.add_argument("--num-datasets", type=int, default=1000, help="held-out datasets per context size")
    parser.add_argument("--test-rows", type=int, default=20, help="test points per dataset")
    parser.add_argument("--name", default="gp_1d_reference", help="PNG name stem and plot title")
    parser.add_argument("--out", default="docs/benchmarks", help="directory of the PNGs")
    args = parser.parse_args()

    torch.set_num_threads(max(1, torch.get_num_threads()))
    trained = load_model(args.model)
    prior = prior_of(trained, args.prior, args.overrides)
    sizes = list(range(1, args.max_context + 1))
    started = time.perf_counter()
    result = nll_by_context(trained, prior, sizes, args.num_datasets, args.test_rows)
    gap = result["model"] - result["exact"]
    print(f"{args.name}: {args.num_datasets} held-out datasets per context size, {args.test_rows} test points "
          f"each ({time.perf_counter() - started:.0f} s)")
    has_oracle = not np.isnan(result["oracle"]).all()
    print(f"reference: the {result['reference']}")
    print(f"{'context':>7} {'PFN NLL':>9} {'ref. NLL':>9} {'gap':>8} {'± 2 s.e.':>9} {'MC err':>7}"
          + (f" {'oracle NLL':>10} {'gap to oracle':>13}" if has_oracle else ""))
    for i, T in enumerate(sizes):
        if T <= 10 or T % 5 == 0:
            print(f"{T:>7} {result['model'][i]:>9.4f} {result['exact'][i]:>9.4f} {gap[i]:>8.4f} "
                  f"{2 * result['gap_stderr'][i]:>9.4f} {result['mc_error'][i]:>7.4f}"
                  + (f" {result['oracle'][i]:>10.4f} {result['model'][i] - result['oracle'][i]:>13.4f}"
                     if has_oracle else ""))
    mean_stderr = np.sqrt((result["gap_stderr"] ** 2).sum()) / len(sizes)
    mean_mc_error = np.sqrt((result["mc_error"] ** 2).sum()) / len(sizes)
    print(f"mean gap over context sizes 1-{args.max_context}: {gap.mean():.4f} ± {2 * mean_stderr:.4f} nats "
          f"per test point (PFN {result['model'].mean():.4f}, reference {result['exact'].mean():.4f}, "
          f"its Monte Carlo error {mean_mc_error:.1e})")
    if has_oracle:
        print(f"mean gap to the oracle: {(result['model'] - result['oracle']).mean():.4f} "
              f"(oracle {result['oracle'].mean():.4f})")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot_curves(sizes, result, f"{args.name}: mean gap {gap.mean():.3f} nats", out / f"{args.name}_nll.png")
    bands = "the GP given the drawn hyperparameters" if has_oracle else "exact GP"
    plot_posteriors(trained, prior, [s for s in (1, 3, 10, 40) if s <= args.max_context],
                    f"{args.name}: PFN bands (blue) over {bands} bands (grey)", out / f"{args.name}_posteriors.png")
    print(f"plots: {out / f'{args.name}_nll.png'}, {out / f'{args.name}_posteriors.png'}")


if __name__ == "__main__":
    main()
