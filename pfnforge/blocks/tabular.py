"""What real tables look like, for Numba code: classes cut from a target, missing values, ordinal
categories, warped and quantised features.

Every function works on one column (a contiguous (R,) row of a feature-major array) in place and takes
its randomness as arrays drawn by the caller's generator (uniforms, thresholds), so a prior's kernel can
loop over columns without leaving Numba.

- ``class_counts(num_rows, proportions_C, out_C)``: rows per class, each class >= 1 row (largest remainder).
- ``assign_classes_by_rank(values_R, counts_C, labels_C, out_R)``: the ``counts_C[0]`` smallest values get
  ``labels_C[0]``, the next ``counts_C[1]`` get ``labels_C[1]``, ...: exact class sizes, ties or not.
- ``inject_missing_mcar(values_R, rate, uniforms_R)``: NaN where ``uniform < rate`` (missing completely at
  random).
- ``inject_missing_value_dependent(values_R, rate, strength, uniforms_R)``: NaN with probability
  ``min(1, c · e^{s z})`` (z the standardised value, c set so that the mean probability is ``rate``): large
  values (s > 0) or small ones (s < 0) go missing more often, at the same mean rate.
- ``ordinal_categorical_inplace(values_R, thresholds_K)``: each value becomes the number of thresholds below it.
- ``kumaraswamy_warp_inplace(values_R, a, b)`` / ``power_warp_inplace(values_R, exponent)``: min-max to [0, 1],
  then the Kumaraswamy CDF ``1 - (1 - x^a)^b`` or ``x^exponent`` (monotone, so ranks are kept).
- ``quantize_inplace(values_R, num_levels)``: round onto ``num_levels`` evenly spaced values of the column's range.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from pfnforge.blocks.mlp import moments


@numba.njit(cache=True)
def class_counts(num_rows: int, proportions_C: np.ndarray, out_C: np.ndarray) -> None:
    """Split ``num_rows`` (>= C) into C class sizes close to ``proportions_C`` (sum 1), each >= 1."""
    num_classes = proportions_C.shape[0]
    free = num_rows - num_classes  # one row is reserved for every class
    remainders = np.empty(num_classes)
    used = 0
    for c in range(num_classes):
        whole = math.floor(proportions_C[c] * free)
        out_C[c] = 1 + whole
        remainders[c] = proportions_C[c] * free - whole
        used += out_C[c]
    order = np.argsort(-remainders)
    for i in range(num_rows - used):
        out_C[order[i % num_classes]] += 1


@numba.njit(cache=True)
def assign_classes_by_rank(values_R: np.ndarray, counts_C: np.ndarray, labels_C: np.ndarray,
                           out_R: np.ndarray) -> None:
    """Label rows by the rank of their value: class blocks of exactly ``counts_C`` rows, in value order."""
    order = np.argsort(values_R, kind="mergesort")
    start = 0
    for c in range(counts_C.shape[0]):
        for i in range(start, start + counts_C[c]):
            out_R[order[i]] = labels_C[c]
        start += counts_C[c]


@numba.njit(cache=True)
def inject_missing_mcar(values_R: np.ndarray, rate: float, uniforms_R: np.ndarray) -> int:
    """Set ``values_R[r]`` to NaN where ``uniforms_R[r] < rate``; returns how many went missing."""
    missing = 0
    for r in range(values_R.shape[0]):
        if uniforms_R[r] < rate:
            values_R[r] = np.nan
            missing += 1
    return missing


@numba.njit(cache=True)
def inject_missing_value_dependent(values_R: np.ndarray, rate: float, strength: float,
                                   uniforms_R: np.ndarray) -> int:
    """NaN with a probability that grows (strength > 0) or shrinks (< 0) with the value, mean ``rate``."""
    n = values_R.shape[0]
    mean, std, _ = moments(values_R)
    scale = strength / std if std > 0 else 0.0
    weights = np.empty(n)
    total = 0.0
    for r in range(n):
        weights[r] = math.exp(min(scale * (values_R[r] - mean), 30.0))
        total += weights[r]
    factor = rate * n / total
    for _ in range(50):  # water-filling: rows clipped at probability 1 hand their excess to the others
        clipped, free_weight = 0, 0.0
        for r in range(n):
            if weights[r] * factor >= 1.0:
                clipped += 1
            else:
                free_weight += weights[r]
        if free_weight <= 0.0 or rate * n - clipped <= 0.0:
            break
        updated = (rate * n - clipped) / free_weight  # grows each pass, so the clipped set only grows
        if updated <= factor * (1.0 + 1e-12):
            break
        factor = updated
    missing = 0
    for r in range(n):
        if uniforms_R[r] < min(weights[r] * factor, 1.0):
            values_R[r] = np.nan
            missing += 1
    return missing


@numba.njit(cache=True)
def ordinal_categorical_inplace(values_R: np.ndarray, thresholds_K: np.ndarray) -> None:
    """Replace each value by the count of ``thresholds_K`` strictly below it: ordinal codes 0..K."""
    for r in range(values_R.shape[0]):
        code = 0
        for k in range(thresholds_K.shape[0]):
            if values_R[r] > thresholds_K[k]:
                code += 1
        values_R[r] = code


@numba.njit(cache=True)
def _unit_interval_inplace(values_R: np.ndarray) -> tuple[float, float]:
    lo, hi = values_R.min(), values_R.max()
    span = hi - lo
    inv = 1.0 / span if span > 0 else 0.0
    for r in range(values_R.shape[0]):
        values_R[r] = (values_R[r] - lo) * inv
    return lo, span


@numba.njit(cache=True)
def kumaraswamy_warp_inplace(values_R: np.ndarray, a: float, b: float) -> None:
    """Min-max to [0, 1], then the Kumaraswamy(a, b) CDF ``1 - (1 - x^a)^b`` (a, b > 0)."""
    _unit_interval_inplace(values_R)
    for r in range(values_R.shape[0]):
        values_R[r] = 1.0 - (1.0 - values_R[r] ** a) ** b


@numba.njit(cache=True)
def power_warp_inplace(values_R: np.ndarray, exponent: float) -> None:
    """Min-max to [0, 1], then ``x^exponent`` (exponent > 0)."""
    _unit_interval_inplace(values_R)
    for r in range(values_R.shape[0]):
        values_R[r] = values_R[r] ** exponent


@numba.njit(cache=True)
def quantize_inplace(values_R: np.ndarray, num_levels: int) -> None:
    """Round each value onto ``num_levels`` (>= 2) evenly spaced points from the column's min to its max."""
    lo, span = _unit_interval_inplace(values_R)
    steps = num_levels - 1
    for r in range(values_R.shape[0]):
        values_R[r] = lo + math.floor(values_R[r] * steps + 0.5) / steps * span
