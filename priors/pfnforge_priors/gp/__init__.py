"""Gaussian-process regression prior with kernel hyperpriors, exact sampling, the exact posterior given the
drawn hyperparameters and the posterior integrated over the hyperpriors."""

from pfnforge_priors.gp.marginal import MarginalConfig, MarginalPosterior, marginal_posterior
from pfnforge_priors.gp.posterior import GPPosterior, exact_posterior
from pfnforge_priors.gp.prior import GPConfig, GPPrior, InputDistribution

__all__ = ["GPConfig", "GPPosterior", "GPPrior", "InputDistribution", "MarginalConfig", "MarginalPosterior",
           "exact_posterior", "marginal_posterior"]
