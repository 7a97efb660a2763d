"""Training a PFN: the Lightning module (``module``), the data module over prior streams (``data``) and the
entry point that builds everything from a Hydra config (``run``)."""
