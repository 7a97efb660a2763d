"""pfnforge: pretrain prior-fitted networks from priors written as plugins.

The public pieces a prior author needs: ``Prior``, ``PriorConfig``, ``BatchShape``, ``Task``
(``pfnforge.prior``), ``PriorBatch`` (``pfnforge.batch``) and the hyperpriors ``Range``, ``IntRange``, ``Gamma``,
``Choice`` and ``Scale`` (``pfnforge.hyperpriors``). For users of trained PFNs: ``PFNClassifier`` and
``PFNRegressor`` (``pfnforge.inference.estimators``), imported on first use so ``import pfnforge`` stays light.
"""

from pfnforge.batch import PriorBatch
from pfnforge.hyperpriors import Choice, Gamma, IntRange, Range, Scale
from pfnforge.prior import BatchShape, Prior, PriorConfig, Task

__version__ = "0.1.0"

__all__ = ["BatchShape", "Choice", "Gamma", "IntRange", "PFNClassifier", "PFNRegressor", "Prior", "PriorBatch",
           "PriorConfig", "Range", "Scale", "Task"]

_LAZY = {"PFNClassifier": "pfnforge.inference.estimators", "PFNRegressor": "pfnforge.inference.estimators"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pfnforge' has no attribute {name!r}")
