"""Fixed-point requantization multipliers (gemmlowp / TFLite), vectorized in int64.

A real multiplier ``m`` (e.g. ``s_in * s_w / s_out``) becomes ``M0 * 2**shift / 2**31``
with ``M0`` an int32 in ``[2**30, 2**31)``; ``x * m`` is then computed with two
integer operations, each rounding once.

Notes
-----
gemmlowp ``fixedpoint.h`` (SaturatingRoundingDoublingHighMul,
RoundingDivideByPOT); TFLite ``QuantizeMultiplier`` and
``MultiplyByQuantizedMultiplier``; Jacob et al. 2018, §2.2.
"""

from __future__ import annotations

import numpy as np

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def quantize_multiplier(m):
    """``m = M0 * 2**(shift - 31)`` with ``M0`` in ``[2**30, 2**31)`` (or 0 when m == 0).

    ``q, shift = frexp(m)`` with ``q`` in [0.5, 1); ``M0 = round_half_away(q * 2**31)``;
    if that reaches ``2**31`` it is halved and ``shift`` grows by one. Multipliers
    below ``2**-31`` cannot be represented with ``shift >= -31``; they become
    ``(0, 0)`` (the product is then 0, which is within one step of the true value).

    >>> quantize_multiplier(0.5), quantize_multiplier(0.75), quantize_multiplier(1.0)
    ((1073741824, 0), (1610612736, 0), (1073741824, 1))
    """
    if isinstance(m, str | bytes | bool) or m is None:
        raise TypeError(f"m (the real multiplier) must be a number or an array of numbers, "
                        f"got {m!r}")
    m_arr = np.asarray(m)
    if m_arr.dtype.kind not in "iuf":
        raise TypeError(f"m (the real multiplier) must be real numbers, got {m_arr.dtype}")
    m_arr = m_arr.astype(np.float64)
    if not np.isfinite(m_arr).all() or (m_arr < 0).any():
        raise ValueError(f"m (the real multiplier) must be finite and >= 0, got {m}")
    q, shift = np.frexp(m_arr)
    m0 = np.floor(q * 2.0**31 + 0.5).astype(np.int64)  # q >= 0: half away == half up
    top = m0 == 2**31
    m0 = np.where(top, m0 // 2, m0)
    shift = np.where(top, shift + 1, shift).astype(np.int64)
    tiny = (m_arr == 0) | (shift < -31)
    m0 = np.where(tiny, 0, m0).astype(np.int32)
    shift = np.where(tiny, 0, shift).astype(np.int32)
    if (shift > 30).any():
        raise ValueError(f"multiplier {m} >= 2**30 is out of range for int32 requantization")
    if np.ndim(m) == 0:
        return int(m0), int(shift)
    return m0, shift


def srdhm(a, b):
    """SaturatingRoundingDoublingHighMul: ``a * b / 2**31`` rounded to nearest, in int32.

    ``(a*b + nudge) / 2**31`` with C's truncating division and ``nudge = 2**30``
    (``1 - 2**30`` when ``a*b < 0``). Read carefully, that rounds ties toward
    +infinity (-1.5 -> -1, +1.5 -> 2), not away from zero as is often said.
    The one overflow, ``a == b == INT32_MIN``, saturates to ``INT32_MAX``.

    >>> int(srdhm(2**30, 2**30)), int(srdhm(-3, 2**30)), int(srdhm(INT32_MIN, INT32_MIN))
    (536870912, -1, 2147483647)
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    ab = a * b
    nudge = np.where(ab >= 0, 2**30, 1 - 2**30)
    num = ab + nudge
    q = np.where(num >= 0, num // 2**31, -((-num) // 2**31))  # C division truncates
    q = np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, q)
    return q.astype(np.int32)


def rounding_divide_by_pot(x, exponent):
    """``x / 2**exponent`` rounded half away from zero, exponent in 0..31.

    >>> rounding_divide_by_pot(np.array([5, -5, 6, -6, 7]), 1)
    array([ 3, -3,  3, -3,  4], dtype=int32)
    """
    x = np.asarray(x, dtype=np.int64)
    e = np.asarray(exponent, dtype=np.int64)
    if (e < 0).any() or (e > 31).any():
        raise ValueError(f"exponent must be in 0..31, got {exponent}")
    mask = (np.int64(1) << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return ((x >> e) + (remainder > threshold)).astype(np.int32)


def multiply_by_quantized_multiplier(x, m0, shift):
    """``x * M0 * 2**(shift - 31)`` rounded the TFLite way (two roundings, within 1 of exact).

    A positive shift is a left shift first; where TFLite's int32 shift would
    overflow, qkit saturates instead.

    >>> m0, shift = quantize_multiplier(0.25)
    >>> multiply_by_quantized_multiplier(np.array([10, -10, 6, -6, 2]), m0, shift)
    array([ 3, -3,  2, -2,  1], dtype=int32)
    """
    x = np.asarray(x, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    xs = np.clip(x << left, INT32_MIN, INT32_MAX)
    return rounding_divide_by_pot(srdhm(xs, m0), right)
