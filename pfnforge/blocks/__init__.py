"""Numba building blocks for prior authors.

All functions are ``numba.njit(cache=True)``: they compile on first call (not at import) and load from
the on-disk cache in later processes. They take explicit arrays and never touch global random state.

- ``fastexp``: a vectorisable ``exp`` for non-positive arguments (kernel values), accurate to ~1 ulp.
- ``linalg``: in-place Cholesky through the LAPACK that SciPy ships, and triangular products.
- ``covariance``: stationary covariance kernels (RBF, Matérn 1/2, 3/2, 5/2, periodic) and their sums
  and products, evaluated row by row into caller-owned buffers.
"""
