"""int4-weight GEMM with AVX-512 VNNI: half the weight bytes of int8, unpacked in registers.

One 64-byte load of `qkit.kernels.packing.PackedInt4` gives, after ``& 0xF`` and ``>> 4``,
two K-quads of 16 columns laid out as the int8 kernel wants them. The nibbles become
signed bytes with ``(n ^ 8) - 8``, then ``vpdpbusd`` as for int8. In Python, per step of
8 K values::

    for half in (0, 1):                            # columns 0..15, 16..31
        packed = panels[panel, o, 16 * half:16 * half + 16]       # (16, 4) bytes
        low, high = (packed & 15 ^ 8) - 8, (packed >> 4 ^ 8) - 8  # k 8o..8o+3, 8o+4..8o+7
        for r in range(rows):
            acc[r, half, 0] = vpdpbusd(acc[r, half, 0], a[row + r, 8o:8o + 4], low)
            acc[r, half, 1] = vpdpbusd(acc[r, half, 1], a[row + r, 8o + 4:8o + 8], high)

Low and high nibbles feed separate accumulators, so a one-row (GEMV) tile has four
independent chains. This pays where weights dominate the traffic: batch 1, small batches.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from qkit.kernels.packing import PackedInt4, output_rows, unsigned_rows, valid_columns
from qkit.kernels.simd import ir as sx
from qkit.kernels.vnni.gemm import store_tile

ROWS = 4  # rows per tile: 16 zmm accumulators, as the int8 kernel's 8 rows x 2


def int4_tile(builder, a_data, a_row, panels_data, panel, k_octets, rows: int) -> list:
    """K loop over ``k_octets`` steps of 8 for a ``rows x 32`` tile; returns the sums."""
    dot = sx.vpdpbusd(builder)
    a_i32 = builder.bitcast(a_data, sx.I32.as_pointer())
    k_quads = builder.mul(k_octets, k_octets.type(2))
    row_ptrs = [builder.gep(a_i32, [builder.mul(builder.add(a_row, a_row.type(r)), k_quads)])
                for r in range(rows)]
    b_base = builder.gep(builder.bitcast(panels_data, sx.V64I8.as_pointer()),
                         [builder.mul(builder.mul(panel, k_octets), k_octets.type(2))])
    low4, eight = ir.Constant(sx.V64I8, [0x0F] * 64), ir.Constant(sx.V64I8, [8] * 64)
    shift4 = ir.Constant(sx.V64I8, [4] * 64)

    def step(o, acc):
        two_o = builder.mul(o, o.type(2))
        weights = []
        for half in range(2):
            packed = builder.load(builder.gep(b_base, [builder.add(two_o, o.type(half))]),
                                  align=1)
            for nibbles in (builder.and_(packed, low4),
                            builder.and_(builder.lshr(packed, shift4), low4)):
                signed = builder.sub(builder.xor(nibbles, eight), eight)  # [0, 15] -> [-8, 7]
                weights.append(builder.bitcast(signed, sx.V16I32))  # (half, low/high) order
        new = []
        for r in range(rows):
            quads = [sx.splat(builder, builder.load(builder.gep(row_ptrs[r], [
                builder.add(two_o, o.type(q))]), align=1), sx.V16I32) for q in range(2)]
            for half in range(2):
                for q in range(2):  # q = 0: low nibbles (quad 2o), 1: high nibbles (2o + 1)
                    new.append(builder.call(dot, [acc[4 * r + 2 * half + q], quads[q],
                                                  weights[2 * half + q]]))
        return new

    sums = sx.loop(builder, k_octets, [sx.zeros(sx.V16I32)] * (4 * rows), step, "octets")
    return [builder.add(sums[2 * i], sums[2 * i + 1]) for i in range(2 * rows)]


def _int4_tile(rows: int):
    @intrinsic
    def tile(typingctx, a, a_row, panels, panel, out, out_row):
        """out[out_row:+rows, 32 panel:+32] = a[a_row:+rows] @ the int4 panel (int32)."""

        def codegen(context, builder, signature, args):
            a_, a_row_, panels_, panel_, out_, out_row_ = sx.arguments(context, builder,
                                                                        signature, args)
            k_octets = builder.extract_value(panels_.shape, 1)
            sums = int4_tile(builder, a_.data, a_row_, panels_.data, panel_, k_octets, rows)
            store_tile(builder, sums, out_, out_row_, panel_, rows)
            return context.get_dummy_value()

        return types.void(a, a_row, panels, panel, out, out_row), codegen

    return tile


_int4_4rows, _int4_1row = _int4_tile(ROWS), _int4_tile(1)


@njit(cache=True, parallel=True)
def _gemm_int4_vnni(a, panels, out):
    # a (M, 8 k_octets) u8, panels int4 (n_panels, k_octets, 32, 4) -> out (M, >= N) s32
    m_len = a.shape[0]
    full = m_len // ROWS * ROWS
    for p in prange(panels.shape[0]):
        for i in range(0, full, ROWS):
            _int4_4rows(a, i, panels, p, out, i)
        for row in range(full, m_len):
            _int4_1row(a, row, panels, p, out, row)


def gemm_int4_vnni(a: np.ndarray, packed: PackedInt4) -> np.ndarray:
    """``a @ w4.T`` for checked operands (s8 activations shifted by 128 and corrected)."""
    a_u, _ = unsigned_rows(a, 8 * packed.k_octets)
    out = output_rows(a.shape[0], packed, np.int32)
    _gemm_int4_vnni(a_u, packed.panels, out)
    out = valid_columns(out, packed.n)
    if a.dtype == np.int8:
        out -= np.int32(128) * packed.col_sums
    return out
