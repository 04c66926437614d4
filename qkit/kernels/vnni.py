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

import os

import llvmlite.binding as llvm
import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

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


def _microkernel(mr: int):
    """An intrinsic computing ``out[row:row+mr, 32p:32p+32] = a[row:row+mr] @ panel p``."""

    @intrinsic
    def kernel(typingctx, a, b, out, row, panel, kq, ldc):
        sig = types.void(a, b, out, row, panel, kq, ldc)

        def codegen(context, builder, signature, args):
            a_arr = context.make_array(signature.args[0])(context, builder, args[0])
            b_arr = context.make_array(signature.args[1])(context, builder, args[1])
            o_arr = context.make_array(signature.args[2])(context, builder, args[2])
            row_v, panel_v, kq_v, ldc_v = args[3:]
            fn = builder.module.declare_intrinsic(
                "llvm.x86.avx512.vpdpbusd.512", fnty=ir.FunctionType(_V16, [_V16, _V16, _V16]))
            a_i32 = builder.bitcast(a_arr.data, _I32.as_pointer())  # 4 bytes of K per i32
            rows = [builder.gep(a_i32, [builder.mul(builder.add(row_v, row_v.type(r)), kq_v)])
                    for r in range(mr)]  # a has 4*kq bytes per row
            b_vec = builder.bitcast(b_arr.data, _V16.as_pointer())
            b_base = builder.gep(b_vec, [builder.mul(builder.mul(panel_v, kq_v), kq_v.type(2))])
            entry = builder.block
            loop = builder.append_basic_block("kloop")
            done = builder.append_basic_block("kdone")
            builder.branch(loop)
            builder.position_at_end(loop)
            q = builder.phi(kq_v.type)
            q.add_incoming(kq_v.type(0), entry)
            accs = []
            for _ in range(2 * mr):
                acc = builder.phi(_V16)
                acc.add_incoming(ir.Constant(_V16, None), entry)
                accs.append(acc)
            b0 = builder.load(builder.gep(b_base, [builder.mul(q, q.type(2))]), align=1)
            b1 = builder.load(builder.gep(b_base, [builder.add(builder.mul(q, q.type(2)),
                                                                q.type(1))]), align=1)
            new = []
            for r in range(mr):
                quad = builder.load(builder.gep(rows[r], [q]), align=1)
                splat = builder.shuffle_vector(
                    builder.insert_element(ir.Constant(_V16, None), quad, _I32(0)),
                    ir.Constant(_V16, None), ir.Constant(_V16, [0] * 16))
                new.append(builder.call(fn, [accs[2 * r], splat, b0]))
                new.append(builder.call(fn, [accs[2 * r + 1], splat, b1]))
            q_next = builder.add(q, q.type(1))
            q.add_incoming(q_next, loop)
            for acc, value in zip(accs, new, strict=False):
                acc.add_incoming(value, loop)
            builder.cbranch(builder.icmp_signed("<", q_next, kq_v), loop, done)
            builder.position_at_end(done)
            out_i32 = builder.bitcast(o_arr.data, _I32.as_pointer())
            col0 = builder.mul(panel_v, panel_v.type(NR))
            for r in range(mr):
                base = builder.add(builder.mul(builder.add(row_v, row_v.type(r)), ldc_v), col0)
                for j in range(2):
                    ptr = builder.gep(out_i32, [builder.add(base, base.type(16 * j))])
                    builder.store(new[2 * r + j], builder.bitcast(ptr, _V16.as_pointer()), align=1)
            return context.get_dummy_value()

        return sig, codegen

    return kernel


_mk8 = _microkernel(MR)
_mk1 = _microkernel(1)


@njit(cache=True, parallel=True)
def _gemm_vnni(a, b, out, kq):
    # a (M, 4*kq) u8, b packed (panels, kq, 32, 4) s8 -> out (M, 32*panels) s32
    m_len = a.shape[0]
    n_panels = b.shape[0]
    blocks = m_len // MR
    ldc = out.shape[1]
    for p in prange(n_panels):
        for i in range(blocks):
            _mk8(a, b, out, i * MR, p, kq, ldc)
        for row in range(blocks * MR, m_len):
            _mk1(a, b, out, row, p, kq, ldc)


class PackedWeights:
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
        self.w = np.ascontiguousarray(w)  # for CPUs without VNNI

    @property
    def kq(self) -> int:
        return self.panels.shape[1]


def gemm_vnni(a: np.ndarray, pw: PackedWeights) -> np.ndarray:
    """``a @ w.T`` for checked operands (see `qkit.kernels.gemm_packed`)."""
    m, k = a.shape
    a_u = np.zeros((m, 4 * pw.kq), np.uint8)
    if a.dtype == np.int8:
        a_u[:, :k] = a.view(np.uint8) ^ np.uint8(0x80)  # a + 128, as unsigned
    else:
        a_u[:, :k] = a
    out = np.empty((m, pw.panels.shape[0] * NR), np.int32)
    _gemm_vnni(a_u, pw.panels, out, pw.kq)
    out = out[:, :pw.n]
    if a.dtype == np.int8:
        out = out - np.int32(128) * pw.col_sums  # exact: the true sum fits in int32
    return np.ascontiguousarray(out)
