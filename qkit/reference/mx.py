"""The MXFP4 dot product as integers (twin of `qkit.kernels.mx`).

E2M1 values times 2 are the integers 0, +-1, 2, 3, 4, 6, 8, 12, so the product of two FP4
codes is an integer number of quarters: a 16 x 16 table. A block's dot product is the integer
sum of 32 table entries, and its scale is a power of two, 2^(Xa + Xw - 2): the whole MX block
product is exact integer arithmetic and one exponent add, which is why MX hardware is cheap.
Only the sum over blocks (different powers of two) is float64, block by block in order.
"""

from __future__ import annotations

import numpy as np

# 2 * value of each E2M1 code: 0 0.5 1 1.5 2 3 4 6, then the same negated
FP4_TIMES_2 = np.array([0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12], np.int32)
FP4_PRODUCTS = np.outer(FP4_TIMES_2, FP4_TIMES_2).astype(np.int32)  # in quarters


def gemm_mxfp4(a_codes, a_scales, w_codes, w_scales):
    """``a`` (M, nb, 32) and ``w`` (N, nb, 32) FP4 codes with E8M0 scales (M, nb) and (N, nb)
    -> (M, N) float64: sum over blocks of 2^(Xa + Xw - 2) * sum(FP4_PRODUCTS[a, w])."""
    a = a_codes.astype(np.intp)
    w = w_codes.astype(np.intp)
    m, nb, _ = a.shape
    out = np.zeros((m, w.shape[0]))
    for b in range(nb):
        block = FP4_PRODUCTS[a[:, None, b, :], w[None, :, b, :]].sum(axis=-1)  # exact ints
        e = a_scales[:, b].astype(np.int64)[:, None] + w_scales[:, b].astype(np.int64) - 256
        out += np.ldexp(block.astype(np.float64), e)
    return out
