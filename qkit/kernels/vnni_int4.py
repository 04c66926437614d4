"""int4-weight GEMM with AVX-512 VNNI: half the weight bytes of int8, unpacked in registers.

Packing: per panel of 32 output columns and per 8 values of K, 128 bytes; byte
``4 * col + j`` holds ``w[col, 8o + j]`` in its low nibble and ``w[col, 8o + 4 + j]``
in its high nibble. One 64-byte load thus gives, after ``& 0xF`` and ``>> 4``, two
K-quads of 16 columns laid out exactly as `qkit.kernels.vnni` wants them. The nibbles
become signed bytes with ``(n ^ 8) - 8``, then ``vpdpbusd`` as for int8. Low and high
nibbles feed separate accumulators, so a one-row (GEMV) tile has four independent
chains. This pays where weights dominate the traffic: batch 1 and small batches.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from qkit.kernels.avx2 import Avx2Layouts
from qkit.kernels.vnni import NR, _out_rows, _store_int32, _valid, unsigned_rows

_I8, _I32 = ir.IntType(8), ir.IntType(32)
_V16 = ir.VectorType(_I32, 16)
_V64 = ir.VectorType(_I8, 64)


def _int4_tile(builder, a_data, a_row, b_data, panel, ko, mr):
    """K loop over ``ko`` octets for an ``mr x 32`` tile; returns ``2 * mr`` int32x16 sums."""
    fn = builder.module.declare_intrinsic(
        "llvm.x86.avx512.vpdpbusd.512", fnty=ir.FunctionType(_V16, [_V16, _V16, _V16]))
    a_i32 = builder.bitcast(a_data, _I32.as_pointer())
    kq = builder.mul(ko, ko.type(2))
    rows = [builder.gep(a_i32, [builder.mul(builder.add(a_row, a_row.type(r)), kq)])
            for r in range(mr)]
    b_base = builder.gep(builder.bitcast(b_data, _V64.as_pointer()),
                         [builder.mul(builder.mul(panel, ko), ko.type(2))])
    low4, eight = ir.Constant(_V64, [0x0F] * 64), ir.Constant(_V64, [8] * 64)
    shift4 = ir.Constant(_V64, [4] * 64)
    entry = builder.block
    loop = builder.append_basic_block("octets")
    done = builder.append_basic_block("done")
    builder.branch(loop)
    builder.position_at_end(loop)
    o = builder.phi(ko.type)
    accs = [builder.phi(_V16) for _ in range(4 * mr)]  # per row: (cols 0-15, 16-31) x (lo, hi)
    weights = []
    for half in range(2):
        packed = builder.load(builder.gep(b_base, [builder.add(builder.mul(o, o.type(2)),
                                                               o.type(half))]), align=1)
        for nibbles in (builder.and_(packed, low4),
                        builder.and_(builder.lshr(packed, shift4), low4)):
            signed = builder.sub(builder.xor(nibbles, eight), eight)  # [0, 15] -> [-8, 7]
            weights.append(builder.bitcast(signed, _V16))  # (half, lo/hi) order
    new = []
    for r in range(mr):
        quads = [builder.load(builder.gep(rows[r], [builder.add(builder.mul(o, o.type(2)),
                                                                o.type(q))]), align=1)
                 for q in range(2)]
        splats = [builder.shuffle_vector(builder.insert_element(ir.Constant(_V16, None), v,
                                                                _I32(0)),
                                         ir.Constant(_V16, None), ir.Constant(_V16, [0] * 16))
                  for v in quads]
        for half in range(2):
            for q in range(2):  # q = 0: low nibbles (quad 2o), 1: high nibbles (quad 2o+1)
                acc = accs[4 * r + 2 * half + q]
                new.append(builder.call(fn, [acc, splats[q], weights[2 * half + q]]))
    o_next = builder.add(o, o.type(1))
    o.add_incoming(ko.type(0), entry)
    o.add_incoming(o_next, loop)
    for acc, value in zip(accs, new, strict=True):
        acc.add_incoming(ir.Constant(_V16, None), entry)
        acc.add_incoming(value, loop)
    builder.cbranch(builder.icmp_signed("<", o_next, ko), loop, done)
    builder.position_at_end(done)
    return [builder.add(new[2 * i], new[2 * i + 1]) for i in range(2 * mr)]


def _int4_kernel(mr: int):
    @intrinsic
    def kernel(typingctx, a, a_row, b, panel, ko, out, out_row, ldc):
        def codegen(context, builder, signature, args):
            def data(i):
                return context.make_array(signature.args[i])(context, builder, args[i]).data

            sums = _int4_tile(builder, data(0), args[1], data(2), args[3], args[4], mr)
            _store_int32(builder, sums, data(5), args[6], args[7], args[3], mr)
            return context.get_dummy_value()

        return types.void(a, a_row, b, panel, ko, out, out_row, ldc), codegen

    return kernel


_i4k4, _i4k1 = _int4_kernel(4), _int4_kernel(1)


@njit(cache=True, parallel=True)
def _gemm_int4_vnni(a, b, out, ko):
    # a (M, 8*ko) u8, b packed int4 (panels, ko, 128) -> out (M, >= 32*panels or N) s32
    m_len, n_panels, ldc = a.shape[0], b.shape[0], out.shape[1]
    blocks = m_len // 4
    for p in prange(n_panels):
        for i in range(blocks):
            _i4k4(a, i * 4, b, p, ko, out, i * 4, ldc)
        for row in range(blocks * 4, m_len):
            _i4k1(a, row, b, p, ko, out, row, ldc)


class PackedInt4(Avx2Layouts):
    """Signed 4-bit weights (N,K) packed once for `gemm_int4_vnni`."""

    def __init__(self, w4: np.ndarray):
        n, k = w4.shape
        self.n, self.k = n, k
        kp, n_pad = -(-k // 8) * 8, -(-n // NR) * NR
        padded = np.zeros((n_pad, kp), np.uint8)
        padded[:n, :k] = w4.astype(np.uint8) & 0x0F  # two's-complement nibbles
        # (Np, Kp) -> (panels, 32, ko, 2, 4): [.., 0, j] = k 8o+j (low), [.., 1, j] = 8o+4+j (high)
        q = padded.reshape(n_pad // NR, NR, kp // 8, 2, 4)
        nib = q[:, :, :, 0, :] | (q[:, :, :, 1, :] << 4)  # (panels, 32, ko, 4)
        self.panels = np.ascontiguousarray(nib.transpose(0, 2, 1, 3))  # (panels, ko, 32, 4)
        self.col_sums = w4.astype(np.int64).sum(axis=1).astype(np.int32)
        self.max_abs = max(abs(int(w4.min())), abs(int(w4.max())))
        lo = np.zeros((n, k + k % 2), np.uint8)  # the row layout of qkit.kernels.pack_int4
        lo[:, :k] = w4.astype(np.uint8) & 0x0F
        self.nibbles = lo[:, 0::2] | (lo[:, 1::2] << 4)  # for CPUs without VNNI
        self.w = np.ascontiguousarray(w4)  # values in [-8, 7], for the AVX2 layouts

    @property
    def ko(self) -> int:
        return self.panels.shape[1]


def gemm_int4_vnni(a: np.ndarray, pw: PackedInt4) -> np.ndarray:
    """``a @ w4.T`` for checked operands (s8 activations shifted by 128 and corrected)."""
    a_u, _ = unsigned_rows(a, 8 * pw.ko)
    out = _out_rows(a.shape[0], pw, np.int32)
    _gemm_int4_vnni(a_u, pw.panels, out, pw.ko)
    out = _valid(out, pw.n)
    if a.dtype == np.int8:
        out -= np.int32(128) * pw.col_sums
    return out
