"""The SIMD instructions qkit's micro-kernels use, and their packed GEMM, on NumPy lanes.

Each function computes what one x86 instruction computes on one register, lane by lane,
with the widths written out (the Intel SDM's pseudocode, in NumPy). A test runs one IR tile
of `qkit.kernels.vnni.gemm` and `qkit.kernels.avx2` against `vnni_tile` / `avx2_tile`.

=============  =====================================================  =================
instruction    per 32-bit lane i                                      used by
=============  =====================================================  =================
``vpdpbusd``   acc[i] + sum_j u8(a[4i+j]) * s8(b[4i+j]), j < 4, exact  VNNI GEMM, conv
``vpmaddwd``   s16(a[2i]) * s16(b[2i]) + s16(a[2i+1]) * s16(b[2i+1])   AVX2 GEMM
``vpmaddubsw`` per 16-bit lane: sat16(u8 a[2i] * s8 b[2i] + ...)       AVX2 int16 path
=============  =====================================================  =================
"""

from __future__ import annotations

import numpy as np

VNNI_COLUMNS = 32  # output columns of one VNNI panel: two zmm of 16 int32 lanes


def vpdpbusd(acc: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``vpdpbusd``: 16 int32 lanes ``acc`` plus, per lane, the four products of unsigned
    bytes ``a`` and signed bytes ``b`` (64 each). Exact: 4 * 255 * 128 fits easily."""
    prods = a.astype(np.int32).reshape(16, 4) * b.astype(np.int32).reshape(16, 4)
    return (acc.astype(np.int64) + prods.sum(axis=1)).astype(np.int32)  # wraps like the lane


def vpmaddwd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``vpmaddwd`` (256-bit): 16 int16 pairs multiplied, neighbours added into 8 int32."""
    prods = a.astype(np.int32).reshape(8, 2) * b.astype(np.int32).reshape(8, 2)
    return prods.sum(axis=1).astype(np.int32)


def vpmaddubsw(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``vpmaddubsw`` (256-bit): 32 unsigned x signed byte products, neighbours added and
    saturated to int16 (16 lanes): the saturation fbgemm's AVX2 path inherits."""
    prods = a.astype(np.int32).reshape(16, 2) * b.astype(np.int32).reshape(16, 2)
    return np.clip(prods.sum(axis=1), -32768, 32767).astype(np.int16)


def pack_panels(w: np.ndarray) -> np.ndarray:
    """Int8 weights (N,K) -> VNNI panels (N/32, K/4, 32, 4), zero-padded: panel ``p``, K-quad
    ``q`` holds ``w[32p + j, 4q + t]`` at ``[p, q, j, t]``, the 128 bytes one step reads."""
    n, k = w.shape
    n_pad, k_pad = -(-n // VNNI_COLUMNS) * VNNI_COLUMNS, -(-k // 4) * 4
    padded = np.zeros((n_pad, k_pad), np.int8)
    padded[:n, :k] = w
    return padded.reshape(n_pad // VNNI_COLUMNS, VNNI_COLUMNS, k_pad // 4, 4).transpose(0, 2, 1,
                                                                                        3)


def vnni_tile(a_u8: np.ndarray, panels: np.ndarray, panel: int, row: int,
              rows: int) -> np.ndarray:
    """One ``rows x 32`` tile of the VNNI micro-kernel, instruction by instruction: per K-quad,
    the row's four bytes broadcast to 16 lanes and one `vpdpbusd` per half of the panel."""
    acc = np.zeros((rows, 2, 16), np.int32)  # 2 * rows zmm registers
    for q in range(panels.shape[1]):
        b0, b1 = panels[panel, q, :16].ravel(), panels[panel, q, 16:].ravel()  # 64 bytes each
        for r in range(rows):
            quad = np.tile(a_u8[row + r, 4 * q:4 * q + 4], 16)  # broadcast to all lanes
            acc[r, 0] = vpdpbusd(acc[r, 0], quad, b0)
            acc[r, 1] = vpdpbusd(acc[r, 1], quad, b1)
    return acc.reshape(rows, VNNI_COLUMNS)


def gemm_panels(a_u8: np.ndarray, panels: np.ndarray, n: int) -> np.ndarray:
    """``a @ w.T`` from uint8 rows (K padded to the panels' 4 * K/4) and VNNI panels, tile by
    tile as the micro-kernel walks them; the first ``n`` columns."""
    m = a_u8.shape[0]
    out = np.zeros((m, panels.shape[0] * VNNI_COLUMNS), np.int32)
    for p in range(panels.shape[0]):
        for row in range(0, m, 8):
            rows = min(8, m - row)
            out[row:row + rows, VNNI_COLUMNS * p:VNNI_COLUMNS * (p + 1)] = vnni_tile(
                a_u8, panels, p, row, rows)
    return out[:, :n]


def avx2_tile(a16: np.ndarray, pairs: np.ndarray, panel: int, row: int,
              rows: int) -> np.ndarray:
    """One ``rows x 16`` tile of the AVX2 ``vpmaddwd`` kernel: per pair of K values, the row's
    int16 pair broadcast to 8 lanes and one `vpmaddwd` per half of the panel (16 columns)."""
    acc = np.zeros((rows, 2, 8), np.int32)
    for q in range(pairs.shape[1]):
        b0, b1 = pairs[panel, q, :8].ravel(), pairs[panel, q, 8:].ravel()  # 16 int16 each
        for r in range(rows):
            pair = np.tile(a16[row + r, 2 * q:2 * q + 2], 8)
            acc[r, 0] += vpmaddwd(pair, b0)
            acc[r, 1] += vpmaddwd(pair, b1)
    return acc.reshape(rows, 16)
