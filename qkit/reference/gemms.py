"""Integer matrix products with exact int32 accumulation, the readable NumPy way.

Weights are stored ``(N, K)``, like ``torch.nn.Linear.weight``: every product
here is ``acc[m, n] = sum_k a[m, k] * w[n, k]``, i.e. ``a @ w.T``.
"""

from __future__ import annotations

import numpy as np

from qkit.core.checks import (
    check_codebook_gemm,
    check_gemm,
    check_int4_gemm,
    check_int_array,
    check_qlinear,
    max_abs,
)
from qkit.reference.int4 import unpack_int4
from qkit.reference.requantization import requantize_float


def gemm(a, w) -> np.ndarray:
    """``acc[m, n] = sum_k a[m, k] * w[n, k]``: (M,K) u8/s8 x (N,K) s8 -> (M,N) s32.

    Each product is widened before it is summed; the sum is exact because the
    operands are checked to keep it inside int32.

    >>> a = np.array([[1, 2, 3]], dtype=np.uint8)
    >>> w = np.array([[1, 0, -1], [127, 127, 127]], dtype=np.int8)
    >>> gemm(a, w)
    array([[ -2, 762]], dtype=int32)
    """
    a, w = check_gemm(a, w)
    acc = a.astype(np.int64) @ w.astype(np.int64).T  # (M,K) @ (K,N) -> (M,N), exact
    return acc.astype(np.int32)


def gemm_pairs16(a, w) -> np.ndarray:
    """The AVX2 ``vpmaddubsw`` product: K in pairs, each pair summed into a *saturating* int16.

    ``acc = sum_p sat16(a[2p] * w[2p] + a[2p+1] * w[2p+1])``; an odd K pairs
    its last element with 0. This is what fbgemm computes on CPUs without VNNI
    (docs/semantics.md, "accumulation"); it equals `gemm` whenever no pair leaves int16.

    >>> a = np.array([[255, 255]], dtype=np.uint8)
    >>> w = np.array([[127, 127]], dtype=np.int8)
    >>> int(gemm(a, w)[0, 0]), int(gemm_pairs16(a, w)[0, 0])
    (64770, 32767)
    """
    a, w = check_gemm(a, w)
    k = a.shape[1]
    a32 = np.zeros((a.shape[0], k + k % 2), np.int32)
    w32 = np.zeros((w.shape[0], k + k % 2), np.int32)
    a32[:, :k], w32[:, :k] = a, w
    acc = np.zeros((a.shape[0], w.shape[0]), np.int32)
    for m in range(a.shape[0]):  # one row at a time keeps the (N, K/2) pair array small
        prod = a32[m] * w32  # (N, K) exact int32 products
        pairs = prod[:, 0::2] + prod[:, 1::2]  # (N, K/2)
        acc[m] = np.clip(pairs, -32768, 32767).sum(axis=1)
    return acc


def gemm_int4(a, w_packed) -> np.ndarray:
    """``a @ unpack_int4(w_packed).T`` for signed 4-bit weights packed two per byte.

    >>> from qkit.reference.int4 import pack_int4
    >>> w = np.array([[-8, 7, 1]], dtype=np.int8)
    >>> gemm_int4(np.array([[1, 1, 2]], dtype=np.uint8), pack_int4(w))
    array([[1]], dtype=int32)
    """
    a, w_packed = check_int4_gemm(a, w_packed)
    w = unpack_int4(w_packed, a.shape[1], signed=True)  # (N, K) int8 in [-8, 7]
    return gemm(a, w)


def gemm_codebook(a, idx, codebook) -> np.ndarray:
    """``acc[m, n] = sum_k a[m, k] * codebook[n, idx[n, k]]`` (lookup-table weights).

    ``codebook`` is ``(L,)`` (shared) or ``(N, L)`` (one per output channel),
    int8 or int16: non-uniform levels (k-means, powers of two, NF4) stored as
    integers times one float scale. The readable version looks every weight
    up and multiplies.

    >>> cb = np.array([-4, -1, 1, 4], dtype=np.int8)  # a 2-bit non-uniform grid
    >>> gemm_codebook(np.array([[1, 2, 3]], dtype=np.uint8), np.array([[0, 3, 2]], np.uint8), cb)
    array([[7]], dtype=int32)
    """
    a, idx, codebook = check_codebook_gemm(a, idx, codebook)
    w = np.take_along_axis(codebook, idx.astype(np.intp), axis=1)  # (N, K) int16
    acc = a.astype(np.int64) @ w.astype(np.int64).T
    return acc.astype(np.int32)


def qlinear(x_q, w, x_zero_point: int, multiplier, out_zero_point: int, qmin: int, qmax: int,
            bias=None) -> np.ndarray:
    """A quantized linear layer, int8 in and out (symmetric weights, zero point 0):

    ``raw[m, n] = sum_k (x_q[m, k] - x_zero_point) * w[n, k]``, then
    ``y = clamp(rne(f32(f32(raw) + bias) * multiplier) + out_zero_point, qmin, qmax)``.

    ``multiplier`` is ``s_x * s_w / s_y`` (one value, or one per output), ``bias``
    is float32 already divided by ``s_x * s_w``: fbgemm's requantization.

    >>> w = np.array([[1, -1], [2, 2]], dtype=np.int8)
    >>> qlinear(np.array([[10, 4]], np.uint8), w, 2, 0.5, 100, 0, 255)
    array([[103, 110]], dtype=uint8)
    """
    w = check_int_array(w, "w", (np.int8,), ndim=2)
    x_q, qmin, qmax, mult, bias = check_qlinear(x_q, w.shape, max_abs(w), x_zero_point,
                                                multiplier, out_zero_point, qmin=qmin, qmax=qmax,
                                                bias=bias)
    raw = gemm(x_q, w).astype(np.int64) - int(x_zero_point) * w.astype(np.int64).sum(axis=1)
    return requantize_float(raw.astype(np.int32), mult, out_zero_point, qmin, qmax, bias)
