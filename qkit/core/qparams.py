"""Quantization parameters: how a float range maps onto an integer grid.

``x ≈ scale * (q - zero_point)`` with ``q`` in ``[qmin, qmax]``.

One `QParams` covers the three granularities:

* per-tensor: ``axis=None``; ``scale`` has shape ``()``;
* per-channel: ``axis=a``; ``scale`` has shape ``(x.shape[a],)``;
* per-group: ``axis=a, group_size=g``; runs of ``g`` consecutive elements along
  ``a`` share a scale, so ``scale`` has the shape of ``x`` with ``x.shape[a]``
  replaced by ``x.shape[a] // g``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qkit.core.checks import check_bits, check_float_array, storage_dtype

EPS32 = np.float32(np.finfo(np.float32).eps)  # torch's observer floor for the scale


def qrange(bits: int, signed: bool, narrow_range: bool = False) -> tuple[int, int]:
    """Integer range ``[qmin, qmax]`` of a ``bits``-bit grid.

    >>> qrange(8, signed=True), qrange(8, signed=False), qrange(8, True, narrow_range=True)
    ((-128, 127), (0, 255), (-127, 127))
    """
    bits = check_bits(bits)
    qmin, qmax = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    return qmin + int(narrow_range), qmax


@dataclass(frozen=True)
class QParams:
    """Scale, zero point and integer grid of an affine quantizer."""

    scale: np.ndarray  # float32, > 0
    zero_point: np.ndarray  # int32, inside [qmin, qmax]
    bits: int = 8
    signed: bool = True
    narrow_range: bool = False
    axis: int | None = None
    group_size: int | None = None

    def __post_init__(self):
        check_bits(self.bits)
        scale = np.asarray(self.scale, dtype=np.float32)
        zp = np.asarray(self.zero_point)
        if zp.dtype.kind not in "iu":
            if not np.array_equal(zp, np.round(zp)):
                raise TypeError(f"zero_point must be integer-valued, got {zp}")
        zp = np.broadcast_to(zp.astype(np.int32), scale.shape).copy()
        if not (np.isfinite(scale).all() and (scale > 0).all()):
            raise ValueError(f"scale must be finite and > 0, got {scale}")
        if zp.min(initial=self.qmin) < self.qmin or zp.max(initial=self.qmax) > self.qmax:
            raise ValueError(f"zero_point {zp} outside [{self.qmin}, {self.qmax}]")
        if self.group_size is not None and (self.axis is None or self.group_size < 1):
            raise ValueError("group_size needs an axis and must be >= 1")
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "zero_point", zp)

    @property
    def qmin(self) -> int:
        return qrange(self.bits, self.signed, self.narrow_range)[0]

    @property
    def qmax(self) -> int:
        return qrange(self.bits, self.signed, self.narrow_range)[1]

    @property
    def dtype(self) -> np.dtype:
        """Storage dtype of the integers (int8/uint8 up to 8 bits, else 16-bit)."""
        return storage_dtype(self.qmin, self.qmax)

    @property
    def granularity(self) -> str:
        if self.axis is None:
            return "per-tensor"
        return "per-channel" if self.group_size is None else "per-group"


def qparams_from_range(lo, hi, bits: int = 8, *, signed: bool = True, symmetric: bool = False,
                       narrow_range: bool = False, axis: int | None = None,
                       group_size: int | None = None) -> QParams:
    """Scale and zero point for the float range ``[lo, hi]`` (PyTorch's observer rule).

    Affine: ``scale = (max(hi,0) - min(lo,0)) / (qmax - qmin)``,
    ``zero_point = qmin - round(min(lo,0) / scale)``. Symmetric:
    ``scale = max(|lo|, |hi|) / ((qmax - qmin) / 2)`` with the zero point in
    the middle of the grid (0 when signed). ``scale`` is never below float32
    eps, so a constant or all-zero tensor gets a usable (tiny) scale.

    Notes
    -----
    torch/ao/quantization/observer.py, ``_calculate_qparams``; computed in
    float32 as PyTorch does. The range always includes 0 so that zero (padding,
    ReLU outputs) is exactly representable (Jacob et al. 2018, §2.1).

    >>> qp = qparams_from_range(-1.0, 3.0, bits=8, signed=False)
    >>> float(qp.scale), int(qp.zero_point)
    (0.01568627543747425, 64)
    >>> qp = qparams_from_range(-1.0, 3.0, bits=8, signed=True, symmetric=True, narrow_range=True)
    >>> bool(qp.scale == np.float32(3.0) / np.float32(127)), int(qp.zero_point)
    (True, 0)
    """
    qmin, qmax = qrange(bits, signed, narrow_range)
    lo = check_float_array(lo, "lo")
    hi = check_float_array(hi, "hi")
    if lo.shape != hi.shape:
        raise ValueError(f"lo and hi must have the same shape, got {lo.shape} and {hi.shape}")
    if (lo > hi).any():
        raise ValueError("lo must be <= hi")
    min_neg = np.minimum(lo, np.float32(0))
    max_pos = np.maximum(hi, np.float32(0))
    with np.errstate(over="ignore"):
        width = (max_pos - min_neg).astype(np.float32)
    if not np.isfinite(width).all():
        raise ValueError(f"the range [lo, hi] = [{lo.min()}, {hi.max()}] is wider than float32 "
                         "can hold (its width overflows): the data x (or lo and hi) are too "
                         "large to put on one grid")
    if symmetric:
        amax = np.maximum(-min_neg, max_pos)
        scale = np.maximum(amax / np.float32((qmax - qmin) / 2), EPS32).astype(np.float32)
        zp = np.full(scale.shape, 0 if signed else (qmin + qmax + 1) // 2, dtype=np.int32)
    else:
        scale = np.maximum((max_pos - min_neg) / np.float32(qmax - qmin), EPS32).astype(np.float32)
        zp = qmin - np.rint(min_neg / scale).astype(np.int64)
        zp = np.clip(zp, qmin, qmax).astype(np.int32)
    return QParams(scale, zp, bits, signed, narrow_range, axis, group_size)


def minmax(x, axis: int | None = None, group_size: int | None = None):
    """Per-tensor, per-channel or per-group min and max of ``x`` (float32)."""
    xb, _ = to_blocks(check_float_array(x), axis, group_size)
    lo, hi = xb.min(axis=2), xb.max(axis=2)  # (C, G)
    shape = params_shape(np.shape(x), axis, group_size)
    return lo.reshape(shape), hi.reshape(shape)


def qparams_from_tensor(x, bits: int = 8, *, signed: bool = True, symmetric: bool = False,
                        narrow_range: bool = False, axis: int | None = None,
                        group_size: int | None = None) -> QParams:
    """Min-max qparams of ``x`` at the requested granularity.

    >>> w = np.array([[-1.0, 0.5], [0.25, 0.125]], dtype=np.float32)
    >>> qparams_from_tensor(w, signed=True, symmetric=True, narrow_range=True, axis=0).scale * 127
    array([1.  , 0.25], dtype=float32)
    """
    lo, hi = minmax(x, axis, group_size)
    return qparams_from_range(lo, hi, bits, signed=signed, symmetric=symmetric,
                              narrow_range=narrow_range, axis=axis, group_size=group_size)


def params_shape(shape: tuple, axis: int | None, group_size: int | None) -> tuple:
    """Shape of ``scale`` for a tensor of ``shape`` at the given granularity."""
    if axis is None:
        return ()
    axis = _norm_axis(axis, len(shape))
    if group_size is None:
        return (shape[axis],)
    return shape[:axis] + (shape[axis] // group_size,) + shape[axis + 1:]


def to_blocks(x: np.ndarray, axis: int | None, group_size: int | None):
    """View ``x`` as ``(C, G, L)`` blocks that share one (scale, zero point) each.

    Returns the blocks and a function that maps an array of block shape back
    to the shape and axis order of ``x``. Per-tensor: ``(1, 1, size)``;
    per-channel: ``(C, 1, rest)``; per-group: ``(rest, n_groups, group_size)``.
    """
    shape = x.shape
    if axis is None:
        if group_size is not None:
            raise ValueError("group_size needs an axis")
        return x.reshape(1, 1, -1), lambda b: b.reshape(shape)
    axis = _norm_axis(axis, x.ndim)
    if group_size is None:
        moved = np.moveaxis(x, axis, 0)
        mshape = moved.shape
        return moved.reshape(mshape[0], 1, -1), lambda b: np.moveaxis(b.reshape(mshape), 0, axis)
    n = shape[axis]
    if isinstance(group_size, bool) or not isinstance(group_size, (int, np.integer)):
        raise TypeError(f"group_size must be an int, got {type(group_size).__name__}")
    if group_size < 1 or n % group_size:
        raise ValueError(f"group_size={group_size} must divide the length {n} of axis {axis}")
    moved = np.moveaxis(x, axis, -1)
    mshape = moved.shape
    blocks = moved.reshape(-1, n // group_size, group_size)
    return blocks, lambda b: np.moveaxis(b.reshape(mshape), -1, axis)


def block_params(qp: QParams, shape: tuple):
    """``qp.scale`` and ``qp.zero_point`` as ``(C, G)`` arrays matching `to_blocks`."""
    expected = params_shape(shape, qp.axis, qp.group_size)
    if qp.scale.shape != expected:
        raise ValueError(f"{qp.granularity} qparams for shape {shape} need scale of shape "
                         f"{expected}, got {qp.scale.shape}")
    if qp.axis is None:
        return qp.scale.reshape(1, 1), qp.zero_point.reshape(1, 1)
    if qp.group_size is None:
        return qp.scale.reshape(-1, 1), qp.zero_point.reshape(-1, 1)
    axis = _norm_axis(qp.axis, len(shape))
    s = np.moveaxis(qp.scale, axis, -1)
    z = np.moveaxis(qp.zero_point, axis, -1)
    return s.reshape(-1, s.shape[-1]), z.reshape(-1, z.shape[-1])


def _norm_axis(axis, ndim: int) -> int:
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"axis must be an int or None, got {type(axis).__name__}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} out of range for a {ndim}-D tensor")
    return int(axis) % ndim


def activation_range(activation: str | None, scale: float, zero_point: int, qmin: int,
                     qmax: int) -> tuple[int, int]:
    """Integer clamp bounds that fuse ``None``, ``"relu"`` or ``"relu6"`` into requantization.

    >>> activation_range("relu6", 6 / 255, 0, 0, 255)
    (0, 255)
    >>> activation_range("relu", 0.1, 10, -128, 127)
    (10, 127)
    """
    if activation is None:
        return qmin, qmax
    if activation == "relu":
        return max(qmin, zero_point), qmax
    if activation == "relu6":
        top = zero_point + int(np.rint(np.float32(6.0) / np.float32(scale)))
        return max(qmin, zero_point), min(qmax, top)
    raise ValueError(f"activation must be None, 'relu' or 'relu6', got {activation!r}")


def check_qparams(qp, name: str = "qp") -> QParams:
    """``qp`` must be a `QParams` (a bare scale is not enough: zero point and bits matter)."""
    if not isinstance(qp, QParams):
        raise TypeError(f"{name} must be a QParams (from qparams_from_tensor or "
                        f"qparams_from_range), got {type(qp).__name__} {qp!r}")
    return qp
