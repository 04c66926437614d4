"""Two 4-bit values per byte: element ``2i`` in the low nibble, ``2i+1`` in the high one."""

from __future__ import annotations

import numpy as np

from qkit.core.checks import check_int4_values, check_int_array


def pack_int4(q) -> np.ndarray:
    """Pack 4-bit integers along the last axis; an odd length is padded with 0.

    Signed values (int8 in [-8, 7]) are stored as their two's-complement nibble.

    >>> pack_int4(np.array([-8, 7, 1], dtype=np.int8))
    array([120,   1], dtype=uint8)
    """
    q = check_int4_values(q)
    n = q.shape[-1]
    padded = np.zeros(q.shape[:-1] + (n + n % 2,), np.uint8)
    padded[..., :n] = q.astype(np.uint8) & 0x0F  # two's-complement nibble
    return (padded[..., 0::2] | (padded[..., 1::2] << 4)).astype(np.uint8)


def unpack_int4(packed, length: int, signed: bool = True) -> np.ndarray:
    """Inverse of `pack_int4`: the first ``length`` values along the last axis.

    >>> unpack_int4(np.array([120, 1], dtype=np.uint8), 3)
    array([-8,  7,  1], dtype=int8)
    """
    packed = check_int_array(packed, "packed", (np.uint8,))
    if not 0 < length <= 2 * packed.shape[-1] or length < 2 * packed.shape[-1] - 1:
        raise ValueError(f"length {length} does not fit {packed.shape[-1]} packed bytes")
    nib = np.empty(packed.shape[:-1] + (2 * packed.shape[-1],), np.uint8)
    nib[..., 0::2] = packed & 0x0F
    nib[..., 1::2] = packed >> 4
    nib = nib[..., :length]
    if not signed:
        return nib
    return np.where(nib >= 8, nib.astype(np.int16) - 16, nib).astype(np.int8)
