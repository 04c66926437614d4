"""Pooling and residual addition in numba (twins of `qkit.reference.pooling`)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from qkit.core.checks import check_pool, check_qadd, check_relu


@njit(cache=True, parallel=True)
def _pool(x, out, kh, kw, sh, sw, average):
    # out (N,OH,OW,C): max, or the sum rounded half up to a mean, over each window
    n_len, oh, ow, c_len = out.shape
    count = kh * kw
    for t in prange(n_len * oh):
        b, i = t // oh, t % oh
        for j in range(ow):
            for c in range(c_len):
                best, total = np.int64(-1000), np.int64(0)
                for u in range(kh):
                    for v in range(kw):
                        q = np.int64(x[b, i * sh + u, j * sw + v, c])
                        best = max(best, q)
                        total += q
                out[b, i, j, c] = (total + count // 2) // count if average else best


def maxpool2d(x, kernel, stride=None) -> np.ndarray:
    """Max over each ``kernel`` window (see the reference)."""
    x, (kh, kw), (sh, sw), (oh, ow) = check_pool(x, kernel, stride)
    out = np.empty((x.shape[0], oh, ow, x.shape[3]), x.dtype)
    _pool(x, out, kh, kw, sh, sw, False)
    return out


def avgpool2d(x, kernel, stride=None) -> np.ndarray:
    """Mean over each window, rounded half up (see the reference)."""
    x, (kh, kw), (sh, sw), (oh, ow) = check_pool(x, kernel, stride)
    out = np.empty((x.shape[0], oh, ow, x.shape[3]), x.dtype)
    _pool(x, out, kh, kw, sh, sw, True)
    return out


@njit(cache=True, parallel=True)
def _qadd(a_grid, b_grid, out_grid, out):
    # out = clamp(rne(f32(f32(a - za) * ma + f32(b - zb) * mb)) + zp, qmin, qmax), flat
    a, za, ma = a_grid
    b, zb, mb = b_grid
    zp, qmin, qmax = out_grid
    for i in prange(a.shape[0]):
        fa = np.float32(np.float32(np.int32(a[i]) - za) * ma)
        fb = np.float32(np.float32(np.int32(b[i]) - zb) * mb)
        y = np.rint(np.float32(fa + fb)) + zp
        out[i] = min(max(y, qmin), qmax)


def qadd(a, a_zero_point: int, a_mult, b, b_zero_point: int, b_mult, zero_point: int,
         qmin: int, qmax: int) -> np.ndarray:
    """Residual add of two quantized tensors into a third grid (see the reference)."""
    a, b, ma, mb, qmin, qmax, dtype = check_qadd(a, a_zero_point, a_mult, b, b_zero_point,
                                                 b_mult, zero_point, qmin=qmin, qmax=qmax)
    out = np.empty(a.size, dtype)
    _qadd((np.ascontiguousarray(a).ravel(), np.int32(a_zero_point), ma),
          (np.ascontiguousarray(b).ravel(), np.int32(b_zero_point), mb),
          (float(zero_point), float(qmin), float(qmax)), out)
    return out.reshape(a.shape)


def relu(x, zero_point: int) -> np.ndarray:
    """ReLU on a quantized tensor: ``max(q, zero_point)`` (see the reference)."""
    x, zero_point = check_relu(x, zero_point)
    return np.maximum(x, np.asarray(zero_point).astype(x.dtype))
