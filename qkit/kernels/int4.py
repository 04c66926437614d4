"""Nibble packing in numba (twins of `qkit.reference.int4`)."""

from __future__ import annotations

import numpy as np
from numba import njit

from qkit.core.checks import check_int4_values, check_int_array


@njit(cache=True)
def _pack_nb(q, out):
    # q (R, L) int -> out (R, ceil(L/2)) uint8, even element in the low nibble
    n = q.shape[1]
    for r in range(q.shape[0]):
        for j in range(out.shape[1]):
            low = np.int32(q[r, 2 * j]) & 15
            high = np.int32(q[r, 2 * j + 1]) & 15 if 2 * j + 1 < n else 0
            out[r, j] = low | (high << 4)


@njit(cache=True)
def _unpack_nb(packed, length, signed, out):
    for r in range(packed.shape[0]):
        for i in range(length):
            b = np.int32(packed[r, i // 2])
            v = (b >> 4) if i % 2 else (b & 15)
            out[r, i] = ((v ^ 8) - 8) if signed else v


def pack_int4(q) -> np.ndarray:
    """Pack 4-bit integers two per byte along the last axis (see the reference)."""
    q = check_int4_values(q)
    flat = np.ascontiguousarray(q.reshape(-1, q.shape[-1]))
    out = np.empty((flat.shape[0], (q.shape[-1] + 1) // 2), np.uint8)
    _pack_nb(flat, out)
    return out.reshape(q.shape[:-1] + (out.shape[1],))


def unpack_int4(packed, length: int, signed: bool = True) -> np.ndarray:
    """Inverse of `pack_int4`: the first ``length`` values along the last axis."""
    packed = check_int_array(packed, "packed", (np.uint8,))
    if not 0 < length <= 2 * packed.shape[-1] or length < 2 * packed.shape[-1] - 1:
        raise ValueError(f"length {length} does not fit {packed.shape[-1]} packed bytes")
    flat = np.ascontiguousarray(packed.reshape(-1, packed.shape[-1]))
    out = np.empty((flat.shape[0], length), np.int8 if signed else np.uint8)
    _unpack_nb(flat, length, signed, out)
    return out.reshape(packed.shape[:-1] + (length,))
