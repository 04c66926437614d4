"""Pooling and residual addition on quantized (NHWC) tensors, the readable way."""

from __future__ import annotations

import numpy as np

from qkit.core.checks import check_pool, check_qadd, check_relu


def maxpool2d(x, kernel, stride=None) -> np.ndarray:
    """Max over each ``kernel`` window: exact on integers (``max`` commutes with the affine map).

    >>> x = np.arange(16, dtype=np.uint8).reshape(1, 4, 4, 1)
    >>> maxpool2d(x, 2)[0, :, :, 0]
    array([[ 5,  7],
           [13, 15]], dtype=uint8)
    """
    x, (kh, kw), (sh, sw), (oh, ow) = check_pool(x, kernel, stride)
    out = np.empty((x.shape[0], oh, ow, x.shape[3]), x.dtype)
    for i in range(oh):
        for j in range(ow):
            out[:, i, j] = x[:, i * sh:i * sh + kh, j * sw:j * sw + kw].max(axis=(1, 2))
    return out


def avgpool2d(x, kernel, stride=None) -> np.ndarray:
    """Mean over each window, rounded half up: ``(sum + count // 2) // count``.

    Input and output share scale and zero point (the mean of ``q - z`` is the mean of
    ``q`` minus ``z``), so only the rounding is new.

    >>> avgpool2d(np.array([[[[1], [2]]]], np.uint8), (1, 2))[0, 0, 0, 0]
    np.uint8(2)
    """
    x, (kh, kw), (sh, sw), (oh, ow) = check_pool(x, kernel, stride)
    count = kh * kw
    out = np.empty((x.shape[0], oh, ow, x.shape[3]), x.dtype)
    for i in range(oh):
        for j in range(ow):
            window = x[:, i * sh:i * sh + kh, j * sw:j * sw + kw].astype(np.int64)
            out[:, i, j] = (window.sum(axis=(1, 2)) + count // 2) // count
    return out


def qadd(a, a_zero_point: int, a_mult, b, b_zero_point: int, b_mult, zero_point: int,
         qmin: int, qmax: int) -> np.ndarray:
    """Residual add of two quantized tensors into a third grid (all float32 steps):

    ``y = clamp(rne(f32(f32(a - za) * ma) + f32(f32(b - zb) * mb)) + z, qmin, qmax)``
    with ``ma = s_a / s_y`` and ``mb = s_b / s_y``.

    >>> qadd(np.array([10], np.uint8), 0, 0.5, np.array([20], np.uint8), 4, 0.25, 1, 0, 255)
    array([10], dtype=uint8)
    """
    a, b, ma, mb, qmin, qmax, dtype = check_qadd(a, a_zero_point, a_mult, b, b_zero_point,
                                                 b_mult, zero_point, qmin=qmin, qmax=qmax)
    fa = ((a.astype(np.int32) - a_zero_point).astype(np.float32) * ma).astype(np.float32)
    fb = ((b.astype(np.int32) - b_zero_point).astype(np.float32) * mb).astype(np.float32)
    y = np.rint((fa + fb).astype(np.float32)) + zero_point
    return np.clip(y, qmin, qmax).astype(dtype)


def relu(x, zero_point: int) -> np.ndarray:
    """ReLU on a quantized tensor: real 0 is ``zero_point``, so ``max(q, zero_point)``."""
    x, zero_point = check_relu(x, zero_point)
    return np.maximum(x, np.asarray(zero_point).astype(x.dtype))
