"""The quantized conv2d layer, 8 bits in and out: `qconv2d`, prepared weights and bound calls.

See `qkit.reference.qconv2d` for the formula. Depthwise layers run `qkit.kernels.depthwise`;
with VNNI the others run the direct convolution of `qkit.kernels.vnni.conv`, requantized in
registers one group at a time; elsewhere the int32 conv runs first and `requantize_float`
after it.
"""

from __future__ import annotations

import numpy as np

from qkit.core.checks import (
    INTEGER_OPERANDS,
    check_conv2d,
    check_int_array,
    check_qlinear,
    dtype_proves_exact,
    max_abs,
    storage_dtype,
)
from qkit.kernels import dispatch
from qkit.kernels.conv import conv2d
from qkit.kernels.depthwise import Depthwise
from qkit.kernels.packing import pack_conv_panels
from qkit.kernels.requantization import requantize_float
from qkit.kernels.vnni.conv import QConvVnni


class PackedConv:
    """Conv weights (O,KH,KW,C/groups) int8 prepared once for `qconv2d`, as a model prepares
    each layer when it loads (fbgemm's ``PackedConvWeight``): a read-only copy, its largest
    magnitude (for the int32 overflow check) and, made on first use, the VNNI panels of each
    group. A call then skips the per-call weight work (about 40 us of Python)."""

    def __init__(self, w):
        w = check_int_array(w, "w", (np.int8,), ndim=4)
        self.w = np.array(w)  # a copy: editing the caller's array cannot go stale here
        self.w.flags.writeable = False
        self.max_abs = max_abs(self.w)
        self._panels = {}
        self._geometry = {}  # check_conv2d's answer per input shape and arguments

    def check(self, x, stride, padding, dilation, groups, x_zero_point):
        """`check_conv2d` for these weights, remembered per input shape, dtype and arguments
        (a model calls each layer with the same ones); bad arguments are never remembered."""
        x = check_int_array(x, "x", INTEGER_OPERANDS, ndim=4)
        try:
            key = (x.shape, x.dtype.str, *(v if np.ndim(v) == 0 else tuple(v)
                                          for v in (stride, padding, dilation, groups)),
                   x_zero_point)
            hash(key)
        except TypeError:
            key = None
        found = self._geometry.get(key)
        if found is None:
            found = check_conv2d(x, self.w, stride, padding, dilation, groups, x_zero_point,
                                 self.max_abs, pad_name="x_zero_point")[2:]
            if key is not None and len(self._geometry) < 64 and self.proven(x.dtype):
                self._geometry[key] = found
        return (x, self.w) + found

    def proven(self, dtype) -> bool:
        """Whether int32 sums are exact for every input of ``dtype`` (else the overflow check
        depends on each input's values, and must run on each)."""
        return dtype_proves_exact(dtype, 0, int(np.prod(self.w.shape[1:])), self.max_abs)

    def bind(self, x, x_zero_point: int, multiplier, out_zero_point: int, qmin: int, qmax: int,
             bias=None, stride=1, padding=0, dilation=1, groups: int = 1) -> BoundQConv:
        """`qconv2d`'s arguments fixed for inputs shaped like ``x``: see `BoundQConv`."""
        return BoundQConv(self, x, (x_zero_point, multiplier, out_zero_point, qmin, qmax, bias,
                                    stride, padding, dilation, groups))

    def panels(self, groups: int, channels: int) -> list:
        """Each group's `qkit.kernels.packing.PackedWeights`, channels padded to ``channels``."""
        if (groups, channels) not in self._panels:
            og = self.w.shape[0] // groups
            self._panels[groups, channels] = [
                pack_conv_panels(self.w[g * og:(g + 1) * og], channels) for g in range(groups)]
        return self._panels[groups, channels]


def _grid(x, w_shape, w_max, args):
    """`check_qlinear` on a conv's requantization arguments -> the checked grid tuple
    ``(x_zero_point, mult, bias, out_zero_point, qmin, qmax)``."""
    x_zero_point, multiplier, out_zero_point, qmin, qmax, bias = args
    flat_x = x.reshape(-1, x.shape[3])[:, :1]  # only for the checks' dtype and zero point
    _, qmin, qmax, mult, bias = check_qlinear(flat_x, (w_shape[0], 1), w_max, x_zero_point,
                                              multiplier, out_zero_point, qmin=qmin, qmax=qmax,
                                              bias=bias)
    return (x_zero_point, mult, bias, out_zero_point, qmin, qmax)


class BoundQConv:
    """`qconv2d` with everything but the input fixed: ``bound(x)`` equals
    ``qconv2d(x, w, *args)`` for inputs of one shape and dtype (`PackedConv.bind`).

    The checks, the window offsets and the requantization vectors are made once, so a call is
    the kernel and an output array. That is how a model runs a layer many times; fbgemm's
    quantized Conv2d likewise fixes its weights and output grid. Python is slow when it runs
    cold, after a kernel has swept the caches: the MNIST CNN's conv3 (batch 256) measured
    about 0.2 ms of its 4.5 ms in the general path's per-call work.
    """

    def __init__(self, packed, x, args):
        *requant, stride, padding, dilation, groups = args
        x, w, stride, padding, dilation, groups, (oh, ow) = packed.check(
            x, stride, padding, dilation, groups, args[0])
        grid = _grid(x, w.shape, packed.max_abs, requant)
        self.shape, self.dtype = x.shape, x.dtype
        self.out_shape = (x.shape[0], oh, ow, w.shape[0])
        self._recheck = not packed.proven(x.dtype)  # each input's values bound the sums
        self._packed, self._args, self._conv, self._depthwise = packed, args, None, None
        geometry = (stride, padding, dilation)
        if groups == x.shape[3] == w.shape[0] and groups > 1:
            self._depthwise = Depthwise(x, w, geometry, grid, (oh, ow))
        elif dispatch.USE_VNNI and groups == 1:  # else the general path, unchanged
            weights = packed.panels(1, -(-x.shape[3] // 4) * 4)[0]
            self._conv = QConvVnni(x, w, geometry, grid, storage_dtype(grid[4], grid[5]),
                                   weights)
            self._conv.plan.xp = None  # not the first input's: each call brings its own

    def __call__(self, x) -> np.ndarray:
        if not (isinstance(x, np.ndarray) and x.shape == self.shape and x.dtype == self.dtype):
            raise ValueError(f"this conv was bound to {self.dtype} inputs of shape {self.shape}; "
                             f"got {getattr(x, 'dtype', type(x).__name__)} "
                             f"{getattr(x, 'shape', '')}: bind it again (PackedConv.bind)")
        if self._recheck:
            self._packed.check(x, *self._args[6:10], self._args[0])
        if self._depthwise is not None:
            return self._depthwise.run(x)
        if self._conv is None:
            return qconv2d(x, self._packed, *self._args)
        return self._conv.run(x).reshape(self.out_shape)


def pack_conv(w) -> PackedConv:
    """Prepare int8 conv weights (O,KH,KW,C/groups) once for `qconv2d`: the same integers,
    without the per-call checks and packing of the weights."""
    return PackedConv(w)


def qconv2d(x, w, x_zero_point: int, multiplier, out_zero_point: int, qmin: int, qmax: int,
            bias=None, stride=1, padding=0, dilation=1, groups: int = 1):
    """A quantized conv2d layer, 8-bit in and out (see the reference for the formula).

    ``w`` is int8 (O,KH,KW,C/groups) or, for a layer that runs many times, `pack_conv(w)`.
    """
    if isinstance(w, PackedConv):
        packed, w_max = w, w.max_abs
        x, w, stride, padding, dilation, groups, (oh, ow) = packed.check(
            x, stride, padding, dilation, groups, x_zero_point)
    else:
        packed, w = None, check_int_array(w, "w", (np.int8,), ndim=4)
        w_max = max_abs(w)
        x, w, stride, padding, dilation, groups, (oh, ow) = check_conv2d(
            x, w, stride, padding, dilation, groups, x_zero_point, w_max, pad_name="x_zero_point")
    grid = _grid(x, w.shape, w_max, (x_zero_point, multiplier, out_zero_point, qmin, qmax,
                                     bias))
    geometry = (stride, padding, dilation)
    if groups == x.shape[3] == w.shape[0] and groups > 1:
        return Depthwise(x, w, geometry, grid, (oh, ow)).run(x)
    if dispatch.USE_VNNI:
        return _qconv_vnni_groups(x, w, packed, geometry, grid, groups).reshape(
            x.shape[0], oh, ow, w.shape[0])
    _, mult, bias, _, qmin, qmax = grid
    acc = conv2d(x, w, stride, padding, dilation, groups, x_zero_point)
    raw = acc.reshape(-1, w.shape[0])
    # sum (x - zx) w = acc - zx * colsum: computed mod 2**32 in place, exact because the true
    # value fits int32 (check_conv2d bounded it); no int64 copy of the whole output
    col_sums = w.reshape(w.shape[0], -1).astype(np.int64).sum(axis=1)
    raw -= (int(x_zero_point) * col_sums).astype(np.int64).astype(np.int32)
    y = requantize_float(raw, mult, out_zero_point, qmin, qmax, bias)
    return y.reshape(acc.shape)


def _qconv_vnni_groups(x, w, packed, geometry, grid, groups) -> np.ndarray:
    """Each group on the fused VNNI conv, outputs side by side -> (N*OH*OW, O)."""
    x_zero_point, mult, bias, zp, qmin, qmax = grid
    cg, og = x.shape[3] // groups, w.shape[0] // groups
    panels = (packed.panels(groups, -(-cg // 4) * 4) if packed is not None
              else [None] * groups)
    parts = []
    for g in range(groups):
        chans = slice(g * og, (g + 1) * og)
        xg = np.ascontiguousarray(x[..., g * cg:(g + 1) * cg])
        group_grid = (x_zero_point, mult[chans], bias[chans], int(zp), qmin, qmax)
        parts.append(QConvVnni(xg, w[chans], geometry, group_grid, storage_dtype(qmin, qmax),
                               panels[g]).run(None))
    return parts[0] if groups == 1 else np.concatenate(parts, axis=1)
