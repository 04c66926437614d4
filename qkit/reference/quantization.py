"""Quantize and dequantize, the readable NumPy way."""

from __future__ import annotations

import numpy as np

from qkit.core.checks import check_float_array, check_int_array, check_range
from qkit.core.qparams import QParams, block_params, check_qparams, to_blocks
from qkit.core.rounding import check_rounding, round_values


def quantize(x, qp: QParams, rounding: str = "half_even", rng=None) -> np.ndarray:
    """``q = clip(round(x / scale) + zero_point, qmin, qmax)``.

    ``x / scale`` is a float32 division; rounding follows ``rounding``
    (`qkit.core.rounding`). Returns ``qp.dtype`` (int8/uint8, or 16-bit above 8 bits).

    >>> from qkit.core.qparams import QParams
    >>> qp = QParams(scale=0.5, zero_point=10, bits=8, signed=False)
    >>> quantize(np.array([-1.0, 0.0, 0.25, 0.75, 200.0]), qp)
    array([  8,  10,  10,  12, 255], dtype=uint8)
    """
    qp = check_qparams(qp)
    x = check_float_array(x)
    noise = check_rounding(rounding, rng, x.shape)
    xb, restore = to_blocks(x, qp.axis, qp.group_size)  # (C, G, L)
    scale, zp = block_params(qp, x.shape)  # (C, G)
    v = xb / scale[:, :, None]  # float32
    if noise.size:
        noise, _ = to_blocks(noise, qp.axis, qp.group_size)
    r = round_values(v, rounding, noise) + zp[:, :, None]
    q = np.clip(r, qp.qmin, qp.qmax).astype(qp.dtype)  # clip before casting down
    return restore(q)


def dequantize(q, qp: QParams) -> np.ndarray:
    """``x = (q - zero_point) * scale`` in float32.

    >>> from qkit.core.qparams import QParams
    >>> dequantize(np.array([8, 10, 12], dtype=np.uint8), QParams(0.5, 10, signed=False))
    array([-1.,  0.,  1.], dtype=float32)
    """
    qp = check_qparams(qp)
    q = check_int_array(q, "q", (np.int8, np.uint8, np.int16, np.uint16))
    check_range(q, "q", qp.qmin, qp.qmax)
    qb, restore = to_blocks(q, qp.axis, qp.group_size)
    scale, zp = block_params(qp, q.shape)
    x = (qb.astype(np.int32) - zp[:, :, None]).astype(np.float32) * scale[:, :, None]
    return restore(x)


def fake_quantize(x, qp: QParams, rounding: str = "half_even", rng=None) -> np.ndarray:
    """``dequantize(quantize(x))``: the float values the integer grid can represent."""
    return dequantize(quantize(x, qp, rounding, rng), qp)
