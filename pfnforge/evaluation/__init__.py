"""``pfnforge evaluate``: a trained PFN on real datasets against standard baselines (``datasets``,
``baselines``, ``metrics``, ``tabular``), and on prior datasets against the exact posterior (``posterior``);
tables, plots and MLflow logging in ``report`` and ``plots``; the two entry points in ``run``."""
