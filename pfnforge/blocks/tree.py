"""Random axis-aligned decision trees for Numba code: the piecewise-constant edges of SCM-style priors.

A tree of depth d is complete: splits ``0 .. 2^d - 2`` in heap order (children of split i are 2i + 1 and
2i + 2), leaves ``0 .. 2^d - 1``. Split i sends a row right when ``inputs[split_input[i], row] >
split_threshold[i]``. Drawing thresholds at the values of randomly chosen rows (``sample_split_thresholds``)
puts every split inside the data, as a fitted tree's splits would be, so few leaves are empty.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def sample_split_thresholds(inputs_NR: np.ndarray, split_input_S: np.ndarray, rows_S: np.ndarray,
                            out_S: np.ndarray) -> None:
    """``out_S[i] = inputs_NR[split_input_S[i], rows_S[i]]``: each split's threshold is one row's value."""
    for i in range(split_input_S.shape[0]):
        out_S[i] = inputs_NR[split_input_S[i], rows_S[i]]


@numba.njit(cache=True)
def tree_forward(inputs_NR: np.ndarray, depth: int, split_input_S: np.ndarray, split_threshold_S: np.ndarray,
                 leaf_value_L: np.ndarray, out_R: np.ndarray) -> None:
    """``out_R[r]`` = the value of the leaf that row ``r`` of ``inputs_NR`` reaches in the tree."""
    num_splits = (1 << depth) - 1
    for r in range(out_R.shape[0]):
        node = 0
        for _ in range(depth):
            go_right = inputs_NR[split_input_S[node], r] > split_threshold_S[node]
            node = 2 * node + (2 if go_right else 1)
        out_R[r] = leaf_value_L[node - num_splits]
