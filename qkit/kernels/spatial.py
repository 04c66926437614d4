"""Padding and upsampling of quantized NHWC tensors in numba (twins of
`qkit.reference.spatial`)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from qkit.core.checks_layers import check_pad, check_upsample
from qkit.reference.spatial import bilinear_weights


@njit(cache=True, parallel=True)
def _pad(x, top, left, value, out):
    n, h, w, _ = x.shape
    out[:] = value
    for t in prange(n * h):
        b, i = t // h, t % h
        out[b, top + i, left:left + w, :] = x[b, i]


def pad2d(x, padding, value: int) -> np.ndarray:
    """``value`` rows and columns around each map, (top, bottom, left, right) (see the
    reference)."""
    x, (top, bottom, left, right), value = check_pad(x, padding, value)
    n, h, w, c = x.shape
    out = np.empty((n, h + top + bottom, w + left + right, c), x.dtype)
    _pad(np.ascontiguousarray(x), top, left, x.dtype.type(value), out)
    return out


@njit(cache=True, parallel=True)
def _nearest(x, sh, sw, out):
    n, oh, ow, _ = out.shape
    for t in prange(n * oh):
        b, i = t // oh, t % oh
        for j in range(ow):
            out[b, i, j, :] = x[b, i // sh, j // sw, :]


@njit(cache=True, parallel=True)
def _bilinear(x, hs, ws, out, qmin, qmax):
    # hs/ws: (lower index, upper index, upper weight) per output row / column
    h_lo, h_hi, h1 = hs
    w_lo, w_hi, w1 = ws
    n, oh, ow, c_len = out.shape
    for t in prange(n * oh):
        b, i = t // oh, t % oh
        hb = h1[i]
        ha = np.float32(1) - hb
        for j in range(ow):
            wb = w1[j]
            wa = np.float32(1) - wb
            for c in range(c_len):
                top = wa * np.float32(x[b, h_lo[i], w_lo[j], c]) + \
                    wb * np.float32(x[b, h_lo[i], w_hi[j], c])
                bottom = wa * np.float32(x[b, h_hi[i], w_lo[j], c]) + \
                    wb * np.float32(x[b, h_hi[i], w_hi[j], c])
                y = np.rint(ha * top + hb * bottom)
                out[b, i, j, c] = min(max(y, qmin), qmax)


def upsample2d(x, scale, mode: str = "nearest", align_corners: bool = False) -> np.ndarray:
    """Upsampling by integer factors, nearest or bilinear, on the input's grid (see the
    reference)."""
    x, (sh, sw), mode, align_corners = check_upsample(x, scale, mode, align_corners)
    n, h, w, c = x.shape
    out = np.empty((n, h * sh, w * sw, c), x.dtype)
    if mode == "nearest":
        _nearest(np.ascontiguousarray(x), sh, sw, out)
        return out
    info = np.iinfo(x.dtype)
    _bilinear(np.ascontiguousarray(x), bilinear_weights(h, sh, align_corners),
              bilinear_weights(w, sw, align_corners), out, float(info.min), float(info.max))
    return out
