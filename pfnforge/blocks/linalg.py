"""Dense linear algebra inside Numba loops, without copies.

``cholesky_inplace`` calls LAPACK ``dpotrf`` (SciPy's build, through Numba's LAPACK bridge, so the
compiled code caches) on the leading ``n x n`` block of a C-ordered buffer whose *upper* triangle holds
the symmetric matrix: that is the column-major lower triangle, and LAPACK's lower variant is the faster
one (~15% at n = 100 with OpenBLAS). Afterwards the upper triangle holds ``U = Lᵀ`` with ``A = L Lᵀ``;
the strict lower triangle is neither read nor written.
"""

from __future__ import annotations

import numba
import numpy as np
from numba.np.linalg import _LAPACK

_potrf = _LAPACK().numba_xxpotrf(numba.types.float64)
_KIND_DOUBLE = np.int8(ord("d"))
_COLUMN_MAJOR_LOWER = np.int8(ord("L"))


@numba.njit(cache=True)
def cholesky_inplace(a_RR: np.ndarray, n: int) -> int:
    """Factor the leading ``n x n`` block of ``a_RR`` in place (upper triangle in, ``Lᵀ`` out); returns
    LAPACK's info: 0 on success, ``k > 0`` when the leading minor of order ``k`` is not positive definite."""
    return _potrf(_KIND_DOUBLE, _COLUMN_MAJOR_LOWER, n, a_RR.ctypes, a_RR.shape[1])


@numba.njit(cache=True, fastmath={"contract", "nsz", "arcp", "reassoc"})
def cholesky_matvec(u_RR: np.ndarray, z: np.ndarray, n: int, out: np.ndarray) -> None:
    """``out[:n] = L @ z[:n]`` where the upper triangle of ``u_RR`` holds ``U = Lᵀ`` (rows are contiguous,
    so ``L z`` is a sum of scaled rows of ``U``)."""
    for i in range(n):
        out[i] = 0.0
    end = np.uint64(n)  # unsigned bounds: no negative-index wrap-around, so the inner loop vectorises
    for c in range(end):
        zc = z[c]
        for r in range(c, end):
            out[r] += u_RR[c, r] * zc
