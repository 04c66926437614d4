"""llama.cpp's Q4 x Q8_0 and Q8_0 x Q8_0 block products with AVX-512 VNNI, rows as lanes.

A panel is 64 output rows = 4 groups of 16 (one zmm of int32 each). For one block of 32
inputs, group ``rg`` reads 4 vectors of 64 bytes: vector ``g`` holds, for each of its 16
rows, the 4 bytes ``4g .. 4g+3`` of the row's GGUF block, i.e. codes ``4g + c`` in the low
and ``16 + 4g + c`` in the high nibbles. ``& 15`` and ``>> 4`` give two vectors of unsigned
codes; ``vpdpbusd`` multiplies them by the matching 4 activations (broadcast) and adds: 8
instructions give the block's exact int32 sums for 16 rows. The float part is the
reference's, lane by lane, in the same order (``fmul`` then ``fadd``, never fused)::

    isum = sum_g dpbusd(low_g, qx[4g:4g+4]) + dpbusd(high_g, qx[16+4g:16+4g+4])
    acc += (dx * d) * f32(isum - offset * sum(qx));   acc += m * (dx * sum(qx))

For Q8_0 weights (signed), ``vpdpbusd`` takes the activations as its unsigned operand:
``qx + 128`` (as u8), and each row's block sum of weights times 128 comes back off:
``isum = sum dpbusd(qx + 128, w) - 128 * sum(w)``, the same integer.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from qkit.kernels.simd import ir as sx

GROUPS = 4  # zmm row groups per panel of 64 rows


def vnni_layout(codes: np.ndarray) -> np.ndarray:
    """(P, B, 16 bytes, 64 rows) panels -> (P, B, 4 row groups, 4 quads, 16 rows, 4 bytes)."""
    p, b = codes.shape[:2]
    v = codes.reshape(p, b, 4, 4, GROUPS, 16)  # (P, B, g, c, rg, ri)
    return np.ascontiguousarray(v.transpose(0, 1, 4, 2, 5, 3))


def _block(builder, ptrs, p, b, n_blocks, t, acc, offset):
    codes, d, m, qx, dx, total, shift = ptrs
    dot = sx.vpdpbusd(builder)
    i64 = b.type
    pb = builder.add(builder.mul(p, n_blocks), b)
    tb = builder.add(builder.mul(t, n_blocks), b)
    quads = [sx.splat(builder, builder.load(builder.gep(qx, [builder.add(
        builder.mul(tb, i64(8)), i64(q))]), align=1), sx.V16I32) for q in range(8)]
    low4 = ir.Constant(sx.V64I8, [15] * 64)
    four = ir.Constant(sx.V64I8, [4] * 64)
    tot = builder.load(builder.gep(total, [tb]))
    scale_x = sx.splat(builder, builder.load(builder.gep(dx, [tb])), sx.V16F32)
    shift_x = sx.splat(builder, builder.load(builder.gep(shift, [tb])), sx.V16F32)
    correction = sx.splat(builder, builder.mul(offset, tot), sx.V16I32)
    new = []
    for rg in range(GROUPS):
        sums = [sx.zeros(sx.V16I32), sx.zeros(sx.V16I32)]
        for g in range(4):
            index = builder.add(builder.mul(pb, i64(16)), i64(4 * rg + g))
            packed = builder.load(builder.gep(codes, [index]), align=1)
            low = builder.bitcast(builder.and_(packed, low4), sx.V16I32)
            high = builder.bitcast(builder.and_(builder.lshr(packed, four), low4), sx.V16I32)
            sums[0] = builder.call(dot, [sums[0], low, quads[g]])
            sums[1] = builder.call(dot, [sums[1], high, quads[4 + g]])
        isum = builder.sub(builder.add(sums[0], sums[1]), correction)
        at = builder.add(builder.mul(pb, i64(64)), i64(16 * rg))
        d_v = builder.load(sx.vector_at(builder, d, at, sx.V16F32), align=4)
        m_v = builder.load(sx.vector_at(builder, m, at, sx.V16F32), align=4)
        step = builder.fmul(builder.fmul(scale_x, d_v), builder.sitofp(isum, sx.V16F32))
        value = builder.fadd(acc[rg], step)
        new.append(builder.fadd(value, builder.fmul(m_v, shift_x)))
    return new


@intrinsic
def _panel(typingctx, weights, acts, offset, p, t, out):
    """out[t, 64p : 64p + 64] = the panel's outputs for token t (float32)."""

    def codegen(context, builder, signature, args):
        (codes, d, m), (qx, dx, total, shift), off, p_, t_, out_ = sx.arguments(
            context, builder, signature, args)
        n_blocks = builder.extract_value(codes.shape, 1)
        ptrs = (builder.bitcast(codes.data, sx.V64I8.as_pointer()), d.data, m.data,
                builder.bitcast(qx.data, sx.I32.as_pointer()), dx.data, total.data, shift.data)
        off32 = builder.trunc(off, sx.I32) if off.type != sx.I32 else off

        def body(b, acc):
            return _block(builder, ptrs, p_, b, n_blocks, t_, acc, off32)

        acc = sx.loop(builder, n_blocks, [sx.zeros(sx.V16F32)] * GROUPS, body, "blocks")
        _store(builder, acc, out_, p_, t_)
        return context.get_dummy_value()

    return types.void(weights, acts, offset, p, t, out), codegen


def vnni_layout_q8(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(P, B, 32, 64) int8 panels -> (P, B, 4 row groups, 8 quads, 16 rows, 4 bytes), and the
    weights' block sums times 128 (P, B, 64) int32: the correction of ``qx + 128``."""
    p, b = codes.shape[:2]
    v = codes.reshape(p, b, 8, 4, GROUPS, 16)  # (P, B, q, c, rg, ri)
    sums = 128 * codes.astype(np.int32).sum(axis=2, dtype=np.int32)
    return np.ascontiguousarray(v.transpose(0, 1, 4, 2, 5, 3)), np.ascontiguousarray(sums)


def _block_q8(builder, ptrs, p, b, n_blocks, t, acc):
    codes, d, wsum, qx, dx = ptrs
    dot = sx.vpdpbusd(builder)
    i64 = b.type
    pb = builder.add(builder.mul(p, n_blocks), b)
    tb = builder.add(builder.mul(t, n_blocks), b)
    quads = [sx.splat(builder, builder.load(builder.gep(qx, [builder.add(  # qx + 128, u8
        builder.mul(tb, i64(8)), i64(q))]), align=1), sx.V16I32) for q in range(8)]
    scale_x = sx.splat(builder, builder.load(builder.gep(dx, [tb])), sx.V16F32)
    new = []
    for rg in range(GROUPS):
        sums = [sx.zeros(sx.V16I32), sx.zeros(sx.V16I32)]
        for q in range(8):
            index = builder.add(builder.mul(pb, i64(32)), i64(8 * rg + q))
            w = builder.bitcast(builder.load(builder.gep(codes, [index]), align=1), sx.V16I32)
            sums[q % 2] = builder.call(dot, [sums[q % 2], quads[q], w])
        at = builder.add(builder.mul(pb, i64(64)), i64(16 * rg))
        w_sum = builder.load(sx.vector_at(builder, wsum, at, sx.V16I32), align=4)  # 128 sum(w)
        isum = builder.sub(builder.add(sums[0], sums[1]), w_sum)
        d_v = builder.load(sx.vector_at(builder, d, at, sx.V16F32), align=4)
        step = builder.fmul(builder.fmul(scale_x, d_v), builder.sitofp(isum, sx.V16F32))
        new.append(builder.fadd(acc[rg], step))
    return new


@intrinsic
def _panel_q8(typingctx, weights, acts, p, t, out):
    """out[t, 64p : 64p + 64] for Q8_0 weights (float32)."""

    def codegen(context, builder, signature, args):
        (codes, d, wsum), (qx, dx), p_, t_, out_ = sx.arguments(context, builder, signature,
                                                                 args)
        n_blocks = builder.extract_value(codes.shape, 1)
        ptrs = (builder.bitcast(codes.data, sx.V64I8.as_pointer()), d.data, wsum.data,
                builder.bitcast(qx.data, sx.I32.as_pointer()), dx.data)

        def body(b, acc):
            return _block_q8(builder, ptrs, p_, b, n_blocks, t_, acc)

        acc = sx.loop(builder, n_blocks, [sx.zeros(sx.V16F32)] * GROUPS, body, "blocks")
        _store(builder, acc, out_, p_, t_)
        return context.get_dummy_value()

    return types.void(weights, acts, p, t, out), codegen


def _store(builder, acc, out, p, t):
    ldc = builder.extract_value(out.shape, 1)
    row = builder.add(builder.mul(t, ldc), builder.mul(p, p.type(64)))
    for rg in range(GROUPS):
        ptr = sx.vector_at(builder, out.data, builder.add(row, row.type(16 * rg)), sx.V16F32)
        builder.store(acc[rg], ptr, align=4)


@njit(cache=True)
def _dot_q8_vnni_nb(vcodes, d, wsum, qx, dx, out):
    for p in range(vcodes.shape[0]):
        for t in range(qx.shape[0]):
            _panel_q8((vcodes, d, wsum), (qx, dx), p, t, out)


@njit(cache=True, parallel=True)
def _dot_q8_vnni_par(vcodes, d, wsum, qx, dx, out):
    for p in prange(vcodes.shape[0]):
        for t in range(qx.shape[0]):
            _panel_q8((vcodes, d, wsum), (qx, dx), p, t, out)


def dot_q8_vnni(vcodes, d, wsum, qx, dx, out, parallel: bool) -> None:
    """The Q8_0 x Q8_0 product of packed, checked operands into ``out`` (tokens, 64 P)."""
    shifted = (qx.view(np.uint8) ^ np.uint8(128))  # qx + 128 as unsigned bytes
    (_dot_q8_vnni_par if parallel else _dot_q8_vnni_nb)(vcodes, d, wsum, shifted, dx, out)


@njit(cache=True)
def _sums(qx, dx):
    total = np.empty(dx.shape, np.int32)
    shift = np.empty(dx.shape, np.float32)
    for t in range(qx.shape[0]):
        for b in range(qx.shape[1]):
            s = np.int32(0)
            for j in range(32):
                s += np.int32(qx[t, b, j])
            total[t, b] = s
            shift[t, b] = dx[t, b] * np.float32(s)
    return total, shift


@njit(cache=True)
def _dot_vnni_nb(vcodes, d, m, offset, qx, dx, out):
    total, shift = _sums(qx, dx)
    for p in range(vcodes.shape[0]):
        for t in range(qx.shape[0]):
            _panel((vcodes, d, m), (qx, dx, total, shift), offset, p, t, out)


@njit(cache=True, parallel=True)
def _dot_vnni_par(vcodes, d, m, offset, qx, dx, out):
    total, shift = _sums(qx, dx)
    for p in prange(vcodes.shape[0]):
        for t in range(qx.shape[0]):
            _panel((vcodes, d, m), (qx, dx, total, shift), offset, p, t, out)


def dot_vnni(vcodes, d, m, offset: int, qx, dx, out, parallel: bool) -> None:
    """The Q4 x Q8_0 product of packed, checked operands into ``out`` (tokens, 64 P)."""
    (_dot_vnni_par if parallel else _dot_vnni_nb)(vcodes, d, m, np.int32(offset), qx, dx, out)
