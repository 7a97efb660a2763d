"""Dense linear algebra inside Numba loops, without copies.

``cholesky_inplace`` calls LAPACK ``dpotrf`` (SciPy's build, through Numba's LAPACK bridge, so the
compiled code caches) on the leading ``n x n`` block of a C-ordered buffer whose lower triangle holds
the matrix; afterwards that lower triangle holds ``L`` with ``A = L Lᵀ``. The strict upper triangle is
neither read nor written.
"""

from __future__ import annotations

import numba
import numpy as np
from numba.np.linalg import _LAPACK

# A C-ordered lower triangle is LAPACK's (column-major) upper triangle: factor 'U', read back as L.
_potrf = _LAPACK().numba_xxpotrf(numba.types.float64)
_KIND_DOUBLE = np.int8(ord("d"))
_UPPER = np.int8(ord("U"))


@numba.njit(cache=True)
def cholesky_inplace(a_RR: np.ndarray, n: int) -> int:
    """Factor the leading ``n x n`` block of ``a_RR`` in place; returns LAPACK's info (0 on success,
    ``k > 0`` when the leading minor of order ``k`` is not positive definite)."""
    return _potrf(_KIND_DOUBLE, _UPPER, n, a_RR.ctypes, a_RR.shape[1])


@numba.njit(cache=True, fastmath={"contract", "nsz", "arcp", "reassoc"})
def lower_matvec(l_RR: np.ndarray, z: np.ndarray, n: int, out: np.ndarray) -> None:
    """``out[:n] = L[:n, :n] @ z[:n]`` reading only the lower triangle of ``l_RR``."""
    for i in range(n):
        acc = 0.0
        row = l_RR[i]
        for j in range(i + 1):
            acc += row[j] * z[j]
        out[i] = acc
