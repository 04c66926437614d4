"""Elementwise layers on quantized tensors, the readable way: any function of one 8-bit
tensor as a 256-entry lookup table, and the product of two quantized tensors.

A uint8 activation takes only 256 values, so *any* elementwise function of it (Hardswish,
SiLU, GELU, a requantization to another grid, ``x + 3``...) is exactly a table with one
entry per input value, computed once from the float function and the two grids
(`qkit.engine.elementwise.lut_table`). TFLite and XNNPACK run their activations this way.
"""

from __future__ import annotations

import numpy as np

from qkit.core.checks_layers import check_lut, check_qmul


def lut(x, table) -> np.ndarray:
    """``y = table[x]`` (uint8 ``x``) or ``table[x + 128]`` (int8 ``x``), dtype of ``table``.

    >>> lut(np.array([0, 2, 255], np.uint8), np.arange(256)[::-1].astype(np.uint8))
    array([255, 253,   0], dtype=uint8)
    """
    x, table = check_lut(x, table)
    index = x.astype(np.int16) + (128 if x.dtype == np.int8 else 0)
    return table[index]


def qmul(a, a_zero_point: int, b, b_zero_point: int, multiplier, zero_point: int,
         qmin: int, qmax: int) -> np.ndarray:
    """The product of two quantized tensors (broadcast as in NumPy) on a third grid:

    ``y = clamp(rne(f32(f32((a - za) * (b - zb)) * m)) + z, qmin, qmax)`` with
    ``m = f32(s_a * s_b / s_y)``. The integer product is exact (|.| <= 255 * 255); the
    requantization is PyTorch's float rule (``quantized::mul``).

    >>> qmul(np.array([10, 20], np.uint8), 0, np.array([4], np.uint8), 2, 0.25, 3, 0, 255)
    array([ 8, 13], dtype=uint8)
    """
    a, za, b, zb, m, zp, qmin, qmax, dtype, _ = check_qmul(
        a, a_zero_point, b, b_zero_point, multiplier, zero_point, qmin=qmin, qmax=qmax)
    prod = (a.astype(np.int32) - za) * (b.astype(np.int32) - zb)
    y = np.rint(prod.astype(np.float32) * m) + zp
    return np.clip(y, qmin, qmax).astype(dtype)
