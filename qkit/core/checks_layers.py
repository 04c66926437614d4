"""Input validation for the elementwise and spatial layer ops (`qkit.reference.elementwise`,
`qkit.reference.spatial` and their kernels): lookup tables, quantized products, padding and
upsampling. Same rules as `qkit.core.checks`: every refusal names the argument."""

from __future__ import annotations

import numpy as np

from qkit.core.checks import (
    INTEGER_OPERANDS,
    check_int_array,
    check_int_in,
    check_multiplier,
    check_qrange,
    int_pair,
    storage_dtype,
)

UPSAMPLE_MODES = ("nearest", "bilinear")


def check_lut(x, table):
    """``x`` 8-bit of any shape, ``table`` 256 8-bit entries (index ``x`` for uint8,
    ``x + 128`` for int8)."""
    x = check_int_array(x, "x", INTEGER_OPERANDS)
    table = check_int_array(table, "table", INTEGER_OPERANDS, ndim=1)
    if table.size != 256:
        raise ValueError(f"table must hold 256 entries (one per 8-bit input value), got "
                         f"{table.size}")
    return x, np.ascontiguousarray(table)


def check_qmul(a, za, b, zb, multiplier, zero_point, *, qmin, qmax):
    """Two 8-bit tensors that broadcast (NumPy rules), their zero points, one multiplier
    ``s_a * s_b / s_y`` and the output grid."""
    a = check_int_array(a, "a", INTEGER_OPERANDS)
    b = check_int_array(b, "b", INTEGER_OPERANDS)
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"a and b must broadcast to one shape, got {a.shape} and "
                         f"{b.shape}") from None
    if len(shape) > 4:
        raise ValueError(f"qmul handles up to 4-D tensors, got {len(shape)}-D {shape}")
    zs = [check_int_in(z, n, *_limits(q), str(q.dtype))
          for z, n, q in ((za, "a_zero_point", a), (zb, "b_zero_point", b))]
    qmin, qmax = check_qrange(qmin, qmax)
    dtype = storage_dtype(qmin, qmax)
    if dtype.itemsize != 1:
        raise ValueError(f"qmul outputs 8-bit integers; [{qmin}, {qmax}] does not fit")
    zero_point = check_int_in(zero_point, "zero_point", qmin, qmax, "[qmin, qmax]")
    m = check_multiplier(multiplier)
    if m.size != 1:
        raise ValueError(f"multiplier must be one number, got {m.size}")
    return a, zs[0], b, zs[1], m[0], zero_point, qmin, qmax, dtype, shape


def _limits(q) -> tuple[int, int]:
    info = np.iinfo(q.dtype)
    return int(info.min), int(info.max)


def check_pad(x, padding, value):
    """``x`` (N,H,W,C) 8-bit; ``padding`` (top, bottom, left, right), each >= 0; ``value`` an
    integer the dtype of ``x`` holds (the zero point pads with real 0)."""
    x = check_int_array(x, "x", INTEGER_OPERANDS, ndim=4)
    if np.ndim(padding) != 1 or len(padding) != 4:
        raise ValueError(f"padding must be (top, bottom, left, right), got {padding!r}")
    (top, bottom), (left, right) = (int_pair("padding", padding[i:i + 2], 0) for i in (0, 2))
    value = check_int_in(value, "value", *_limits(x), str(x.dtype))
    return x, (top, bottom, left, right), value


def check_upsample(x, scale, mode, align_corners):
    """``x`` (N,H,W,C) 8-bit, ``scale`` a positive integer factor or a pair, ``mode``
    nearest or bilinear (``align_corners`` only for bilinear)."""
    x = check_int_array(x, "x", INTEGER_OPERANDS, ndim=4)
    sh, sw = int_pair("scale", scale, 1)
    if mode not in UPSAMPLE_MODES:
        raise ValueError(f"mode must be one of {list(UPSAMPLE_MODES)}, got {mode!r}")
    if not isinstance(align_corners, bool | np.bool_):
        raise TypeError(f"align_corners must be True or False, got {align_corners!r}")
    if mode == "nearest" and align_corners:
        raise ValueError("align_corners applies to bilinear upsampling only")
    return x, (sh, sw), mode, bool(align_corners)
