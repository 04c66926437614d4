"""Integer GEMMs, the public twins of `qkit.reference.gemms`: checks, then one kernel family.

`qkit.kernels.dispatch` decides the family: the VNNI micro-kernels (`qkit.kernels.vnni`),
the AVX2 ones (`qkit.kernels.avx2`), or the plain loops (`qkit.kernels.loops`). Every
family computes the same integers; the tests run each one the CPU can execute.
"""

from __future__ import annotations

import numpy as np

from qkit.core.checks import (
    INTEGER_OPERANDS,
    check_accumulation,
    check_codebook_gemm,
    check_gemm,
    check_int4_gemm,
    check_int_array,
    check_range,
    max_abs,
)
from qkit.kernels import dispatch, loops
from qkit.kernels.avx2 import ROWS_WD, gemm_avx2, gemm_saturating_pairs, int16_steps
from qkit.kernels.int4 import unpack_int4
from qkit.kernels.packing import PackedInt4, PackedWeights
from qkit.kernels.simd.cpu import avx2_available
from qkit.kernels.vnni.gemm import gemm_vnni
from qkit.kernels.vnni.int4 import gemm_int4_vnni


def gemm(a, w) -> np.ndarray:
    """``acc[m, n] = sum_k a[m, k] * w[n, k]``: (M,K) u8/s8 x (N,K) s8 -> (M,N) s32.

    Packs ``w`` on every call; a layer that runs many times packs once with
    `pack_weights` and calls `gemm_packed`.
    """
    a, w = check_gemm(a, w)
    return gemm_checked(np.ascontiguousarray(a), PackedWeights(w))


def gemm_checked(a, packed: PackedWeights) -> np.ndarray:
    """``a @ w.T`` of checked, contiguous operands on this CPU's kernel family."""
    if dispatch.USE_VNNI:
        return gemm_vnni(a, packed)
    return gemm_no_vnni(a, packed)


def gemm_no_vnni(a, packed: PackedWeights) -> np.ndarray:
    """AVX2 where the CPU has it (`qkit.kernels.avx2`), else the plain loop. A few rows of
    full int8 weights also take the plain loop: there the GEMM is bound by reading weights,
    which the loop reads as bytes and ``vpmaddwd`` would need widened to int16."""
    if dispatch.USE_AVX2 and (a.shape[0] >= ROWS_WD or int16_steps(
            int(a.max()) + (128 if a.dtype == np.int8 else 0), packed.max_abs) >= 4):
        return gemm_avx2(a, packed)
    return loops.gemm_plain(a, packed.w)


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
        if dispatch.USE_VNNI:
            return gemm_int4_vnni(a, packed)
        if dispatch.USE_AVX2:
            return gemm_avx2(a, packed)
        return loops.int4_plain(a, packed.nibbles)
    return gemm_checked(a, packed)


def gemm_pairs16(a, w) -> np.ndarray:
    """fbgemm's AVX2 product: K in pairs, each pair saturated to int16, then summed in int32."""
    a, w = check_gemm(a, w)
    a, w = np.ascontiguousarray(a), np.ascontiguousarray(w)
    if a.dtype == np.uint8 and avx2_available():  # vpmaddubsw saturates exactly like this
        return gemm_saturating_pairs(a, PackedWeights(w))
    return loops.pairs16_plain(a, w)


def gemm_int4(a, w_packed) -> np.ndarray:
    """``a @ unpack_int4(w_packed).T``, unpacking the nibbles inside the loop.

    Repacks on every call; a layer that runs many times uses `pack_weights_int4` once.
    """
    a, w_packed = check_int4_gemm(a, w_packed)
    a = np.ascontiguousarray(a)
    if dispatch.USE_VNNI:
        return gemm_int4_vnni(a, PackedInt4(unpack_int4(w_packed, a.shape[1])))
    return loops.int4_plain(a, np.ascontiguousarray(w_packed))


def pack_weights_int4(w4) -> PackedInt4:
    """Pack signed 4-bit weights (N,K), given as int8 values in [-8, 7], for `gemm_packed`."""
    w4 = check_int_array(w4, "w4", (np.int8,), ndim=2)
    check_range(w4, "w4", -8, 7)
    return PackedInt4(w4)


def gemm_codebook(a, idx, codebook) -> np.ndarray:
    """``acc[m, n] = sum_k a[m, k] * codebook[n, idx[n, k]]`` with per-code bucket sums."""
    a, idx, codebook = check_codebook_gemm(a, idx, codebook)
    return loops.codebook_plain(np.ascontiguousarray(a), np.ascontiguousarray(idx), codebook)
