"""A PFN on fresh datasets of a prior, by number of context (training) points: its NLL per test point, CRPS and
interval coverage (regression) or accuracy (classification), beside simple baselines fitted to each dataset
(``pfnforge.evaluation.prior_scores``); and, where the prior knows its exact posterior predictive (the GP prior
does), the NLL of that Bayes-optimal answer and the model's gap to it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pfnforge.batch import PriorBatch
from pfnforge.errors import ConfigError
from pfnforge.evaluation.prior_scores import BASELINES, baseline_scores, check_baselines, pfn_scores
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
    split: str = "prefix"
    """Which rows are the context: the first T of each dataset as the prior orders them (``prefix``: for ordered
    data such as learning curves, the model extrapolates), or T rows drawn at random (``random``: it
    interpolates). For priors whose rows are exchangeable the two agree in distribution."""
    baselines: list[str] | None = None
    """Baselines fitted to each dataset's context (default: all of the task's: knn and gp for regression, knn
    and logistic for classification; [] for none)."""

    def __post_init__(self) -> None:
        if self.split not in ("prefix", "random"):
            raise ConfigError(f"split={self.split!r} is unknown: choose prefix or random")
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


def _shuffled(batch: PriorBatch, rng: np.random.Generator) -> PriorBatch:
    """The batch with each dataset's rows in a random order (its hyperparameters unchanged)."""
    order_BR = np.argsort(rng.random(batch.y.shape), axis=1)
    return dataclasses.replace(batch, x=np.take_along_axis(batch.x, order_BR[:, :, None], 1),
                               y=np.take_along_axis(batch.y, order_BR, 1))


def _add(row: dict, prefix: str, scores: dict[str, np.ndarray]) -> None:
    for metric, values_BQ in scores.items():
        row[f"{prefix}_{metric}"], row[f"{prefix}_{metric}_stderr"] = _mean_stderr(values_BQ.mean(1))


def evaluate_against_prior(trained, prior: Prior, config: PosteriorConfig) -> pd.DataFrame:
    """One row per context size: the model's mean NLL per test point (and CRPS, 50/90 % interval coverage for
    regression, accuracy for classification) and the same for each baseline, each with its standard error over
    datasets. Where the prior knows its reference predictive: its NLL, the gap (model − reference; 0 is
    Bayes-optimal), the reference's Monte Carlo error where it is estimated, and with drawn hyperparameters the
    oracle's NLL and the gap to it. ``table.attrs["reference"]`` names the reference (None: there is none)."""
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
        if config.split == "random":
            batch = _shuffled(batch, np.random.default_rng(np.random.SeedSequence([config.seed, T, 1])))
        num_classes_B = np.broadcast_to(batch.num_classes, (config.num_datasets,)).copy()
        task = "classification" if num_classes_B[0] > 0 else "regression"
        if not trained.supports(task):
            raise ConfigError(f"prior {prior.name!r} draws {task} datasets and this model has no {task} head: "
                              f"pass a {task} model")
        row: dict = {"num_context": T}
        model_scores = pfn_scores(trained, batch.x, batch.y, T, num_classes_B)
        _add(row, "model", model_scores)
        reference, oracle_BR = prior.reference(batch), prior.oracle_log_likelihood(batch)
        if reference is None and oracle_BR is not None:  # the Bayes-optimal answer costs too much: the oracle
            reference, oracle_BR = Reference(log_density=oracle_BR, name=ORACLE_REFERENCE), None
        if reference is not None:
            reference_name = reference.name
            model_B = model_scores["nll"].mean(1)
            exact_B = -np.asarray(reference.log_density, dtype=np.float64)[:, T:].mean(1)
            for name, values in (("exact_nll", exact_B), ("gap", model_B - exact_B)):
                row[name], row[f"{name}_stderr"] = _mean_stderr(values)
            if reference.mc_error is not None:
                row["exact_mc_error"] = float(np.sqrt(np.sum(reference.mc_error**2)) / len(reference.mc_error))
            if oracle_BR is not None:
                oracle_B = -np.asarray(oracle_BR, dtype=np.float64)[:, T:].mean(1)
                for name, values in (("oracle_nll", oracle_B), ("gap_to_oracle", model_B - oracle_B)):
                    row[name], row[f"{name}_stderr"] = _mean_stderr(values)
        baselines = BASELINES[task] if config.baselines is None else config.baselines
        check_baselines(list(baselines), task)
        num_features_B = np.broadcast_to(batch.num_features, (config.num_datasets,))
        for name in baselines:
            _add(row, name, baseline_scores(name, batch.x, batch.y, T, num_classes_B, num_features_B,
                                            config.seed))
        rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs["reference"] = reference_name
    return table
