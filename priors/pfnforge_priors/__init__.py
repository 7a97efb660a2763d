"""First-party pfnforge priors, registered through the ``pfnforge.priors`` entry-point group."""
