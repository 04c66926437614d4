"""The Walsh-Hadamard transform as a matrix product (twin of `qkit.kernels.hadamard`).

Sylvester's construction: ``H_1 = [1]`` and ``H_2n = [[H_n, H_n], [H_n, -H_n]]``, so ``H_n``
is symmetric, its entries are +-1 and ``H_n @ H_n = n I``: ``H_n / sqrt(n)`` is a rotation
(orthogonal). Applying it as a matrix costs n^2 multiply-adds per vector; the kernel's
butterflies cost n log2 n additions and give the same numbers (exactly, on integer-valued
input, where no sum is ever rounded).
"""

from __future__ import annotations

import numpy as np


def check_transform_input(x) -> np.ndarray:
    """``x`` as a C-contiguous float64 (rows, n) array with n a power of two."""
    x = np.asarray(x)
    if x.dtype.kind not in "fiu" or x.dtype == np.bool_:
        raise TypeError(f"x must be a real-valued array, got dtype {x.dtype}")
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"x must be 2-D (rows, n) with at least one row, got shape {x.shape}")
    n = x.shape[1]
    if n < 1 or n & (n - 1):
        raise ValueError(f"x's last axis must be a power of two (1, 2, 4, ...), got {n}; "
                         f"qkit.topics.rotation.random_hadamard handles n = 2^k * m")
    if not np.isfinite(x).all():
        raise ValueError("x contains NaN or Inf")
    return np.ascontiguousarray(x, np.float64)


def hadamard_matrix(n: int) -> np.ndarray:
    """Sylvester's ``H_n`` (n a power of two) as float64 +-1 entries."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1 or n & (n - 1):
        raise ValueError(f"n must be a power of two (1, 2, 4, ...), got {n!r}")
    h = np.ones((1, 1))
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    return h


def fwht(x):
    """``x @ H_n`` for every row of ``x`` (rows, n): unnormalized, float64."""
    x = check_transform_input(x)
    return x @ hadamard_matrix(x.shape[1])
