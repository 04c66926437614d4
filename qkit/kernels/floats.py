"""Low-bit float encoders in numba (twins of `qkit.reference.floats`).

The reference rounds with float64 arithmetic; these kernels do what a hardware converter
does instead: take the bits of the float64 input (sign, 11-bit exponent, 52-bit mantissa),
shift the mantissa right to the target's precision and round half to even on the bits
shifted out, all in integers. Two different algorithms, so their agreement (and both with
``ml_dtypes``) is a real check.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from qkit.reference.floats import float_format_limits

_MANT52 = (1 << 52) - 1


@njit(cache=True)
def _encode_float_nb(bits, ebits, mbits, kind, saturate, limits, out):
    bias, e_max, m_max = limits
    emin = 1 - bias
    for i in range(bits.size):
        b = bits[i]
        s = np.int64(b >> np.uint64(63)) << (ebits + mbits)
        ex = np.int64((b >> np.uint64(52)) & np.uint64(0x7FF))
        m = np.int64(b & np.uint64(_MANT52))
        top = (1 << ebits) - 1
        if ex == 0x7FF:  # Inf or NaN
            if m != 0:
                if kind == 0:
                    out[i] = s | (top << mbits) | (1 << (mbits - 1))
                elif kind == 1:
                    out[i] = s | ((1 << (ebits + mbits)) - 1)
                else:
                    out[i] = s ^ (1 << (ebits + mbits))
                continue
            n, qexp = np.int64(1) << 60, np.int64(1 << 20)  # +-Inf: overflow below
        else:
            # value = full * 2^vexp exactly
            if ex == 0:
                full, vexp, uexp = m, np.int64(-1074), np.int64(-1023)
            else:
                full, vexp, uexp = m | (np.int64(1) << 52), ex - 1075, ex - 1023
            qexp = max(uexp, emin) - mbits  # exponent of the target's quantum
            shift = qexp - vexp  # bits to drop, >= 52 - mbits > 0
            if shift > 54:
                n = np.int64(0)  # below half a quantum
            else:
                n = full >> shift
                rem = full & ((np.int64(1) << shift) - 1)
                half = np.int64(1) << (shift - 1)
                if rem > half or (rem == half and (n & 1) == 1):
                    n += 1
            if n >= (np.int64(2) << mbits):  # rounding carried into the next binade
                n >>= 1
                qexp += 1
        if n >= (np.int64(1) << mbits):
            field = qexp + mbits + bias
            mant = n - (np.int64(1) << mbits)
        else:
            field = np.int64(0)
            mant = n
        if field > e_max or (field == e_max and mant > m_max):
            if kind == 2 or saturate:
                out[i] = s | (e_max << mbits) | m_max
            elif kind == 0:
                out[i] = s | (top << mbits)
            else:
                out[i] = s | ((1 << (ebits + mbits)) - 1)
        else:
            out[i] = s | (field << mbits) | mant


@njit(cache=True)
def _encode_e8m0_nb(bits, saturate, out):
    for i in range(bits.size):
        b = bits[i]
        ex = np.int64((b >> np.uint64(52)) & np.uint64(0x7FF))
        if saturate and b == np.uint64(0x7FF0000000000000):  # +Inf
            out[i] = 254
            continue
        if (b >> np.uint64(63)) != 0 or ex == 0x7FF or (b & np.uint64(0x7FFFFFFFFFFFFFFF)) == 0:
            out[i] = 255  # negative (incl. -0), Inf, NaN or +0
            continue
        if ex == 0:
            out[i] = 0  # float64 subnormal: far below 2^-127
            continue
        e = ex - 1023 + np.int64((b >> np.uint64(51)) & np.uint64(1))  # 1.1xxx rounds up
        if e < -127:
            out[i] = 0
        elif e > 127:
            out[i] = 254 if saturate else 255
        else:
            out[i] = e + 127


def encode_float(x, ebits, mbits, kind, saturate):
    """Codes (uint8, the shape of ``x``) of the float format nearest to each value of ``x``."""
    x = np.asarray(x, dtype=np.float64)
    bias, e_max, m_max, _ = float_format_limits(ebits, mbits, kind)
    out = np.empty(x.shape, np.uint8)
    bits = np.ascontiguousarray(x).reshape(-1).view(np.uint64)
    _encode_float_nb(bits, int(ebits), int(mbits), int(kind), bool(saturate),
                     (bias, e_max, m_max), out.reshape(-1))
    return out


def encode_e8m0(x, saturate):
    """Codes of E8M0 (powers of two 2^(c-127), 0xFF = NaN); see the reference."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty(x.shape, np.uint8)
    bits = np.ascontiguousarray(x).reshape(-1).view(np.uint64)
    _encode_e8m0_nb(bits, bool(saturate), out.reshape(-1))
    return out
