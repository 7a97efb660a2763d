"""A vectorisable ``exp`` for non-positive numbers.

``math.exp`` in a Numba loop is a scalar libm call that stops LLVM from vectorising the loop. Here
``v = k ln2 + r`` with ``|r| <= ln2 / 2``; a degree-13 Taylor polynomial gives ``exp(r)`` (truncation
error below 1e-17 relative) and ``2**k`` is built from the exponent bits. ``exp_parts`` returns the two
factors so that callers can keep the whole computation inside their own loop (a Numba call per row, with
its reference counting, costs more than the arithmetic); ``exp_nonpositive_inplace`` is the array form.
Arguments below -700 are clamped (exp(-700) ~ 1e-304, far below any jitter added to a covariance).
"""

from __future__ import annotations

import numba
import numpy as np

_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e00
_ROUND_SHIFT = 6755399441055744.0  # 1.5 * 2**52: adding and subtracting it rounds to the nearest integer
_FLOOR_ARG = -700.0

# Contract to FMAs and ignore signed zeros, but never reassociate: that would cancel the rounding shift.
FAST = {"contract", "nsz", "arcp"}


@numba.njit(cache=True, fastmath=FAST, inline="always")
def exp_parts(v: float) -> tuple[float, np.int64]:
    """``exp(v) = p * 2**k`` for ``v <= 0``: returns ``p`` and the int64 bit pattern of the double ``2**k``.

    Write the bits to an int64 array and multiply ``p`` by that array's float64 view.
    """
    v = max(v, _FLOOR_ARG)
    k = (v * _INV_LN2 + _ROUND_SHIFT) - _ROUND_SHIFT
    r = (v - k * _LN2_HI) - k * _LN2_LO
    p = 1.0 + r * (1.0 + r * (1 / 2 + r * (1 / 6 + r * (1 / 24 + r * (1 / 120 + r * (
        1 / 720 + r * (1 / 5040 + r * (1 / 40320 + r * (1 / 362880 + r * (
            1 / 3628800 + r * (1 / 39916800 + r * (1 / 479001600 + r * (1 / 6227020800)))))))))))))
    return p, (np.int64(k) + 1023) << 52


@numba.njit(cache=True, fastmath=FAST)
def exp_nonpositive_inplace(values: np.ndarray, count: int, scratch: np.ndarray) -> None:
    """Replace ``values[:count]`` (each <= 0) by their exponential; ``scratch`` is int64, length >= count."""
    for j in range(count):
        values[j], scratch[j] = exp_parts(values[j])
    powers_of_two = scratch.view(np.float64)
    for j in range(count):
        values[j] *= powers_of_two[j]
