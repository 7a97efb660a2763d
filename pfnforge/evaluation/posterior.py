"""A PFN against the Bayes-optimal answer on its prior: on fresh datasets drawn from a prior that knows its
exact posterior predictive (the GP prior does), the NLL per test point of the model and of the exact
posterior, and their gap, for each number of context (training) points.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from pfnforge.errors import ConfigError
from pfnforge.prior import BatchShape, Prior, Reference

ORACLE_REFERENCE = ("GP given each dataset's drawn hyperparameters (an oracle no model reaches: the "
                    "hyperparameter-marginal posterior is not computed for this prior's periodic kernels or "
                    "context sizes)")


@dataclass(kw_only=True)
class PosteriorConfig:
    """How ``pfnforge evaluate MODEL --prior NAME`` samples its datasets."""

    context_sizes: list[int] = field(default_factory=lambda: [2, 4, 8, 16, 32, 64, 128])
    """Numbers of context points to score at (sizes beyond the model's row limit are left out)."""
    num_test_rows: int = 20
    """Test points per dataset."""
    num_datasets: int = 256
    """Datasets per context size."""
    num_features: int | None = None
    """Features per dataset (default: the smallest count the model was trained on, else 1)."""
    seed: int = 0
    """Seed of the datasets: the same seed draws the same datasets."""

    def __post_init__(self) -> None:
        if not self.context_sizes or min(self.context_sizes) < 1:
            raise ConfigError(f"context_sizes={self.context_sizes} must be a non-empty list of sizes >= 1")
        for name in ("num_test_rows", "num_datasets"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= 1")
        if self.num_features is not None and self.num_features < 1:
            raise ConfigError(f"num_features={self.num_features} must be >= 1")


def trained_prior(trained) -> Prior:
    """The prior (and its exact configuration) the model was trained on, as its metadata records it."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from pfnforge import registry

    info = trained.metadata.get("prior", {})
    if not info.get("name") or info["name"] == "untrained":
        raise ConfigError("the model's metadata names no training prior: pass --prior NAME instead of 'trained'")
    prior_class = registry.load_prior_class(info["name"])
    try:
        config = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(prior_class.Config), info.get("config", {})))
    except OmegaConfBaseException as error:
        raise ConfigError(f"the recorded config of prior {info['name']!r} does not fit the installed one "
                          f"({str(error).splitlines()[0]}): pass --prior {info['name']} with overrides") from error
    return prior_class(config)


def _num_features(trained, config: PosteriorConfig) -> int:
    if config.num_features is not None:
        return config.num_features
    stream = trained.metadata.get("config", {}).get("data", {}).get("stream", {})
    return int(stream.get("num_features", {}).get("low", 1))


def _mean_stderr(values: np.ndarray) -> tuple[float, float]:
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0


def evaluate_against_prior(trained, prior: Prior, config: PosteriorConfig) -> pd.DataFrame:
    """One row per context size: mean NLL per test point of the model and of the prior's reference predictive,
    the gap (model − reference; 0 is Bayes-optimal), each with its standard error over datasets, the
    reference's Monte Carlo error where it is estimated, and with drawn hyperparameters the oracle's NLL and the
    gap to it. ``table.attrs["reference"]`` names the reference."""
    num_features = _num_features(trained, config)
    if num_features > trained.limits["max_features"]:
        raise ConfigError(f"num_features={num_features} is more than the model takes "
                          f"({trained.limits['max_features']}): pass fewer features")
    max_rows = trained.limits["max_rows"]
    sizes = sorted(t for t in set(config.context_sizes) if t + config.num_test_rows <= max_rows)
    if not sizes:
        raise ConfigError(f"every context size in {config.context_sizes} plus {config.num_test_rows} test rows "
                          f"exceeds the model's {max_rows} rows: pass smaller --context-sizes")
    rows, reference_name = [], None
    for T in sizes:
        rng = np.random.default_rng(np.random.SeedSequence([config.seed, T]))
        shape = BatchShape(num_datasets=config.num_datasets, num_rows=T + config.num_test_rows,
                           num_features=num_features, num_train_rows=T)
        batch = prior.sample(rng, shape)
        reference, oracle_BR = prior.reference(batch), prior.oracle_log_likelihood(batch)
        if reference is None and oracle_BR is None:
            raise ConfigError(f"prior {prior.name!r} does not know its exact posterior predictive, so there is "
                              "nothing to compare with: use a prior that does (e.g. --prior gp)")
        if reference is None:  # the Bayes-optimal answer costs too much here: the oracle is the reference
            reference, oracle_BR = Reference(log_density=oracle_BR, name=ORACLE_REFERENCE), None
        reference_name = reference.name
        num_classes_B = torch.as_tensor(np.broadcast_to(batch.num_classes, (config.num_datasets,)).copy())
        with torch.no_grad():
            log_likelihood_BQ = trained.model.test_log_likelihood(
                torch.from_numpy(batch.x), torch.from_numpy(batch.y), T, num_classes_B).double().numpy()
        model_B = -log_likelihood_BQ.mean(1)
        exact_B = -np.asarray(reference.log_density, dtype=np.float64)[:, T:].mean(1)
        row = {"num_context": T}
        for name, values in (("model_nll", model_B), ("exact_nll", exact_B), ("gap", model_B - exact_B)):
            row[name], row[f"{name}_stderr"] = _mean_stderr(values)
        if reference.mc_error is not None:
            row["exact_mc_error"] = float(np.sqrt(np.sum(reference.mc_error**2)) / len(reference.mc_error))
        if oracle_BR is not None:
            oracle_B = -np.asarray(oracle_BR, dtype=np.float64)[:, T:].mean(1)
            for name, values in (("oracle_nll", oracle_B), ("gap_to_oracle", model_B - oracle_B)):
                row[name], row[f"{name}_stderr"] = _mean_stderr(values)
        rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs["reference"] = reference_name
    return table
