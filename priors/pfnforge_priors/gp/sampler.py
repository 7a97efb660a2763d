"""The fused exact GP sampler: covariance row by row, in-place Cholesky, ``y = L z``, one dataset at a time.

One (R, R) buffer is reused for every dataset, so memory stays at R² doubles whatever the batch size and
the matrix is still in cache when LAPACK factors it.
"""

from __future__ import annotations

import numba
import numpy as np

from pfnforge.blocks.covariance import kernel_matrix
from pfnforge.blocks.linalg import cholesky_inplace, cholesky_matvec


@numba.njit(cache=True)
def sample_gp_targets(x_BFR: np.ndarray, num_features_B: np.ndarray, kinds_BT: np.ndarray,
                      lengthscales_BT: np.ndarray, periods_BT: np.ndarray, is_product_B: np.ndarray,
                      outputscale_B: np.ndarray, noise_variance_B: np.ndarray, z_BR: np.ndarray,
                      initial_jitter: float, max_jitter_tries: int, y_BR: np.ndarray,
                      jitter_B: np.ndarray) -> int:
    """Fill ``y_BR`` with exact draws ``y ~ N(0, K + (noise + jitter) I)``; ``x_BFR`` may be float32 (the
    kernel is evaluated in float64 from the stored values).

    Jitter starts at 0 and, when Cholesky fails, grows from ``initial_jitter * outputscale`` by 10× per
    try. Returns -1 on success, else the index of the first dataset that stayed non-positive-definite.
    """
    B, _, R = x_BFR.shape
    cov_RR = np.empty((R, R))
    term_RR = np.empty((R, R) if kinds_BT.shape[1] > 1 else (1, 1))  # only multi-term kernels need it
    distance = np.empty(R)
    scratch = np.empty(R, dtype=np.int64)
    y_R = np.empty(R)
    for b in range(B):
        x_FR = x_BFR[b]
        jitter = 0.0
        for attempt in range(max_jitter_tries + 1):
            kernel_matrix(x_FR, x_FR, num_features_B[b], kinds_BT[b], lengthscales_BT[b], periods_BT[b],
                          is_product_B[b], outputscale_B[b], True, cov_RR, term_RR, distance, scratch)
            diagonal = noise_variance_B[b] + jitter
            for i in range(R):
                cov_RR[i, i] += diagonal
            if cholesky_inplace(cov_RR, R) == 0:
                break
            if attempt == max_jitter_tries:
                return b
            jitter = initial_jitter * outputscale_B[b] * 10.0**attempt
        cholesky_matvec(cov_RR, z_BR[b], R, y_R)
        for i in range(R):
            y_BR[b, i] = y_R[i]
        jitter_B[b] = jitter
    return -1
