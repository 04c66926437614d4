"""Slow-but-clear GEMM versions, kept for the 'making int8 fast' notebook.

Each computes the same integers as `qkit.kernels.gemm`; the notebook times them
side by side against the plain K-contiguous loop and the VNNI micro-kernel.
"""

from __future__ import annotations

import numpy as np
from numba import njit


def gemm_python(a, w) -> np.ndarray:
    """Three Python loops: the definition, about a million times too slow."""
    m_len, k_len = a.shape
    out = np.zeros((m_len, w.shape[0]), np.int32)
    for m in range(m_len):
        for n in range(w.shape[0]):
            acc = 0
            for k in range(k_len):
                acc += int(a[m, k]) * int(w[n, k])
            out[m, n] = acc
    return out


@njit(cache=True)
def gemm_strided(a, b_kn, out):
    # the same three loops compiled, with B stored (K, N): the inner loop strides through memory
    m_len, k_len = a.shape
    for m in range(m_len):
        for n in range(b_kn.shape[1]):
            acc = np.int32(0)
            for k in range(k_len):
                acc += np.int32(a[m, k]) * np.int32(b_kn[k, n])
            out[m, n] = acc
