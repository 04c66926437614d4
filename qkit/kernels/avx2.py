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

In Python, one ``vpmaddwd`` step of a ``rows x 16`` tile (`reference.simd`)::

    for q in range(k_pairs):                       # K in steps of 2
        b0, b1 = panels[panel, q, :8], panels[panel, q, 8:]   # (8, 2) int16 each
        for r in range(rows):
            pair = a16[row + r, 2 * q:2 * q + 2]   # broadcast to all 8 lanes
            acc[r, 0] += vpmaddwd(pair, b0)
            acc[r, 1] += vpmaddwd(pair, b1)
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from qkit.kernels.packing import AVX2_COLUMNS, valid_columns
from qkit.kernels.simd import ir as sx

ROWS_WD, ROWS_UB = 6, 4  # rows per tile of the vpmaddwd and the int16-accumulation kernels
INT16_MAX = 32767
_V16I16, _V32I8 = ir.VectorType(sx.I16, 16), ir.VectorType(sx.I8, 32)


def int16_steps(a_max: int, w_max: int) -> int:
    """Largest ``L`` with ``2 L a_max w_max <= 32767``: steps of two products each that an
    int16 lane can sum exactly (0 where even one ``vpmaddubsw`` pair could saturate)."""
    per_step = 2 * int(a_max) * int(w_max)
    return INT16_MAX // per_step if per_step else 1 << 30


def _row_pointers(builder, data, element, a_row, k_pairs, rows):
    base = builder.bitcast(data, element.as_pointer())  # one element = one pair of K values
    return [builder.gep(base, [builder.mul(builder.add(a_row, a_row.type(r)), k_pairs)])
            for r in range(rows)]


def madd_wd_tile(builder, a_data, a_row, panels_data, panel, k_pairs, rows: int) -> list:
    """``rows x 16`` tile of ``a16 @ w.T``: a16 (M, 2 k_pairs) int16, panels
    (n, k_pairs, 16, 2) int16."""
    pmadd = sx.instruction(builder, "llvm.x86.avx2.pmadd.wd")
    row_ptrs = _row_pointers(builder, a_data, sx.I32, a_row, k_pairs, rows)
    b_vec = builder.bitcast(panels_data, _V16I16.as_pointer())
    b_base = builder.gep(b_vec, [builder.mul(builder.mul(panel, k_pairs), k_pairs.type(2))])

    def step(q, acc):
        q2 = builder.mul(q, q.type(2))
        b = [builder.load(builder.gep(b_base, [builder.add(q2, q.type(j))]), align=1)
             for j in range(2)]  # columns 0..7 and 8..15
        new = []
        for r in range(rows):
            pair = builder.load(builder.gep(row_ptrs[r], [q]), align=1)
            v = builder.bitcast(sx.splat(builder, pair, sx.V8I32), _V16I16)
            new += [builder.add(acc[2 * r + j], builder.call(pmadd, [v, b[j]]))
                    for j in range(2)]
        return new

    return sx.loop(builder, k_pairs, [sx.zeros(sx.V8I32)] * (2 * rows), step, "pairs")


def madd_ub_tile(builder, a_data, a_row, panels_data, panel, k_pairs, steps, rows: int):
    """``rows x 16`` tile of ``a_u8 @ w.T`` summed in int16 for ``steps`` pairs at a time,
    then widened into int32: a (M, 2 k_pairs) uint8, panels (n, k_pairs, 16, 2) int8."""
    pmadd = sx.instruction(builder, "llvm.x86.avx2.pmadd.ub.sw")
    row_ptrs = _row_pointers(builder, a_data, sx.I16, a_row, k_pairs, rows)
    b_base = builder.gep(builder.bitcast(panels_data, _V32I8.as_pointer()),
                         [builder.mul(panel, k_pairs)])
    halves = [ir.Constant(ir.VectorType(sx.I32, 8), list(range(8 * j, 8 * j + 8)))
              for j in range(2)]

    def pair_step(q, acc16):
        b = builder.load(builder.gep(b_base, [q]), align=1)
        new = []
        for r in range(rows):
            pair = builder.load(builder.gep(row_ptrs[r], [q]), align=1)
            v = builder.bitcast(sx.splat(builder, pair, _V16I16), _V32I8)
            new.append(builder.add(acc16[r], builder.call(pmadd, [v, b])))
        return new

    def block(q0, acc32):
        end = builder.add(q0, steps)
        end = builder.select(builder.icmp_signed("<", end, k_pairs), end, k_pairs)
        acc16 = sx.loop(builder, end, [sx.zeros(_V16I16)] * rows, pair_step, "pairs",
                        start=q0)
        new = []  # widen: add the int16 sums into the int32 ones (columns 0..7, 8..15)
        for r in range(rows):
            for j, half in enumerate(halves):
                part = builder.shuffle_vector(acc16[r], sx.zeros(_V16I16), half)
                new.append(builder.add(acc32[2 * r + j], builder.sext(part, sx.V8I32)))
        return new

    return sx.loop(builder, k_pairs, [sx.zeros(sx.V8I32)] * (2 * rows), block, "block",
                   step=steps)


def _store(builder, sums, out, out_row, panel, rows):
    ldc = builder.extract_value(out.shape, 1)
    col0 = builder.mul(panel, panel.type(AVX2_COLUMNS))
    sx.store_rows(builder, sums, out.data, out_row, ldc, col0, rows)


def _wd_tile(rows: int):
    @intrinsic
    def tile(typingctx, a, a_row, panels, panel, out, out_row):
        def codegen(context, builder, signature, args):
            a_, a_row_, panels_, panel_, out_, out_row_ = sx.arguments(context, builder,
                                                                        signature, args)
            k_pairs = builder.extract_value(panels_.shape, 1)
            sums = madd_wd_tile(builder, a_.data, a_row_, panels_.data, panel_, k_pairs, rows)
            _store(builder, sums, out_, out_row_, panel_, rows)
            return context.get_dummy_value()

        return types.void(a, a_row, panels, panel, out, out_row), codegen

    return tile


def _ub_tile(rows: int):
    @intrinsic
    def tile(typingctx, a, a_row, panels, panel, out, out_row, steps):
        def codegen(context, builder, signature, args):
            a_, a_row_, panels_, panel_, out_, out_row_, steps_ = sx.arguments(
                context, builder, signature, args)
            k_pairs = builder.extract_value(panels_.shape, 1)
            sums = madd_ub_tile(builder, a_.data, a_row_, panels_.data, panel_, k_pairs,
                                steps_, rows)
            _store(builder, sums, out_, out_row_, panel_, rows)
            return context.get_dummy_value()

        return types.void(a, a_row, panels, panel, out, out_row, steps), codegen

    return tile


_wd_6rows, _wd_1row = _wd_tile(ROWS_WD), _wd_tile(1)
_ub_4rows, _ub_1row = _ub_tile(ROWS_UB), _ub_tile(1)


@njit(cache=True, parallel=True)
def gemm_madd_wd(a16, panels, out):
    # a16 (M, 2 k_pairs) int16, panels (n_panels, k_pairs, 16, 2) int16 -> out (M, 16 n_panels)
    m_len = a16.shape[0]
    full = m_len // ROWS_WD * ROWS_WD
    for p in prange(panels.shape[0]):
        for i in range(0, full, ROWS_WD):
            _wd_6rows(a16, i, panels, p, out, i)
        for row in range(full, m_len):
            _wd_1row(a16, row, panels, p, out, row)


@njit(cache=True, parallel=True)
def gemm_madd_ub(a, panels, out, steps):
    # a (M, 2 k_pairs) uint8, panels (n_panels, k_pairs, 16, 2) int8; int16 sums widened to
    # int32 every `steps` pairs
    m_len = a.shape[0]
    full = m_len // ROWS_UB * ROWS_UB
    for p in prange(panels.shape[0]):
        for i in range(0, full, ROWS_UB):
            _ub_4rows(a, i, panels, p, out, i, steps)
        for row in range(full, m_len):
            _ub_1row(a, row, panels, p, out, row, steps)


def _padded(a: np.ndarray, width: int, dtype) -> np.ndarray:
    """``a`` converted to ``dtype`` (as bytes for uint8), with zero columns up to ``width``."""
    out = np.empty((a.shape[0], width), dtype)
    out[:, :a.shape[1]] = a.view(np.uint8) if dtype == np.uint8 else a
    out[:, a.shape[1]:] = 0
    return out


def gemm_saturating_pairs(a: np.ndarray, packed) -> np.ndarray:
    """fbgemm's AVX2 product for checked uint8 ``a``: each pair of products saturated to int16
    (``vpmaddubsw``), then summed in int32 (`qkit.kernels.gemm_pairs16` defines it).

    This is the int16 kernel widened after every step, so the saturation is the instruction's
    own: no bound is needed, and none is wanted, the point being to reproduce it.
    """
    m, k = a.shape
    k_pairs, n_panels = -(-k // 2), -(-packed.n // AVX2_COLUMNS)
    out = np.empty((m, n_panels * AVX2_COLUMNS), np.int32)
    gemm_madd_ub(_padded(a, 2 * k_pairs, np.uint8), packed.avx2_pairs8, out, 1)
    return valid_columns(out, packed.n)


def gemm_avx2(a: np.ndarray, packed, path: str = "auto") -> np.ndarray:
    """``a @ w.T`` for checked operands and `qkit.kernels.packing.PackedWeights` ``packed``.

    ``path``: ``"int16"`` (vpmaddubsw, int16 sums; only where `int16_steps` allows),
    ``"int32"`` (vpmaddwd), or ``"auto"``: int16 where at least 4 steps fit, else int32.
    """
    m, k = a.shape
    k_pairs, n_panels = -(-k // 2), -(-packed.n // AVX2_COLUMNS)
    out = np.empty((m, n_panels * AVX2_COLUMNS), np.int32)
    shift = 128 if a.dtype == np.int8 else 0
    steps = 0
    if path != "int32":  # the bound from the data (one read-only pass), before any copy
        a_max = (int(a.max()) + shift) if a.size else 0
        steps = int16_steps(a_max, packed.max_abs)
        if path == "int16" and steps < 1:
            raise ValueError(f"int16 accumulation is not exact for these operands: "
                             f"max a = {a_max}, max |w| = {packed.max_abs}")
    if steps >= (1 if path == "int16" else 4):
        a_u = _padded(a, 2 * k_pairs, np.uint8)
        if shift:
            a_u[:, :k] ^= np.uint8(shift)  # int8 -> a + 128, corrected below
        gemm_madd_ub(a_u, packed.avx2_pairs8, out, min(steps, k_pairs))
    else:
        shift = 0
        gemm_madd_wd(_padded(a, 2 * k_pairs, np.int16), packed.avx2_pairs16, out)
    out = valid_columns(out, packed.n)
    if shift:
        out -= np.int32(128) * packed.col_sums  # exact mod 2**32; the true sum fits in int32
    return out
