"""The int8 GEMM for CPUs without VNNI: AVX2 micro-kernels written in LLVM IR.

Most laptops a class brings have AVX2 but not AVX-512 VNNI. With 256-bit AVX2
there are two exact ways to multiply 8-bit integers:

``vpmaddwd`` (any int8 operands)
    Both operands widened to int16; one instruction multiplies 16 pairs and adds
    neighbours into 8 int32 lanes. |a * w| <= 2**14 for int8, so every sum is exact.
    Tile: 6 rows x 16 columns, 12 int32 accumulators.

``vpmaddubsw`` + ``vpaddw`` (small operands: the int16 accumulation path)
    Unsigned bytes times signed bytes, neighbours added into 16 int16 lanes, then
    summed *in int16* for ``L`` steps before they are widened to int32. Twice the
    products per instruction, and no widening in the inner loop. It saturates, so it is
    only used where it provably cannot: with activations ``0 <= a <= A`` and weights
    ``|w| <= W``, one lane gains at most ``2 A W`` per step, so after ``L`` steps it holds
    at most ``2 L A W``; `int16_steps` picks the largest ``L`` with ``2 L A W <= 32767``.
    For 4-bit weights (W = 8) and 8-bit activations (A = 255): L = 8; for 7-bit
    activations (A = 127): L = 16. With full int8 weights (W = 128) and A = 255 a single
    step can already saturate (2 * 255 * 128 = 65280), so such operands take ``vpmaddwd``.
    Tile: 4 rows x 16 columns (4 int16 and 8 int32 accumulators).

Weights are packed once per layout (`pack_pairs`), 16 output columns per panel, each
pair of K values of a panel contiguous. fbgemm's AVX2 path uses ``vpmaddubsw`` *without*
this bound (its pairs saturate: `qkit.kernels.gemm_pairs16` reproduces that); qkit
only takes the fast path when it is exact.
"""

from __future__ import annotations

import functools
import os

import llvmlite.binding as llvm
import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

NR2 = 16  # output columns per panel: two ymm of 8 int32
MR_WD, MR_UB = 6, 4  # rows per tile of the vpmaddwd and the int16-accumulation kernels
INT16_MAX = 32767


def avx2_available() -> bool:
    """True where the CPU has AVX2 and the JIT is on (``QKIT_DISABLE_AVX2=1``: off)."""
    if numba.config.DISABLE_JIT or os.environ.get("QKIT_DISABLE_AVX2") == "1":
        return False
    return bool(llvm.get_host_cpu_features().get("avx2", False))


def int16_steps(a_max: int, w_max: int) -> int:
    """Largest ``L`` with ``2 L a_max w_max <= 32767``: steps of two products each that an
    int16 lane can sum exactly (0 where even one ``vpmaddubsw`` pair could saturate)."""
    per_step = 2 * int(a_max) * int(w_max)
    return INT16_MAX // per_step if per_step else 1 << 30


_I16, _I32 = ir.IntType(16), ir.IntType(32)
_V8I32, _V16I16, _V32I8 = ir.VectorType(_I32, 8), ir.VectorType(_I16, 16), ir.VectorType(
    ir.IntType(8), 32)


def _splat(builder, scalar, vtype):
    lanes = vtype.count
    first = builder.insert_element(ir.Constant(vtype, None), scalar, _I32(0))
    return builder.shuffle_vector(first, ir.Constant(vtype, None),
                                  ir.Constant(ir.VectorType(_I32, lanes), [0] * lanes))


def _store_tile(builder, accs, out_data, out_row, ldc, panel, mr):
    out = builder.bitcast(out_data, _I32.as_pointer())
    col0 = builder.mul(panel, panel.type(NR2))
    for r in range(mr):
        base = builder.add(builder.mul(builder.add(out_row, out_row.type(r)), ldc), col0)
        for j in range(2):
            ptr = builder.gep(out, [builder.add(base, base.type(8 * j))])
            builder.store(accs[2 * r + j], builder.bitcast(ptr, _V8I32.as_pointer()), align=1)


def _madd_wd_codegen(mr):
    """``mr x 16`` tile of ``a16 @ w.T``: a16 (M, 2 kp) int16, b (panels, kp, 16, 2) int16."""

    def codegen(context, builder, signature, args):
        def data(i):
            return context.make_array(signature.args[i])(context, builder, args[i]).data

        a_row, panel, kp, out_row, ldc = args[1], args[3], args[4], args[6], args[7]
        pmadd = builder.module.declare_intrinsic(
            "llvm.x86.avx2.pmadd.wd", fnty=ir.FunctionType(_V8I32, [_V16I16, _V16I16]))
        a32 = builder.bitcast(data(0), _I32.as_pointer())  # one i32 = one pair of int16
        rows = [builder.gep(a32, [builder.mul(builder.add(a_row, a_row.type(r)), kp)])
                for r in range(mr)]
        b_vec = builder.bitcast(data(2), _V16I16.as_pointer())
        b_base = builder.gep(b_vec, [builder.mul(builder.mul(panel, kp), kp.type(2))])
        entry = builder.block
        loop, done = builder.append_basic_block("pairs"), builder.append_basic_block("done")
        builder.branch(loop)
        builder.position_at_end(loop)
        q = builder.phi(kp.type)
        accs = [builder.phi(_V8I32) for _ in range(2 * mr)]
        q2 = builder.mul(q, q.type(2))
        b = [builder.load(builder.gep(b_base, [builder.add(q2, q.type(j))]), align=1)
             for j in range(2)]  # columns 0..7 and 8..15
        new = []
        for r in range(mr):
            pair = builder.load(builder.gep(rows[r], [q]), align=1)
            v = builder.bitcast(_splat(builder, pair, _V8I32), _V16I16)
            for j in range(2):
                new.append(builder.add(accs[2 * r + j], builder.call(pmadd, [v, b[j]])))
        q_next = builder.add(q, q.type(1))
        q.add_incoming(q.type(0), entry)
        q.add_incoming(q_next, loop)
        for acc, value in zip(accs, new, strict=True):
            acc.add_incoming(ir.Constant(_V8I32, None), entry)
            acc.add_incoming(value, loop)
        builder.cbranch(builder.icmp_signed("<", q_next, kp), loop, done)
        builder.position_at_end(done)
        _store_tile(builder, new, data(5), out_row, ldc, panel, mr)
        return context.get_dummy_value()

    return codegen


def _madd_ub_codegen(mr):
    """``mr x 16`` tile of ``a_u8 @ w.T`` summed in int16 for ``steps`` pairs at a time:
    a (M, 2 kp) uint8, b (panels, kp, 16, 2) int8."""

    def codegen(context, builder, signature, args):
        def data(i):
            return context.make_array(signature.args[i])(context, builder, args[i]).data

        a_row, panel, kp, out_row, ldc, steps = (args[1], args[3], args[4], args[6], args[7],
                                                 args[8])
        i64 = kp.type
        pmadd = builder.module.declare_intrinsic(
            "llvm.x86.avx2.pmadd.ub.sw", fnty=ir.FunctionType(_V16I16, [_V32I8, _V32I8]))
        a16 = builder.bitcast(data(0), _I16.as_pointer())  # one i16 = one pair of bytes
        rows = [builder.gep(a16, [builder.mul(builder.add(a_row, i64(r)), kp)])
                for r in range(mr)]
        b_base = builder.gep(builder.bitcast(data(2), _V32I8.as_pointer()),
                             [builder.mul(panel, kp)])
        lo_half = ir.Constant(ir.VectorType(_I32, 8), list(range(8)))
        hi_half = ir.Constant(ir.VectorType(_I32, 8), list(range(8, 16)))
        entry = builder.block
        head = builder.append_basic_block("block")
        body = builder.append_basic_block("pairs")
        widen = builder.append_basic_block("widen")
        done = builder.append_basic_block("done")
        builder.branch(head)
        # block head: q0 = start of this run of `steps` pairs; the int32 sums so far
        builder.position_at_end(head)
        q0 = builder.phi(i64)
        acc32 = [builder.phi(_V8I32) for _ in range(2 * mr)]
        end = builder.add(q0, steps)
        end = builder.select(builder.icmp_signed("<", end, kp), end, kp)
        builder.branch(body)
        # inner loop: int16 sums
        builder.position_at_end(body)
        q = builder.phi(i64)
        acc16 = [builder.phi(_V16I16) for _ in range(mr)]
        b = builder.load(builder.gep(b_base, [q]), align=1)
        new16 = []
        for r in range(mr):
            pair = builder.load(builder.gep(rows[r], [q]), align=1)
            v = builder.bitcast(_splat(builder, pair, _V16I16), _V32I8)
            new16.append(builder.add(acc16[r], builder.call(pmadd, [v, b])))
        q_next = builder.add(q, i64(1))
        builder.cbranch(builder.icmp_signed("<", q_next, end), body, widen)
        # widen: add the int16 sums into the int32 ones (columns 0..7, 8..15)
        builder.position_at_end(widen)
        new32 = []
        for r in range(mr):
            for j, half in enumerate((lo_half, hi_half)):
                part = builder.shuffle_vector(new16[r], ir.Constant(_V16I16, None), half)
                new32.append(builder.add(acc32[2 * r + j], builder.sext(part, _V8I32)))
        builder.cbranch(builder.icmp_signed("<", end, kp), head, done)
        q0.add_incoming(i64(0), entry)
        q0.add_incoming(end, widen)
        for a32, v32 in zip(acc32, new32, strict=True):
            a32.add_incoming(ir.Constant(_V8I32, None), entry)
            a32.add_incoming(v32, widen)
        q.add_incoming(q0, head)
        q.add_incoming(q_next, body)
        for a, v in zip(acc16, new16, strict=True):
            a.add_incoming(ir.Constant(_V16I16, None), head)
            a.add_incoming(v, body)
        builder.position_at_end(done)
        _store_tile(builder, new32, data(5), out_row, ldc, panel, mr)
        return context.get_dummy_value()

    return codegen


def _wd_kernel(mr):
    @intrinsic
    def kernel(typingctx, a, a_row, b, panel, kp, out, out_row, ldc):
        return (types.void(a, a_row, b, panel, kp, out, out_row, ldc), _madd_wd_codegen(mr))
    return kernel


def _ub_kernel(mr):
    @intrinsic
    def kernel(typingctx, a, a_row, b, panel, kp, out, out_row, ldc, steps):
        return (types.void(a, a_row, b, panel, kp, out, out_row, ldc, steps),
                _madd_ub_codegen(mr))
    return kernel


_wd6, _wd1 = _wd_kernel(MR_WD), _wd_kernel(1)
_ub4, _ub1 = _ub_kernel(MR_UB), _ub_kernel(1)


@njit(cache=True, parallel=True)
def _gemm_wd(a16, b, out, kp):
    # a16 (M, 2 kp) int16, b (panels, kp, 16, 2) int16 -> out (M, 16 panels) int32
    m_len, n_panels, ldc = a16.shape[0], b.shape[0], out.shape[1]
    full = m_len // MR_WD * MR_WD
    for p in prange(n_panels):
        for i in range(0, full, MR_WD):
            _wd6(a16, i, b, p, kp, out, i, ldc)
        for row in range(full, m_len):
            _wd1(a16, row, b, p, kp, out, row, ldc)


@njit(cache=True, parallel=True)
def _gemm_ub(a, b, out, kp, steps):
    # a (M, 2 kp) uint8, b (panels, kp, 16, 2) int8, int16 sums widened every `steps` pairs
    m_len, n_panels, ldc = a.shape[0], b.shape[0], out.shape[1]
    full = m_len // MR_UB * MR_UB
    for p in prange(n_panels):
        for i in range(0, full, MR_UB):
            _ub4(a, i, b, p, kp, out, i, ldc, steps)
        for row in range(full, m_len):
            _ub1(a, row, b, p, kp, out, row, ldc, steps)


def pack_pairs(w: np.ndarray, dtype) -> np.ndarray:
    """(N,K) int8 -> (panels, K/2, 16, 2) in ``dtype`` (int16 for vpmaddwd, int8 for
    vpmaddubsw): per panel and pair of K values, 16 columns x 2 values, contiguous."""
    n, k = w.shape
    kp, n_pad = -(-k // 2), -(-n // NR2) * NR2
    padded = np.zeros((n_pad, 2 * kp), dtype)
    padded[:n, :k] = w
    return np.ascontiguousarray(padded.reshape(n_pad // NR2, NR2, kp, 2).transpose(0, 2, 1, 3))


def _padded(a: np.ndarray, width: int, dtype) -> np.ndarray:
    """``a`` converted to ``dtype`` (as bytes for uint8), with zero columns up to ``width``."""
    out = np.empty((a.shape[0], width), dtype)
    out[:, :a.shape[1]] = a.view(np.uint8) if dtype == np.uint8 else a
    out[:, a.shape[1]:] = 0
    return out


def gemm_saturating_pairs(a: np.ndarray, pw) -> np.ndarray:
    """fbgemm's AVX2 product for checked uint8 ``a``: each pair of products saturated to int16
    (``vpmaddubsw``), then summed in int32 (`qkit.kernels.gemm_pairs16` defines it).

    This is the int16 kernel widened after every step, so the saturation is the instruction's
    own: no bound is needed, and none is wanted, the point being to reproduce it.
    """
    m, k = a.shape
    kp, n_panels = -(-k // 2), -(-pw.n // NR2)
    out = np.empty((m, n_panels * NR2), np.int32)
    _gemm_ub(_padded(a, 2 * kp, np.uint8), pw.avx2_pairs8, out, kp, 1)
    return out if out.shape[1] == pw.n else np.ascontiguousarray(out[:, :pw.n])


class Avx2Layouts:
    """Mixin for packed weights holding ``self.w`` (int8 (N,K)): the AVX2 layouts, built on
    first use (a VNNI machine never builds them)."""

    @functools.cached_property
    def avx2_pairs16(self) -> np.ndarray:
        return pack_pairs(self.w, np.int16)

    @functools.cached_property
    def avx2_pairs8(self) -> np.ndarray:
        return pack_pairs(self.w, np.int8)


def gemm_avx2(a: np.ndarray, pw, path: str = "auto") -> np.ndarray:
    """``a @ w.T`` for checked operands and `qkit.kernels.vnni.PackedWeights` ``pw``.

    ``path``: ``"int16"`` (vpmaddubsw, int16 sums; only where `int16_steps` allows),
    ``"int32"`` (vpmaddwd), or ``"auto"``: int16 where at least 4 steps fit, else int32.
    """
    m, k = a.shape
    kp, n_panels = -(-k // 2), -(-pw.n // NR2)
    out = np.empty((m, n_panels * NR2), np.int32)
    shift = 128 if a.dtype == np.int8 else 0
    steps = 0
    if path != "int32":  # the bound from the data (one read-only pass), before any copy
        a_max = (int(a.max()) + shift) if a.size else 0
        steps = int16_steps(a_max, pw.max_abs)
        if path == "int16" and steps < 1:
            raise ValueError(f"int16 accumulation is not exact for these operands: "
                             f"max a = {a_max}, max |w| = {pw.max_abs}")
    if steps >= (1 if path == "int16" else 4):
        a_u = _padded(a, 2 * kp, np.uint8)
        if shift:
            a_u[:, :k] ^= np.uint8(shift)  # int8 -> a + 128, corrected below
        _gemm_ub(a_u, pw.avx2_pairs8, out, kp, min(steps, kp))
    else:
        shift = 0
        _gemm_wd(_padded(a, 2 * kp, np.int16), pw.avx2_pairs16, out, kp)
    out = out if out.shape[1] == pw.n else np.ascontiguousarray(out[:, :pw.n])
    if shift:
        out -= np.int32(128) * pw.col_sums  # exact mod 2**32; the true sum fits in int32
    return out
