"""Low-bit float encoders in plain NumPy (twins of `qkit.kernels.floats`).

A float format with ``ebits`` exponent bits, ``mbits`` mantissa bits and bias
``2^(ebits-1) - 1`` holds ``(-1)^s * 2^(e - bias) * 1.m`` for an exponent field ``e > 0`` and
``(-1)^s * 2^(1 - bias) * 0.m`` (subnormals) for ``e == 0``. Encoding rounds the exact value
of each input to the nearest code, ties to the code with an even mantissa, exactly as
``ml_dtypes`` casts. Here that is done with float64 arithmetic that cannot round:
dividing by a power of two is exact and ``np.rint`` rounds half to even.

``kind`` says what the top of the exponent range holds (qkit.formats.floats names them):

* 0 ``ieee``    exponent field all ones is Inf (mantissa 0) or NaN (FP8 E5M2);
* 1 ``fn``      no Inf; only ``S.1111.111`` is NaN, so the top binade has one code fewer
  (FP8 E4M3FN);
* 2 ``finite``  every code is a number (FP6 E2M3 / E3M2, FP4 E2M1).

Out of range, ``saturate=False`` follows ``ml_dtypes``: Inf for ``ieee``, NaN for ``fn``,
the largest value for ``finite`` (which has neither). ``saturate=True`` is the "satfinite"
conversion of deployment code: overflow and Inf become +-max, NaN stays NaN. ``ml_dtypes``
turns NaN into a zero for the ``finite`` formats, with the sign bit flipped (a NaN with the
sign bit clear becomes -0); qkit does the same so that every code matches.
"""

from __future__ import annotations

import numpy as np

KINDS = ("ieee", "fn", "finite")


def float_format_limits(ebits: int, mbits: int, kind: int):
    """``(bias, largest exponent field of a number, largest mantissa there, max value)``."""
    bias = 2 ** (ebits - 1) - 1
    top = 2 ** ebits - 1
    if kind == 0:
        e_max, m_max = top - 1, 2 ** mbits - 1
    elif kind == 1:
        e_max, m_max = top, 2 ** mbits - 2
    else:
        e_max, m_max = top, 2 ** mbits - 1
    max_value = (1.0 + m_max / 2 ** mbits) * 2.0 ** (e_max - bias)
    return bias, e_max, m_max, max_value


def encode_float(x, ebits, mbits, kind, saturate):
    """Codes (uint8, the shape of ``x``) of the float format nearest to each value of ``x``."""
    x = np.asarray(x, dtype=np.float64)
    bias, e_max, m_max, max_value = float_format_limits(ebits, mbits, kind)
    emin = 1 - bias  # exponent of the smallest normal; subnormals share its quantum
    sign = np.signbit(x).astype(np.int64) << (ebits + mbits)
    a = np.where(np.isfinite(x), np.abs(x), 0.0)

    # exponent of each value (2^e <= a < 2^(e+1)), never below emin
    _, fexp = np.frexp(a)
    e = np.maximum(fexp.astype(np.int64) - 1, emin)
    quantum = np.ldexp(1.0, e - mbits)
    with np.errstate(over="ignore"):  # near float64's max; such values overflow below
        r = np.rint(a / quantum) * quantum  # exact: the quotient is a power-of-two rescaling
    r = np.minimum(r, 2 * max_value)  # anything above max overflows below; keep r finite

    # the code of each rounded value r (at most one binade above a: rounding may carry)
    _, rexp = np.frexp(r)
    re = np.maximum(rexp.astype(np.int64) - 1, emin)
    field = np.where(r >= 2.0 ** emin, re + bias, 0)
    mant = (r / np.ldexp(1.0, re - mbits)).astype(np.int64) - np.where(field > 0, 2 ** mbits, 0)
    code = sign | (field << mbits) | mant

    max_code = sign | (e_max << mbits) | m_max
    over = (r > max_value) | np.isinf(x)
    nan = np.isnan(x)
    if kind == 0:
        inf_code = sign | ((2 ** ebits - 1) << mbits)
        code = np.where(over, max_code if saturate else inf_code, code)
        code = np.where(nan, sign | ((2 ** ebits - 1) << mbits) | (1 << (mbits - 1)), code)
    elif kind == 1:
        nan_code = sign | (2 ** (ebits + mbits) - 1)
        code = np.where(over, max_code if saturate else nan_code, code)
        code = np.where(nan, nan_code, code)
    else:
        code = np.where(over, max_code, code)
        code = np.where(nan, sign ^ (1 << (ebits + mbits)), code)  # ml_dtypes: -0 for +NaN
    return code.astype(np.uint8)


def encode_e8m0(x, saturate):
    """Codes of E8M0 (unsigned powers of two 2^(c-127), 0xFF = NaN), the MX block scale.

    ``ml_dtypes`` rounds to the nearer power of two with ties upwards (1.5 -> 2, 3 -> 4), sends
    everything below 2^-127 to code 0, and NaN, Inf, zero and negatives to NaN; a value that
    rounds above 2^127 is NaN; ``saturate`` makes it and +Inf 2^127 (code 254)."""
    x = np.asarray(x, dtype=np.float64)
    if saturate:
        x = np.where(x == np.inf, 2.0 ** 127, x)
    ok = np.isfinite(x) & (x > 0)
    a = np.where(ok, x, 1.0)
    mant, fexp = np.frexp(a)  # a = mant * 2^fexp, mant in [0.5, 1)
    e = fexp.astype(np.int64) - 1 + (mant >= 0.75)  # 1.xxx >= 1.5: round up
    code = np.maximum(e, -127) + 127
    code = np.where(code > 254, 254 if saturate else 255, code)
    return np.where(ok, code, 255).astype(np.uint8)
