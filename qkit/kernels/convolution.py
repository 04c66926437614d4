"""Integer 2-D convolution in numba (twin of `qkit.reference.convolution`).

Three loops, chosen by shape and CPU:

* the VNNI micro-kernel (`qkit.kernels.vnni`) as a direct convolution: the
  input is padded (for a large batch a few images at a time, by the thread that
  then convolves them, so the padded copy is read from L1), each tile of 8 output
  pixels reads its windows straight from it (no patch matrix; without dilation
  a kernel row's ``kw * C`` bytes are contiguous, so it is one run of K) against
  the prepacked weight panels, and the tile is requantized in registers (one
  group at a time);
* a depthwise loop that runs along channels (contiguous in NHWC); for 3x3 on VNNI
  it sums 64 channels' nine taps with twelve ``vpdpbusd`` (16 at a time for the
  rest), and a border pixel reads its taps through pointers, the outside ones at a
  row of padding values;
* the plain loop below, readable: each output reads its receptive field
  straight from the input, substituting ``pad_value`` outside it, in the
  (kh, kw, c) order of the reference's im2col.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from qkit._checks import (
    INTEGER_OPERANDS,
    check_conv2d,
    check_int_array,
    check_qlinear,
    dtype_proves_exact,
    max_abs,
    storage_dtype,
)
from qkit.kernels import gemms
from qkit.kernels.requantization import requantize_float
from qkit.kernels.vnni import (
    QConvVnni,
    _dw3x3_indirect,
    _dw3x3_pixel,
    _pack_conv,
    conv_vnni,
    depthwise_params,
    pack_depthwise,
    qconv_vnni,
)


@njit(cache=True)
def _conv_row(x, w, out, b, oy, stride, padding, dilation, groups, pad_value):
    # one output row out[b, oy, :, :]; x (N,H,W,C), w (O,KH,KW,Cg)
    _, h, wd, _ = x.shape
    o_len, kh_len, kw_len, cg = w.shape
    og = o_len // groups
    for ox in range(out.shape[2]):
        for o in range(o_len):
            c0 = (o // og) * cg
            acc = np.int32(0)
            for i in range(kh_len):
                iy = oy * stride[0] - padding[0] + i * dilation[0]
                for j in range(kw_len):
                    ix = ox * stride[1] - padding[1] + j * dilation[1]
                    inside = 0 <= iy < h and 0 <= ix < wd
                    for c in range(cg):
                        v = np.int32(x[b, iy, ix, c0 + c]) if inside else np.int32(pad_value)
                        acc += v * np.int32(w[o, i, j, c])
            out[b, oy, ox, o] = acc


@njit(cache=True, parallel=True)
def _conv_parallel(x, w, out, stride, padding, dilation, groups, pad_value):
    n_len, oh = out.shape[0], out.shape[1]
    for t in prange(n_len * oh):
        _conv_row(x, w, out, t // oh, t % oh, stride, padding, dilation, groups, pad_value)


@njit(cache=True)
def _conv_serial(x, w, out, stride, padding, dilation, groups, pad_value):
    for b in range(out.shape[0]):
        for oy in range(out.shape[1]):
            _conv_row(x, w, out, b, oy, stride, padding, dilation, groups, pad_value)


def conv2d(x, w, stride=1, padding=0, dilation=1, groups: int = 1, pad_value: int = 0):
    """(N,H,W,C) u8/s8 conv (O,KH,KW,C/groups) s8 -> (N,OH,OW,O) s32 (see the reference)."""
    x, w, stride, padding, dilation, groups, (oh, ow) = check_conv2d(
        x, w, stride, padding, dilation, groups, pad_value)
    x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
    geometry = (w.shape[1], w.shape[2]) + stride + padding + dilation
    if groups == x.shape[3] == w.shape[0] and groups > 1:  # depthwise
        out = np.empty((x.shape[0], oh, ow, w.shape[0]), np.int32)
        _depthwise_parallel(x, np.ascontiguousarray(w[..., 0].transpose(1, 2, 0)), out,
                            np.asarray(geometry, np.int64), int(pad_value))
        return out
    if gemms.USE_VNNI:
        return _per_group(x, w, groups, lambda xg, wg: conv_vnni(
            xg, wg, stride, padding, dilation, pad_value), (x.shape[0], oh, ow))
    # elsewhere: gather the windows into rows (im2col) and multiply with the AVX2 (or plain)
    # GEMM; `_conv_row` is the same sum written out, for reading
    g = np.asarray(geometry, np.int64)
    return _per_group(x, w, groups, lambda xg, wg: gemms.gemm_fallback(
        _im2col(xg, g, oh, ow, int(pad_value)), np.ascontiguousarray(wg.reshape(wg.shape[0], -1))),
        (x.shape[0], oh, ow))


@njit(cache=True, parallel=True)
def _im2col(x, geometry, oh, ow, pad_value):
    # (N,H,W,C) -> (N*OH*OW, KH*KW*C): one row per output pixel, in the weights' (i, j, c) order
    kh, kw, sh, sw, ph, pw, dh, dw = geometry
    n_len, h, w, c_len = x.shape
    cols = np.empty((n_len * oh * ow, kh * kw * c_len), x.dtype)
    for t in prange(n_len * oh):
        b, oy = t // oh, t % oh
        for ox in range(ow):
            row = cols[t * ow + ox]
            for i in range(kh):
                iy = oy * sh - ph + i * dh
                for j in range(kw):
                    ix = ox * sw - pw + j * dw
                    base = (i * kw + j) * c_len
                    if 0 <= iy < h and 0 <= ix < w:
                        src = x[b, iy, ix]
                        for c in range(c_len):
                            row[base + c] = src[c]
                    else:
                        for c in range(c_len):
                            row[base + c] = pad_value
    return cols


def _per_group(x, w, groups, run, nhw):
    """Run an ungrouped conv per group and put the output channels side by side."""
    if groups == 1:
        return run(x, w).reshape(nhw + (w.shape[0],))
    cg, og = x.shape[3] // groups, w.shape[0] // groups
    parts = [run(np.ascontiguousarray(x[..., g * cg:(g + 1) * cg]), w[g * og:(g + 1) * og])
             for g in range(groups)]
    return np.concatenate(parts, axis=1).reshape(nhw + (w.shape[0],))


@njit(cache=True, parallel=True)
def _depthwise_parallel(x, wt, out, geometry, pad_value):
    # x (N,H,W,C), wt (KH,KW,C) -> out (N,OH,OW,C); the inner loop runs along channels
    n_len, oh, ow = out.shape[0], out.shape[1], out.shape[2]
    for t in prange(n_len * oh):
        b, oy = t // oh, t % oh
        for ox in range(ow):
            _depthwise_row(x, wt, out[b, oy, ox], b, oy, ox, geometry, pad_value)


def _madd16_python(acc, a, b):  # what _madd16 means, for NUMBA_DISABLE_JIT=1
    return acc + int(a) * int(b)


@intrinsic
def _madd16(typingctx, acc, a, b):
    """``acc + a * b`` with the product in int16 (exact for 8-bit operands: |a*b| <= 32640).

    numba would widen ``a * b`` to int64; in int16 the loop becomes ``vpmaddwd``-style
    vector code, several times faster.
    """
    sig = types.int32(types.int32, a, b)

    def codegen(context, builder, signature, args):
        i16 = ir.IntType(16)
        a16 = (builder.sext if signature.args[1].signed else builder.zext)(args[1], i16)
        b16 = (builder.sext if signature.args[2].signed else builder.zext)(args[2], i16)
        return builder.add(args[0], builder.sext(builder.mul(a16, b16), ir.IntType(32)))

    return sig, codegen


if numba.config.DISABLE_JIT:
    _madd16 = _madd16_python  # noqa: F811


@njit(cache=True)
def _depthwise_row(x, wt, acc, b, oy, ox, geometry, pad_value):
    # acc[c] = sum over the window of x[b, iy, ix, c] * wt[i, j, c] (pad_value outside)
    kh, kw, sh, sw, ph, pw, dh, dw = geometry
    h, w, c_len = x.shape[1], x.shape[2], acc.shape[0]
    iy0, ix0 = oy * sh - ph, ox * sw - pw
    if kh == 3 and kw == 3 and iy0 >= 0 and ix0 >= 0 and iy0 + 2 * dh < h and ix0 + 2 * dw < w:
        _depthwise_3x3_inside(x[b], wt, acc, iy0, ix0, dh, dw)
        return
    acc[:] = 0
    for i in range(kh):
        iy = oy * sh - ph + i * dh
        for j in range(kw):
            ix = ox * sw - pw + j * dw
            wij = wt[i, j]
            if 0 <= iy < h and 0 <= ix < w:
                src = x[b, iy, ix]
                for c in range(c_len):
                    acc[c] = _madd16(acc[c], src[c], wij[c])
            else:
                for c in range(c_len):
                    acc[c] += pad_value * np.int32(wij[c])


@njit(cache=True)
def _depthwise_3x3_inside(xb, wt, acc, iy0, ix0, dh, dw):
    # the common case (3x3, window inside the image), unrolled: nine products per channel
    # summed in registers and stored once, instead of nine passes over acc in memory
    r0, r1, r2 = xb[iy0], xb[iy0 + dh], xb[iy0 + 2 * dh]
    x00, x01, x02 = r0[ix0], r0[ix0 + dw], r0[ix0 + 2 * dw]
    x10, x11, x12 = r1[ix0], r1[ix0 + dw], r1[ix0 + 2 * dw]
    x20, x21, x22 = r2[ix0], r2[ix0 + dw], r2[ix0 + 2 * dw]
    w00, w01, w02 = wt[0, 0], wt[0, 1], wt[0, 2]
    w10, w11, w12 = wt[1, 0], wt[1, 1], wt[1, 2]
    w20, w21, w22 = wt[2, 0], wt[2, 1], wt[2, 2]
    for c in range(acc.shape[0]):
        s = _madd16(np.int32(0), x00[c], w00[c])
        s = _madd16(s, x01[c], w01[c])
        s = _madd16(s, x02[c], w02[c])
        s = _madd16(s, x10[c], w10[c])
        s = _madd16(s, x11[c], w11[c])
        s = _madd16(s, x12[c], w12[c])
        s = _madd16(s, x20[c], w20[c])
        s = _madd16(s, x21[c], w21[c])
        acc[c] = _madd16(s, x22[c], w22[c])


@njit(cache=True, inline="always")
def _depthwise_3x3_requant(x, wt, out, b, oy, ox, iy0, ix0, dh, dw, col_off, bias, mult, zp, lo,
                           hi):
    # one interior output pixel: the 3x3 sum and its requantization per channel, in registers,
    # indexing x directly (no per-pixel array views: at 96 channels those cost as much as the
    # arithmetic)
    y1, y2, x1, x2 = iy0 + dh, iy0 + 2 * dh, ix0 + dw, ix0 + 2 * dw
    for c in range(out.shape[3]):
        s = _madd16(np.int32(0), x[b, iy0, ix0, c], wt[0, 0, c])
        s = _madd16(s, x[b, iy0, x1, c], wt[0, 1, c])
        s = _madd16(s, x[b, iy0, x2, c], wt[0, 2, c])
        s = _madd16(s, x[b, y1, ix0, c], wt[1, 0, c])
        s = _madd16(s, x[b, y1, x1, c], wt[1, 1, c])
        s = _madd16(s, x[b, y1, x2, c], wt[1, 2, c])
        s = _madd16(s, x[b, y2, ix0, c], wt[2, 0, c])
        s = _madd16(s, x[b, y2, x1, c], wt[2, 1, c])
        s = _madd16(s, x[b, y2, x2, c], wt[2, 2, c])
        v = np.float32(np.float32(s + col_off[c]) + bias[c])
        y = np.rint(np.float32(v * mult[c])) + zp
        out[b, oy, ox, c] = min(max(y, lo), hi)


@njit(cache=True, inline="always")
def _requantized_pixel(x, wt, acc, out, b, oy, ox, geometry, pad_value, col_off, bias, mult, zp,
                       lo, hi):
    # any output pixel (borders included) the general way: its sums, then requantize_float
    _depthwise_row(x, wt, acc, b, oy, ox, geometry, pad_value)
    dst = out[b, oy, ox]
    for c in range(acc.shape[0]):
        v = np.float32(np.float32(acc[c] + col_off[c]) + bias[c])
        y = np.rint(np.float32(v * mult[c])) + zp
        dst[c] = min(max(y, lo), hi)


@njit(cache=True, parallel=True)
def _depthwise_requant(x, wt, out, geometry, pad_value, col_off, bias, mult, zp, lo, hi):
    # fused depthwise conv + float32 requantization (the formula of requantize_float)
    n_len, oh, ow, c_len = out.shape
    kh, kw, sh, sw, ph, pw, dh, dw = geometry
    h, w = x.shape[1], x.shape[2]
    for t in prange(n_len * oh):
        b, oy = t // oh, t % oh
        acc = np.empty(c_len, np.int32)
        iy0 = oy * sh - ph
        rows_inside = kh == 3 and kw == 3 and iy0 >= 0 and iy0 + 2 * dh < h
        for ox in range(ow):
            ix0 = ox * sw - pw
            if rows_inside and ix0 >= 0 and ix0 + 2 * dw < w:
                _depthwise_3x3_requant(x, wt, out, b, oy, ox, iy0, ix0, dh, dw, col_off, bias,
                                       mult, zp, lo, hi)
                continue
            _requantized_pixel(x, wt, acc, out, b, oy, ox, geometry, pad_value, col_off, bias,
                               mult, zp, lo, hi)


@njit(cache=True, parallel=True)
def _depthwise_vnni(x, wq, taps, pad_row, out, geometry, col_off, bias, mult, zp, lo, hi):
    # 3x3 depthwise on the VNNI kernel (uint8 x, C % 16 == 0). Interior pixels read their
    # windows at fixed tap offsets; border pixels through nine pointers, the outside ones at
    # `pad_row` (C bytes of the zero point), so every pixel runs the same vector code (the
    # scalar loop took 22% of the time of MobileNetV2's 56x56 layer for its 7% border pixels)
    n_len, oh, ow, c_len = out.shape
    kh, kw, sh, sw, ph, pw, dh, dw = geometry
    h, w = x.shape[1], x.shape[2]
    xf, of = x.reshape(-1), out.reshape(-1)
    n64, n16 = c_len // 64, c_len % 64 // 16
    x_addr, pad_addr = xf.ctypes.data, pad_row.ctypes.data
    for t in prange(n_len * oh):
        b, oy = t // oh, t % oh
        ptrs = np.empty(9, np.int64)
        iy0 = oy * sh - ph
        rows_inside = iy0 >= 0 and iy0 + 2 * dh < h
        for ox in range(ow):
            ix0 = ox * sw - pw
            out_base = (t * ow + ox) * c_len
            if rows_inside and ix0 >= 0 and ix0 + 2 * dw < w:
                _dw3x3_pixel(xf, ((b * h + iy0) * w + ix0) * c_len, taps, wq, of, out_base,
                             n64, n16, col_off, bias, mult, zp, lo, hi)
                continue
            for i in range(3):
                iy = iy0 + i * dh
                for j in range(3):
                    ix = ix0 + j * dw
                    inside = 0 <= iy < h and 0 <= ix < w
                    ptrs[3 * i + j] = (x_addr + ((b * h + iy) * w + ix) * c_len if inside
                                       else pad_addr)
            _dw3x3_indirect(ptrs, wq, of, out_base, n64, n16, col_off, bias, mult, zp, lo,
                            hi)


class _Depthwise:
    """A checked depthwise conv (groups == C == O) with requantization, everything but the
    input prepared: the transposed and packed weights, column offsets and tap offsets."""

    def __init__(self, x, w, stride, padding, dilation, x_zero_point, mult, bias,
                 out_zero_point, qmin, qmax, oh, ow):
        self.geometry = np.asarray((w.shape[1], w.shape[2]) + stride + padding + dilation,
                                   np.int64)
        self.wt = np.ascontiguousarray(w[..., 0].transpose(1, 2, 0))  # (KH, KW, C)
        self.col_off = (-int(x_zero_point) * self.wt.astype(np.int64).sum(axis=(0, 1))
                        ).astype(np.int32)
        self.out_shape = (x.shape[0], oh, ow, w.shape[0])
        self.out_dtype = storage_dtype(qmin, qmax)
        self.bias, self.mult, self.x_zero_point = bias, mult, int(x_zero_point)
        self.zp, self.lo, self.hi = int(out_zero_point), int(qmin), int(qmax)
        self.vnni = (gemms.USE_VNNI and x.dtype == np.uint8 and w.shape[1:3] == (3, 3)
                     and x.shape[3] % 16 == 0)
        if self.vnni:
            c = x.shape[3]
            self.taps = np.array([(i * dilation[0] * x.shape[2] + j * dilation[1]) * c
                                  for i in range(3) for j in range(3)], np.int64)
            self.wq, self.pad_row = pack_depthwise(self.wt), np.full(c, x_zero_point, np.uint8)
            # the kernel reads its per-channel values in the order of its byte quads
            self.kernel_params = tuple(depthwise_params(np.asarray(v)) for v in (
                self.col_off, np.asarray(bias, np.float32), np.asarray(mult, np.float32)))

    def run(self, x) -> np.ndarray:
        out = np.empty(self.out_shape, self.out_dtype)
        x = np.ascontiguousarray(x)
        if self.vnni:
            _depthwise_vnni(x, self.wq, self.taps, self.pad_row, out, self.geometry,
                            *self.kernel_params, self.zp, self.lo, self.hi)
        else:
            _depthwise_requant(x, self.wt, out, self.geometry, self.x_zero_point, self.col_off,
                               self.bias, self.mult, float(self.zp), float(self.lo),
                               float(self.hi))
        return out


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
                                 self.max_abs)[2:]
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

    def panels(self, groups: int, cp: int) -> list:
        """Each group's `qkit.kernels.vnni.PackedWeights`, channels padded to ``cp``."""
        if (groups, cp) not in self._panels:
            og = self.w.shape[0] // groups
            self._panels[groups, cp] = [_pack_conv(self.w[g * og:(g + 1) * og], cp)
                                        for g in range(groups)]
        return self._panels[groups, cp]


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
        (x_zero_point, multiplier, out_zero_point, qmin, qmax, bias, stride, padding, dilation,
         groups) = args
        x, w, stride, padding, dilation, groups, (oh, ow) = packed.check(
            x, stride, padding, dilation, groups, x_zero_point)
        flat_x = x.reshape(-1, x.shape[3])[:, :1]
        _, qmin, qmax, mult, bias = check_qlinear(flat_x, (w.shape[0], 1), packed.max_abs,
                                                  x_zero_point, multiplier, out_zero_point,
                                                  qmin, qmax, bias)
        self.shape, self.dtype, self.out_shape = x.shape, x.dtype, (x.shape[0], oh, ow,
                                                                    w.shape[0])
        self._recheck = not packed.proven(x.dtype)  # each input's values bound the sums
        self._packed, self._args, self._conv, self._depthwise = packed, args, None, None
        if groups == x.shape[3] == w.shape[0] and groups > 1:
            self._depthwise = _Depthwise(x, w, stride, padding, dilation, x_zero_point, mult,
                                         bias, out_zero_point, qmin, qmax, oh, ow)
        elif gemms.USE_VNNI and groups == 1:  # else the general path, unchanged
            self._conv = QConvVnni(x, w, stride, padding, dilation, x_zero_point, mult, bias,
                                   out_zero_point, qmin, qmax, storage_dtype(qmin, qmax),
                                   packed.panels(1, -(-x.shape[3] // 4) * 4)[0])
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
            x, w, stride, padding, dilation, groups, x_zero_point, w_max)
    flat_x = x.reshape(-1, x.shape[3])[:, :1]  # only for the checks' dtype and zero point
    _, qmin, qmax, mult, bias = check_qlinear(flat_x, (w.shape[0], 1), w_max, x_zero_point,
                                              multiplier, out_zero_point, qmin, qmax, bias)
    if groups == x.shape[3] == w.shape[0] and groups > 1:
        return _Depthwise(x, w, stride, padding, dilation, x_zero_point, mult, bias,
                          out_zero_point, qmin, qmax, oh, ow).run(x)
    if gemms.USE_VNNI:
        cg, og = x.shape[3] // groups, w.shape[0] // groups
        panels = (packed.panels(groups, -(-cg // 4) * 4) if packed is not None
                  else [None] * groups)
        parts = []
        for g in range(groups):
            chans = slice(g * og, (g + 1) * og)
            xg = np.ascontiguousarray(x[..., g * cg:(g + 1) * cg])
            parts.append(qconv_vnni(xg, w[chans], stride, padding, dilation, x_zero_point,
                                    mult[chans], bias[chans], int(out_zero_point), qmin, qmax,
                                    storage_dtype(qmin, qmax), panels[g]))
        y = parts[0] if groups == 1 else np.concatenate(parts, axis=1)
        return y.reshape(x.shape[0], oh, ow, w.shape[0])
    acc = conv2d(x, w, stride, padding, dilation, groups, x_zero_point)
    raw = acc.reshape(-1, w.shape[0])
    # sum (x - zx) w = acc - zx * colsum: computed mod 2**32 in place, exact because the true
    # value fits int32 (check_conv2d bounded it); no int64 copy of the whole output
    col_sums = w.reshape(w.shape[0], -1).astype(np.int64).sum(axis=1)
    raw -= (int(x_zero_point) * col_sums).astype(np.int64).astype(np.int32)
    y = requantize_float(raw, mult, out_zero_point, qmin, qmax, bias)
    return y.reshape(acc.shape)
