"""pfnforge: pretrain prior-fitted networks from priors written as plugins.

The public pieces a prior author needs: ``Prior``, ``PriorConfig``, ``BatchShape``, ``Task``
(``pfnforge.prior``), ``PriorBatch`` (``pfnforge.batch``) and the hyperpriors ``Range``, ``IntRange``, ``Gamma``,
``Choice`` and ``Scale`` (``pfnforge.hyperpriors``).
"""

from pfnforge.batch import PriorBatch
from pfnforge.hyperpriors import Choice, Gamma, IntRange, Range, Scale
from pfnforge.prior import BatchShape, Prior, PriorConfig, Task

__version__ = "0.1.0"

__all__ = ["BatchShape", "Choice", "Gamma", "IntRange", "Prior", "PriorBatch", "PriorConfig", "Range", "Scale", "Task"]
