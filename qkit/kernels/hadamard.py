"""The fast Walsh-Hadamard transform in numba (twin of `qkit.reference.hadamard`).

log2(n) passes of butterflies: at stride h, each pair (x[j], x[j + h]) becomes
(x[j] + x[j + h], x[j] - x[j + h]). That is Sylvester's recursion run bottom-up, so the
result is ``x @ H_n`` with n log2 n additions instead of n^2 multiply-adds.
"""

from __future__ import annotations

from numba import njit, prange

from qkit.reference.hadamard import check_transform_input


@njit(cache=True, parallel=True)
def _fwht_rows(x):
    rows, n = x.shape
    for r in prange(rows):
        h = 1
        while h < n:
            for i in range(0, n, 2 * h):
                for j in range(i, i + h):
                    a, b = x[r, j], x[r, j + h]
                    x[r, j] = a + b
                    x[r, j + h] = a - b
            h *= 2


def fwht(x):
    """``x @ H_n`` for every row of ``x`` (rows, n): unnormalized, float64."""
    out = check_transform_input(x).copy()
    _fwht_rows(out)
    return out
