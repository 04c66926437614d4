"""Requantization: int32 accumulators back to 8-bit outputs.

Two ways, both per-tensor (one multiplier) or per-channel (one per output column):

* fixed point (gemmlowp/TFLite): ``y = clamp(MBQM(acc + bias, M0, shift) + zp)``;
* float32 (fbgemm, PyTorch's CPU engine): ``y = clamp(rne(f32(f32(acc) + bias) * m) + zp)``.

A fused ReLU or ReLU6 is nothing but a tighter ``[qmin, qmax]``
(`qkit.core.qparams.activation_range`).
"""

from __future__ import annotations

import numpy as np

from qkit.core.checks import check_fixed_point, check_multiplier, check_requantize, storage_dtype
from qkit.core.fixedpoint import multiply_by_quantized_multiplier

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def requantize_fixed(acc, multiplier, shift, zero_point: int, qmin: int, qmax: int,
                     bias=None) -> np.ndarray:
    """``y = clamp(MultiplyByQuantizedMultiplier(acc + bias, M0, shift) + zp, qmin, qmax)``.

    ``multiplier``/``shift`` come from `qkit.core.fixedpoint.quantize_multiplier`;
    ``bias`` is int32 at scale ``s_in * s_w`` (TFLite spec). ``acc + bias``
    saturates to int32 where TFLite would overflow.

    >>> from qkit.core.fixedpoint import quantize_multiplier
    >>> m0, shift = quantize_multiplier(0.25)
    >>> requantize_fixed(np.array([[10, -10, 1000]], np.int32), m0, shift, 3, 0, 255)
    array([[  6,   0, 253]], dtype=uint8)
    """
    m0, shift = check_fixed_point(multiplier, shift)
    acc, qmin, qmax = check_requantize(acc, zero_point, qmin, qmax, bias,
                                       {"multiplier": m0.size, "shift": shift.size},
                                       integer_bias=True)
    x = acc.astype(np.int64)
    if bias is not None:
        x = np.clip(x + np.asarray(bias, dtype=np.int32), INT32_MIN, INT32_MAX)
    y = multiply_by_quantized_multiplier(x, m0, shift).astype(np.int64) + int(zero_point)
    return np.clip(y, qmin, qmax).astype(storage_dtype(qmin, qmax))


def requantize_float(acc, multiplier, zero_point: int, qmin: int, qmax: int,
                     bias=None) -> np.ndarray:
    """``y = clamp(rne(f32(f32(f32(acc) + bias) * multiplier)) + zp, qmin, qmax)``.

    Every step in float32, as fbgemm does; ``bias`` is float32 already divided
    by ``s_in * s_w``, ``multiplier`` is ``f32(s_in * s_w) / s_out``.

    >>> requantize_float(np.array([[10, -10, 1000]], np.int32), np.float32(0.25), 3, 0, 255)
    array([[  5,   1, 253]], dtype=uint8)
    """
    mult = check_multiplier(multiplier)
    acc, qmin, qmax = check_requantize(acc, zero_point, qmin, qmax, bias,
                                       {"multiplier": mult.size})
    x = acc.astype(np.float32)  # exact up to 2**24, rounded like fbgemm beyond
    if bias is not None:
        x = x + np.asarray(bias, dtype=np.float32)
    # the float32 product, clamped before rounding (the bounds are integers, so this equals
    # clamping after; a product beyond int64, or inf, then still lands on qmin or qmax)
    zp = int(zero_point)
    with np.errstate(over="ignore"):  # inf is fine: it clamps to qmax
        y = np.clip(x * mult, np.float32(qmin - zp), np.float32(qmax - zp))
    return (np.rint(y).astype(np.int64) + zp).astype(storage_dtype(qmin, qmax))
