"""Stationary covariance kernels for Numba code, evaluated into caller-owned matrices.

A kernel is a list of base terms combined by a sum or a product. Base kernels of ``a - b``, each 1 at
``a = b`` (``d = |a - b|``):

    rbf       exp(-d² / (2 l²))
    matern12  exp(-d / l)
    matern32  (1 + √3 d / l) exp(-√3 d / l)
    matern52  (1 + √5 d / l + 5 d² / (3 l²)) exp(-√5 d / l)
    periodic  exp(-2 Σ_f sin²(π (a_f - b_f) / p) / l²)

The periodic kernel sums over features inside the exponential (a product of 1-D periodic kernels): with
the Euclidean distance in place of the per-feature differences it is not positive definite for more
than one feature. A sum is the *mean* of its terms and a product their product, both times
``outputscale``, so ``k(a, a) = outputscale`` whatever the expression.

Inputs are feature-major (F, R) so inner loops run over contiguous rows and vectorise. A whole matrix
is filled inside one function (a Numba call per row, with its reference counting, costs more than the
row's arithmetic). For a symmetric matrix only the upper triangle (``j >= i``) need be filled: that is
the column-major lower triangle LAPACK's fastest Cholesky variant reads (see ``pfnforge.blocks.linalg``).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from pfnforge.blocks.fastexp import FAST, exp_parts

RBF, MATERN12, MATERN32, MATERN52, PERIODIC = 0, 1, 2, 3, 4
KERNEL_CODES = {"rbf": RBF, "matern12": MATERN12, "matern32": MATERN32, "matern52": MATERN52,
                "periodic": PERIODIC}
NO_TERM = -1
"""Marks an unused slot in a (terms,) kernel description."""

_ROUND_SHIFT = 6755399441055744.0  # 1.5 * 2**52: adding and subtracting it rounds to the nearest integer
_SIMD_BLOCK = 8
"""In upper-triangle mode a row starts at the diagonal rounded down to this many columns (one AVX-512
vector of doubles), so rows start aligned; the extra entries left of the diagonal are valid values."""


@numba.njit(cache=True, inline="always")
def row_start(i: int, upper_only: bool) -> int:
    """First column of row ``i`` to compute: 0, or the diagonal rounded down to the SIMD block.

    Unsigned, like the loop end it is used with: Numba then knows the column index is not negative and
    skips the negative-index wrap-around that otherwise stops LLVM from vectorising the loop (4× slower).
    """
    return np.uint64((i // _SIMD_BLOCK) * _SIMD_BLOCK if upper_only else 0)


@numba.njit(cache=True, fastmath=FAST, inline="always")
def sin_pi_squared(u: float) -> float:
    """``sin²(π u)`` without a libm call, so loops over it vectorise: reduce u by its nearest integer
    (sin² has period 1), then an odd Taylor polynomial of degree 21 on [-π/2, π/2] (error < 1e-16)."""
    r = u - ((u + _ROUND_SHIFT) - _ROUND_SHIFT)
    x = math.pi * r
    x2 = x * x
    s = x * (1.0 - x2 / 6 * (1.0 - x2 / 20 * (1.0 - x2 / 42 * (1.0 - x2 / 72 * (1.0 - x2 / 110 * (
        1.0 - x2 / 156 * (1.0 - x2 / 210 * (1.0 - x2 / 272 * (1.0 - x2 / 342 * (1.0 - x2 / 420))))))))))
    return s * s


@numba.njit(cache=True, fastmath=FAST, inline="always")
def _feature_term(kind: int, difference: float, inv_period: float) -> float:
    """One feature's contribution: its squared difference, or for the periodic kernel its sin²."""
    if kind == PERIODIC:
        return sin_pi_squared(difference * inv_period)
    return difference * difference


@numba.njit(cache=True, fastmath=FAST)
def base_kernel_matrix(kind: int, xa_FR: np.ndarray, xb_FR: np.ndarray, num_features: int, lengthscale: float,
                       period: float, scale: float, upper_only: bool, out_AB: np.ndarray, distance: np.ndarray,
                       scratch: np.ndarray) -> None:
    """``out[i, j] = scale · k(xa[:, i], xb[:, j])`` for one base kernel.

    With ``upper_only`` only ``j >= i`` is needed; entries left of the diagonal from ``row_start`` on are
    written too, with valid values. ``distance`` (float64) and ``scratch`` (int64) are workspace of at
    least ``xb``'s row count.
    """
    num_a, num_b = xa_FR.shape[1], xb_FR.shape[1]
    inv_l = 1.0 / lengthscale
    if kind == RBF:
        factor = -0.5 * inv_l * inv_l
    elif kind == PERIODIC:
        factor = -2.0 * inv_l * inv_l
    elif kind == MATERN12:
        factor = inv_l
    elif kind == MATERN32:
        factor = math.sqrt(3.0) * inv_l
    else:
        factor = math.sqrt(5.0) * inv_l
    inv_period = 1.0 / period
    powers_of_two = scratch.view(np.float64)
    end = np.uint64(num_b)
    for i in range(num_a):
        start = row_start(i, upper_only)
        # squared distances (for the periodic kernel: its sum of sines) into the row
        # first feature (or pair) assigns, later ones add: one pass over the row per two features
        f0 = num_features % 2
        if f0 == 1:
            xi = np.float64(xa_FR[0, i])
            for j in range(start, end):
                out_AB[i, j] = _feature_term(kind, xb_FR[0, j] - xi, inv_period)
        else:
            for j in range(start, end):
                out_AB[i, j] = 0.0
        for f in range(f0, num_features, 2):
            xi, xi2 = np.float64(xa_FR[f, i]), np.float64(xa_FR[f + 1, i])
            for j in range(start, end):
                out_AB[i, j] += (_feature_term(kind, xb_FR[f, j] - xi, inv_period)
                                 + _feature_term(kind, xb_FR[f + 1, j] - xi2, inv_period))
        if kind in (RBF, PERIODIC):
            for j in range(start, end):
                out_AB[i, j], scratch[j] = exp_parts(out_AB[i, j] * factor)
            for j in range(start, end):
                out_AB[i, j] *= powers_of_two[j] * scale
            continue
        for j in range(start, end):
            distance[j] = factor * math.sqrt(out_AB[i, j])
            out_AB[i, j], scratch[j] = exp_parts(-distance[j])
        for j in range(start, end):
            d = distance[j]
            polynomial = 1.0 if kind == MATERN12 else (1.0 + d if kind == MATERN32 else 1.0 + d + d * d / 3.0)
            out_AB[i, j] *= powers_of_two[j] * scale * polynomial


@numba.njit(cache=True, fastmath=FAST)
def kernel_matrix(xa_FR: np.ndarray, xb_FR: np.ndarray, num_features: int, kinds: np.ndarray,
                  lengthscales: np.ndarray, periods: np.ndarray, is_product: bool, outputscale: float,
                  upper_only: bool, out_AB: np.ndarray, term_AB: np.ndarray, distance: np.ndarray,
                  scratch: np.ndarray) -> None:
    """Fill ``out_AB`` with the kernel described by ``kinds``/``lengthscales``/``periods`` (``NO_TERM``
    ends the list); only the upper triangle (see ``row_start``) when ``upper_only``. ``term_AB`` is
    workspace shaped like ``out_AB``, touched only for kernels of more than one term."""
    num_a, num_b = xa_FR.shape[1], xb_FR.shape[1]
    num_terms = 0
    while num_terms < kinds.shape[0] and kinds[num_terms] != NO_TERM:
        num_terms += 1
    for t in range(num_terms):
        # a sum averages its terms; a product carries the outputscale on its first term only
        scale = outputscale / num_terms if not is_product else (outputscale if t == 0 else 1.0)
        target = out_AB if t == 0 else term_AB
        base_kernel_matrix(kinds[t], xa_FR, xb_FR, num_features, lengthscales[t], periods[t], scale,
                           upper_only, target, distance, scratch)
        if t == 0:
            continue
        end = np.uint64(num_b)
        for i in range(num_a):
            for j in range(row_start(i, upper_only), end):
                out_AB[i, j] = out_AB[i, j] * term_AB[i, j] if is_product else out_AB[i, j] + term_AB[i, j]


@numba.njit(cache=True)
def covariance_matrix(xa_FR: np.ndarray, xb_FR: np.ndarray, num_features: int, kinds: np.ndarray,
                      lengthscales: np.ndarray, periods: np.ndarray, is_product: bool,
                      outputscale: float) -> np.ndarray:
    """The full (Ra, Rb) cross-covariance ``k(xa, xb)`` in a new array; for reference computations."""
    num_a, num_b = xa_FR.shape[1], xb_FR.shape[1]
    out = np.empty((num_a, num_b))
    term = np.empty((num_a, num_b)) if kinds.shape[0] > 1 and kinds[1] != NO_TERM else np.empty((1, 1))
    kernel_matrix(xa_FR, xb_FR, num_features, kinds, lengthscales, periods, is_product, outputscale, False,
                  out, term, np.empty(num_b), np.empty(num_b, dtype=np.int64))
    return out
