"""The fast int8 GEMM: an AVX-512 VNNI micro-kernel (``vpdpbusd``) written in LLVM IR.

``vpdpbusd`` multiplies 64 unsigned bytes by 64 signed bytes and adds each
group of four products into one of 16 int32 lanes: exact, no saturation. The
micro-kernel keeps an ``MR x 32`` tile of int32 sums in ``2 * MR`` zmm
registers; per step of four K values it loads two 64-byte weight vectors,
broadcasts four activation bytes per row, and issues ``2 * MR`` ``vpdpbusd``.

Weights are packed once (`pack_weights`) into panels of 32 output columns,
each K-quad of a panel being 128 contiguous bytes (column-major inside the
quad), as fbgemm and oneDNN pack theirs. Signed activations are shifted to
unsigned (``a + 128``) and corrected exactly with the weights' column sums.

numba has no vector types, so the inner loop is built with llvmlite through
``numba.extending.intrinsic``; the blocking around it is ordinary numba. The
plain loop in `qkit.kernels.gemms` is the same computation, readable.
"""

from __future__ import annotations

import functools
import os
import threading

import llvmlite.binding as llvm
import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from qkit.kernels.avx2 import Avx2Layouts

NR = 32  # output columns per panel (two zmm of 16 int32)
MR = 8  # rows per micro-kernel call in the main loop



def vnni_available() -> bool:
    """True where the CPU has AVX-512 VNNI and the JIT is on (``QKIT_DISABLE_VNNI=1``: off)."""
    if numba.config.DISABLE_JIT or os.environ.get("QKIT_DISABLE_VNNI") == "1":
        return False
    features = llvm.get_host_cpu_features()
    return all(features.get(f, False) for f in ("avx512f", "avx512bw", "avx512vnni"))


_I32 = ir.IntType(32)
_V16 = ir.VectorType(_I32, 16)


def _dot_tile(builder, a_data, a_row, b_data, panel, kq, mr):
    """Emit the K loop for an ``mr x 32`` tile; returns its ``2 * mr`` int32x16 sums."""
    fn = builder.module.declare_intrinsic(
        "llvm.x86.avx512.vpdpbusd.512", fnty=ir.FunctionType(_V16, [_V16, _V16, _V16]))
    a_i32 = builder.bitcast(a_data, _I32.as_pointer())  # 4 bytes of K per i32; 4*kq per row
    rows = [builder.gep(a_i32, [builder.mul(builder.add(a_row, a_row.type(r)), kq)])
            for r in range(mr)]
    b_vec = builder.bitcast(b_data, _V16.as_pointer())
    b_base = builder.gep(b_vec, [builder.mul(builder.mul(panel, kq), kq.type(2))])
    entry = builder.block
    loop = builder.append_basic_block("kloop")
    done = builder.append_basic_block("kdone")
    builder.branch(loop)
    builder.position_at_end(loop)
    q = builder.phi(kq.type)
    q.add_incoming(kq.type(0), entry)
    accs = [builder.phi(_V16) for _ in range(2 * mr)]
    for acc in accs:
        acc.add_incoming(ir.Constant(_V16, None), entry)
    b0 = builder.load(builder.gep(b_base, [builder.mul(q, q.type(2))]), align=1)
    b1 = builder.load(builder.gep(b_base, [builder.add(builder.mul(q, q.type(2)), q.type(1))]),
                      align=1)
    new = []
    for r in range(mr):
        quad = builder.load(builder.gep(rows[r], [q]), align=1)  # a[row, 4q:4q+4]
        splat = builder.shuffle_vector(builder.insert_element(ir.Constant(_V16, None), quad,
                                                              _I32(0)),
                                       ir.Constant(_V16, None), ir.Constant(_V16, [0] * 16))
        new.append(builder.call(fn, [accs[2 * r], splat, b0]))  # columns 0..15
        new.append(builder.call(fn, [accs[2 * r + 1], splat, b1]))  # columns 16..31
    q_next = builder.add(q, q.type(1))
    q.add_incoming(q_next, loop)
    for acc, value in zip(accs, new, strict=True):
        acc.add_incoming(value, loop)
    _keep_rolled(builder, builder.cbranch(builder.icmp_signed("<", q_next, kq), loop, done),
                 "kloop")
    builder.position_at_end(done)
    return new


def _keep_rolled(builder, branch, name: str) -> None:
    """Mark ``branch`` (a loop's back edge) ``llvm.loop.unroll.disable``: unrolled by two, the
    8-row tiles need more than 32 zmm registers and spill accumulators inside the K loop."""
    module = builder.module
    flag = module.add_metadata([ir.MetaDataString(module, "llvm.loop.unroll.disable")])
    unique = ir.MetaDataString(module, f"qkit.{name}.{len(module.metadata)}")
    loop_id = module.add_metadata([unique])
    loop_id.operands = (loop_id, flag)  # a loop ID refers to itself (LLVM LangRef, llvm.loop)
    branch.set_metadata("llvm.loop", loop_id)


def _vec_at(builder, data, index, vec_type):
    """Pointer to the vector starting at element ``index`` of an array's data."""
    ptr = builder.gep(builder.bitcast(data, vec_type.element.as_pointer()), [index])
    return builder.bitcast(ptr, vec_type.as_pointer())


def _direct_tile(builder, x_data, offs_data, row0, taps_data, n_taps, cq, b_data, panel, mr):
    """Emit the K loop of a direct convolution for ``mr`` output pixels.

    Pixel ``row0 + r`` of the tile reads the padded input at ``offs[row0 + r] + taps[t] + 4c``
    for tap ``t`` and channel quad ``c``: the patch matrix is never built, and a tile may
    span output rows (and images), so every tile but the last has all ``mr`` rows.
    """
    fn = builder.module.declare_intrinsic(
        "llvm.x86.avx512.vpdpbusd.512", fnty=ir.FunctionType(_V16, [_V16, _V16, _V16]))
    i64 = row0.type
    x8 = builder.bitcast(x_data, ir.IntType(8).as_pointer())
    offs = builder.bitcast(offs_data, i64.as_pointer())
    rows = [builder.gep(x8, [builder.load(builder.gep(offs, [builder.add(row0, i64(r))]))])
            for r in range(mr)]
    taps = builder.bitcast(taps_data, i64.as_pointer())
    kq = builder.mul(n_taps, cq)
    b_base = builder.gep(builder.bitcast(b_data, _V16.as_pointer()),
                         [builder.mul(builder.mul(panel, kq), i64(2))])
    entry = builder.block
    t_head = builder.append_basic_block("taps")
    c_body = builder.append_basic_block("quads")
    t_latch = builder.append_basic_block("next_tap")
    done = builder.append_basic_block("done")
    builder.branch(t_head)
    builder.position_at_end(t_head)
    t = builder.phi(i64)
    acc_t = [builder.phi(_V16) for _ in range(2 * mr)]
    t_off = builder.load(builder.gep(taps, [t]))
    builder.branch(c_body)
    builder.position_at_end(c_body)
    c = builder.phi(i64)
    acc_c = [builder.phi(_V16) for _ in range(2 * mr)]
    k2 = builder.mul(builder.add(builder.mul(t, cq), c), i64(2))
    b0 = builder.load(builder.gep(b_base, [k2]), align=1)
    b1 = builder.load(builder.gep(b_base, [builder.add(k2, i64(1))]), align=1)
    offset = builder.add(t_off, builder.mul(c, i64(4)))
    new = []
    for r in range(mr):
        ptr = builder.bitcast(builder.gep(rows[r], [offset]), _I32.as_pointer())
        quad = builder.load(ptr, align=1)
        splat = builder.shuffle_vector(builder.insert_element(ir.Constant(_V16, None), quad,
                                                              _I32(0)),
                                       ir.Constant(_V16, None), ir.Constant(_V16, [0] * 16))
        new.append(builder.call(fn, [acc_c[2 * r], splat, b0]))
        new.append(builder.call(fn, [acc_c[2 * r + 1], splat, b1]))
    c_next = builder.add(c, i64(1))
    _keep_rolled(builder, builder.cbranch(builder.icmp_signed("<", c_next, cq), c_body, t_latch),
                 "quads")
    builder.position_at_end(t_latch)
    t_next = builder.add(t, i64(1))
    builder.cbranch(builder.icmp_signed("<", t_next, n_taps), t_head, done)
    t.add_incoming(i64(0), entry)
    t.add_incoming(t_next, t_latch)
    c.add_incoming(i64(0), t_head)
    c.add_incoming(c_next, c_body)
    for a_t, a_c, v in zip(acc_t, acc_c, new, strict=True):
        a_t.add_incoming(ir.Constant(_V16, None), entry)
        a_t.add_incoming(v, t_latch)
        a_c.add_incoming(a_t, t_head)
        a_c.add_incoming(v, c_body)
    builder.position_at_end(done)
    return new


def _store_vectors(builder, vectors, out_data, out_row, ldc, panel, mr, vec_type):
    """Store an ``mr x 32`` tile; the right half only where the row has 32 more columns.

    ``ldc`` is the true row length (a multiple of 16), so no padded copy is needed.
    """
    col0 = builder.mul(panel, panel.type(NR))
    has_hi = builder.icmp_signed("<=", builder.add(col0, col0.type(NR)), ldc)
    for r in range(mr):
        base = builder.add(builder.mul(builder.add(out_row, out_row.type(r)), ldc), col0)
        builder.store(vectors[2 * r], _vec_at(builder, out_data, base, vec_type), align=1)
    with builder.if_then(has_hi):
        for r in range(mr):
            base = builder.add(builder.mul(builder.add(out_row, out_row.type(r)), ldc), col0)
            idx = builder.add(base, base.type(16))
            builder.store(vectors[2 * r + 1], _vec_at(builder, out_data, idx, vec_type), align=1)


def _store_int32(builder, sums, out_data, out_row, ldc, panel, mr):
    _store_vectors(builder, sums, out_data, out_row, ldc, panel, mr, _V16)


class _Requant:
    """IR for ``y = clamp(rne(f32(f32(acc + col_off) + bias) * mult) + zp, lo, hi)``, one
    vector of 16 int32 sums at a time: fbgemm's float32 requantization, in registers.

    Clamping to ``[lo - zp, hi - zp]`` before rounding gives the same result (the bounds are
    integers) and keeps the conversion in range; the x86 intrinsics are used as they are
    (``vmaxps``, ``vminps``, ``vcvtps2dq`` with round-to-nearest-even embedded) because
    LLVM's generic ``maxnum`` adds NaN handling that cannot occur here (the sum is an
    integer, bias and multiplier are checked finite).
    """

    def __init__(self, builder, zp, lo, hi):
        f32 = ir.FloatType()
        self.b, self.vf = builder, ir.VectorType(f32, 16)
        mod = builder.module
        self.minmax = [mod.declare_intrinsic(f"llvm.x86.avx512.{op}.ps.512",
                                             fnty=ir.FunctionType(self.vf, [self.vf] * 2 + [_I32]))
                       for op in ("max", "min")]
        self.to_int = mod.declare_intrinsic(
            "llvm.x86.avx512.mask.cvtps2dq.512",
            fnty=ir.FunctionType(_V16, [self.vf, _V16, ir.IntType(16), _I32]))
        zp_f, lo_f, hi_f = (builder.sitofp(v, f32) for v in (zp, lo, hi))
        self.lo_v = self.splat(builder.fsub(lo_f, zp_f), self.vf)
        self.hi_v = self.splat(builder.fsub(hi_f, zp_f), self.vf)
        self.zp_v = self.splat(builder.trunc(zp, _I32), _V16)

    def splat(self, value, vtype):
        b = self.b
        return b.shuffle_vector(b.insert_element(ir.Constant(vtype, None), value, _I32(0)),
                                ir.Constant(vtype, None), ir.Constant(_V16, [0] * 16))

    def words(self, acc, off, bias_v, mult_v):
        """16 sums -> the 16 results as int32, each in [lo, hi]."""
        b = self.b
        current, nearest_even = _I32(4), _I32(8)  # max/min do not round; {rn-sae}
        y = b.fmul(b.fadd(b.sitofp(b.add(acc, off), self.vf), bias_v), mult_v)
        y = b.call(self.minmax[1], [b.call(self.minmax[0], [y, self.lo_v, current]), self.hi_v,
                                    current])
        q = b.call(self.to_int, [y, ir.Constant(_V16, None), ir.IntType(16)(-1), nearest_even])
        return b.add(q, self.zp_v)

    def __call__(self, acc, off, bias_v, mult_v):
        """16 sums -> 16 bytes (<16 x i8>)."""
        return self.b.trunc(self.words(acc, off, bias_v, mult_v),
                            ir.VectorType(ir.IntType(8), 16))


def _store_requant(builder, sums, out_data, out_row, ldc, panel, mr, col_off, bias, mult, zp,
                   lo, hi):
    """Requantize an ``mr x 32`` tile (`_Requant`) and store it as bytes."""
    rq = _Requant(builder, zp, lo, hi)
    vf = rq.vf
    col0 = builder.mul(panel, panel.type(NR))
    params = []
    for j in range(2):
        col = builder.add(col0, col0.type(16 * j))
        params.append([builder.load(_vec_at(builder, data, col, t), align=1)
                       for data, t in ((col_off, _V16), (bias, vf), (mult, vf))])
    quantized = [rq(sums[2 * r + j], *params[j]) for r in range(mr) for j in range(2)]
    _store_vectors(builder, quantized, out_data, out_row, ldc, panel, mr,
                   ir.VectorType(ir.IntType(8), 16))


def _codegen(mr: int, direct: bool, requant: bool):
    """Code for one ``mr x 32`` output tile.

    Source arguments: ``a, a_row, b, panel, kq`` (rows of a packed matrix) or, when
    ``direct``, ``x, offs, row0, taps, cq, b, panel`` (a padded NHWC input).
    Then ``out, out_row, ldc`` and, when ``requant``, ``col_off, bias, mult, zp, lo, hi``.
    """
    n_src = 7 if direct else 5

    def codegen(context, builder, signature, args):
        def array(i):
            return context.make_array(signature.args[i])(context, builder, args[i])

        if direct:
            n_taps = builder.extract_value(array(3).shape, 0)
            sums = _direct_tile(builder, array(0).data, array(1).data, args[2], array(3).data,
                                n_taps,
                                args[4], array(5).data, args[6], mr)
            panel = args[6]
        else:
            sums = _dot_tile(builder, array(0).data, args[1], array(2).data, args[3], args[4], mr)
            panel = args[3]
        out, out_row, ldc = array(n_src).data, args[n_src + 1], args[n_src + 2]
        if requant:
            e = n_src + 3
            _store_requant(builder, sums, out, out_row, ldc, panel, mr, array(e).data,
                           array(e + 1).data, array(e + 2).data, *args[e + 3:e + 6])
        else:
            _store_int32(builder, sums, out, out_row, ldc, panel, mr)
        return context.get_dummy_value()

    return codegen


def _microkernel(mr: int, direct: bool, requant: bool):
    """The intrinsic of `_codegen` with its argument list spelled out (numba needs names)."""
    if not direct and not requant:
        @intrinsic
        def kernel(typingctx, a, a_row, b, panel, kq, out, out_row, ldc):
            return (types.void(a, a_row, b, panel, kq, out, out_row, ldc),
                    _codegen(mr, direct, requant))
    elif not direct:
        @intrinsic
        def kernel(typingctx, a, a_row, b, panel, kq, out, out_row, ldc, col_off, bias, mult,
                   zp, lo, hi):
            return (types.void(a, a_row, b, panel, kq, out, out_row, ldc, col_off, bias, mult,
                               zp, lo, hi), _codegen(mr, direct, requant))
    elif not requant:
        @intrinsic
        def kernel(typingctx, x, offs, row0, taps, cq, b, panel, out, out_row, ldc):
            return (types.void(x, offs, row0, taps, cq, b, panel, out, out_row, ldc),
                    _codegen(mr, direct, requant))
    else:
        @intrinsic
        def kernel(typingctx, x, offs, row0, taps, cq, b, panel, out, out_row, ldc,
                   col_off, bias, mult, zp, lo, hi):
            return (types.void(x, offs, row0, taps, cq, b, panel, out, out_row, ldc,
                               col_off, bias, mult, zp, lo, hi), _codegen(mr, direct, requant))
    return kernel


_V16I8, _V64I8 = ir.VectorType(ir.IntType(8), 16), ir.VectorType(ir.IntType(8), 64)


def _interleave4(builder, v):
    """Four <16 x i8> (one per tap) -> <64 x i8> holding each channel's four taps together,
    the byte quads ``vpdpbusd`` sums (``vpunpck*`` shuffles once compiled)."""
    pair = ir.Constant(ir.VectorType(_I32, 32), [i // 2 + 16 * (i % 2) for i in range(32)])
    a, b = builder.shuffle_vector(v[0], v[1], pair), builder.shuffle_vector(v[2], v[3], pair)
    quad = [2 * (i // 4) + i % 4 if i % 4 < 2 else 32 + 2 * (i // 4) + i % 4 - 2
            for i in range(64)]
    return builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(_I32, 64), quad))


def _unpack(builder, a, b, half, width):
    """``vpunpck{l,h}{bw,wd}`` on 512 bits: in each 128-bit lane, the low (``half`` 0) or high
    half of ``a``'s and ``b``'s elements, interleaved; ``width`` elements per lane."""
    n = a.type.count
    idx = [(i // width) * width + half * width // 2 + (i % width) // 2 + (n if i % 2 else 0)
           for i in range(n)]
    return builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(_I32, n), idx))


def _quads64(builder, v):
    """Four <64 x i8> taps -> four <16 x i32> of byte quads (one channel's four taps): in
    128-bit lane L, vector j holds channels 16L + 4j .. 16L + 4j + 3 (`pack_depthwise`)."""
    v16 = ir.VectorType(ir.IntType(16), 32)
    pairs = [_unpack(builder, v[i], v[i + 1], h, 16) for h in (0, 1) for i in (0, 2)]
    lo_ab, lo_cd, hi_ab, hi_cd = (builder.bitcast(p, v16) for p in pairs)
    return [builder.bitcast(_unpack(builder, ab, cd, h, 8), _V16)
            for ab, cd in ((lo_ab, lo_cd), (hi_ab, hi_cd)) for h in (0, 1)]


def _dw3x3_emit(builder, corner, wq_data, out_data, out_base, n64, n16, col_off, bias, mult,
                zp, lo, hi, signed):
    """The body of `_dw3x3_pixel`, given the nine taps' pointers to channel 0: ``n64`` steps
    of 64 channels, then ``n16`` of 16."""
    i64 = out_base.type
    dot = builder.module.declare_intrinsic(
        "llvm.x86.avx512.vpdpbusd.512", fnty=ir.FunctionType(_V16, [_V16, _V16, _V16]))
    out8 = builder.bitcast(out_data, ir.IntType(8).as_pointer())
    wq_v = builder.bitcast(wq_data, _V64I8.as_pointer())
    rq = _Requant(builder, zp, lo, hi)
    v32i16 = ir.VectorType(ir.IntType(16), 32)
    to16 = builder.module.declare_intrinsic("llvm.x86.avx512.packssdw.512",
                                            fnty=ir.FunctionType(v32i16, [_V16, _V16]))
    to8 = builder.module.declare_intrinsic(
        f"llvm.x86.avx512.pack{'ss' if signed else 'us'}wb.512",
        fnty=ir.FunctionType(_V64I8, [v32i16, v32i16]))

    def loop(count, name, body):
        entry = builder.block
        head, done = builder.append_basic_block(name), builder.append_basic_block(name + "_done")
        builder.cbranch(builder.icmp_signed(">", count, i64(0)), head, done)
        builder.position_at_end(head)
        k = builder.phi(i64)
        body(k)
        k_next = builder.add(k, i64(1))
        k.add_incoming(i64(0), entry)
        k.add_incoming(k_next, builder.block)
        builder.cbranch(builder.icmp_signed("<", k_next, count), head, done)
        builder.position_at_end(done)

    def params(c0):
        return [builder.load(_vec_at(builder, data, c0, t), align=1)
                for data, t in ((col_off, _V16), (bias, rq.vf), (mult, rq.vf))]

    def step64(k):
        c0 = builder.mul(k, i64(64))
        v = [builder.load(builder.bitcast(builder.gep(p, [c0]), _V64I8.as_pointer()), align=1)
             for p in corner]
        zero = ir.Constant(_V64I8, None)
        groups = [_quads64(builder, v[0:4]), _quads64(builder, v[4:8]),
                  _quads64(builder, [v[8], zero, zero, zero])]
        words = []
        for j in range(4):
            acc = ir.Constant(_V16, None)
            for g, quads in enumerate(groups):
                w = builder.load(builder.gep(wq_v, [builder.add(builder.mul(k, i64(12)),
                                                                i64(4 * g + j))]), align=1)
                acc = builder.call(dot, [acc, quads[j], builder.bitcast(w, _V16)])
            # the parameters are stored in this vector's channel order (`depthwise_params`)
            words.append(rq.words(acc, *params(builder.add(c0, i64(16 * j)))))
        # the packs work per 128-bit lane too, so they put the channels back in order; the
        # values are in [lo, hi] already, so their saturation never acts
        packed = builder.call(to8, [builder.call(to16, words[0:2]),
                                    builder.call(to16, words[2:4])])
        dst = builder.gep(out8, [builder.add(out_base, c0)])
        builder.store(packed, builder.bitcast(dst, _V64I8.as_pointer()), align=1)

    def step16(k):
        c0 = builder.add(builder.mul(n64, i64(64)), builder.mul(k, i64(16)))
        v = [builder.load(builder.bitcast(builder.gep(p, [c0]), _V16I8.as_pointer()), align=1)
             for p in corner]
        quads = [_interleave4(builder, v[0:4]), _interleave4(builder, v[4:8]),
                 builder.bitcast(builder.zext(v[8], _V16), _V64I8)]
        acc = ir.Constant(_V16, None)
        first = builder.add(builder.mul(n64, i64(12)), builder.mul(k, i64(3)))
        for j, q in enumerate(quads):
            w = builder.load(builder.gep(wq_v, [builder.add(first, i64(j))]), align=1)
            acc = builder.call(dot, [acc, builder.bitcast(q, _V16), builder.bitcast(w, _V16)])
        y = rq(acc, *params(c0))
        dst = builder.gep(out8, [builder.add(out_base, c0)])
        builder.store(y, builder.bitcast(dst, _V16I8.as_pointer()), align=1)

    loop(n64, "blocks64", step64)
    loop(n16, "blocks16", step16)


@intrinsic
def _dw3x3_pixel(typingctx, x, base, taps, wq, out, out_base, n64, n16, col_off, bias, mult,
                 zp, lo, hi):
    """One output pixel of a 3x3 depthwise conv, 16 channels per step, requantized.

    Taps 0-3 and 4-7 are interleaved into byte quads and tap 8 zero-extended, so three
    ``vpdpbusd`` sum the nine products of 16 channels; ``wq`` holds the weights in the same
    layout, (blocks, 3, 64) int8. ``x`` (uint8) and ``out`` are flat; ``base`` / ``out_base``
    index channel 0 of the window's corner and of the output pixel.
    """
    sig = types.void(x, base, taps, wq, out, out_base, n64, n16, col_off, bias, mult, zp, lo,
                     hi)

    def codegen(context, builder, signature, args):
        def data(i):
            return context.make_array(signature.args[i])(context, builder, args[i]).data

        i64 = args[1].type
        x8 = builder.bitcast(data(0), ir.IntType(8).as_pointer())
        taps_p = builder.bitcast(data(2), i64.as_pointer())
        corner = [builder.gep(x8, [builder.add(args[1], builder.load(builder.gep(taps_p,
                                                                             [i64(t)])))])
                  for t in range(9)]
        _dw3x3_emit(builder, corner, data(3), data(4), args[5], args[6], args[7], data(8),
                    data(9), data(10), *args[11:14], signature.args[4].dtype.signed)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _dw3x3_indirect(typingctx, ptrs, wq, out, out_base, n64, n16, col_off, bias, mult, zp, lo,
                    hi):
    """`_dw3x3_pixel` reading each tap through a pointer: ``ptrs`` holds nine addresses of
    channel 0 (XNNPACK's indirection buffer). A border pixel points its outside taps at a row
    of padding values, so it runs the same vector code as the interior."""
    sig = types.void(ptrs, wq, out, out_base, n64, n16, col_off, bias, mult, zp, lo, hi)

    def codegen(context, builder, signature, args):
        def data(i):
            return context.make_array(signature.args[i])(context, builder, args[i]).data

        i64 = args[3].type
        ptrs_p = builder.bitcast(data(0), i64.as_pointer())
        corner = [builder.inttoptr(builder.load(builder.gep(ptrs_p, [i64(t)])),
                                   ir.IntType(8).as_pointer()) for t in range(9)]
        _dw3x3_emit(builder, corner, data(1), data(2), args[3], args[4], args[5], data(6),
                    data(7), data(8), *args[9:12], signature.args[2].dtype.signed)
        return context.get_dummy_value()

    return sig, codegen


def pack_depthwise(wt: np.ndarray) -> np.ndarray:
    """3x3 depthwise weights (3, 3, C) int8, C a multiple of 16 -> flat int8 in the byte-quad
    layout of `_dw3x3_pixel`: each 64-channel block as (3 tap groups, 4, 64) with vector j
    holding, in 128-bit lane L, channels 16L + 4j .. + 3 (`_quads64`), then each 16-channel
    block of the rest as (3, 64); tap groups are taps 0-3, taps 4-7, and tap 8 with three
    zeros."""
    taps = wt.reshape(9, -1).astype(np.int8)
    c = taps.shape[1]
    quads = np.zeros((c, 3, 4), np.int8)  # per channel: its three groups' byte quads
    quads[:, 0], quads[:, 1], quads[:, 2, 0] = taps[0:4].T, taps[4:8].T, taps[8]
    n64 = c // 64
    big = quads[:64 * n64].reshape(n64, 4, 4, 4, 3, 4)  # (block, L, j, p, group, byte)
    big = big.transpose(0, 4, 2, 1, 3, 5)  # (block, group, j, L, p, byte)
    rest = quads[64 * n64:].reshape(-1, 16, 3, 4).transpose(0, 2, 1, 3)  # (block, group, 16, 4)
    return np.concatenate([big.reshape(-1), rest.reshape(-1)])


def depthwise_params(v: np.ndarray) -> np.ndarray:
    """Per-channel values (C,) in the order `_dw3x3_pixel` reads them: within each 64-channel
    block, vector j's lane L holds channels 16L + 4j .. + 3; the rest as they are."""
    n64 = v.shape[0] // 64
    big = v[:64 * n64].reshape(n64, 4, 4, 4).transpose(0, 2, 1, 3)  # (block, j, L, p)
    return np.ascontiguousarray(np.concatenate([big.reshape(-1), v[64 * n64:]]))


# 8-row tiles for the bulk; 4- and 1-row tiles for what is left over
_mk8, _mk4, _mk1 = (_microkernel(m, direct=False, requant=False) for m in (MR, 4, 1))
_mk8_rq, _mk4_rq, _mk1_rq = (_microkernel(m, direct=False, requant=True) for m in (MR, 4, 1))
_dk8, _dk4, _dk1 = (_microkernel(m, direct=True, requant=False) for m in (MR, 4, 1))
_dk8_rq, _dk4_rq, _dk1_rq = (_microkernel(m, direct=True, requant=True) for m in (MR, 4, 1))


@njit(cache=True)
def _tail4(total):
    # (start of a 4-row tile or total, start of the 1-row tiles) after the 8-row tiles
    full = total // MR * MR
    return (full, full + 4) if total - full >= 4 else (total, full)


@njit(cache=True, parallel=True)
def _gemm_vnni(a, b, out, kq):
    # a (M, 4*kq) u8, b packed (panels, kq, 32, 4) s8 -> out (M, 32*panels) s32
    m_len, n_panels, ldc = a.shape[0], b.shape[0], out.shape[1]
    blocks = m_len // MR
    r4, r1 = _tail4(m_len)
    for p in prange(n_panels):
        for i in range(blocks):
            _mk8(a, i * MR, b, p, kq, out, i * MR, ldc)
        if r4 < m_len:
            _mk4(a, r4, b, p, kq, out, r4, ldc)
        for row in range(r1, m_len):
            _mk1(a, row, b, p, kq, out, row, ldc)


@njit(cache=True, parallel=True)
def _qgemm_vnni(a, b, out, kq, col_off, bias, mult, zp, lo, hi):
    # as _gemm_vnni, requantized to 8 bits in registers: out (M, 32*panels) u8 or s8
    m_len, n_panels, ldc = a.shape[0], b.shape[0], out.shape[1]
    blocks = m_len // MR
    r4, r1 = _tail4(m_len)
    for p in prange(n_panels):
        for i in range(blocks):
            _mk8_rq(a, i * MR, b, p, kq, out, i * MR, ldc, col_off, bias, mult, zp, lo, hi)
        if r4 < m_len:
            _mk4_rq(a, r4, b, p, kq, out, r4, ldc, col_off, bias, mult, zp, lo, hi)
        for row in range(r1, m_len):
            _mk1_rq(a, row, b, p, kq, out, row, ldc, col_off, bias, mult, zp, lo, hi)


@njit(cache=True, parallel=True)
def _conv_direct(xp, offs, taps, cq, b, out):
    # xp padded u8 (flat), offs[p] = where output pixel p's window starts -> out s32
    total, n_panels, ldc = offs.shape[0], b.shape[0], out.shape[1]
    r4, r1 = _tail4(total)
    for i in prange(total // MR):
        for p in range(n_panels):  # the tile's input rows stay in L1 across the panels
            _dk8(xp, offs, i * MR, taps, cq, b, p, out, i * MR, ldc)
    for p in range(n_panels):
        if r4 < total:
            _dk4(xp, offs, r4, taps, cq, b, p, out, r4, ldc)
        for row in range(r1, total):
            _dk1(xp, offs, row, taps, cq, b, p, out, row, ldc)


@njit(cache=True, parallel=True)
def _qconv_direct(xp, offs, taps, cq, b, out, col_off, bias, mult, zp, lo, hi):
    # _conv_direct with requantization to 8 bits in registers
    total, n_panels, ldc = offs.shape[0], b.shape[0], out.shape[1]
    r4, r1 = _tail4(total)
    for i in prange(total // MR):
        for p in range(n_panels):
            _dk8_rq(xp, offs, i * MR, taps, cq, b, p, out, i * MR, ldc, col_off, bias, mult, zp,
                    lo, hi)
    for p in range(n_panels):
        if r4 < total:
            _dk4_rq(xp, offs, r4, taps, cq, b, p, out, r4, ldc, col_off, bias, mult, zp, lo, hi)
        for row in range(r1, total):
            _dk1_rq(xp, offs, row, taps, cq, b, p, out, row, ldc, col_off, bias, mult, zp, lo,
                    hi)


@njit(cache=True, parallel=True)
def _qconv_chunks(x, chunk, pad, flip, ph, pw, offs, taps, cq, b, out, col_off, bias, mult, zp,
                  lo, hi):
    # _qconv_direct where each thread pads `chunk` images at a time into a small buffer of its
    # own (it stays in L1/L2 while the tiles read it) instead of a copy of the whole input;
    # channels are already whole quads (C % 4 == 0), so a padded row is one run of bytes
    n, h, wd, c = x.shape
    hp, wp = h + 2 * ph, wd + 2 * pw
    pix = offs.shape[0] // chunk  # output pixels of one image
    n_panels, ldc = b.shape[0], out.shape[1]
    xf = x.reshape(-1)
    for t in prange(-(-n // chunk)):
        b0 = t * chunk
        g = min(chunk, n - b0)
        buf = np.empty(chunk * hp * wp * c, np.uint8)
        buf[:] = pad
        for j in range(g):
            for y in range(h):
                o = ((j * hp + y + ph) * wp + pw) * c
                src = ((b0 + j) * h + y) * wd * c
                # a ufunc on slices: an indexed byte loop here compiles ~40x slower
                np.bitwise_xor(xf[src:src + wd * c], flip, buf[o:o + wd * c])
        total, base = g * pix, b0 * pix
        r4, r1 = _tail4(total)
        for p in range(n_panels):  # one panel's weights and the chunk stay in L1 together
            for i in range(total // MR):
                _dk8_rq(buf, offs, i * MR, taps, cq, b, p, out, base + i * MR, ldc, col_off,
                        bias, mult, zp, lo, hi)
            if r4 < total:
                _dk4_rq(buf, offs, r4, taps, cq, b, p, out, base + r4, ldc, col_off, bias, mult,
                        zp, lo, hi)
            for row in range(r1, total):
                _dk1_rq(buf, offs, row, taps, cq, b, p, out, base + row, ldc, col_off, bias,
                        mult, zp, lo, hi)


@njit(cache=True, parallel=True)
def _window_offsets(n_len, oh, ow, hp, wp, sh, sw, cp):
    # where each output pixel's window starts in the padded input, pixels in (n, oy, ox) order
    offs = np.empty(n_len * oh * ow, np.int64)
    for t in prange(n_len * oh):
        b, oy = t // oh, t % oh
        base = (b * hp + oy * sh) * wp * cp
        for ox in range(ow):
            offs[t * ow + ox] = base + ox * sw * cp
    return offs


_WORKSPACES = threading.local()


def _workspace(shape) -> np.ndarray:
    """A scratch uint8 buffer for the padded input, reused per shape and thread.

    A fresh multi-megabyte array costs a page fault per 4 KiB on first touch (about 0.5 ms
    for the MNIST CNN's conv2 at batch 256, a tenth of the layer); the buffer never leaves
    `conv_vnni` / `qconv_vnni`, so reusing it is safe. The 4 most recent shapes are kept.
    """
    cache = getattr(_WORKSPACES, "buffers", None)
    if cache is None:
        cache = _WORKSPACES.buffers = {}
    buf = cache.pop(shape, None)
    if buf is None:
        buf = np.empty(shape, np.uint8)
        while len(cache) >= 4:
            cache.pop(next(iter(cache)))
    cache[shape] = buf  # most recent last
    return buf


def _cached_offsets(*geometry) -> np.ndarray:
    """`_window_offsets`, kept per geometry (a model calls each layer with the same shapes)
    when the array is at most 4 MiB; larger ones are cheap next to their convolution."""
    n_len, oh, ow = geometry[:3]
    if n_len * oh * ow > 1 << 19:
        offs = _window_offsets(*geometry)
        offs.flags.writeable = False  # the same numba type as the cached ones: no second compile
        return offs
    return _small_offsets(*geometry)


@functools.lru_cache(maxsize=16)
def _small_offsets(*geometry) -> np.ndarray:
    offs = _window_offsets(*geometry)
    offs.flags.writeable = False
    return offs


def _out_rows(rows: int, pw, dtype) -> np.ndarray:
    """Output rows as wide as the weights have columns when that is a multiple of 16 (the
    kernel then writes in place), else padded to whole 32-column panels (sliced after)."""
    width = pw.n if pw.n % 16 == 0 else pw.panels.shape[0] * NR
    return np.empty((rows, width), dtype)


def _valid(out: np.ndarray, n: int) -> np.ndarray:
    return out if out.shape[1] == n else np.ascontiguousarray(out[:, :n])


class PackedWeights(Avx2Layouts):
    """Int8 weights (N,K) packed once for `gemm_packed`, with what the kernel needs to know."""

    def __init__(self, w: np.ndarray):
        n, k = w.shape
        self.n, self.k = n, k
        kp, n_pad = -(-k // 4) * 4, -(-n // NR) * NR
        padded = np.zeros((n_pad, kp), np.int8)
        padded[:n, :k] = w
        # (Np, Kp) -> (panels, 32, kq, 4) -> (panels, kq, 32, 4): one K-quad of a panel = 128 bytes
        self.panels = np.ascontiguousarray(
            padded.reshape(n_pad // NR, NR, kp // 4, 4).transpose(0, 2, 1, 3))
        self.col_sums = w.astype(np.int64).sum(axis=1).astype(np.int32)
        self.max_abs = max(abs(int(w.min())), abs(int(w.max())))
        self.w = np.ascontiguousarray(w)  # for CPUs without VNNI (plain loop, AVX2 layouts)

    @property
    def kq(self) -> int:
        return self.panels.shape[1]

    def bind(self, x, x_zero_point: int, multiplier, out_zero_point: int, qmin: int, qmax: int,
             bias=None):
        """`qlinear`'s arguments fixed for inputs shaped like ``x``: see
        `qkit.kernels.gemms.BoundQLinear`."""
        from qkit.kernels.gemms import BoundQLinear  # gemms imports this module

        return BoundQLinear(self, x, (x_zero_point, multiplier, out_zero_point, qmin, qmax,
                                      bias))


def unsigned_rows(a: np.ndarray, width: int) -> tuple[np.ndarray, int]:
    """``a`` (M,K) as unsigned bytes padded with zeros to ``width`` columns, and the shift used:
    int8 becomes ``a + 128`` (``vpdpbusd`` wants unsigned activations), corrected later."""
    if a.dtype == np.uint8 and a.shape[1] == width and a.flags.c_contiguous:
        return a, 0  # already what the kernel reads: no copy
    a_u = np.zeros((a.shape[0], width), np.uint8)
    if a.dtype == np.int8:
        a_u[:, :a.shape[1]] = a.view(np.uint8) ^ np.uint8(0x80)
        return a_u, 128
    a_u[:, :a.shape[1]] = a
    return a_u, 0


def gemm_vnni(a: np.ndarray, pw: PackedWeights) -> np.ndarray:
    """``a @ w.T`` for checked operands (see `qkit.kernels.gemm_packed`)."""
    m = a.shape[0]
    a_u, _ = unsigned_rows(a, 4 * pw.kq)
    out = _out_rows(m, pw, np.int32)
    _gemm_vnni(a_u, pw.panels, out, pw.kq)
    out = _valid(out, pw.n)
    if a.dtype == np.int8:
        out -= np.int32(128) * pw.col_sums  # exact mod 2**32, and the true sum fits in int32
    return out


def _epilogue_vectors(pw: PackedWeights, shifted_zero_point: int, mult, bias):
    """The requantizing epilogue's per-column vectors, zero-padded to whole panels: the
    column offsets ``-(zx + shift) * colsum`` (exact mod 2**32; the true sums fit int32), the
    multipliers and the biases."""
    n_pad = pw.panels.shape[0] * NR
    col_off = np.zeros(n_pad, np.int32)
    col_off[:pw.n] = (-shifted_zero_point * pw.col_sums.astype(np.int64)).astype(np.int32)
    mult_p, bias_p = np.zeros(n_pad, np.float32), np.zeros(n_pad, np.float32)
    mult_p[:pw.n], bias_p[:pw.n] = mult, bias
    return col_off, mult_p, bias_p


class QGemmVnni:
    """``requantize_float(a @ w.T - zx * colsum, ...)`` with everything but ``a`` prepared (the
    epilogue's per-column vectors) for activations of one dtype; ``run(a)`` for checked
    ``a``."""

    def __init__(self, pw: PackedWeights, a_dtype, x_zero_point: int, mult, bias, zp: int,
                 lo: int, hi: int, out_dtype):
        shift = 128 if a_dtype == np.int8 else 0  # unsigned_rows' shift
        self.col_off, self.mult, self.bias = _epilogue_vectors(pw, int(x_zero_point) + shift,
                                                               mult, bias)
        self.pw, self.zp, self.lo, self.hi = pw, int(zp), int(lo), int(hi)
        self.out_dtype = out_dtype

    def run(self, a: np.ndarray) -> np.ndarray:
        pw = self.pw
        a_u, _ = unsigned_rows(a, 4 * pw.kq)
        out = _out_rows(a.shape[0], pw, self.out_dtype)
        _qgemm_vnni(a_u, pw.panels, out, pw.kq, self.col_off, self.bias, self.mult, self.zp,
                    self.lo, self.hi)
        return _valid(out, pw.n)


def qgemm_vnni(a: np.ndarray, pw: PackedWeights, x_zero_point: int, mult: np.ndarray,
               bias: np.ndarray, zp: int, lo: int, hi: int, out_dtype) -> np.ndarray:
    """Fused ``requantize_float(a @ w.T - zx * colsum, ...)`` for checked operands."""
    return QGemmVnni(pw, a.dtype, x_zero_point, mult, bias, zp, lo, hi, out_dtype).run(a)


MIN_CHUNKS = 4 * numba.config.NUMBA_NUM_THREADS  # fewer images: pad the whole input once


def chunk_images(pixels: int) -> int:
    """Images padded together by `_qconv_chunks`: the fewest whose output pixels fill whole
    8-row tiles (a 14x14 map: 2 images, 392 pixels, 49 tiles)."""
    return MR // np.gcd(pixels, MR)


def _conv_weights(w: np.ndarray, cp: int) -> PackedWeights:
    """(O, KH, KW, C) weights with channels zero-padded to ``cp``, packed; a layer called again
    with the same weights (every model does) reuses its packing when they are small."""
    if w.nbytes > 1 << 18:
        return _pack_conv(w, cp)
    return _pack_conv_cached(w.tobytes(), w.shape, cp)


@functools.lru_cache(maxsize=64)
def _pack_conv_cached(data: bytes, shape: tuple, cp: int) -> PackedWeights:
    return _pack_conv(np.frombuffer(data, np.int8).reshape(shape), cp)


def _pack_conv(w: np.ndarray, cp: int) -> PackedWeights:
    o, kh, kw, c = w.shape
    wpad = np.zeros((o, kh, kw, cp), np.int8)
    wpad[..., :c] = w
    pw = PackedWeights(wpad.reshape(o, -1))
    for a in (pw.panels, pw.col_sums, pw.w):  # shared by later calls: nobody may write them
        a.flags.writeable = False
    return pw


class ConvPlan:
    """A padded, unsigned copy of the input (or, with ``chunks``, the input itself for
    `_qconv_chunks` to pad a few images at a time), window offsets and tap offsets for
    `_conv_direct`.

    Channels are padded to a multiple of 4 (one ``vpdpbusd`` quad); the weights get
    matching zero channels, so K is ordered (kh, kw, c) as in the reference's im2col.
    """

    def __init__(self, x, w, stride, padding, dilation, pad_value, chunks: bool = False,
                 weights=None):
        n, h, wd, c = x.shape
        (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
        o, kh, kw, _ = w.shape
        cp = -(-c // 4) * 4
        self.flip = 128 if x.dtype == np.int8 else 0
        self.pad = (int(pad_value) + self.flip) & 0xFF  # the padding value, unsigned
        hp, wp = h + 2 * ph, wd + 2 * pw
        self.oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        self.ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        self.padding, self.chunk, self.padded = (ph, pw), 0, None
        if not (ph or pw or self.flip) and cp == c:  # nothing to pad or shift: read x itself
            pass
        elif chunks and cp == c and n >= MIN_CHUNKS * chunk_images(self.oh * self.ow):
            self.chunk = chunk_images(self.oh * self.ow)
        else:
            self.padded = (n, hp, wp, cp)
        self.xp = self.input(x)
        self.weights = _conv_weights(w, cp) if weights is None else weights
        if dw == 1:  # a kernel row's kw pixels are contiguous: one long tap per row
            self.taps = np.array([i * dh * wp * cp for i in range(kh)], np.int64)
            self.cq = kw * cp // 4
        else:
            self.taps = np.array([(i * dh * wp + j * dw) * cp
                                  for i in range(kh) for j in range(kw)], np.int64)
            self.cq = cp // 4
        self.offs = _cached_offsets(self.chunk or n, self.oh, self.ow, hp, wp, sh, sw, cp)
        self.rows = n * self.oh * self.ow

    def input(self, x) -> np.ndarray:
        """What the kernel reads for input ``x`` (of the planned shape and dtype): ``x``
        itself, or its padded copy."""
        if self.padded is None:
            return np.ascontiguousarray(x)
        return self._padded(x, self.padded, *self.padding, self.pad)

    def _padded(self, x, shape, ph, pw, pad):
        """x copied into a reused buffer, unsigned, with a border of ``pad`` (and zero-weight
        padding channels)."""
        n, h, wd, c = x.shape
        xp = _workspace(shape)
        if shape[3] != c:
            xp.fill(pad)
        else:  # only the border: the rest is copied over
            for border in (np.s_[:, :ph], np.s_[:, ph + h:], np.s_[:, :, :pw],
                           np.s_[:, :, pw + wd:]):
                xp[border] = pad
        inside = xp[:, ph:ph + h, pw:pw + wd, :c]
        np.bitwise_xor(x.view(np.uint8), np.uint8(self.flip), out=inside)
        return xp

    def out(self, dtype) -> np.ndarray:
        return _out_rows(self.rows, self.weights, dtype)


def conv_vnni(x, w, stride, padding, dilation, pad_value) -> np.ndarray:
    """Ungrouped conv2d of checked operands -> (N*OH*OW, O) int32."""
    plan = ConvPlan(x, w, stride, padding, dilation, pad_value)
    out = plan.out(np.int32)
    _conv_direct(plan.xp, plan.offs, plan.taps, plan.cq, plan.weights.panels, out)
    out = _valid(out, w.shape[0])
    if plan.flip:
        out -= np.int32(128) * plan.weights.col_sums  # exact mod 2**32; the true sum fits
    return out


class QConvVnni:
    """Ungrouped conv2d fused with requantization, everything but the input prepared: the
    plan (window and tap offsets, packed weights) and the per-column vectors of the epilogue.
    ``run(x)`` -> (N*OH*OW, O) 8-bit for an input of the planned shape and dtype."""

    def __init__(self, x, w, stride, padding, dilation, x_zero_point, mult, bias, zp, lo, hi,
                 out_dtype, weights=None):
        self.plan = plan = ConvPlan(x, w, stride, padding, dilation, x_zero_point, chunks=True,
                                    weights=weights)
        self.col_off, self.mult, self.bias = _epilogue_vectors(
            plan.weights, int(x_zero_point) + plan.flip, mult, bias)
        self.zp, self.lo, self.hi, self.out_dtype = int(zp), int(lo), int(hi), out_dtype

    def run(self, x) -> np.ndarray:
        plan, pw = self.plan, self.plan.weights
        xp = plan.xp if x is None else plan.input(x)
        out = plan.out(self.out_dtype)
        if plan.chunk:
            _qconv_chunks(xp.view(np.uint8), plan.chunk, np.uint8(plan.pad),
                          np.uint8(plan.flip), *plan.padding, plan.offs, plan.taps,
                          plan.cq, pw.panels, out, self.col_off, self.bias, self.mult, self.zp,
                          self.lo, self.hi)
        else:
            _qconv_direct(xp, plan.offs, plan.taps, plan.cq, pw.panels, out, self.col_off,
                          self.bias, self.mult, self.zp, self.lo, self.hi)
        return _valid(out, pw.n)


def qconv_vnni(x, w, stride, padding, dilation, x_zero_point, mult, bias, zp, lo, hi,
               out_dtype, weights=None) -> np.ndarray:
    """Ungrouped conv2d fused with requantization -> (N*OH*OW, O) 8-bit (``weights``: w
    already packed by `_pack_conv`)."""
    return QConvVnni(x, w, stride, padding, dilation, x_zero_point, mult, bias, zp, lo, hi,
                     out_dtype, weights).run(None)
