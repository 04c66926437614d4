"""Version 4: a register tile in plain numba: every load feeds four multiply-adds.

What changed: version 3 computes one output per loop over K, so each multiply-add needs two
loads (a byte of ``a``, a byte of ``w``). Here one loop over K computes a 4 x 4 block of
outputs in 16 scalar accumulators, which LLVM keeps in registers (vectorized along K): per
step it loads four bytes of ``a`` and four of ``w`` and does 16 multiply-adds, four per
load. That is the idea of every fast GEMM, register blocking, and it is all version 5 adds
to the hardware's dot-product instruction::

    for k in range(K):
        x0, x1, x2, x3 = a[m0:m0 + 4, k]           # 4 loads
        y0, y1, y2, y3 = w[n0:n0 + 4, k]           # 4 loads
        c00 = np.int32(c00 + x0 * y0);  c01 += x0 * y1;  ...      # 16 multiply-adds

What numba cannot do: choose the instruction. Version 5 writes the tile in LLVM IR so that
the 32 columns of a tile are the lanes of two zmm registers and one ``vpdpbusd`` does 64
multiply-adds; for that the weights are packed into panels (`qkit.kernels.packing`).
Edges (M or N not a multiple of 4) run version 3's one-output loop.

One detail matters as much as the tile: numba widens ``int32 + int32`` to int64, so each
sum is cast back (``c00 = np.int32(c00 + x0 * y0)``), which lets LLVM keep 16 int32 lanes
per register instead of 8 int64 ones (exact: the true sums fit int32, which the public
kernels check before they run).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

TITLE = "numba 4x4 register tile"
TILE = 4


@njit(cache=True)
def _tile4x4(a, w, out, m0, n0):
    # out[m0:m0 + 4, n0:n0 + 4] = a[m0:m0 + 4] @ w[n0:n0 + 4].T, in 16 scalar accumulators
    a0, a1, a2, a3 = a[m0], a[m0 + 1], a[m0 + 2], a[m0 + 3]
    w0, w1, w2, w3 = w[n0], w[n0 + 1], w[n0 + 2], w[n0 + 3]
    c00 = c01 = c02 = c03 = c10 = c11 = c12 = c13 = np.int32(0)
    c20 = c21 = c22 = c23 = c30 = c31 = c32 = c33 = np.int32(0)
    for k in range(a.shape[1]):
        x0, x1, x2, x3 = np.int32(a0[k]), np.int32(a1[k]), np.int32(a2[k]), np.int32(a3[k])
        y0, y1, y2, y3 = np.int32(w0[k]), np.int32(w1[k]), np.int32(w2[k]), np.int32(w3[k])
        c00 = np.int32(c00 + x0 * y0)
        c01 = np.int32(c01 + x0 * y1)
        c02 = np.int32(c02 + x0 * y2)
        c03 = np.int32(c03 + x0 * y3)
        c10 = np.int32(c10 + x1 * y0)
        c11 = np.int32(c11 + x1 * y1)
        c12 = np.int32(c12 + x1 * y2)
        c13 = np.int32(c13 + x1 * y3)
        c20 = np.int32(c20 + x2 * y0)
        c21 = np.int32(c21 + x2 * y1)
        c22 = np.int32(c22 + x2 * y2)
        c23 = np.int32(c23 + x2 * y3)
        c30 = np.int32(c30 + x3 * y0)
        c31 = np.int32(c31 + x3 * y1)
        c32 = np.int32(c32 + x3 * y2)
        c33 = np.int32(c33 + x3 * y3)
    out[m0, n0], out[m0, n0 + 1], out[m0, n0 + 2], out[m0, n0 + 3] = c00, c01, c02, c03
    out[m0 + 1, n0], out[m0 + 1, n0 + 1], out[m0 + 1, n0 + 2], out[m0 + 1, n0 + 3] = (
        c10, c11, c12, c13)
    out[m0 + 2, n0], out[m0 + 2, n0 + 1], out[m0 + 2, n0 + 2], out[m0 + 2, n0 + 3] = (
        c20, c21, c22, c23)
    out[m0 + 3, n0], out[m0 + 3, n0 + 1], out[m0 + 3, n0 + 2], out[m0 + 3, n0 + 3] = (
        c30, c31, c32, c33)


@njit(cache=True)
def _edge(a, w, out, m0, m1, n0, n1):
    # version 3's loop for the outputs outside whole 4 x 4 tiles
    for m in range(m0, m1):
        for n in range(n0, n1):
            acc = np.int32(0)
            for k in range(a.shape[1]):
                acc += np.int32(a[m, k]) * np.int32(w[n, k])
            out[m, n] = acc


@njit(cache=True, parallel=True)
def gemm_register_tiles(a, w, out):
    # (M,K) x (N,K) -> out (M,N) int32: whole 4 x 4 tiles in parallel, then the edges
    m_len, n_len = out.shape
    tm, tn = m_len // TILE, n_len // TILE
    for t in prange(tm * tn):
        _tile4x4(a, w, out, (t // tn) * TILE, (t % tn) * TILE)
    _edge(a, w, out, tm * TILE, m_len, 0, n_len)
    _edge(a, w, out, 0, tm * TILE, tn * TILE, n_len)


def prepare(a, w):
    a, w = np.ascontiguousarray(a), np.ascontiguousarray(w)
    out = np.empty((a.shape[0], w.shape[0]), np.int32)
    return lambda: gemm_register_tiles(a, w, out) or out
