"""Version 2: the same loops compiled by numba, with B stored (K, N).

What changed: numba compiles the three loops to machine code, so a multiply-add is one or
two instructions instead of a Python operation (hundreds of times faster). But B is stored
(K, N), the textbook layout: the inner loop over k jumps N values through memory at every
step, so each multiply waits for a cache line it uses one byte of, and nothing vectorizes.
"""

from __future__ import annotations

import numpy as np
from numba import njit

TITLE = "numba, B strided"


@njit(cache=True)
def gemm_strided(a, b_kn, out):
    # the three loops compiled, with B stored (K, N): the inner loop strides through memory
    m_len, k_len = a.shape
    for m in range(m_len):
        for n in range(b_kn.shape[1]):
            acc = np.int32(0)
            for k in range(k_len):
                acc += np.int32(a[m, k]) * np.int32(b_kn[k, n])
            out[m, n] = acc


def prepare(a, w):
    b_kn = np.ascontiguousarray(w.T)  # (K, N)
    out = np.empty((a.shape[0], w.shape[0]), np.int32)
    return lambda: gemm_strided(a, b_kn, out) or out
