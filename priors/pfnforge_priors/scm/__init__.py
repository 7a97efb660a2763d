"""TabPFN-style structural-causal-model prior over tabular data (``scm``)."""

from pfnforge_priors.scm.config import SCMConfig
from pfnforge_priors.scm.graph import SCMGraph, sample_graph
from pfnforge_priors.scm.prior import SCMPrior

__all__ = ["SCMConfig", "SCMGraph", "SCMPrior", "sample_graph"]
