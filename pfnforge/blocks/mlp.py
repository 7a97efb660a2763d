"""Activations and random-MLP pieces for Numba code: the nonlinear edges of BNN- and SCM-style priors.

Activations are small integer codes (``ACTIVATION_CODES`` maps names to them) so that a kernel can give
every node or layer its own nonlinearity without Python objects. Arrays are feature-major, (units, rows):
the inner loops run over contiguous rows.

- ``activate_inplace(values_R, kind, work_R, bits_R)``: one activation over a row of values (two scratch rows).
- ``standardize_inplace(values_R)``: zero mean, unit variance (a constant row becomes zeros). SCM nodes
  standardise their inputs and outputs, so no chain of mechanisms can overflow.
- ``linear_combination(inputs_NR, parents_P, weights_P, out_R)``: a sparse weighted sum of parent rows.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from pfnforge.blocks.fastexp import exp_nonpositive_inplace

IDENTITY, TANH, RELU, SIGMOID, SIN, ABS, SQUARE, STEP, GAUSSIAN, SOFTPLUS, LEAKY_RELU = range(11)
ACTIVATION_CODES = {"identity": IDENTITY, "tanh": TANH, "relu": RELU, "sigmoid": SIGMOID, "sin": SIN,
                    "abs": ABS, "square": SQUARE, "step": STEP, "gaussian": GAUSSIAN, "softplus": SOFTPLUS,
                    "leaky_relu": LEAKY_RELU}
"""name -> code. step is the Heaviside step, gaussian exp(-h²), leaky_relu max(h, 0.1 h)."""


@numba.njit(cache=True)
def activate_inplace(values_R: np.ndarray, kind: int, work_R: np.ndarray, bits_R: np.ndarray) -> None:
    """Apply activation ``kind`` (a code of ``ACTIVATION_CODES``) to every value of ``values_R``.

    ``work_R`` (float64) and ``bits_R`` (int64), each at least as long, are scratch: tanh, sigmoid,
    gaussian and softplus are built from ``exp`` of a non-positive number (``-2|h|``, ``-|h|``, ``-h²``),
    which ``fastexp`` evaluates in vectorised loops instead of a libm call per value.
    """
    n = values_R.shape[0]
    if kind in (TANH, SIGMOID, SOFTPLUS):
        factor = 2.0 if kind == TANH else 1.0
        for r in range(n):
            work_R[r] = -factor * abs(values_R[r])
        exp_nonpositive_inplace(work_R, n, bits_R)  # e = exp(-factor |h|) in (0, 1]
        for r in range(n):
            h, e = values_R[r], work_R[r]
            if kind == TANH:
                values_R[r] = math.copysign((1.0 - e) / (1.0 + e), h)
            elif kind == SIGMOID:
                values_R[r] = 1.0 / (1.0 + e) if h >= 0 else e / (1.0 + e)
            else:
                values_R[r] = max(h, 0.0) + math.log1p(e)
    elif kind == GAUSSIAN:
        for r in range(n):
            values_R[r] = -values_R[r] * values_R[r]
        exp_nonpositive_inplace(values_R, n, bits_R)
    elif kind == RELU:
        for r in range(n):
            values_R[r] = max(values_R[r], 0.0)
    elif kind == SIN:
        for r in range(n):
            values_R[r] = math.sin(values_R[r])
    elif kind == ABS:
        for r in range(n):
            values_R[r] = abs(values_R[r])
    elif kind == SQUARE:
        for r in range(n):
            values_R[r] = values_R[r] * values_R[r]
    elif kind == STEP:
        for r in range(n):
            values_R[r] = 1.0 if values_R[r] > 0.0 else 0.0
    elif kind == LEAKY_RELU:
        for r in range(n):
            values_R[r] = max(values_R[r], 0.1 * values_R[r])


@numba.njit(cache=True)
def moments(values_R: np.ndarray) -> tuple[float, float, float]:
    """Mean, (population) standard deviation and largest magnitude of ``values_R``, in two passes."""
    n = values_R.shape[0]
    mean = 0.0
    for r in range(n):
        mean += values_R[r]
    mean /= n
    var = 0.0
    peak = 0.0
    for r in range(n):
        d = values_R[r] - mean
        var += d * d
        peak = max(peak, abs(values_R[r]))
    return mean, math.sqrt(var / n), peak


@numba.njit(cache=True)
def standardize_inplace(values_R: np.ndarray) -> float:
    """Shift and scale ``values_R`` to mean 0 and variance 1; returns the std before scaling.

    A row whose std is below 1e-12 of its scale is constant: it becomes all zeros (not a division by ~0).
    """
    n = values_R.shape[0]
    mean, std, peak = moments(values_R)
    inv = 1.0 / std if std > 1e-12 * max(peak, 1e-300) else 0.0
    for r in range(n):
        values_R[r] = (values_R[r] - mean) * inv
    return std


@numba.njit(cache=True)
def linear_combination(inputs_NR: np.ndarray, parents_P: np.ndarray, weights_P: np.ndarray,
                       out_R: np.ndarray) -> None:
    """``out_R = Σ_p weights_P[p] · inputs_NR[parents_P[p]]``."""
    out_R[:] = 0.0
    for p in range(parents_P.shape[0]):
        row = inputs_NR[parents_P[p]]
        w = weights_P[p]
        for r in range(out_R.shape[0]):
            out_R[r] += w * row[r]
