"""Integer GEMMs in numba (twins of `qkit.reference.gemms`).

Every loop reduces over K into a single int32 accumulator with both operands
contiguous along K, the form LLVM turns into packed multiply-adds. The
parallel versions split the output into row x column tiles (independent
outputs, so `prange` is safe) and run the same tile function as the serial ones.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from qkit._checks import (
    INTEGER_OPERANDS,
    centred_bound,
    check_accumulation,
    check_codebook_gemm,
    check_gemm,
    check_int4_gemm,
    check_int_array,
    check_qlinear,
    check_range,
    dtype_proves_exact,
    max_abs,
    storage_dtype,
)
from qkit.kernels.avx2 import MR_WD, avx2_available, gemm_avx2, gemm_saturating_pairs, int16_steps
from qkit.kernels.int4 import unpack_int4
from qkit.kernels.requantization import requantize_float
from qkit.kernels.vnni import PackedWeights, QGemmVnni, gemm_vnni, qgemm_vnni, vnni_available
from qkit.kernels.vnni_int4 import PackedInt4, gemm_int4_vnni

# the VNNI micro-kernel where the CPU has it, else the AVX2 ones, else the plain loops
USE_VNNI = vnni_available()
USE_AVX2 = not USE_VNNI and avx2_available()

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
                lo = ((b & 15) ^ 8) - 8  # sign-extend the nibble
                hi = ((b >> 4) ^ 8) - 8
                acc += np.int32(am[2 * j]) * lo + np.int32(am[2 * j + 1]) * hi
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
def _gemm_parallel(a, w, out):
    m_len, n_len = out.shape
    tm, tn = (m_len + TILE_M - 1) // TILE_M, (n_len + TILE_N - 1) // TILE_N
    for t in prange(tm * tn):
        m0, n0 = (t // tn) * TILE_M, (t % tn) * TILE_N
        _gemm_tile(a, w, out, m0, min(m0 + TILE_M, m_len), n0, min(n0 + TILE_N, n_len))


@njit(cache=True, parallel=True)
def _pairs16_parallel(a, w, out):
    m_len, n_len = out.shape
    tm, tn = (m_len + TILE_M - 1) // TILE_M, (n_len + TILE_N - 1) // TILE_N
    for t in prange(tm * tn):
        m0, n0 = (t // tn) * TILE_M, (t % tn) * TILE_N
        _pairs16_tile(a, w, out, m0, min(m0 + TILE_M, m_len), n0, min(n0 + TILE_N, n_len))


@njit(cache=True, parallel=True)
def _int4_parallel(a, wp, out):
    m_len, n_len = out.shape
    tm, tn = (m_len + TILE_M - 1) // TILE_M, (n_len + TILE_N - 1) // TILE_N
    for t in prange(tm * tn):
        m0, n0 = (t // tn) * TILE_M, (t % tn) * TILE_N
        _int4_tile(a, wp, out, m0, min(m0 + TILE_M, m_len), n0, min(n0 + TILE_N, n_len))


@njit(cache=True, parallel=True)
def _codebook_parallel(a, idx, codebook, out):
    m_len, n_len = out.shape
    tm, tn = (m_len + TILE_M - 1) // TILE_M, (n_len + TILE_N - 1) // TILE_N
    for t in prange(tm * tn):
        m0, n0 = (t // tn) * TILE_M, (t % tn) * TILE_N
        _codebook_tile(a, idx, codebook, out, m0, min(m0 + TILE_M, m_len), n0,
                       min(n0 + TILE_N, n_len))


def _out(a, n):
    return np.empty((a.shape[0], n), np.int32)


def gemm(a, w) -> np.ndarray:
    """``acc[m, n] = sum_k a[m, k] * w[n, k]``: (M,K) u8/s8 x (N,K) s8 -> (M,N) s32.

    Packs ``w`` on every call; a layer that runs many times packs once with
    `pack_weights` and calls `gemm_packed`.
    """
    a, w = check_gemm(a, w)
    if USE_VNNI:
        return gemm_vnni(np.ascontiguousarray(a), PackedWeights(w))
    return _no_vnni(np.ascontiguousarray(a), PackedWeights(w))


def gemm_fallback(a, w) -> np.ndarray:
    """``a @ w.T`` of checked, contiguous operands without VNNI (see `_no_vnni`)."""
    return _no_vnni(a, PackedWeights(w))


def _no_vnni(a, packed) -> np.ndarray:
    """AVX2 where the CPU has it (`qkit.kernels.avx2`), else the plain loop. A few rows of
    full int8 weights also take the plain loop: there the GEMM is bound by reading weights,
    which the loop reads as bytes and ``vpmaddwd`` would need widened to int16."""
    if USE_AVX2 and (a.shape[0] >= MR_WD or int16_steps(
            int(a.max()) + (128 if a.dtype == np.int8 else 0), packed.max_abs) >= 4):
        return gemm_avx2(a, packed)
    return _gemm_plain(a, packed.w)


def _gemm_plain(a, w):
    out = _out(a, w.shape[0])
    _gemm_parallel(a, w, out)
    return out


def pack_weights(w) -> PackedWeights:
    """Pack int8 weights (N,K) once for `gemm_packed` (as fbgemm prepacks a Linear's weights)."""
    w = check_int_array(w, "w", (np.int8,), ndim=2)
    return PackedWeights(w)


def gemm_packed(a, packed) -> np.ndarray:
    """`gemm` (or `gemm_int4`) with weights packed once by `pack_weights` (`pack_weights_int4`):
    the same integers, without repacking."""
    if not isinstance(packed, PackedWeights | PackedInt4):
        raise TypeError("packed must come from pack_weights(w) or pack_weights_int4(w4), got "
                        f"{type(packed).__name__}")
    a = check_int_array(a, "a", INTEGER_OPERANDS, ndim=2)
    if a.shape[1] != packed.k:
        raise ValueError(f"a is (M,K)={a.shape} but the packed weights have K={packed.k}")
    check_accumulation(packed.k, max_abs(a), packed.max_abs)
    a = np.ascontiguousarray(a)
    if isinstance(packed, PackedInt4):
        if USE_VNNI:
            return gemm_int4_vnni(a, packed)
        return gemm_avx2(a, packed) if USE_AVX2 else _int4_plain(a, packed.nibbles)
    if USE_VNNI:
        return gemm_vnni(a, packed)
    return _no_vnni(a, packed)


def gemm_pairs16(a, w) -> np.ndarray:
    """fbgemm's AVX2 product: K in pairs, each pair saturated to int16, then summed in int32."""
    a, w = check_gemm(a, w)
    a, w = np.ascontiguousarray(a), np.ascontiguousarray(w)
    if a.dtype == np.uint8 and avx2_available():  # vpmaddubsw saturates exactly like this
        return gemm_saturating_pairs(a, PackedWeights(w))
    out = _out(a, w.shape[0])
    _pairs16_parallel(a, w, out)
    return out


def gemm_int4(a, w_packed) -> np.ndarray:
    """``a @ unpack_int4(w_packed).T``, unpacking the nibbles inside the loop.

    Repacks on every call; a layer that runs many times uses `pack_weights_int4` once.
    """
    a, w_packed = check_int4_gemm(a, w_packed)
    a = np.ascontiguousarray(a)
    if USE_VNNI:
        return gemm_int4_vnni(a, PackedInt4(unpack_int4(w_packed, a.shape[1])))
    return _int4_plain(a, np.ascontiguousarray(w_packed))


def _int4_plain(a, w_packed):
    out = _out(a, w_packed.shape[0])
    _int4_parallel(a, w_packed, out)
    return out


def pack_weights_int4(w4) -> PackedInt4:
    """Pack signed 4-bit weights (N,K), given as int8 values in [-8, 7], for `gemm_packed`."""
    w4 = check_int_array(w4, "w4", (np.int8,), ndim=2)
    check_range(w4, "w4", -8, 7)
    return PackedInt4(w4)


def gemm_codebook(a, idx, codebook) -> np.ndarray:
    """``acc[m, n] = sum_k a[m, k] * codebook[n, idx[n, k]]`` with per-code bucket sums."""
    a, idx, codebook = check_codebook_gemm(a, idx, codebook)
    a, idx = np.ascontiguousarray(a), np.ascontiguousarray(idx)
    out = _out(a, idx.shape[0])
    _codebook_parallel(a, idx, codebook, out)
    return out


class BoundQLinear:
    """`qlinear` with everything but the input fixed: ``bound(x)`` equals
    ``qlinear(x, w, *args)`` for inputs of one shape and dtype (`PackedWeights.bind`). The
    checks and the epilogue's per-column vectors are made once, as for a bound conv
    (`qkit.kernels.convolution.BoundQConv`); where the dtype alone cannot prove the int32 sums
    exact (a very long K), each input's values are still checked."""

    def __init__(self, packed, x, args):
        x_zero_point, multiplier, out_zero_point, qmin, qmax, bias = args
        x, qmin, qmax, mult, bias = check_qlinear(x, (packed.n, packed.k), packed.max_abs,
                                                  x_zero_point, multiplier, out_zero_point,
                                                  qmin, qmax, bias)
        self.shape, self.dtype, self._packed, self._args = x.shape, x.dtype, packed, args
        self._recheck = not dtype_proves_exact(x.dtype, x_zero_point, packed.k, packed.max_abs)
        self._gemm = (QGemmVnni(packed, x.dtype, x_zero_point, mult, bias, out_zero_point,
                                qmin, qmax, storage_dtype(qmin, qmax)) if USE_VNNI else None)

    def __call__(self, x) -> np.ndarray:
        if not (isinstance(x, np.ndarray) and x.shape == self.shape and x.dtype == self.dtype):
            raise ValueError(f"this layer was bound to {self.dtype} inputs of shape "
                             f"{self.shape}; got {getattr(x, 'dtype', type(x).__name__)} "
                             f"{getattr(x, 'shape', '')}: bind it again (PackedWeights.bind)")
        if self._gemm is None:
            return qlinear(x, self._packed, *self._args)
        if self._recheck:
            k, zx, bmax = self._packed.k, self._args[0], self._packed.max_abs
            check_accumulation(k, centred_bound(x, zx, k, bmax), bmax, "(x - x_zero_point) @ w")
        return self._gemm.run(np.ascontiguousarray(x))


def qlinear(x_q, w, x_zero_point: int, multiplier, out_zero_point: int, qmin: int, qmax: int,
            bias=None) -> np.ndarray:
    """A quantized linear layer, 8-bit in and out (see the reference for the formula).

    ``w`` is int8 (N,K) or, for a layer that runs many times, `pack_weights(w)`.
    With VNNI the requantization happens in registers as each tile finishes.
    """
    packed = w if isinstance(w, PackedWeights) else pack_weights(w)
    x_q, qmin, qmax, mult, bias = check_qlinear(x_q, (packed.n, packed.k), packed.max_abs,
                                                x_zero_point, multiplier, out_zero_point, qmin,
                                                qmax, bias)
    x_q = np.ascontiguousarray(x_q)
    if USE_VNNI:
        return qgemm_vnni(x_q, packed, x_zero_point, mult, bias, int(out_zero_point), qmin, qmax,
                          storage_dtype(qmin, qmax))
    raw = _no_vnni(x_q, packed).astype(np.int64)
    raw -= int(x_zero_point) * packed.col_sums.astype(np.int64)
    return requantize_float(raw.astype(np.int32), mult, out_zero_point, qmin, qmax, bias)
