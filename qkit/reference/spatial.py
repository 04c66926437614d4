"""Padding and upsampling of quantized NHWC tensors, the readable way. Both keep the input
grid: padding adds a value (the zero point stands for real 0), nearest upsampling copies, and
bilinear upsampling mixes neighbours with weights that sum to 1."""

from __future__ import annotations

import numpy as np

from qkit.core.checks_layers import check_pad, check_upsample


def pad2d(x, padding, value: int) -> np.ndarray:
    """``x`` (N,H,W,C) with ``padding = (top, bottom, left, right)`` rows and columns of
    ``value`` around each map (asymmetric allowed: TF's "same" padding at stride 2).

    >>> pad2d(np.ones((1, 1, 2, 1), np.uint8), (0, 1, 1, 0), 7)[0, :, :, 0]
    array([[7, 1, 1],
           [7, 7, 7]], dtype=uint8)
    """
    x, (top, bottom, left, right), value = check_pad(x, padding, value)
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)


def bilinear_weights(n_in: int, scale: int, align_corners: bool):
    """PyTorch's source positions for bilinear upsampling of one axis by ``scale``: the lower
    index, the upper index and the float32 weight of the upper one, per output position."""
    n_out = n_in * scale
    dst = np.arange(n_out, dtype=np.float32)
    if align_corners:
        ratio = np.float32((n_in - 1) / (n_out - 1)) if n_out > 1 else np.float32(0)
        src = dst * ratio
    else:
        src = np.maximum(np.float32(1 / scale) * (dst + np.float32(0.5)) - np.float32(0.5),
                         np.float32(0))
    below = np.minimum(src.astype(np.int64), n_in - 1)
    above = np.minimum(below + 1, n_in - 1)
    w_hi = (src - below.astype(np.float32)).astype(np.float32)
    return below, above, w_hi


def upsample2d(x, scale, mode: str = "nearest", align_corners: bool = False) -> np.ndarray:
    """Upsampling by integer factors ``scale`` (an int or (sh, sw)), on the input's grid.

    Nearest copies each value ``sh x sw`` times. Bilinear computes, in float32,
    ``rne(h0 * (w0 * x00 + w1 * x01) + h1 * (w0 * x10 + w1 * x11))`` with PyTorch's weights
    (`bilinear_weights`, ``h0 = 1 - h1``): real values mix the same way, and ``z`` passes
    through because the weights sum to one (up to float32 rounding, which ``rne`` removes).

    >>> upsample2d(np.array([[[[0], [100]]]], np.uint8), (1, 2), "bilinear")[0, 0, :, 0]
    array([  0,  25,  75, 100], dtype=uint8)
    """
    x, (sh, sw), mode, align_corners = check_upsample(x, scale, mode, align_corners)
    if mode == "nearest":
        return np.repeat(np.repeat(x, sh, axis=1), sw, axis=2)
    h_lo, h_hi, h1 = bilinear_weights(x.shape[1], sh, align_corners)
    w_lo, w_hi, w1 = bilinear_weights(x.shape[2], sw, align_corners)
    h0, w0 = np.float32(1) - h1, np.float32(1) - w1
    f = x.astype(np.float32)
    wa, wb = w0[None, None, :, None], w1[None, None, :, None]
    top = wa * f[:, h_lo][:, :, w_lo] + wb * f[:, h_lo][:, :, w_hi]
    bottom = wa * f[:, h_hi][:, :, w_lo] + wb * f[:, h_hi][:, :, w_hi]
    y = h0[None, :, None, None] * top + h1[None, :, None, None] * bottom
    info = np.iinfo(x.dtype)
    return np.clip(np.rint(y), info.min, info.max).astype(x.dtype)
