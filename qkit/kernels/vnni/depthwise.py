"""3x3 depthwise convolution on ``vpdpbusd``: each channel's nine taps as byte quads.

A depthwise layer has no K to reduce over, only nine taps per channel, so the GEMM tile
does not fit. Instead the kernel interleaves four taps' bytes per channel into the quads
``vpdpbusd`` sums: taps 0-3, taps 4-7, and tap 8 with three zeros give three instructions
for the nine products of 16 channels, requantized in registers. In Python, per pixel::

    for c0 in range(0, C, 16):                     # 16 channels per zmm
        acc = 0
        for group in (taps[0:4], taps[4:8], taps[8:9] + [zeros] * 3):
            quads = interleave([x[tap][c0:c0 + 16] for tap in group])   # (16, 4) bytes
            acc = vpdpbusd(acc, quads, weight_quads[c0, group])
        out[c0:c0 + 16] = requantize(acc)

The main step takes 64 channels at once: ``vpunpck`` builds the byte quads per 128-bit
lane, so the weights and per-channel values are stored in that lane order
(`qkit.kernels.packing.pack_depthwise`, `depthwise_order`) and the epilogue's saturating
packs put the channels back in order. Border pixels read their taps through pointers
(XNNPACK's indirection buffer), the outside ones at a row of padding values, so every
pixel runs the same vector code.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from qkit.kernels.simd import ir as sx


def interleave4(builder, v):
    """Four <16 x i8> (one per tap) -> <64 x i8> holding each channel's four taps together,
    the byte quads ``vpdpbusd`` sums (``vpunpck*`` shuffles once compiled)."""
    pair = ir.Constant(ir.VectorType(sx.I32, 32), [i // 2 + 16 * (i % 2) for i in range(32)])
    a, b = builder.shuffle_vector(v[0], v[1], pair), builder.shuffle_vector(v[2], v[3], pair)
    quad = [2 * (i // 4) + i % 4 if i % 4 < 2 else 32 + 2 * (i // 4) + i % 4 - 2
            for i in range(64)]
    return builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(sx.I32, 64), quad))


def unpack_lanes(builder, a, b, half, width):
    """``vpunpck{l,h}{bw,wd}`` on 512 bits: in each 128-bit lane, the low (``half`` 0) or high
    half of ``a``'s and ``b``'s elements, interleaved; ``width`` elements per lane."""
    n = a.type.count
    idx = [(i // width) * width + half * width // 2 + (i % width) // 2 + (n if i % 2 else 0)
           for i in range(n)]
    return builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(sx.I32, n), idx))


def quads64(builder, v):
    """Four <64 x i8> taps -> four <16 x i32> of byte quads (one channel's four taps): in
    128-bit lane L, vector j holds channels 16L + 4j .. 16L + 4j + 3 (`pack_depthwise`)."""
    v16 = ir.VectorType(sx.I16, 32)
    pairs = [unpack_lanes(builder, v[i], v[i + 1], h, 16) for h in (0, 1) for i in (0, 2)]
    lo_ab, lo_cd, hi_ab, hi_cd = (builder.bitcast(p, v16) for p in pairs)
    return [builder.bitcast(unpack_lanes(builder, ab, cd, h, 8), sx.V16I32)
            for ab, cd in ((lo_ab, lo_cd), (hi_ab, hi_cd)) for h in (0, 1)]


class _PixelEmitter:
    """The body of one output pixel, given the nine taps' pointers to channel 0: ``n64``
    steps of 64 channels, then ``n16`` of 16 (``blocks = [n64, n16]``)."""

    def __init__(self, builder, corner, weights, out, out_base, blocks, epilogue, signed):
        self.b, self.corner, self.out_base = builder, corner, out_base
        self.n64, self.n16 = blocks
        self.dot = sx.vpdpbusd(builder)
        self.out8 = sx.data_pointer(builder, out.data)
        self.wq = builder.bitcast(weights.data, sx.V64I8.as_pointer())
        self.rq = sx.RequantizeF32(builder, epilogue)
        self.to16 = sx.instruction(builder, "llvm.x86.avx512.packssdw.512")
        self.to8 = sx.instruction(builder,
                                  f"llvm.x86.avx512.pack{'ss' if signed else 'us'}wb.512")

    def taps(self, c0, vtype):
        b = self.b
        return [b.load(b.bitcast(b.gep(p, [c0]), vtype.as_pointer()), align=1)
                for p in self.corner]

    def weight(self, index):
        return self.b.bitcast(self.b.load(self.b.gep(self.wq, [index]), align=1), sx.V16I32)

    def store(self, c0, value, vtype):
        dst = self.b.gep(self.out8, [self.b.add(self.out_base, c0)])
        self.b.store(value, self.b.bitcast(dst, vtype.as_pointer()), align=1)

    def step64(self, k, carried):
        b, i64 = self.b, self.out_base.type
        c0 = b.mul(k, i64(64))
        v = self.taps(c0, sx.V64I8)
        zero = sx.zeros(sx.V64I8)
        groups = [quads64(b, v[0:4]), quads64(b, v[4:8]), quads64(b, [v[8], zero, zero, zero])]
        words = []
        for j in range(4):
            acc = sx.zeros(sx.V16I32)
            for g, quads in enumerate(groups):
                w = self.weight(b.add(b.mul(k, i64(12)), i64(4 * g + j)))
                acc = b.call(self.dot, [acc, quads[j], w])
            # the per-channel values are stored in this vector's channel order
            words.append(self.rq.words(acc, *self.rq.columns(b.add(c0, i64(16 * j)))))
        # the packs work per 128-bit lane too, so they put the channels back in order; the
        # values are in [qmin, qmax] already, so their saturation never acts
        packed = b.call(self.to8, [b.call(self.to16, words[0:2]), b.call(self.to16, words[2:4])])
        self.store(c0, packed, sx.V64I8)
        return carried

    def step16(self, k, carried):
        b, i64 = self.b, self.out_base.type
        c0 = b.add(b.mul(self.n64, i64(64)), b.mul(k, i64(16)))
        v = self.taps(c0, sx.V16I8)
        quads = [interleave4(b, v[0:4]), interleave4(b, v[4:8]),
                 b.bitcast(b.zext(v[8], sx.V16I32), sx.V64I8)]
        acc = sx.zeros(sx.V16I32)
        first = b.add(b.mul(self.n64, i64(12)), b.mul(k, i64(3)))
        for j, q in enumerate(quads):
            acc = b.call(self.dot, [acc, b.bitcast(q, sx.V16I32), self.weight(b.add(first,
                                                                                  i64(j)))])
        self.store(c0, self.rq(acc, *self.rq.columns(c0)), sx.V16I8)
        return carried

    def emit(self):
        sx.loop(self.b, self.n64, [], self.step64, "blocks64", guarded=True)
        sx.loop(self.b, self.n16, [], self.step16, "blocks16", guarded=True)


@intrinsic
def _dw3x3_pixel(typingctx, x, base, taps, weights, out, out_base, blocks, epilogue):
    """One interior output pixel of a 3x3 depthwise conv, requantized: ``x`` (uint8) and
    ``out`` are flat, ``base`` / ``out_base`` index channel 0 of the window's corner and of
    the output pixel, ``taps`` the nine taps' offsets from the corner."""
    sig = types.void(x, base, taps, weights, out, out_base, blocks, epilogue)

    def codegen(context, builder, signature, args):
        x_, base_, taps_, w_, out_, out_base_, blocks_, epi = sx.arguments(context, builder,
                                                                            signature, args)
        i64 = base_.type
        x8 = sx.data_pointer(builder, x_.data)
        taps_p = builder.bitcast(taps_.data, i64.as_pointer())
        corner = [builder.gep(x8, [builder.add(base_, builder.load(builder.gep(taps_p,
                                                                               [i64(t)])))])
                  for t in range(9)]
        _PixelEmitter(builder, corner, w_, out_, out_base_, blocks_, epi,
                      signature.args[4].dtype.signed).emit()
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _dw3x3_indirect(typingctx, ptrs, weights, out, out_base, blocks, epilogue):
    """`_dw3x3_pixel` reading each tap through a pointer: ``ptrs`` holds nine addresses of
    channel 0 (XNNPACK's indirection buffer). A border pixel points its outside taps at a row
    of padding values, so it runs the same vector code as the interior."""
    sig = types.void(ptrs, weights, out, out_base, blocks, epilogue)

    def codegen(context, builder, signature, args):
        ptrs_, w_, out_, out_base_, blocks_, epi = sx.arguments(context, builder, signature,
                                                                 args)
        i64 = out_base_.type
        ptrs_p = builder.bitcast(ptrs_.data, i64.as_pointer())
        corner = [builder.inttoptr(builder.load(builder.gep(ptrs_p, [i64(t)])),
                                   sx.I8.as_pointer()) for t in range(9)]
        _PixelEmitter(builder, corner, w_, out_, out_base_, blocks_, epi,
                      signature.args[2].dtype.signed).emit()
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, parallel=True)
def depthwise3x3_vnni(x, weights, taps, pad_row, out, geometry, epilogue):
    # 3x3 depthwise on the VNNI kernel (uint8 x, C % 16 == 0). Interior pixels read their
    # windows at fixed tap offsets; border pixels through nine pointers, the outside ones at
    # `pad_row` (C bytes of the zero point), so every pixel runs the same vector code (the
    # scalar loop took 22% of the time of MobileNetV2's 56x56 layer for its 7% border pixels)
    n_len, oh, ow, c_len = out.shape
    kh, kw, sh, sw, ph, pw, dh, dw = geometry
    h, w = x.shape[1], x.shape[2]
    xf, of = x.reshape(-1), out.reshape(-1)
    blocks = (c_len // 64, c_len % 64 // 16)
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
                _dw3x3_pixel(xf, ((b * h + iy0) * w + ix0) * c_len, taps, weights, of, out_base,
                             blocks, epilogue)
                continue
            for i in range(3):
                iy = iy0 + i * dh
                for j in range(3):
                    ix = ix0 + j * dw
                    inside = 0 <= iy < h and 0 <= ix < w
                    ptrs[3 * i + j] = (x_addr + ((b * h + iy) * w + ix) * c_len if inside
                                       else pad_addr)
            _dw3x3_indirect(ptrs, weights, of, out_base, blocks, epilogue)
