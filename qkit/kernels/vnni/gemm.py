"""The fast int8 GEMM: an AVX-512 VNNI micro-kernel (``vpdpbusd``) written in LLVM IR.

``vpdpbusd`` multiplies 64 unsigned bytes by 64 signed bytes and adds each group of four
products into one of 16 int32 lanes: exact, no saturation. The micro-kernel keeps an
``rows x 32`` tile of int32 sums in ``2 * rows`` zmm registers; per step of four K values
it loads two 64-byte weight vectors, broadcasts four activation bytes per row, and issues
``2 * rows`` ``vpdpbusd``. In Python, for one tile (`qkit.reference.simd.gemm_panels`)::

    for q in range(k_quads):                       # K in steps of 4
        b0, b1 = panels[panel, q, :16], panels[panel, q, 16:]   # (16, 4) bytes each
        for r in range(rows):
            quad = a[row + r, 4 * q:4 * q + 4]     # broadcast to all 16 lanes
            acc[r, 0] = vpdpbusd(acc[r, 0], quad, b0)
            acc[r, 1] = vpdpbusd(acc[r, 1], quad, b1)

Weights are packed once (`qkit.kernels.packing.PackedWeights`). Signed activations are
shifted to unsigned (``a + 128``) and corrected exactly with the weights' column sums. The
blocking around the tile is ordinary numba; `qkit.kernels.versions` shows the same GEMM
step by step, from three Python loops to this kernel.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic

from qkit.kernels.packing import (
    VNNI_COLUMNS,
    PackedWeights,
    epilogue_vectors,
    output_rows,
    unsigned_rows,
    valid_columns,
)
from qkit.kernels.simd import ir as sx

ROWS = 8  # rows per micro-kernel call in the main loop (16 zmm accumulators)


def dot_tile(builder, a_data, a_row, panels_data, panel, k_quads, rows: int) -> list:
    """Emit the K loop of a ``rows x 32`` tile; returns its ``2 * rows`` int32x16 sums."""
    dot = sx.vpdpbusd(builder)
    a_i32 = builder.bitcast(a_data, sx.I32.as_pointer())  # 4 bytes of K per i32
    row_ptrs = [builder.gep(a_i32, [builder.mul(builder.add(a_row, a_row.type(r)), k_quads)])
                for r in range(rows)]
    b_vec = builder.bitcast(panels_data, sx.V16I32.as_pointer())
    b_base = builder.gep(b_vec, [builder.mul(builder.mul(panel, k_quads), k_quads.type(2))])

    def step(q, acc):
        two_q = builder.mul(q, q.type(2))
        b0 = builder.load(builder.gep(b_base, [two_q]), align=1)  # columns 0..15
        b1 = builder.load(builder.gep(b_base, [builder.add(two_q, q.type(1))]), align=1)
        new = []
        for r in range(rows):
            quad = sx.splat(builder, builder.load(builder.gep(row_ptrs[r], [q]), align=1),
                            sx.V16I32)
            new += [builder.call(dot, [acc[2 * r], quad, b0]),
                    builder.call(dot, [acc[2 * r + 1], quad, b1])]
        return new

    return sx.loop(builder, k_quads, [sx.zeros(sx.V16I32)] * (2 * rows), step, "kloop",
                   rolled=True)


def store_tile(builder, sums, out, out_row, panel, rows: int, epilogue=None) -> None:
    """Store a ``rows x 32`` tile of sums into ``out`` (int32), or requantized (8-bit) when an
    epilogue is given; the right half only where the row has 32 more columns."""
    ldc = builder.extract_value(out.shape, 1)
    col0 = builder.mul(panel, panel.type(VNNI_COLUMNS))
    if epilogue is not None:
        rq = sx.RequantizeF32(builder, epilogue)
        halves = [rq.columns(builder.add(col0, col0.type(16 * j))) for j in range(2)]
        sums = [rq(sums[2 * r + j], *halves[j]) for r in range(rows) for j in range(2)]
    sx.store_rows(builder, sums, out.data, out_row, ldc, col0, rows, last_if_inside=True)


def _gemm_tile(rows: int):
    @intrinsic
    def tile(typingctx, a, a_row, panels, panel, out, out_row):
        """out[out_row:+rows, 32 panel:+32] = a[a_row:+rows] @ the panel (int32)."""

        def codegen(context, builder, signature, args):
            a_, a_row_, panels_, panel_, out_, out_row_ = sx.arguments(context, builder,
                                                                        signature, args)
            k_quads = builder.extract_value(panels_.shape, 1)
            sums = dot_tile(builder, a_.data, a_row_, panels_.data, panel_, k_quads, rows)
            store_tile(builder, sums, out_, out_row_, panel_, rows)
            return context.get_dummy_value()

        return types.void(a, a_row, panels, panel, out, out_row), codegen

    return tile


def _requant_tile(rows: int):
    @intrinsic
    def tile(typingctx, a, a_row, panels, panel, out, out_row, epilogue):
        """The same tile requantized to 8 bits in registers (`sx.RequantizeF32`)."""

        def codegen(context, builder, signature, args):
            a_, a_row_, panels_, panel_, out_, out_row_, epi = sx.arguments(
                context, builder, signature, args)
            k_quads = builder.extract_value(panels_.shape, 1)
            sums = dot_tile(builder, a_.data, a_row_, panels_.data, panel_, k_quads, rows)
            store_tile(builder, sums, out_, out_row_, panel_, rows, epi)
            return context.get_dummy_value()

        return types.void(a, a_row, panels, panel, out, out_row, epilogue), codegen

    return tile


# 8-row tiles for the bulk; 4- and 1-row tiles for what is left over
_sums_8rows, _sums_4rows, _sums_1row = (_gemm_tile(r) for r in (ROWS, 4, 1))
_requant_8rows, _requant_4rows, _requant_1row = (_requant_tile(r) for r in (ROWS, 4, 1))


@njit(cache=True)
def tail_rows(total):
    # (start of a 4-row tile or total, start of the 1-row tiles) after the 8-row tiles
    full = total // ROWS * ROWS
    return (full, full + 4) if total - full >= 4 else (total, full)


@njit(cache=True, parallel=True)
def _gemm_vnni(a, panels, out):
    # a (M, 4 k_quads) u8, panels (n_panels, k_quads, 32, 4) s8 -> out (M, >= 32*n_panels or N) s32
    m_len = a.shape[0]
    four, ones = tail_rows(m_len)
    for p in prange(panels.shape[0]):
        for i in range(m_len // ROWS):
            _sums_8rows(a, i * ROWS, panels, p, out, i * ROWS)
        if four < m_len:
            _sums_4rows(a, four, panels, p, out, four)
        for row in range(ones, m_len):
            _sums_1row(a, row, panels, p, out, row)


@njit(cache=True, parallel=True)
def _qgemm_vnni(a, panels, out, epilogue):
    # as _gemm_vnni, requantized to 8 bits in registers: out (M, 32*panels) u8 or s8
    m_len = a.shape[0]
    four, ones = tail_rows(m_len)
    for p in prange(panels.shape[0]):
        for i in range(m_len // ROWS):
            _requant_8rows(a, i * ROWS, panels, p, out, i * ROWS, epilogue)
        if four < m_len:
            _requant_4rows(a, four, panels, p, out, four, epilogue)
        for row in range(ones, m_len):
            _requant_1row(a, row, panels, p, out, row, epilogue)


def gemm_vnni(a: np.ndarray, packed: PackedWeights) -> np.ndarray:
    """``a @ w.T`` for checked operands (see `qkit.kernels.gemm_packed`)."""
    a_u, _ = unsigned_rows(a, 4 * packed.k_quads)
    out = output_rows(a.shape[0], packed, np.int32)
    _gemm_vnni(a_u, packed.panels, out)
    out = valid_columns(out, packed.n)
    if a.dtype == np.int8:
        out -= np.int32(128) * packed.col_sums  # exact mod 2**32; the true sum fits in int32
    return out


class QGemmVnni:
    """``requantize_float(a @ w.T - zx * colsum, ...)`` with everything but ``a`` prepared (the
    epilogue's per-column vectors) for activations of one dtype; ``run(a)`` for checked
    ``a``. ``grid`` is ``(x_zero_point, mult, bias, out_zero_point, qmin, qmax)``."""

    def __init__(self, packed: PackedWeights, a_dtype, grid, out_dtype):
        x_zero_point, mult, bias, zp, qmin, qmax = grid
        shift = 128 if a_dtype == np.int8 else 0  # unsigned_rows' shift
        vectors = epilogue_vectors(packed, int(x_zero_point) + shift, mult, bias)
        self.epilogue = (*vectors, int(zp), int(qmin), int(qmax))
        self.packed, self.out_dtype = packed, out_dtype

    def run(self, a: np.ndarray) -> np.ndarray:
        packed = self.packed
        a_u, _ = unsigned_rows(a, 4 * packed.k_quads)
        out = output_rows(a.shape[0], packed, self.out_dtype)
        _qgemm_vnni(a_u, packed.panels, out, self.epilogue)
        return valid_columns(out, packed.n)
