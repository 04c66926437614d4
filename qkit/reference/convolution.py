"""Integer 2-D convolution (NHWC activations, OHWI weights) via explicit im2col."""

from __future__ import annotations

import numpy as np

from qkit.core.checks import check_conv2d, check_int_array, check_qlinear, max_abs
from qkit.reference.requantization import requantize_float


def im2col(x, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple,
           pad_value: int = 0) -> np.ndarray:
    """Patches of ``x`` (N,H,W,C) as rows: (N*OH*OW, KH*KW*C), K ordered (kh, kw, c).

    Padding uses ``pad_value``, the activations' zero point, which stands for a real 0.
    """
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    n, h, w, c = x.shape
    xp = np.full((n, h + 2 * ph, w + 2 * pw, c), pad_value, dtype=x.dtype)
    xp[:, ph:ph + h, pw:pw + w, :] = x
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    cols = np.empty((n, oh, ow, kh, kw, c), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dh, i * dh + sh * (oh - 1) + 1, sh)
            colz = slice(j * dw, j * dw + sw * (ow - 1) + 1, sw)
            cols[:, :, :, i, j, :] = xp[:, rows, colz, :]
    return cols.reshape(n * oh * ow, kh * kw * c)


def conv2d(x, w, stride=1, padding=0, dilation=1, groups: int = 1, pad_value: int = 0):
    """``acc[n, y, x, o] = sum_{kh, kw, c} xpad[n, y*s + kh*d, x*s + kw*d, c] * w[o, kh, kw, c]``.

    ``x`` (N,H,W,C) u8/s8, ``w`` (O,KH,KW,C/groups) s8 -> (N,OH,OW,O) s32.
    Output channel ``o`` sees input channels of its group only; depthwise is
    ``groups == C == O``.

    >>> x = np.arange(9, dtype=np.uint8).reshape(1, 3, 3, 1)
    >>> w = np.ones((1, 2, 2, 1), dtype=np.int8)
    >>> conv2d(x, w)[0, :, :, 0]
    array([[ 8, 12],
           [20, 24]], dtype=int32)
    """
    x, w, stride, padding, dilation, groups, (oh, ow) = check_conv2d(
        x, w, stride, padding, dilation, groups, pad_value)
    n, o = x.shape[0], w.shape[0]
    cg, og = x.shape[3] // groups, o // groups
    acc = np.empty((n * oh * ow, o), np.int32)
    for g in range(groups):
        xg = x[:, :, :, g * cg:(g + 1) * cg]
        cols = im2col(xg, w.shape[1:3], stride, padding, dilation, pad_value)  # (P, K)
        wg = w[g * og:(g + 1) * og].reshape(og, -1)  # (O/g, K)
        acc[:, g * og:(g + 1) * og] = cols.astype(np.int64) @ wg.astype(np.int64).T
    return acc.reshape(n, oh, ow, o)


def qconv2d(x, w, x_zero_point: int, multiplier, out_zero_point: int, qmin: int, qmax: int,
            bias=None, stride=1, padding=0, dilation=1, groups: int = 1):
    """A quantized conv2d layer, 8-bit in and out (symmetric weights, zero point 0).

    ``raw = conv2d(x - x_zero_point, w)`` (padding with ``x_zero_point``, i.e. a real 0), then
    ``y = clamp(rne(f32(f32(raw) + bias) * multiplier) + out_zero_point, qmin, qmax)``
    per output channel, as `qlinear` does for a matrix product.

    >>> x = np.full((1, 2, 2, 1), 5, np.uint8)
    >>> qconv2d(x, np.ones((1, 1, 1, 1), np.int8), 3, 0.5, 10, 0, 255)[0, :, :, 0]
    array([[11, 11],
           [11, 11]], dtype=uint8)
    """
    w = check_int_array(w, "w", (np.int8,), ndim=4)
    acc = conv2d(x, w, stride, padding, dilation, groups, x_zero_point)  # checks the geometry
    x = np.asarray(x)
    _, qmin, qmax, mult, bias = check_qlinear(x.reshape(-1, x.shape[3])[:, :1], (w.shape[0], 1),
                                              max_abs(w), x_zero_point, multiplier,
                                              out_zero_point, qmin=qmin, qmax=qmax, bias=bias)
    raw = acc.reshape(-1, w.shape[0]).astype(np.int64)
    raw -= int(x_zero_point) * w.reshape(w.shape[0], -1).astype(np.int64).sum(axis=1)
    y = requantize_float(raw.astype(np.int32), mult, out_zero_point, qmin, qmax, bias)
    return y.reshape(acc.shape)
