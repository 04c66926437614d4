"""Quantize and dequantize in numba (twins of `qkit.reference.quantization`)."""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from qkit.core.checks import check_float_array, check_int_array, check_range
from qkit.core.qparams import QParams, block_params, check_qparams, to_blocks
from qkit.core.rounding import MODE_CODE, check_rounding


@njit(cache=True)
def _round(v, mode, u):
    # v: float64 holding a float32 quotient; mode codes follow qkit.core.rounding.ROUNDING_MODES
    if mode == 0:
        return np.rint(v)
    if mode == 1:
        return math.copysign(math.floor(abs(v) + 0.5), v)
    if mode == 2:
        return math.floor(v)
    return math.floor(v + u)


@njit(cache=True, parallel=True)
def _quantize_nb(xb, scale, zp, qmin, qmax, mode, noise, out):
    # xb (C,G,L) float32, scale/zp (C,G), noise (C,G,L) float64 or empty -> out (C,G,L)
    n_c, n_g, n_l = xb.shape
    for c in prange(n_c):
        for g in range(n_g):
            s = scale[c, g]
            z = np.float64(zp[c, g])
            for i in range(n_l):
                v = np.float64(np.float32(xb[c, g, i] / s))  # float32 division
                u = noise[c, g, i] if mode == 3 else 0.0
                r = _round(v, mode, u) + z
                out[c, g, i] = min(max(r, qmin), qmax)  # clip before casting down


@njit(cache=True, parallel=True)
def _dequantize_nb(qb, scale, zp, out):
    # qb (C,G,L) int -> out (C,G,L) float32 = (q - zp) * scale
    n_c, n_g, n_l = qb.shape
    for c in prange(n_c):
        for g in range(n_g):
            s = scale[c, g]
            z = np.int32(zp[c, g])
            for i in range(n_l):
                out[c, g, i] = np.float32(np.int32(qb[c, g, i]) - z) * s


def quantize(x, qp: QParams, rounding: str = "half_even", rng=None) -> np.ndarray:
    """``q = clip(round(x / scale) + zero_point, qmin, qmax)`` (numba; see the reference)."""
    qp = check_qparams(qp)
    x = check_float_array(x)
    noise = check_rounding(rounding, rng, x.shape)
    xb, restore = to_blocks(x, qp.axis, qp.group_size)
    scale, zp = block_params(qp, x.shape)
    nb = to_blocks(noise, qp.axis, qp.group_size)[0] if noise.size else np.zeros((1, 1, 1))
    out = np.empty(xb.shape, qp.dtype)
    _quantize_nb(xb, scale, zp, float(qp.qmin), float(qp.qmax), MODE_CODE[rounding], nb, out)
    return restore(out)


def dequantize(q, qp: QParams) -> np.ndarray:
    """``x = (q - zero_point) * scale`` in float32 (numba; see the reference)."""
    qp = check_qparams(qp)
    q = check_int_array(q, "q", (np.int8, np.uint8, np.int16, np.uint16))
    check_range(q, "q", qp.qmin, qp.qmax)
    qb, restore = to_blocks(q, qp.axis, qp.group_size)
    scale, zp = block_params(qp, q.shape)
    out = np.empty(qb.shape, np.float32)
    _dequantize_nb(qb, scale, zp, out)
    return restore(out)


def fake_quantize(x, qp: QParams, rounding: str = "half_even", rng=None) -> np.ndarray:
    """``dequantize(quantize(x))`` with the numba kernels."""
    return dequantize(quantize(x, qp, rounding, rng), qp)
