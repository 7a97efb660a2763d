"""Gaussian-process regression prior with kernel hyperpriors, exact sampling and the exact posterior."""

from pfnforge_priors.gp.posterior import GPPosterior, exact_posterior
from pfnforge_priors.gp.prior import GPConfig, GPPrior, InputDistribution

__all__ = ["GPConfig", "GPPosterior", "GPPrior", "InputDistribution", "exact_posterior"]
