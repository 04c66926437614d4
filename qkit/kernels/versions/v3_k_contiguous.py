"""Version 3: B stored (N, K), like ``nn.Linear.weight``; tiles on every core.

What changed: both operands now stream along K, so the inner loop reads consecutive bytes
and LLVM turns it into packed multiply-adds (16 or 32 products per instruction); the output
is split into 8 x 64 tiles run in parallel (`prange`). This is qkit's portable kernel,
`qkit.kernels.loops`, which every CPU can run::

    for m in range(m0, m1):
        for n in range(n0, n1):
            acc = 0
            for k in range(K):                     # a[m] and w[n] both contiguous in k
                acc += int32(a[m, k]) * int32(w[n, k])
            out[m, n] = acc

What it still does badly: each output reloads its whole rows of ``a`` and ``w`` and ends in
a horizontal sum of a vector; the arithmetic waits on loads. Version 4 reuses every load.
"""

from __future__ import annotations

import numpy as np

from qkit.kernels import loops

TITLE = "numba, K contiguous"


def prepare(a, w):
    a, w = np.ascontiguousarray(a), np.ascontiguousarray(w)
    return lambda: loops.gemm_plain(a, w)
