"""The plain numba GEMM loops: readable, portable, and the fallback on every CPU.

Every loop reduces over K into a single int32 accumulator with both operands contiguous
along K, the form LLVM turns into packed multiply-adds (version 3 of
`qkit.kernels.versions`). The parallel drivers split the output into row x column tiles
(independent outputs, so `prange` is safe) and run the same tile function on each.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

TILE_M, TILE_N = 8, 64


@njit(cache=True)
def _gemm_tile(a, w, out, m0, m1, n0, n1):
    # out[m0:m1, n0:n1] = a[m0:m1] @ w[n0:n1].T   (M,K) x (N,K) -> (M,N) s32
    k_len = a.shape[1]
    for m in range(m0, m1):
        am = a[m]
        for n in range(n0, n1):
            wn = w[n]
            acc = np.int32(0)
            for k in range(k_len):
                acc += np.int32(am[k]) * np.int32(wn[k])
            out[m, n] = acc


@njit(cache=True)
def _pairs16_tile(a, w, out, m0, m1, n0, n1):
    # like _gemm_tile, but each pair of products saturates to int16 (AVX2 vpmaddubsw)
    k_len = a.shape[1]
    for m in range(m0, m1):
        am = a[m]
        for n in range(n0, n1):
            wn = w[n]
            acc = np.int32(0)
            for k in range(0, k_len, 2):
                p = np.int32(am[k]) * np.int32(wn[k])
                if k + 1 < k_len:
                    p += np.int32(am[k + 1]) * np.int32(wn[k + 1])
                acc += min(max(p, -32768), 32767)
            out[m, n] = acc


@njit(cache=True)
def _int4_tile(a, wp, out, m0, m1, n0, n1):
    # wp (N, ceil(K/2)) uint8: low nibble = even k, high nibble = odd k, signed 4-bit
    k_len = a.shape[1]
    for m in range(m0, m1):
        am = a[m]
        for n in range(n0, n1):
            wn = wp[n]
            acc = np.int32(0)
            for j in range(k_len // 2):
                b = np.int32(wn[j])
                low = ((b & 15) ^ 8) - 8  # sign-extend the nibble
                high = ((b >> 4) ^ 8) - 8
                acc += np.int32(am[2 * j]) * low + np.int32(am[2 * j + 1]) * high
            if k_len % 2:
                acc += np.int32(am[k_len - 1]) * ((np.int32(wn[k_len // 2]) & 15 ^ 8) - 8)
            out[m, n] = acc


@njit(cache=True)
def _codebook_tile(a, idx, codebook, out, m0, m1, n0, n1):
    # lookup-table GEMM: add activations into one bucket per code, then one multiply per code
    k_len, n_codes = a.shape[1], codebook.shape[1]
    buckets = np.empty(n_codes, np.int32)
    for m in range(m0, m1):
        am = a[m]
        for n in range(n0, n1):
            buckets[:] = 0
            row = idx[n]
            for k in range(k_len):
                buckets[row[k]] += np.int32(am[k])
            acc = np.int32(0)
            for c in range(n_codes):
                acc += buckets[c] * np.int32(codebook[n, c])
            out[m, n] = acc


@njit(cache=True, parallel=True)
def gemm_tiles(a, w, out):
    m_len, n_len = out.shape
    tm, tn = (m_len + TILE_M - 1) // TILE_M, (n_len + TILE_N - 1) // TILE_N
    for t in prange(tm * tn):
        m0, n0 = (t // tn) * TILE_M, (t % tn) * TILE_N
        _gemm_tile(a, w, out, m0, min(m0 + TILE_M, m_len), n0, min(n0 + TILE_N, n_len))


@njit(cache=True, parallel=True)
def pairs16_tiles(a, w, out):
    m_len, n_len = out.shape
    tm, tn = (m_len + TILE_M - 1) // TILE_M, (n_len + TILE_N - 1) // TILE_N
    for t in prange(tm * tn):
        m0, n0 = (t // tn) * TILE_M, (t % tn) * TILE_N
        _pairs16_tile(a, w, out, m0, min(m0 + TILE_M, m_len), n0, min(n0 + TILE_N, n_len))


@njit(cache=True, parallel=True)
def int4_tiles(a, wp, out):
    m_len, n_len = out.shape
    tm, tn = (m_len + TILE_M - 1) // TILE_M, (n_len + TILE_N - 1) // TILE_N
    for t in prange(tm * tn):
        m0, n0 = (t // tn) * TILE_M, (t % tn) * TILE_N
        _int4_tile(a, wp, out, m0, min(m0 + TILE_M, m_len), n0, min(n0 + TILE_N, n_len))


@njit(cache=True, parallel=True)
def codebook_tiles(a, idx, codebook, out):
    m_len, n_len = out.shape
    tm, tn = (m_len + TILE_M - 1) // TILE_M, (n_len + TILE_N - 1) // TILE_N
    for t in prange(tm * tn):
        m0, n0 = (t // tn) * TILE_M, (t % tn) * TILE_N
        _codebook_tile(a, idx, codebook, out, m0, min(m0 + TILE_M, m_len), n0,
                       min(n0 + TILE_N, n_len))


def gemm_plain(a, w) -> np.ndarray:
    """``a @ w.T`` of checked, contiguous (M,K) and (N,K) operands on the plain loop."""
    out = np.empty((a.shape[0], w.shape[0]), np.int32)
    gemm_tiles(a, w, out)
    return out


def int4_plain(a, w_packed) -> np.ndarray:
    """``a @ unpack_int4(w_packed).T`` on the plain loop (nibbles unpacked inside it)."""
    out = np.empty((a.shape[0], w_packed.shape[0]), np.int32)
    int4_tiles(a, w_packed, out)
    return out


def pairs16_plain(a, w) -> np.ndarray:
    """fbgemm's AVX2 product (pairs saturated to int16) on the plain loop."""
    out = np.empty((a.shape[0], w.shape[0]), np.int32)
    pairs16_tiles(a, w, out)
    return out


def codebook_plain(a, idx, codebook) -> np.ndarray:
    """The lookup-table GEMM: per-code bucket sums, then one multiply per code."""
    out = np.empty((a.shape[0], idx.shape[0]), np.int32)
    codebook_tiles(a, idx, codebook, out)
    return out
