"""Numba building blocks for prior authors.

All functions are ``numba.njit(cache=True)``: they compile on first call (not at import) and load from
the on-disk cache in later processes. They take explicit arrays and never touch global random state.

- ``fastexp``: a vectorisable ``exp`` for non-positive arguments (kernel values), accurate to ~1 ulp.
- ``linalg``: in-place Cholesky through the LAPACK that SciPy ships, and triangular products.
- ``covariance``: stationary covariance kernels (RBF, Matérn 1/2, 3/2, 5/2, periodic) and their sums
  and products, evaluated into caller-owned matrices.
- ``mlp``: activations by integer code, standardisation, sparse weighted sums and a dense random-MLP forward.
- ``tree``: random axis-aligned decision trees (splits at the values of random rows) and their forward pass.
- ``tabular``: class sizes and rank discretisation into classes, missing values (MCAR and value-dependent),
  ordinal categorical codes, Kumaraswamy/power warps and quantisation, one column at a time.
- ``dense``: float32 standard normals ~20× faster than NumPy's (``standard_normal_f32(rng, shape)`` takes
  one seed from the generator; a vectorised Box–Muller loop over SplitMix64 words does the rest).

Compiled code is cached under ``~/.cache/pfnforge/numba/<hash of these sources>`` unless
``NUMBA_CACHE_DIR`` is set (see ``_isolate_numba_cache``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numba


def _isolate_numba_cache() -> None:
    """Key Numba's on-disk cache by the source of these blocks.

    Numba invalidates a cached function only when *its own* file changes, but a prior's kernel inlines
    these blocks: after an upgrade of pfnforge alone it would load machine code built from the old
    blocks. Unless ``NUMBA_CACHE_DIR`` is set, caches go to a directory named by a hash of this package's
    sources, so a changed block means a fresh cache. Runs before any cached function here is defined.
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    digest = hashlib.sha256()
    for source in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(source.read_bytes())
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    numba.config.CACHE_DIR = str(root / "pfnforge" / "numba" / digest.hexdigest()[:16])


_isolate_numba_cache()
