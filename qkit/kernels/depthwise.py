"""Depthwise convolution (groups == C == O): a loop that runs along channels.

In NHWC the channels of one pixel are contiguous, so the inner loop runs over them with one
weight per channel and tap. The 3x3 interior case is unrolled (nine products summed in
registers); with VNNI and uint8 inputs whose channels fill whole 16-byte vectors the
``vpdpbusd`` kernel of `qkit.kernels.vnni.depthwise` runs instead.

``geometry`` is ``(kh, kw, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w)``;
an epilogue is ``(col_off, bias, mult, zp, qmin, qmax)``, the per-channel requantization.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from qkit.core.checks import storage_dtype
from qkit.kernels import dispatch
from qkit.kernels.packing import depthwise_order, pack_depthwise
from qkit.kernels.vnni.depthwise import depthwise3x3_vnni


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
        _depthwise_3x3_inside(x[b], wt, acc, (iy0, ix0, dh, dw))
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
def _depthwise_3x3_inside(xb, wt, acc, corner):
    # the common case (3x3, window inside the image), unrolled: nine products per channel
    # summed in registers and stored once, instead of nine passes over acc in memory
    iy0, ix0, dh, dw = corner
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


@njit(cache=True, parallel=True)
def _depthwise_tiles(x, wt, out, geometry, pad_value):
    # x (N,H,W,C), wt (KH,KW,C) -> out (N,OH,OW,C) int32; the inner loop runs along channels
    n_len, oh, ow = out.shape[0], out.shape[1], out.shape[2]
    for t in prange(n_len * oh):
        b, oy = t // oh, t % oh
        for ox in range(ow):
            _depthwise_row(x, wt, out[b, oy, ox], b, oy, ox, geometry, pad_value)


def depthwise_sums(x, w, geometry, pad_value: int, out_hw) -> np.ndarray:
    """The int32 sums of a checked depthwise conv: (N,H,W,C) x (C,KH,KW,1) -> (N,OH,OW,C)."""
    out = np.empty((x.shape[0], *out_hw, w.shape[0]), np.int32)
    _depthwise_tiles(x, np.ascontiguousarray(w[..., 0].transpose(1, 2, 0)), out, geometry,
                     pad_value)
    return out


@njit(cache=True, inline="always")
def _requantized(s, c, epilogue):
    # clamp(rne(f32(f32(s + col_off) + bias) * mult) + zp, qmin, qmax) for channel c
    col_off, bias, mult, zp, qmin, qmax = epilogue
    v = np.float32(np.float32(s + col_off[c]) + bias[c])
    y = np.rint(np.float32(v * mult[c])) + zp
    return min(max(y, qmin), qmax)


@njit(cache=True, inline="always")
def _depthwise_3x3_requant(x, wt, out, pixel, corner, epilogue):
    # one interior output pixel: the 3x3 sum and its requantization per channel, in registers,
    # indexing x directly (no per-pixel array views: at 96 channels those cost as much as the
    # arithmetic)
    b, oy, ox = pixel
    iy0, ix0, dh, dw = corner
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
        out[b, oy, ox, c] = _requantized(s, c, epilogue)


@njit(cache=True, parallel=True)
def _depthwise_requant(x, wt, out, geometry, pad_value, epilogue):
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
                _depthwise_3x3_requant(x, wt, out, (b, oy, ox), (iy0, ix0, dh, dw), epilogue)
                continue
            # a border pixel the general way: its sums, then the same requantization
            _depthwise_row(x, wt, acc, b, oy, ox, geometry, pad_value)
            dst = out[b, oy, ox]
            for c in range(c_len):
                dst[c] = _requantized(acc[c], c, epilogue)


class Depthwise:
    """A checked depthwise conv with requantization, everything but the input prepared: the
    transposed (and, for VNNI, packed) weights, column offsets and tap offsets.

    ``geometry`` is ``(stride, padding, dilation)``, each a pair; ``grid`` is
    ``(x_zero_point, mult, bias, out_zero_point, qmin, qmax)``.
    """

    def __init__(self, x, w, geometry, grid, out_hw):
        stride, padding, dilation = geometry
        x_zero_point, mult, bias, zp, qmin, qmax = grid
        self.geometry = np.asarray((w.shape[1], w.shape[2]) + stride + padding + dilation,
                                   np.int64)
        self.wt = np.ascontiguousarray(w[..., 0].transpose(1, 2, 0))  # (KH, KW, C)
        col_off = (-int(x_zero_point) * self.wt.astype(np.int64).sum(axis=(0, 1))
                   ).astype(np.int32)
        self.out_shape = (x.shape[0], *out_hw, w.shape[0])
        self.out_dtype = storage_dtype(qmin, qmax)
        self.x_zero_point = int(x_zero_point)
        self.vnni = (dispatch.USE_VNNI and x.dtype == np.uint8 and w.shape[1:3] == (3, 3)
                     and x.shape[3] % 16 == 0)
        if self.vnni:
            c = x.shape[3]
            self.taps = np.array([(i * dilation[0] * x.shape[2] + j * dilation[1]) * c
                                  for i in range(3) for j in range(3)], np.int64)
            self.wq, self.pad_row = pack_depthwise(self.wt), np.full(c, x_zero_point, np.uint8)
            # the kernel reads its per-channel values in the order of its byte quads
            vectors = tuple(depthwise_order(np.asarray(v, dtype)) for v, dtype in (
                (col_off, np.int32), (bias, np.float32), (mult, np.float32)))
            self.epilogue = (*vectors, int(zp), int(qmin), int(qmax))
        else:
            self.epilogue = (col_off, np.asarray(bias, np.float32), np.asarray(mult, np.float32),
                             float(zp), float(qmin), float(qmax))

    def run(self, x) -> np.ndarray:
        out = np.empty(self.out_shape, self.out_dtype)
        x = np.ascontiguousarray(x)
        if self.vnni:
            depthwise3x3_vnni(x, self.wq, self.taps, self.pad_row, out, self.geometry,
                              self.epilogue)
        else:
            _depthwise_requant(x, self.wt, out, self.geometry, self.x_zero_point, self.epilogue)
        return out
