"""The MXFP4 dot product as integers in numba (twin of `qkit.reference.mx`)."""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from qkit.reference.mx import FP4_PRODUCTS


@njit(cache=True, parallel=True)
def _gemm_mxfp4_nb(a, sa, w, sw, table, out):
    m, nb, bl = a.shape
    for i in prange(m):
        for j in range(w.shape[0]):
            acc = 0.0
            for b in range(nb):
                s = np.int32(0)
                for k in range(bl):
                    s += table[a[i, b, k], w[j, b, k]]
                acc += math.ldexp(np.float64(s), np.int64(sa[i, b]) + np.int64(sw[j, b]) - 256)
            out[i, j] = acc


def gemm_mxfp4(a_codes, a_scales, w_codes, w_scales):
    """``a`` (M, nb, 32) and ``w`` (N, nb, 32) FP4 codes with E8M0 scales -> (M, N) float64."""
    out = np.empty((a_codes.shape[0], w_codes.shape[0]))
    _gemm_mxfp4_nb(np.ascontiguousarray(a_codes, np.uint8), np.ascontiguousarray(a_scales),
                   np.ascontiguousarray(w_codes, np.uint8), np.ascontiguousarray(w_scales),
                   FP4_PRODUCTS, out)
    return out
