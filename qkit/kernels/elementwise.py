"""Lookup-table layers and quantized products in numba (twins of `qkit.reference.elementwise`)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from qkit.core.checks_layers import check_lut, check_qmul


@njit(cache=True, parallel=True)
def _lut(x, offset, table, out):
    for i in prange(x.shape[0]):
        out[i] = table[np.int32(x[i]) + offset]


def lut(x, table) -> np.ndarray:
    """``y = table[x]`` (uint8) or ``table[x + 128]`` (int8) (see the reference)."""
    x, table = check_lut(x, table)
    out = np.empty(x.size, table.dtype)
    _lut(np.ascontiguousarray(x).ravel(), 128 if x.dtype == np.int8 else 0, table, out)
    return out.reshape(x.shape)


@njit(cache=True, parallel=True)
def _qmul(a, za, b, zb, m, out_grid, out):
    # a, b, out: 4-D, a and b broadcast to out's shape (stride-0 axes)
    zp, qmin, qmax = out_grid
    n0, n1, n2, n3 = out.shape
    for t in prange(n0 * n1):
        i, j = t // n1, t % n1
        for k in range(n2):
            for c in range(n3):
                p = (np.int32(a[i, j, k, c]) - za) * (np.int32(b[i, j, k, c]) - zb)
                y = np.rint(np.float32(np.float32(p) * m)) + zp
                out[i, j, k, c] = min(max(y, qmin), qmax)


def qmul(a, a_zero_point: int, b, b_zero_point: int, multiplier, zero_point: int,
         qmin: int, qmax: int) -> np.ndarray:
    """The product of two quantized tensors, broadcast, on a third grid (see the reference)."""
    a, za, b, zb, m, zp, qmin, qmax, dtype, shape = check_qmul(
        a, a_zero_point, b, b_zero_point, multiplier, zero_point, qmin=qmin, qmax=qmax)
    shape4 = (1,) * (4 - len(shape)) + tuple(shape)
    a4, b4 = (np.broadcast_to(v.reshape((1,) * (len(shape4) - v.ndim) + v.shape), shape4)
              for v in (a, b))
    out = np.empty(shape4, dtype)
    _qmul(a4, np.int32(za), b4, np.int32(zb), m, (float(zp), float(qmin), float(qmax)), out)
    return out.reshape(shape)
