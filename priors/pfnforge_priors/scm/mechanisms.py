"""Numba kernels of the SCM prior: evaluate a graph's nodes in causal order, then turn the feature nodes
into table columns (categorical codes, warps, grids, missing values).

Node values are feature-major, (N, R). Every node is standardised after its mechanism, so no chain of
mechanisms can overflow: a node has mean 0 and variance 1 before its noise is added.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from pfnforge.blocks.mlp import activate_inplace, linear_combination, standardize_inplace
from pfnforge.blocks.tabular import (
    inject_missing_mcar,
    inject_missing_value_dependent,
    kumaraswamy_warp_inplace,
    power_warp_inplace,
    quantize_inplace,
)
from pfnforge.blocks.tree import sample_split_thresholds, tree_forward

ROOT, MLP, TREE = 0, 1, 2
NORMAL, UNIFORM, LOGNORMAL = 0, 1, 2
NO_WARP, KUMARASWAMY, POWER = 0, 1, 2
NO_MISSING, MCAR, VALUE_DEPENDENT = 0, 1, 2


@numba.njit(cache=True)
def evaluate_graph(rng: np.random.Generator, parent_offsets: np.ndarray, parents: np.ndarray,
                   weights: np.ndarray, kind: np.ndarray, code: np.ndarray, gain: np.ndarray, shift: np.ndarray,
                   noise_std: np.ndarray, noise_df: np.ndarray, heteroscedastic: np.ndarray,
                   tree_depth: np.ndarray, split_offsets: np.ndarray, split_input: np.ndarray,
                   split_row: np.ndarray, leaf_offsets: np.ndarray, leaf_value: np.ndarray,
                   values_NR: np.ndarray) -> None:
    """Fill ``values_NR`` node by node, drawing each root's values and each node's noise from ``rng``.

    A node's noise is normal, or Student-t with ``noise_df[n]`` (> 2) degrees of freedom scaled to unit
    variance; a heteroscedastic node multiplies it row by row by e^{z} (z its first parent's value), rescaled
    so that the noise keeps the variance ``noise_std[n]²``.

    The generator is used inside the kernel: Numba's ``standard_normal`` on it is ~3× faster here than
    NumPy's for a whole (N, R) array, and it is the same stream of the same generator.
    """
    num_nodes, num_rows = values_NR.shape
    thresholds = np.empty(split_input.shape[0])
    work, bits = np.empty(num_rows), np.empty(num_rows, dtype=np.int64)
    multiplier = np.ones(num_rows)
    for n in range(num_nodes):
        out = values_NR[n]
        if kind[n] == ROOT:
            for r in range(num_rows):
                z = rng.standard_normal()
                if code[n] == UNIFORM:
                    z = 0.5 * math.erfc(-z / math.sqrt(2.0))  # the normal CDF of a normal: uniform
                elif code[n] == LOGNORMAL:
                    z = math.exp(z)
                out[r] = z
            standardize_inplace(out)
            continue
        lo, hi = parent_offsets[n], parent_offsets[n + 1]
        if kind[n] == MLP:
            linear_combination(values_NR, parents[lo:hi], weights[lo:hi], out)
            standardize_inplace(out)
            for r in range(num_rows):
                out[r] = gain[n] * out[r] + shift[n]
            activate_inplace(out, code[n], work, bits)
        else:
            s0, s1 = split_offsets[n], split_offsets[n + 1]
            sample_split_thresholds(values_NR, split_input[s0:s1], split_row[s0:s1], thresholds[s0:s1])
            tree_forward(values_NR, tree_depth[n], split_input[s0:s1], thresholds[s0:s1],
                         leaf_value[leaf_offsets[n]:leaf_offsets[n + 1]], out)
        standardize_inplace(out)
        sigma, df = noise_std[n], noise_df[n]
        if heteroscedastic[n]:
            parent = values_NR[parents[lo]]
            power = 0.0
            for r in range(num_rows):
                multiplier[r] = math.exp(min(parent[r], 10.0))
                power += multiplier[r] * multiplier[r]
            norm = 1.0 / math.sqrt(power / num_rows)
            for r in range(num_rows):
                multiplier[r] *= norm
        if df > 0:
            t_scale = math.sqrt((df - 2.0) / df)
            for r in range(num_rows):
                out[r] += sigma * multiplier[r] * t_scale * rng.standard_t(df)
        else:
            for r in range(num_rows):
                out[r] += sigma * multiplier[r] * rng.standard_normal()
        if heteroscedastic[n]:
            multiplier[:] = 1.0


@numba.njit(cache=True)
def write_features(rng: np.random.Generator, values_NR: np.ndarray, feature_nodes: np.ndarray,
                   category_offsets: np.ndarray, category_rows: np.ndarray, category_codes: np.ndarray,
                   warp: np.ndarray, warp_a: np.ndarray,
                   warp_b: np.ndarray,
                   quantize_levels: np.ndarray, missing: int, missing_rate: float, missing_strength: np.ndarray,
                   x_RF: np.ndarray) -> int:
    """Write feature column j from node ``feature_nodes[j]`` into ``x_RF[:, j]``; returns the missing count.

    Column j is categorical when it has category rows (``category_offsets[j] < category_offsets[j + 1]``):
    its ordinal codes count the values of those rows below each value, and code k is then written as
    ``category_codes[category_offsets[j] + j + k]`` (a permutation of 0..K, or the identity). Otherwise it is
    warped (``warp[j]``) and then quantised when ``quantize_levels[j] >= 2``. Missing values come last, from
    uniforms drawn from ``rng``.
    """
    num_rows = values_NR.shape[1]
    column = np.empty(num_rows)
    uniforms = np.empty(num_rows)
    total_missing = 0
    for j in range(feature_nodes.shape[0]):
        column[:] = values_NR[feature_nodes[j]]
        c0, c1 = category_offsets[j], category_offsets[j + 1]
        if c1 > c0:
            cuts = np.sort(column[category_rows[c0:c1]])
            ordinal = np.searchsorted(cuts, column)  # thresholds strictly below: ordinal_categorical_inplace
            for r in range(num_rows):
                column[r] = category_codes[c0 + j + ordinal[r]]
        else:
            if warp[j] == KUMARASWAMY:
                kumaraswamy_warp_inplace(column, warp_a[j], warp_b[j])
            elif warp[j] == POWER:
                power_warp_inplace(column, warp_a[j])
            if quantize_levels[j] >= 2:
                quantize_inplace(column, quantize_levels[j])
        if missing != NO_MISSING:
            for r in range(num_rows):
                uniforms[r] = rng.random()
        if missing == MCAR:
            total_missing += inject_missing_mcar(column, missing_rate, uniforms)
        elif missing == VALUE_DEPENDENT:
            total_missing += inject_missing_value_dependent(column, missing_rate, missing_strength[j], uniforms)
        for r in range(num_rows):
            x_RF[r, j] = column[r]
    return total_missing


@numba.njit(cache=True)
def inject_outliers(x_RF: np.ndarray, rows: np.ndarray, columns: np.ndarray, sizes: np.ndarray) -> None:
    """Set cell (``rows[i]``, ``columns[i]``) to its column's mean plus ``sizes[i]`` of its standard deviations
    (both over the column's present values, before any outlier; 1 where the column is constant). Missing cells
    stay missing."""
    num_rows, num_columns = x_RF.shape
    mean, std = np.zeros(num_columns), np.ones(num_columns)
    needed = np.zeros(num_columns, dtype=np.bool_)
    for i in range(columns.shape[0]):
        needed[columns[i]] = True
    for j in range(num_columns):
        if not needed[j]:
            continue
        total, squares, count = 0.0, 0.0, 0
        for r in range(num_rows):
            value = x_RF[r, j]
            if not math.isnan(value):
                total += value
                squares += value * value
                count += 1
        if count:
            mean[j] = total / count
            variance = max(squares / count - mean[j] * mean[j], 0.0)
            std[j] = math.sqrt(variance) if variance > 0 else 1.0
    for i in range(rows.shape[0]):
        r, j = rows[i], columns[i]
        if not math.isnan(x_RF[r, j]):
            x_RF[r, j] = mean[j] + sizes[i] * std[j]
