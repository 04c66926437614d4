"""Requantization in numba (twins of `qkit.reference.requantization`)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from qkit.core.checks import check_fixed_point, check_multiplier, check_requantize, storage_dtype

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


@njit(cache=True)
def _srdhm(a, b):
    # round_half_away(a * b / 2**31), saturating the single overflow case
    if a == INT32_MIN and b == INT32_MIN:
        return np.int64(INT32_MAX)
    ab = np.int64(a) * np.int64(b)
    nudge = np.int64(1 << 30) if ab >= 0 else np.int64(1 - (1 << 30))
    num = ab + nudge
    return num // (1 << 31) if num >= 0 else -((-num) // (1 << 31))  # truncating division


@njit(cache=True)
def _rdbpot(x, e):
    # x / 2**e rounded half away from zero
    mask = (np.int64(1) << e) - 1
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if (x & mask) > threshold else 0)


@njit(cache=True, parallel=True)
def _requantize_fixed_nb(acc, multiplier, bias, out_grid, out):
    # acc (M,N) s32; multiplier = (m0, shift), each (1,) or (N,); bias = (values (N,), used)
    m0, shift = multiplier
    bias, has_bias = bias
    zp, qmin, qmax = out_grid
    m_len, n_len = acc.shape
    for m in prange(m_len):
        for n in range(n_len):
            j = n if m0.shape[0] > 1 else 0
            x = np.int64(acc[m, n])
            if has_bias:
                x = min(max(x + bias[n], INT32_MIN), INT32_MAX)
            left = max(np.int64(shift[j]), 0)
            right = max(-np.int64(shift[j]), 0)
            xs = min(max(x << left, INT32_MIN), INT32_MAX)
            y = _rdbpot(_srdhm(xs, np.int64(m0[j])), right) + zp
            out[m, n] = min(max(y, qmin), qmax)


@njit(cache=True, parallel=True)
def _requantize_float_nb(acc, mult, bias, has_bias, zp, qmin, qmax, out):
    # y = clamp(rne(f32(f32(f32(acc) + bias) * mult)) + zp)
    m_len, n_len = acc.shape
    for m in prange(m_len):
        for n in range(n_len):
            j = n if mult.shape[0] > 1 else 0
            x = np.float32(acc[m, n])
            if has_bias:
                x = np.float32(x + bias[n])
            # clamped in float first: a product past int64 (or inf) must still give qmin/qmax
            y = min(max(np.float32(x * mult[j]), np.float32(qmin - zp)), np.float32(qmax - zp))
            out[m, n] = np.int64(np.rint(y)) + zp


def requantize_fixed(acc, multiplier, shift, zero_point: int, qmin: int, qmax: int,
                     bias=None) -> np.ndarray:
    """``y = clamp(MultiplyByQuantizedMultiplier(acc + bias, M0, shift) + zp, qmin, qmax)``."""
    m0, shift = check_fixed_point(multiplier, shift)
    acc, qmin, qmax = check_requantize(acc, zero_point, qmin, qmax, bias,
                                       {"multiplier": m0.size, "shift": shift.size},
                                       integer_bias=True)
    b = np.zeros(1, np.int64) if bias is None else np.asarray(bias, np.int32).astype(np.int64)
    out = np.empty(acc.shape, storage_dtype(qmin, qmax))
    _requantize_fixed_nb(acc, (m0, shift), (b, bias is not None), (int(zero_point), qmin, qmax),
                         out)
    return out


def requantize_float(acc, multiplier, zero_point: int, qmin: int, qmax: int,
                     bias=None) -> np.ndarray:
    """``y = clamp(rne(f32(f32(f32(acc) + bias) * multiplier)) + zp, qmin, qmax)``."""
    mult = check_multiplier(multiplier)
    acc, qmin, qmax = check_requantize(acc, zero_point, qmin, qmax, bias,
                                       {"multiplier": mult.size})
    b = np.zeros(1, np.float32) if bias is None else np.asarray(bias, dtype=np.float32)
    out = np.empty(acc.shape, storage_dtype(qmin, qmax))
    _requantize_float_nb(acc, mult, b, bias is not None, int(zero_point), qmin, qmax, out)
    return out
