"""Stationary covariance kernels for Numba loops, one row of a covariance matrix at a time.

A kernel is a list of base terms combined by a sum or a product. Base kernels of the distance
``d = |a - b|``, each 1 at ``d = 0``:

    rbf       exp(-d² / (2 l²))
    matern12  exp(-d / l)
    matern32  (1 + √3 d / l) exp(-√3 d / l)
    matern52  (1 + √5 d / l + 5 d² / (3 l²)) exp(-√5 d / l)
    periodic  exp(-2 Σ_f sin²(π (a_f - b_f) / p) / l²)

The periodic kernel sums over features inside the exponential (a product of 1-D periodic kernels):
with the Euclidean distance in place of the per-feature differences it is not positive definite for
more than one feature.

A sum is the *mean* of its terms and a product their product, both times ``outputscale``, so that
``k(a, a) = outputscale`` whatever the expression. Inputs are feature-major (F, R) so the inner loops run
over contiguous rows and vectorise.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from pfnforge.blocks.fastexp import exp_nonpositive_inplace

RBF, MATERN12, MATERN32, MATERN52, PERIODIC = 0, 1, 2, 3, 4
KERNEL_CODES = {"rbf": RBF, "matern12": MATERN12, "matern32": MATERN32, "matern52": MATERN52,
                "periodic": PERIODIC}
NO_TERM = -1
"""Marks an unused slot in a (terms,) kernel description."""

_FAST = {"contract", "nsz", "arcp"}


@numba.njit(cache=True, fastmath=_FAST)
def squared_distances(xa_FR: np.ndarray, i: int, xb_FR: np.ndarray, count: int, num_features: int,
                      out: np.ndarray) -> None:
    """``out[j] = |xa[:, i] - xb[:, j]|²`` over the first ``num_features`` features, for j < count."""
    for j in range(count):
        out[j] = 0.0
    for f in range(num_features):
        xi = xa_FR[f, i]
        row = xb_FR[f]
        for j in range(count):
            t = row[j] - xi
            out[j] += t * t


@numba.njit(cache=True, fastmath=_FAST)
def periodic_sines(xa_FR: np.ndarray, i: int, xb_FR: np.ndarray, count: int, num_features: int,
                   period: float, out: np.ndarray) -> None:
    """``out[j] = Σ_f sin²(π (xa[f, i] - xb[f, j]) / period)`` for j < count."""
    for j in range(count):
        out[j] = 0.0
    scale = math.pi / period
    for f in range(num_features):
        xi = xa_FR[f, i]
        row = xb_FR[f]
        for j in range(count):
            s = math.sin(scale * (row[j] - xi))
            out[j] += s * s


@numba.njit(cache=True, fastmath=_FAST)
def base_kernel_row(kind: int, d2: np.ndarray, count: int, lengthscale: float, period: float,
                    out: np.ndarray, distance: np.ndarray, scratch: np.ndarray) -> None:
    """Evaluate one base kernel on ``d2[:count]`` into ``out``; ``distance`` and ``scratch`` are workspace.

    ``d2`` holds squared distances, except for ``PERIODIC`` where it holds ``periodic_sines``.
    """
    inv_l = 1.0 / lengthscale
    if kind == RBF:
        for j in range(count):
            out[j] = -0.5 * d2[j] * inv_l * inv_l
        exp_nonpositive_inplace(out, count, scratch)
        return
    if kind == PERIODIC:  # d2 holds Σ_f sin²(π Δ_f / p) for this term, see periodic_sines
        for j in range(count):
            out[j] = -2.0 * d2[j] * inv_l * inv_l
        exp_nonpositive_inplace(out, count, scratch)
        return
    root = 1.0 if kind == MATERN12 else (math.sqrt(3.0) if kind == MATERN32 else math.sqrt(5.0))
    for j in range(count):
        distance[j] = root * math.sqrt(d2[j]) * inv_l
        out[j] = -distance[j]
    exp_nonpositive_inplace(out, count, scratch)
    if kind == MATERN32:
        for j in range(count):
            out[j] *= 1.0 + distance[j]
    elif kind == MATERN52:
        for j in range(count):
            out[j] *= 1.0 + distance[j] + distance[j] * distance[j] / 3.0


@numba.njit(cache=True, fastmath=_FAST)
def kernel_row(xa_FR: np.ndarray, i: int, xb_FR: np.ndarray, count: int, num_features: int,
               kinds: np.ndarray, lengthscales: np.ndarray, periods: np.ndarray, is_product: bool,
               outputscale: float, out: np.ndarray, work: np.ndarray, scratch: np.ndarray) -> None:
    """``out[j] = k(xa[:, i], xb[:, j])`` for j < count.

    ``kinds``/``lengthscales``/``periods`` describe the terms (``NO_TERM`` ends the list); ``work`` is a
    float64 buffer of at least 3 * count, ``scratch`` an int64 buffer of at least count.
    """
    d2 = work[:count]
    term = work[count:2 * count]
    distance = work[2 * count:3 * count]
    squared_distances(xa_FR, i, xb_FR, count, num_features, d2)
    num_terms = 0
    for t in range(kinds.shape[0]):
        if kinds[t] == NO_TERM:
            break
        target = out if num_terms == 0 else term
        if kinds[t] == PERIODIC:  # its sines go to the target first, then become the kernel in place
            periodic_sines(xa_FR, i, xb_FR, count, num_features, periods[t], target)
            base_kernel_row(PERIODIC, target, count, lengthscales[t], periods[t], target, distance, scratch)
        else:
            base_kernel_row(kinds[t], d2, count, lengthscales[t], periods[t], target, distance, scratch)
        if num_terms > 0:
            for j in range(count):
                out[j] = out[j] * term[j] if is_product else out[j] + term[j]
        num_terms += 1
    scale = outputscale if is_product else outputscale / num_terms
    for j in range(count):
        out[j] *= scale


@numba.njit(cache=True)
def covariance_matrix(xa_FR: np.ndarray, xb_FR: np.ndarray, num_features: int, kinds: np.ndarray,
                      lengthscales: np.ndarray, periods: np.ndarray, is_product: bool,
                      outputscale: float) -> np.ndarray:
    """The full (Ra, Rb) cross-covariance ``k(xa, xb)``; for reference computations, not hot loops."""
    num_a, num_b = xa_FR.shape[1], xb_FR.shape[1]
    out = np.empty((num_a, num_b))
    work = np.empty(3 * num_b)
    scratch = np.empty(num_b, dtype=np.int64)
    for i in range(num_a):
        kernel_row(xa_FR, i, xb_FR, num_b, num_features, kinds, lengthscales, periods, is_product,
                   outputscale, out[i], work, scratch)
    return out
